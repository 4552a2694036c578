"""The Milvus vector store against real Milvus: Milvus Lite as a ``.db`` file (pymilvus starts
it in process) and Milvus Lite's gRPC server on a loopback port, plain and behind a TLS proxy.

Milvus Lite serves the same gRPC API (pymilvus's own protobufs) as a Milvus server, so the
remote tests cross the real wire protocol; the TLS tests put a TLS-terminating proxy in front of
it, and the gRPC channel must verify (or, with insecure_skip_verify, pin) its certificate.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymilvus import MilvusClient

from hector.config import parse_config
from hector.config.schema import VectorStoreConfig
from hector.errors import ConfigError, VectorStoreError
from hector.rag.backends import build_vector_store, milvus
from hector.rag.backends.milvus import MilvusVectorStore, create, milvus_name
from hector.rag.vectors import Chunk
from tests.rag.milvus_server import MilvusServer, milvus_server
from tests.rag.store_contract import (
    EMBEDDER,
    StoreAt,
    check_client_certificate,
    check_contract,
    check_contract_and_restart,
    check_one_collection,
    check_tls_cases,
    index_and_search_folder,
    sample_chunks,
    stalling_proxy,
)
from tests.tls import conftest as tls_fixtures
from tests.tls.conftest import tls_proxy

certs = tls_fixtures.certs
fresh_warnings = tls_fixtures._fresh_warnings

TOKEN = "root:milvus-secret-42"
COMPONENT = "vector store milvus (mv)"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MilvusServer]:
    with milvus_server(tmp_path / "milvus-server") as running:
        yield running


def remote(port: int, **options: Any) -> MilvusVectorStore:
    cfg = VectorStoreConfig(type="milvus", host="127.0.0.1", port=port, **options)
    store = create("mv", cfg, Path("."))
    assert isinstance(store, MilvusVectorStore)
    return store


async def test_contract_on_a_milvus_lite_file_and_data_survives(tmp_path: Path) -> None:
    cfg = VectorStoreConfig(type="milvus", path="data/milvus.db")
    await check_contract_and_restart(lambda: create("lite", cfg, tmp_path))
    assert (tmp_path / "data" / "milvus.db").exists()


async def test_contract_over_grpc_with_token(server: MilvusServer) -> None:
    store = remote(server.port, api_key=TOKEN)
    await check_contract(store, "contract", bulk=2100)  # more than two pages of chunks()
    await store.aclose()
    methods = {method for method, _ in server.calls}
    assert {"CreateCollection", "Upsert", "Search", "Query", "Delete", "DropCollection"} <= methods
    # pymilvus sends the token base64-encoded in the authorization metadata of every call.
    assert {auth for _, auth in server.calls} == {base64.b64encode(TOKEN.encode()).decode()}


async def test_what_the_collection_records(server: MilvusServer) -> None:
    store = remote(server.port)
    assert await store.open_collection("my docs/v2", "emb/1", 4) is True
    chunks, vectors = sample_chunks()
    await store.upsert("my docs/v2", chunks, vectors)
    await store.aclose()

    name = milvus_name("my docs/v2")
    assert name.startswith("c_my_docs_v2_") and milvus_name("my-docs-v2") != name
    direct = MilvusClient(uri=f"http://127.0.0.1:{server.port}")
    info = direct.describe_collection(name)
    assert info["properties"] == {"hector.embedder": "emb/1", "hector.dimension": "4"}
    rows = direct.query(name, filter='document == "guides/setup.md"', output_fields=["chunk_id", "meta"])
    assert sorted((r["chunk_id"], r["meta"]["start_line"]) for r in rows) == [
        ("guides/setup.md#0", 1),
        ("guides/setup.md#1", 4),
    ]
    direct.close()


async def test_a_foreign_collection_is_not_dropped(server: MilvusServer) -> None:
    direct = MilvusClient(uri=f"http://127.0.0.1:{server.port}")
    direct.create_collection("theirs", dimension=4)
    direct.insert("theirs", [{"id": 1, "vector": [1.0, 0.0, 0.0, 0.0]}])
    store = remote(server.port)
    with pytest.raises(VectorStoreError, match="collection 'theirs' was not written by Hector"):
        await store.open_collection("theirs", EMBEDDER, 4)
    assert direct.has_collection("theirs")
    with pytest.raises(VectorStoreError, match=r"reading collection 'nope' failed: .*not"):
        await store.chunks("nope")
    direct.close()
    await store.aclose()


async def test_dimension_mismatch_and_oversized_chunks(tmp_path: Path) -> None:
    store = create("lite", VectorStoreConfig(type="milvus", path="m.db"), tmp_path)
    await store.open_collection("kb", EMBEDDER, 4)
    with pytest.raises(VectorStoreError, match="holds 4-dimensional vectors, got 3"):
        await store.query("kb", [1.0, 0.0, 0.0], 3)
    with pytest.raises(VectorStoreError, match="longer than Milvus's 65535 bytes; lower chunk_size"):
        await store.upsert("kb", [Chunk("big", "big.md", "é" * 40000)], [[1.0, 0.0, 0.0, 0.0]])
    await store.aclose()


async def test_unreachable_server_names_the_store_and_hides_the_token() -> None:
    store = remote(1, api_key=TOKEN)
    with pytest.raises(VectorStoreError) as failed:
        await store.query("docs", [1.0], 1)
    message = failed.value.message
    assert message.startswith("vector store 'mv' (milvus at http://127.0.0.1:1): cannot reach 127.0.0.1:1")
    assert "milvus-secret" not in message
    await store.aclose()
    with_password = create(
        "mv", VectorStoreConfig(type="milvus", url="http://root:pw-42@127.0.0.1:1"), Path(".")
    )
    with pytest.raises(VectorStoreError) as failed:
        await with_password.chunks("docs")
    assert failed.value.message.startswith("vector store 'mv' (milvus at http://127.0.0.1:1): cannot reach")
    assert "pw-42" not in failed.value.message
    await with_password.aclose()


def test_settings_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"names a \.db file"):
        create("x", VectorStoreConfig(type="milvus", path="folder"), tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        create("x", VectorStoreConfig(type="milvus", path="a.db", host="h"), tmp_path)
    with pytest.raises(ConfigError, match="host takes a name, not a URL"):
        create("x", VectorStoreConfig(type="milvus", host="https://h"), tmp_path)
    with pytest.raises(ConfigError, match="url must start with"):
        create("x", VectorStoreConfig(type="milvus", url="grpc://h:19530"), tmp_path)


def test_the_seed_example(certs: Any, tmp_path: Path) -> None:
    """tls-https-configuration.md's Milvus entry validates and means a verified gRPC channel."""
    raw = yaml.safe_load(
        f"""
        vector_stores:
          milvus:
            type: "milvus"
            host: "internal-milvus.company.com"
            port: 443
            enable_tls: true
            ca_certificate: "{certs.ca}"
        """
    )
    loaded = parse_config(raw, "<seed>")
    store = create("milvus", loaded.config.vector_stores["milvus"], tmp_path)
    assert isinstance(store, MilvusVectorStore)
    assert store._options == {
        "uri": "https://internal-milvus.company.com:443",
        "token": "",
        "secure": True,
        "server_pem_path": certs.ca,
    }


async def test_tls_options(server: MilvusServer, certs: Any, caplog: pytest.LogCaptureFixture) -> None:
    @contextlib.asynccontextmanager
    async def endpoint(certfile: str) -> AsyncIterator[StoreAt]:
        async with tls_proxy(certfile, ("127.0.0.1", server.port)) as port:
            # The token and the CA reach gRPC itself, not just the handshake probe.
            yield lambda **tls: remote(port, enable_tls=True, api_key=TOKEN, **tls)

    refused = r"vector store 'mv' \(milvus at https://127\.0\.0\.1:\d+\): TLS with"
    await check_tls_cases(endpoint, certs, caplog, COMPONENT, refused)
    assert ("Upsert", base64.b64encode(TOKEN.encode()).decode()) in server.calls

    # gRPC cannot skip verification: insecure_skip_verify pins the certificate presented, which
    # accepts another name from an unknown CA, but not a certificate out of date.
    async with tls_proxy(certs.wrong_host, ("127.0.0.1", server.port)) as port:
        anything = remote(port, enable_tls=True, insecure_skip_verify=True)
        assert len(await anything.chunks("tls-docs")) == 4
        await anything.aclose()
    async with tls_proxy(certs.expired, ("127.0.0.1", server.port)) as port:
        expired = remote(port, enable_tls=True, insecure_skip_verify=True)
        with pytest.raises(VectorStoreError, match="gRPC refuses it even with insecure_skip_verify"):
            await expired.chunks("tls-docs")
        await expired.aclose()

    async with tls_proxy(certs.self_signed, ("127.0.0.1", server.port)) as port:
        pinned = remote(port, enable_tls=True, ca_certificate=certs.self_signed_cert)
        assert len(await pinned.chunks("tls-docs")) == 4
        await pinned.aclose()


async def test_url_with_https(server: MilvusServer, certs: Any) -> None:
    async with tls_proxy(certs.good, ("127.0.0.1", server.port)) as port:
        cfg = VectorStoreConfig(type="milvus", url=f"https://localhost:{port}", ca_certificate=certs.ca)
        store = create("mv", cfg, Path("."))
        assert await store.open_collection("docs", EMBEDDER, 4) is True
        await store.aclose()


async def test_client_certificate(server: MilvusServer, certs: Any) -> None:
    async with tls_proxy(certs.good, ("127.0.0.1", server.port), client_ca=certs.ca) as port:
        refused = "closed right after the TLS handshake; the server may require a client certificate"
        await check_client_certificate(lambda **tls: remote(port, enable_tls=True, **tls), certs, refused)


async def test_each_store_connects_with_its_own_tls_options(server: MilvusServer, certs: Any) -> None:
    """Two stores of one address and token: the one without a client certificate does not ride
    on the connection of the one with it."""
    async with tls_proxy(certs.good, ("127.0.0.1", server.port), client_ca=certs.ca) as port:
        pair = {"client_certificate": certs.client_cert, "client_key": certs.client_key}
        mutual = remote(port, enable_tls=True, ca_certificate=certs.ca, **pair)
        assert await mutual.open_collection("docs", EMBEDDER, 4) is True
        anonymous = remote(port, enable_tls=True, ca_certificate=certs.ca)
        with pytest.raises(VectorStoreError, match="the server may require a client certificate"):
            await anonymous.chunks("docs")
        for store in (mutual, anonymous):
            await store.aclose()


async def test_ca_certificate_adds_to_the_system_roots(
    server: MilvusServer, certs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ca_certificate names another CA (a company's, say, set at the top level); the server's
    certificate comes from a CA of the system store: gRPC trusts it too."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca)  # the system store, as far as this test goes
    async with tls_proxy(certs.good, ("127.0.0.1", server.port)) as port:
        store = remote(port, enable_tls=True, ca_certificate=certs.self_signed_cert)
        assert await store.open_collection("docs", EMBEDDER, 4) is True
        await store.aclose()


async def test_a_server_that_stops_answering_fails_the_call(
    server: MilvusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls have a deadline, retries included: without one, a call to a server that stopped
    answering would wait forever (and pymilvus retries an unavailable one for over an hour)."""
    monkeypatch.setattr(milvus, "TIMEOUT", 1.0)
    async with stalling_proxy(server.port) as (port, stalled):
        store = remote(port)
        await store.open_collection("docs", EMBEDDER, 4)
        stalled.set()
        with pytest.raises(VectorStoreError, match="failed: gRPC DEADLINE_EXCEEDED: Deadline Exceeded"):
            await store.query("docs", [1.0, 0.0, 0.0, 0.0], 3)
        await store.aclose()


async def test_top_level_ca_reaches_the_store(server: MilvusServer, certs: Any, tmp_path: Path) -> None:
    async with tls_proxy(certs.good, ("127.0.0.1", server.port)) as port:
        raw = {
            "ca_certificate": certs.ca,
            "vector_stores": {"m": {"type": "milvus", "host": "127.0.0.1", "port": port, "enable_tls": True}},
        }
        config = parse_config(raw, "<test>").config
        store = build_vector_store("m", config.vector_stores["m"], tmp_path, None, config)  # type: ignore[arg-type]
        assert await store.open_collection("docs", EMBEDDER, 4) is True
        await store.aclose()


async def test_the_collection_setting_keeps_one_collection(server: MilvusServer) -> None:
    store = remote(server.port, collection="only_one")
    await check_one_collection(store)
    await store.aclose()


async def test_collection_setting_shares_one_collection(server: MilvusServer) -> None:
    store = remote(server.port, collection="shared")
    await store.open_collection("kb", EMBEDDER, 4)
    await store.upsert("kb", [Chunk("a", "a.md", "alpha")], [[1.0, 0.0, 0.0, 0.0]])
    direct = MilvusClient(uri=f"http://127.0.0.1:{server.port}")
    assert direct.list_collections() == ["shared"]
    direct.close()
    await store.aclose()


async def test_document_store_on_milvus_finds_the_right_file(tmp_path: Path) -> None:
    # The second start finds the vectors in the file: nothing to re-embed.
    vector_store = {"type": "milvus", "path": "milvus/kb.db"}
    await index_and_search_folder(vector_store, tmp_path, MilvusVectorStore, starts=2)
