"""The Chroma vector store: the shared contract against a real Chroma server (``chroma run``,
started once for this module) and in a local folder, TLS in front of the server, the api key on
the wire, errors, and a document store searched end to end."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import chromadb
import httpx
import pytest
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

from hector.config.schema import VectorStoreConfig
from hector.errors import VectorStoreError
from hector.rag.backends import chroma
from hector.rag.backends.chroma import ChromaVectorStore, chroma_name, create
from hector.rag.vectors import Chunk
from tests.rag.store_contract import (
    EMBEDDER,
    StoreAt,
    check_contract,
    check_contract_and_restart,
    check_isolation,
    check_one_collection,
    check_tls_cases,
    index_and_search_folder,
    stalling_proxy,
)
from tests.tls import conftest as tls_fixtures
from tests.tls.conftest import free_port, serve_proxy, splice, tls_proxy

# The TLS tests' fixtures: trustme certificates, and a fresh "warn once" record per test.
certs = tls_fixtures.certs
fresh_warnings = tls_fixtures._fresh_warnings

CHROMA = Path(sys.executable).with_name("chroma")
API_KEY = "chroma-secret-token-7"


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Chroma server on loopback for the whole module; its port."""
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("chroma run did not start:\n" + (folder / "server.log").read_text())
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture(autouse=True)
def _no_embedding_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chroma must never embed (we give it vectors), so it never loads or downloads its model."""

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("Chroma tried to use its default embedding model")

    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", refuse)


def server(port: int, **options: Any) -> ChromaVectorStore:
    store = create(
        "kbvec", VectorStoreConfig(type="chroma", host="127.0.0.1", port=port, **options), Path(".")
    )
    assert isinstance(store, ChromaVectorStore)
    return store


@contextlib.asynccontextmanager
async def tap(upstream: int) -> AsyncIterator[tuple[int, bytearray]]:
    """A plain byte proxy to *upstream* that keeps a copy of what clients send."""
    sent = bytearray()
    async with serve_proxy(
        lambda reader, writer: splice(reader, writer, ("127.0.0.1", upstream), sent)
    ) as port:
        yield port, sent


async def test_contract_on_a_chroma_server(chroma_port: int) -> None:
    store = server(chroma_port)
    await check_contract(store, "contract-server")
    await check_isolation(store, "iso-one", "iso-two")
    await store.aclose()


async def test_contract_in_a_folder_and_data_survives_a_restart(tmp_path: Path) -> None:
    cfg = VectorStoreConfig(type="chroma", path="chroma-data")
    await check_contract_and_restart(lambda: create("disk", cfg, tmp_path))
    assert (tmp_path / "chroma-data").is_dir()


async def test_collection_names_chroma_rejects_are_mapped(chroma_port: int) -> None:
    assert chroma_name("docs") == "docs"
    assert chroma_name("kb").startswith("hector-kb-") and chroma_name("kb") != chroma_name("kb_")
    assert chroma_name("my docs/v2").startswith("hector-my-docs-v2-")
    store = server(chroma_port)
    await check_isolation(store, "kb", "my docs/v2")
    names = {c.name for c in chromadb.HttpClient(host="127.0.0.1", port=chroma_port).list_collections()}
    assert {chroma_name("kb"), chroma_name("my docs/v2")} <= names
    await store.aclose()


async def test_the_collection_setting_keeps_one_collection(chroma_port: int) -> None:
    store = server(chroma_port, collection="only-one")
    await check_one_collection(store)
    await store.aclose()


async def test_collection_setting_puts_every_store_in_one(chroma_port: int) -> None:
    store = server(chroma_port, collection="shared-one")
    await store.open_collection("anything", EMBEDDER, 4)
    await store.upsert("anything", [Chunk("a", "a.md", "alpha")], [[1.0, 0.0, 0.0, 0.0]])
    raw = chromadb.HttpClient(host="127.0.0.1", port=chroma_port)
    assert raw.get_collection("shared-one", embedding_function=None).get()["ids"] == ["a"]
    await store.aclose()


async def test_foreign_collections_are_not_wiped(chroma_port: int) -> None:
    raw = chromadb.HttpClient(host="127.0.0.1", port=chroma_port)
    theirs = raw.create_collection("theirs-1", embedding_function=None)
    theirs.add(ids=["x"], embeddings=[[1.0, 0.0, 0.0, 0.0]], documents=["their text"])
    store = server(chroma_port)
    with pytest.raises(VectorStoreError, match="holds records Hector did not write"):
        await store.open_collection("theirs-1", EMBEDDER, 4)
    assert theirs.count() == 1
    await store.aclose()


async def test_api_key_is_sent_as_chroma_token_and_never_shown(chroma_port: int) -> None:
    async with tap(chroma_port) as (port, sent):
        store = server(port, api_key=API_KEY)
        await store.open_collection("token-check", EMBEDDER, 4)
        await store.aclose()
    assert f"x-chroma-token: {API_KEY}".encode() in bytes(sent).lower()

    unreachable = server(1, api_key=API_KEY)
    with pytest.raises(VectorStoreError) as failed:
        await unreachable.chunks("docs")
    assert (
        "vector store 'kbvec' (chroma): cannot reach http://127.0.0.1:1: ConnectError" in failed.value.message
    )
    assert API_KEY not in failed.value.message


async def test_a_server_that_stops_answering_fails_the_call(
    chroma_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests have a deadline: chromadb's own client would wait forever."""
    monkeypatch.setattr(chroma, "TIMEOUT", 1.0)
    async with stalling_proxy(chroma_port) as (port, stalled):
        store = server(port)
        await store.open_collection("stalled", EMBEDDER, 4)
        stalled.set()
        with pytest.raises(VectorStoreError, match=r"cannot reach http://127\.0\.0\.1:\d+: ReadTimeout"):
            await store.query("stalled", [1.0, 0.0, 0.0, 0.0], 3)
        await store.aclose()


async def test_tls_options(chroma_port: int, certs: Any, caplog: pytest.LogCaptureFixture) -> None:
    @contextlib.asynccontextmanager
    async def endpoint(certfile: str) -> AsyncIterator[StoreAt]:
        async with tls_proxy(certfile, ("127.0.0.1", chroma_port)) as port:
            yield lambda **tls: server(port, enable_tls=True, **tls)

    refused = r"vector store 'kbvec' \(chroma\): cannot reach https://127\.0\.0\.1:\d+"
    await check_tls_cases(endpoint, certs, caplog, "vector store chroma (kbvec)", refused)

    # An https url, by name: what check_tls_cases wrote is there.
    async with tls_proxy(certs.good, ("127.0.0.1", chroma_port)) as port:
        by_url = create(
            "kbvec",
            VectorStoreConfig(type="chroma", url=f"https://localhost:{port}", ca_certificate=certs.ca),
            Path("."),
        )
        assert len(await by_url.chunks("tls-docs")) == 4
        await by_url.aclose()


async def test_document_store_on_chroma_finds_the_right_file(chroma_port: int, tmp_path: Path) -> None:
    vector_store = {"type": "chroma", "url": f"http://127.0.0.1:{chroma_port}"}
    await index_and_search_folder(vector_store, tmp_path, ChromaVectorStore, name="e2e-kb")
