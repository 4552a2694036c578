"""The Weaviate vector store, through the official v4 client, against a scripted Weaviate on
loopback (``tests/rag/weaviate_server.py``: REST for the schema, gRPC for the data, as the
client uses them): the shared contract, the exact requests, TLS on both protocols, errors, and
a document store searched end to end.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hector.config import parse_config
from hector.config.schema import VectorStoreConfig
from hector.errors import VectorStoreError
from hector.rag.backends import build_vector_store
from hector.rag.backends.weaviate import WeaviateVectorStore, class_name, object_id
from tests.rag.store_contract import (
    EMBEDDER,
    StoreAt,
    check_contract,
    check_isolation,
    check_one_collection,
    check_tls_cases,
    index_and_search_folder,
    many_chunks,
    sample_chunks,
)
from tests.rag.weaviate_server import WeaviateServer, weaviate_server
from tests.tls import conftest as tls_fixtures
from tests.tls.conftest import tls_proxy

API_KEY = "weaviate-secret-key-7"
certs = tls_fixtures.certs  # trustme certificates
_fresh_warnings = tls_fixtures._fresh_warnings  # each test may warn once again


def store_for(server: WeaviateServer, **options: Any) -> WeaviateVectorStore:
    settings = {"host": "127.0.0.1", "port": server.http_port, "grpc_port": server.grpc_port} | options
    store = build_vector_store("wv", VectorStoreConfig(type="weaviate", **settings), Path("."), None)  # type: ignore[arg-type]
    assert isinstance(store, WeaviateVectorStore)
    return store


@contextlib.asynccontextmanager
async def behind_tls(server: WeaviateServer, certfile: str) -> AsyncIterator[WeaviateServer]:
    """The same Weaviate, its REST and gRPC ports both behind TLS with *certfile*."""
    async with (
        tls_proxy(certfile, ("127.0.0.1", server.http_port)) as http_port,
        tls_proxy(certfile, ("127.0.0.1", server.grpc_port)) as grpc_port,
    ):
        yield WeaviateServer(server.state, http_port, grpc_port)


async def test_contract_with_api_key_on_both_protocols() -> None:
    async with weaviate_server(api_key=API_KEY) as server:
        store = store_for(server, api_key=API_KEY)
        await check_contract(store, "contract")
        await check_isolation(store, "one", "two")
        await store.aclose()
    seen = server.state.requests
    assert {protocol for protocol, _, _ in seen} == {"rest", "grpc"}
    assert all(auth == f"Bearer {API_KEY}" for _, _, auth in seen)


async def test_schema_and_objects_as_weaviate_stores_them() -> None:
    async with weaviate_server() as server:
        store = store_for(server)
        assert await store.open_collection("my-docs", "emb/1", 4) is False
        chunks, vectors = sample_chunks()
        await store.upsert("my-docs", chunks, vectors)
        await store.aclose()
    name = class_name("my-docs")
    assert name.startswith("My_docs_") and name != class_name("my_docs")
    assert class_name("docs") == "Docs" and class_name("Docs") == "Docs" and class_name("1st")[0] == "C"
    cls = server.state.schema[name]
    assert json.loads(cls["description"]) == {"hector": {"embedder": "emb/1", "dimension": 4}}
    assert cls["vectorConfig"]["default"]["vectorizer"] == {"none": {}}
    assert cls["vectorConfig"]["default"]["vectorIndexConfig"]["distance"] == "cosine"
    props = {p["name"]: p for p in cls["properties"]}
    assert props["document"]["tokenization"] == "field" and props["meta"]["indexSearchable"] is False
    stored = server.state.objects[name][object_id(chunks[1].id)]
    assert stored.vectors == {"default": vectors[1]}
    assert stored.properties["chunk_id"] == chunks[1].id
    assert json.loads(stored.properties["meta"]) == chunks[1].meta
    assert next(r for r in server.state.requests if r[0] == "rest")[1] == "GET /v1/meta"


async def test_deleting_a_document_larger_than_one_batch_delete() -> None:
    """Weaviate deletes at most QUERY_MAXIMUM_RESULTS objects a request: every chunk goes anyway."""
    async with weaviate_server() as server:
        server.state.max_results = 3
        store = store_for(server)
        await store.open_collection("docs", EMBEDDER, 4)
        chunks, vectors = many_chunks(7, "big.md")
        await store.upsert("docs", chunks, vectors)
        await store.upsert("docs", *sample_chunks())
        await store.delete_documents("docs", ["big.md", "other.md"])
        assert {c.document for c in await store.chunks("docs")} == {
            "guides/setup.md",
            "notes/Überblick ünïcode.txt",
        }
        await store.aclose()


async def test_the_collection_setting_keeps_one_collection() -> None:
    async with weaviate_server() as server:
        store = store_for(server, collection="only_one")
        await check_one_collection(store)
        await store.aclose()


async def test_collection_setting_shares_one_collection() -> None:
    async with weaviate_server() as server:
        store = store_for(server, collection="shared")
        await store.open_collection("kb", EMBEDDER, 4)
        chunks, vectors = sample_chunks()
        await store.upsert("kb", chunks[:1], vectors[:1])
        await store.aclose()
    assert list(server.state.schema) == ["Shared"] and len(server.state.objects["Shared"]) == 1


async def test_errors_name_the_store_and_hide_the_key() -> None:
    async with weaviate_server(api_key=API_KEY) as server:
        wrong_key = store_for(server, api_key="not-the-key")
        with pytest.raises(VectorStoreError) as failed:
            await wrong_key.open_collection("docs", EMBEDDER, 4)
        message = failed.value.message
        assert message.startswith(
            f"vector store 'wv' (weaviate): connecting to http://127.0.0.1:{server.http_port}"
        )
        assert "401" in message and "anonymous access not enabled" in message
        assert "not-the-key" not in failed.value.message and API_KEY not in failed.value.message
        await wrong_key.aclose()

        store = store_for(server, api_key=API_KEY)
        await store.open_collection("docs", EMBEDDER, 4)
        chunks, vectors = sample_chunks()
        await store.upsert("docs", chunks[:1], vectors[:1])
        with pytest.raises(VectorStoreError, match=r"searching collection 'docs' failed: .*vector lengths"):
            await store.query("docs", [1.0, 0.0, 0.0], 3)
        # A collection another tool made (no embedder recorded) is refused, not wiped.
        server.state.schema["Theirs"] = dict(
            server.state.schema["Docs"], **{"class": "Theirs", "description": ""}
        )
        server.state.objects["Theirs"] = {}
        with pytest.raises(VectorStoreError, match="collection Theirs exists but was not made by Hector"):
            await store.open_collection("theirs", EMBEDDER, 4)
        assert "Theirs" in server.state.schema
        await store.aclose()

    unreachable = store_for(server, api_key=API_KEY)  # the server is gone
    with pytest.raises(VectorStoreError) as failed:
        await unreachable.chunks("docs")
    message = failed.value.message
    assert message.startswith(
        f"vector store 'wv' (weaviate): connecting to http://127.0.0.1:{server.http_port}"
    )
    assert "Connect call failed" in message and API_KEY not in message
    await unreachable.aclose()


async def test_tls_on_rest_and_grpc(certs: Any, caplog: pytest.LogCaptureFixture) -> None:
    async with weaviate_server(api_key=API_KEY) as plain:

        @contextlib.asynccontextmanager
        async def endpoint(certfile: str) -> AsyncIterator[StoreAt]:
            async with behind_tls(plain, certfile) as server:
                yield lambda **tls: store_for(server, enable_tls=True, api_key=API_KEY, **tls)

        refused = r"^vector store 'wv' \(weaviate\): connecting to https://127\.0\.0\.1:\d+"
        await check_tls_cases(endpoint, certs, caplog, "vector store weaviate (wv)", refused)

        async with behind_tls(plain, certs.good) as server:
            trusted = store_for(server, enable_tls=True, ca_certificate=certs.ca, api_key=API_KEY)
            await check_contract(trusted, "contract", bulk=30)
            await trusted.aclose()
    assert all(auth == f"Bearer {API_KEY}" for _, _, auth in plain.state.requests)


async def test_tls_grpc_checks_its_own_certificate(certs: Any) -> None:
    """REST trusted, but the gRPC port presents a certificate for another name: writes fail."""
    async with (
        weaviate_server() as plain,
        tls_proxy(certs.good, ("127.0.0.1", plain.http_port)) as http_port,
        tls_proxy(certs.wrong_host, ("127.0.0.1", plain.grpc_port)) as grpc_port,
    ):
        store = store_for(
            WeaviateServer(plain.state, http_port, grpc_port), enable_tls=True, ca_certificate=certs.ca
        )
        with pytest.raises(VectorStoreError) as failed:
            await store.open_collection("docs", EMBEDDER, 4)
        message = failed.value.message
        assert message.startswith(
            f"vector store 'wv' (weaviate): connecting to the gRPC port {grpc_port} failed"
        )
        assert f"TLS connection to the gRPC port {grpc_port} failed" in message
        assert "Hostname Verification" in message and "ca_certificate" in message
        await store.aclose()


async def test_tls_ca_certificate_adds_to_the_system_roots(
    certs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ca_certificate names another CA (a company's, say, set at the top level for every
    component); the server's certificate comes from a CA of the system store: both protocols
    trust it, as every other client of Hector does."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca)  # the system store, as far as this test goes
    async with weaviate_server() as plain, behind_tls(plain, certs.good) as server:
        store = store_for(server, enable_tls=True, ca_certificate=certs.self_signed_cert)
        assert await store.open_collection("docs", EMBEDDER, 4) is False
        chunks, vectors = sample_chunks()
        await store.upsert("docs", chunks, vectors)
        assert len(await store.chunks("docs")) == 4
        await store.aclose()


async def test_tls_insecure_accepts_another_name(certs: Any) -> None:
    async with weaviate_server() as plain, behind_tls(plain, certs.wrong_host) as server:
        # insecure_skip_verify accepts it on both protocols: an unknown issuer and another name.
        insecure = store_for(server, enable_tls=True, insecure_skip_verify=True)
        assert await insecure.open_collection("docs", EMBEDDER, 4) is False
        chunks, vectors = sample_chunks()
        await insecure.upsert("docs", chunks, vectors)
        assert len(await insecure.chunks("docs")) == 4
        await insecure.aclose()


def test_configuration_defaults_and_url() -> None:
    raw: dict[str, Any] = {"version": "2", "vector_stores": {"w": {"type": "weaviate"}}}
    cfg = parse_config(raw, "<test>").config.vector_stores["w"]
    store = build_vector_store("w", cfg, Path("."), None)  # type: ignore[arg-type]  # not embedded
    assert isinstance(store, WeaviateVectorStore)
    assert (store.url, store.grpc_port) == ("http://localhost:8080", 50051)
    raw["vector_stores"]["w"] = {"type": "weaviate", "url": "https://weaviate.example", "grpc_port": 443}
    cfg = parse_config(raw, "<test>").config.vector_stores["w"]
    store = build_vector_store("w", cfg, Path("."), None)  # type: ignore[arg-type]
    assert isinstance(store, WeaviateVectorStore)
    assert (store.url, store.grpc_port, store.secure) == ("https://weaviate.example:443", 443, True)


async def test_document_store_on_weaviate_finds_the_right_file(tmp_path: Path) -> None:
    async with weaviate_server(api_key=API_KEY) as server:
        vector_store = {
            "type": "weaviate",
            "url": f"http://127.0.0.1:{server.http_port}",
            "grpc_port": server.grpc_port,
            "api_key": API_KEY,
        }
        await index_and_search_folder(vector_store, tmp_path, WeaviateVectorStore)
    assert len({o.properties["document"] for o in server.state.objects["Kb"].values()}) == 12
