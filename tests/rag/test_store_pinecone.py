"""The Pinecone vector store, through the official SDK (asyncio, REST), against a scripted
Pinecone index on loopback (``tests/rag/pinecone_server.py``): the shared contract, the exact
requests, the index found by name, TLS, errors, and a document store searched end to end.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pinecone._internal import http_client as pinecone_http

from hector.config import parse_config
from hector.config.schema import EmbedderConfig, VectorStoreConfig
from hector.errors import ConfigError, VectorStoreError
from hector.rag.backends import build_vector_store
from hector.rag.backends.pinecone import MARKER_ID, PineconeVectorStore, document_prefix, vector_id
from hector.rag.embedders import build_embedder
from tests.rag.pinecone_server import pinecone_server
from tests.rag.store_contract import (
    EMBEDDER,
    QUERY,
    StoreAt,
    check_contract,
    check_isolation,
    check_one_collection,
    check_tls_cases,
    index_and_search_folder,
    sample_chunks,
)
from tests.tls import conftest as tls_fixtures

API_KEY = "pcsk_secret-key-123"
certs = tls_fixtures.certs  # trustme certificates
_fresh_warnings = tls_fixtures._fresh_warnings  # each test may warn once again


@pytest.fixture(autouse=True)
def _no_retry_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK retries a failed connection three times with random back-off (seconds, up to a
    minute): the same retries, without the pauses, keep the failure tests fast."""

    async def no_pause(delay: float) -> None:
        pass

    monkeypatch.setattr(pinecone_http, "_async_retry_sleep", no_pause)


def store_for(**settings: Any) -> PineconeVectorStore:
    cfg = VectorStoreConfig(type="pinecone", **({"api_key": API_KEY} | settings))
    store = build_vector_store("pc", cfg, Path("."), None)  # type: ignore[arg-type]  # not embedded
    assert isinstance(store, PineconeVectorStore)
    return store


async def test_contract_up_to_the_dimension_change() -> None:
    """Every step of the contract holds; the last one (another dimension) cannot, as a Pinecone
    index has one dimension: it is refused with the fix instead."""
    async with pinecone_server(API_KEY, 4) as (state, url):
        store = store_for(url=url)
        with pytest.raises(VectorStoreError) as refused:
            await check_contract(store, "contract")
        assert refused.value.message == (
            "vector store 'pc' (pinecone): the index holds 4-dimensional vectors and the embedder "
            "'contract-embedder/v2' makes 3-dimensional ones: use an index of dimension 3 "
            "(a Pinecone index cannot change its dimension)"
        )
        await check_isolation(store, "one", "two")
        await store.aclose()
    assert {(s.api_key, s.api_version) for s in state.seen} == {(API_KEY, "2026-07")}


async def test_vectors_as_pinecone_stores_them() -> None:
    async with pinecone_server(API_KEY, 4) as (state, url):
        store = store_for(url=url)
        assert await store.open_collection("docs", EMBEDDER, 4) is False
        chunks, vectors = sample_chunks()
        await store.upsert("docs", chunks, vectors)
        space = state.namespaces["docs"]
        assert space[MARKER_ID]["metadata"] == {"hector_embedder": EMBEDDER, "hector_dimension": 4}
        stored = space[vector_id(chunks[1])]
        assert stored["id"].startswith(document_prefix(chunks[1].document)) and stored["id"].isascii()
        assert stored["values"] == vectors[1]
        assert stored["metadata"] == {
            "chunk_id": chunks[1].id,
            "document": chunks[1].document,
            "text": chunks[1].text,
            "meta": json.dumps(chunks[1].meta, ensure_ascii=False),
        }
        # The marker is nearest to this query, and is never a hit.
        hits = await store.query("docs", [1.0, 0.0, 0.0, 0.0], 1)
        assert [h.chunk for h in hits] == [chunks[0]]
        state.seen.clear()
        await store.delete_documents("docs", ["guides/setup.md"])
        await store.aclose()
    listing, deletion = state.seen
    assert (listing.method, listing.path) == ("GET", "/vectors/list")
    assert deletion.body == {
        "namespace": "docs",
        "ids": sorted([vector_id(chunks[0]), vector_id(chunks[1])]),
    }
    assert set(space) == {MARKER_ID, vector_id(chunks[2]), vector_id(chunks[3])}


async def test_the_collection_setting_keeps_one_collection() -> None:
    async with pinecone_server(API_KEY, 4) as (_, url):
        store = store_for(url=url, collection="only-one")
        await check_one_collection(store)
        await store.aclose()


async def test_collection_setting_shares_one_namespace() -> None:
    async with pinecone_server(API_KEY, 4) as (state, url):
        store = store_for(url=url, collection="shared")
        await store.open_collection("kb", EMBEDDER, 4)
        chunks, vectors = sample_chunks()
        await store.upsert("kb", chunks[:1], vectors[:1])
        await store.aclose()
    assert list(state.namespaces) == ["shared"] and len(state.namespaces["shared"]) == 2


async def test_errors_name_the_store_and_hide_the_key() -> None:
    async with pinecone_server(API_KEY, 4) as (state, url):
        wrong = store_for(url=url, api_key="pcsk_wrong-key")
        with pytest.raises(VectorStoreError) as failed:
            await wrong.open_collection("docs", EMBEDDER, 4)
        message = failed.value.message
        assert message.startswith(f"vector store 'pc' (pinecone): connecting to {url} failed")
        assert "Invalid API Key" in message and "pcsk_" not in message
        await wrong.aclose()

        store = store_for(url=url)
        await store.open_collection("docs", EMBEDDER, 4)
        with pytest.raises(VectorStoreError, match=r"searching collection 'docs' failed: .*dimension 3"):
            await store.query("docs", [1.0, 0.0, 0.0], 2)
        # Vectors another tool wrote (no embedder recorded) are refused, not wiped.
        state.namespaces["theirs"] = {"x": {"id": "x", "values": [1.0, 0, 0, 0], "metadata": None}}
        with pytest.raises(VectorStoreError, match="namespace 'theirs' holds vectors Hector did not write"):
            await store.open_collection("theirs", EMBEDDER, 4)
        assert "x" in state.namespaces["theirs"]
        await store.aclose()

    async with pinecone_server(API_KEY, 4, metric="dotproduct") as (_, url):
        dot = store_for(url=url)
        with pytest.raises(
            VectorStoreError, match=r"uses the dotproduct metric.*create the index with metric cosine"
        ):
            await dot.chunks("docs")
        await dot.aclose()

    gone = store_for(url=url)  # nothing listens there any more
    with pytest.raises(VectorStoreError, match=f"connecting to {url} failed"):
        await gone.chunks("docs")
    await gone.aclose()


def test_configuration() -> None:
    raw: dict[str, Any] = {"version": "2", "vector_stores": {"p": {"type": "pinecone"}}}
    with pytest.raises(ConfigError, match="type pinecone needs api_key, host or url or index_name"):
        parse_config(raw, "<test>")
    with pytest.raises(ConfigError, match="the Pinecone client cannot present a client certificate"):
        store_for(host="x.pinecone.io", client_certificate="/etc/c.pem")
    assert store_for(host="idx-1.svc.pinecone.io").host == "https://idx-1.svc.pinecone.io"
    assert store_for(host="localhost", port=5081, enable_tls=False).host == "http://localhost:5081"
    assert store_for(url="http://localhost:5081/").host == "http://localhost:5081"


async def test_tls_options(
    certs: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextlib.asynccontextmanager
    async def endpoint(certfile: str) -> AsyncIterator[StoreAt]:
        async with pinecone_server(API_KEY, 4, certfile, index_name="kb-index") as (_, url):
            # The SDK's own setting for the control plane's address (a real one: api.pinecone.io).
            monkeypatch.setenv("PINECONE_CONTROLLER_HOST", url)
            yield lambda **tls: store_for(index_name="kb-index", **tls)

    refused = r"^vector store 'pc' \(pinecone\): connecting to index 'kb-index' failed"
    await check_tls_cases(endpoint, certs, caplog, "vector store pinecone (pc)", refused)


async def test_index_by_name_and_insecure_over_a_ca_file(certs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with pinecone_server(API_KEY, 4, certs.good, index_name="kb-index") as (state, url):
        monkeypatch.setenv("PINECONE_CONTROLLER_HOST", url)
        trusted = store_for(index_name="kb-index", ca_certificate=certs.ca)
        assert await trusted.open_collection("docs", EMBEDDER, 4) is False
        assert [s.path for s in state.seen[-5:]] == [
            "/indexes/kb-index",  # the control plane gives the index's host
            "/describe_index_stats",
            "/vectors/fetch",
            "/describe_index_stats",
            "/vectors/upsert",
        ]
        await trusted.aclose()

        # The SDK lets a CA file win over ssl_verify=False; insecure_skip_verify wins here.
        insecure = store_for(url=url, insecure_skip_verify=True, ca_certificate=certs.self_signed_cert)
        chunks, vectors = sample_chunks()
        assert await insecure.open_collection("docs", EMBEDDER, 4) is False
        await insecure.upsert("docs", chunks, vectors)
        assert (await insecure.query("docs", QUERY, 1))[0].chunk == chunks[0]
        await insecure.aclose()


async def test_ca_certificate_adds_to_the_system_roots(certs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ca_certificate names another CA (a company's, say, set at the top level); the index's
    certificate comes from a CA of the system store: it is trusted, as by every client of Hector."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca)  # the system store, as far as this test goes
    async with pinecone_server(API_KEY, 4, certs.good) as (_, url):
        store = store_for(url=url, ca_certificate=certs.self_signed_cert)
        assert await store.open_collection("docs", EMBEDDER, 4) is False
        await store.aclose()


async def test_document_store_on_pinecone_finds_the_right_file(tmp_path: Path) -> None:
    dimension = build_embedder("local", EmbedderConfig(), tmp_path).dimension
    assert dimension is not None  # the local model knows its own
    async with pinecone_server(API_KEY, dimension) as (state, url):
        vector_store = {"type": "pinecone", "url": url, "api_key": API_KEY}
        await index_and_search_folder(vector_store, tmp_path, PineconeVectorStore)
    documents = {v["metadata"]["document"] for v in state.namespaces["kb"].values() if v["id"] != MARKER_ID}
    assert len(documents) == 12
