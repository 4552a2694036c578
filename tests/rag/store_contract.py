"""The behaviour every vector store must show, as one reusable check.

``await check_contract(store, "some_collection")`` drives a store through the whole
``VectorStore`` contract (create/open, reset on another embedder or dimension, upsert and
replace, query ranking with cosine scores, delete_documents, chunks round-trip with meta, paging
through many chunks) and fails with a plain assertion naming the step. Each back end's test
module calls it against a real (or locally embedded) server; the helpers below are there for
back-end specific tests too, with the checks every back end's tests make the same way: data
surviving a restart, the TLS options, and a document store searched end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from hector.assembly import build_runtime
from hector.config import parse_config
from hector.errors import VectorStoreError
from hector.rag.vectors import Chunk, Hit, VectorStore
from tests.rag.corpus import write_labelled
from tests.tls.conftest import insecure_records, serve_proxy

EMBEDDER = "contract-embedder/v1"
OTHER_EMBEDDER = "contract-embedder/v2"
DIMENSION = 4

# Unit-free vectors whose cosine similarities to QUERY are known exactly.
QUERY = [1.0, 0.0, 0.0, 0.0]
VECTORS: dict[str, list[float]] = {
    "same": [2.0, 0.0, 0.0, 0.0],  # cos = 1 (length must not matter)
    "close": [1.0, 1.0, 0.0, 0.0],  # cos = 1/sqrt(2)
    "far": [0.0, 0.0, 1.0, 0.0],  # cos = 0
    "opposite": [-3.0, 0.0, 0.0, 0.0],  # cos = -1
}
EXPECTED_SCORES = {"same": 1.0, "close": 1 / math.sqrt(2), "far": 0.0, "opposite": -1.0}

# Chunk ids are arbitrary strings: paths, separators, spaces and non-ASCII must survive.
IDS = {
    "same": "guides/setup.md#0",
    "close": "guides/setup.md#1",
    "far": "notes/Überblick ünïcode.txt::chunk 0",
    "opposite": "x" * 200,
}
DOCUMENTS = {
    "same": "guides/setup.md",
    "close": "guides/setup.md",
    "far": "notes/Überblick ünïcode.txt",
    "opposite": "other.md",
}
META: dict[str, dict[str, Any]] = {
    "same": {"start_line": 1, "end_line": 3, "heading": "Setup"},
    "close": {"start_line": 4, "end_line": 9, "tags": ["a", "b"], "nested": {"k": 1.5, "none": None}},
    "far": {},
    "opposite": {"flag": True, "quote": 'say "hi"\n'},
}

SCORE_TOLERANCE = 1e-3
BULK_QUERY = [0.0, 1.0, 0.0, 0.0]


def sample_chunks() -> tuple[list[Chunk], list[list[float]]]:
    """The four chunks of the contract and their vectors."""
    keys = list(VECTORS)
    chunks = [Chunk(IDS[k], DOCUMENTS[k], f"text of {k}", META[k]) for k in keys]
    return chunks, [VECTORS[k] for k in keys]


def many_chunks(count: int, document: str = "bulk.md") -> tuple[list[Chunk], list[list[float]]]:
    """*count* chunks (more than one page of any scroll API) on a half circle of the plane of
    axes 1 and 2: chunk i makes the angle i*pi/(count-1) with axis 1, so the chunks nearest
    BULK_QUERY are #0, #1, #2 ... with clearly distinct scores."""
    chunks = [Chunk(f"{document}#{i}", document, f"bulk {i}", {"i": i}) for i in range(count)]
    step = math.pi / max(count - 1, 1)
    vectors = [[0.0, math.cos(i * step), math.sin(i * step), 0.0] for i in range(count)]
    return chunks, vectors


def by_id(chunks: list[Chunk]) -> dict[str, Chunk]:
    return {c.id: c for c in chunks}


def assert_scores(hits: list[Hit], expected: dict[str, float]) -> None:
    """*hits* are exactly the chunks of *expected* (by contract key), best first, with those cosine
    similarities."""
    key_of = {v: k for k, v in IDS.items()}
    got = [(key_of.get(h.chunk.id, h.chunk.id), h.score) for h in hits]
    want = sorted(expected.items(), key=lambda kv: -kv[1])
    assert [k for k, _ in got] == [k for k, _ in want], f"ranking: got {got}, want {want}"
    for (key, score), (_, wanted) in zip(got, want, strict=True):
        assert abs(score - wanted) < SCORE_TOLERANCE, f"score of {key}: {score}, want {wanted}"
        assert -1.0 - SCORE_TOLERANCE <= score <= 1.0 + SCORE_TOLERANCE


async def check_contract(store: VectorStore, collection: str, bulk: int = 150) -> None:
    """Run every contract step on *store* in *collection* (which should not exist yet, or hold
    only data of this check: it is reset along the way). *bulk* chunks test paging in ``chunks``."""
    # A new collection is created. A store may answer True here: "it holds nothing indexed before",
    # so a caller whose indexing state lives elsewhere (Hector's database) indexes everything again
    # when a server lost its data. Opening it again keeps it and answers False.
    assert isinstance(await store.open_collection(collection, EMBEDDER, DIMENSION), bool)
    assert await store.query(collection, QUERY, 3) == [], "a new collection is empty"
    assert await store.chunks(collection) == []

    chunks, vectors = sample_chunks()
    await store.upsert(collection, chunks, vectors)
    await store.upsert(collection, [], [])  # nothing to do is not an error
    assert await store.open_collection(collection, EMBEDDER, DIMENSION) is False, "reopen same"

    # Every chunk comes back whole: id, document, text and meta (nested values included).
    assert by_id(await store.chunks(collection)) == by_id(chunks), "chunks round-trip"

    # Ranking and cosine scores, best first; top_k larger than the collection returns all.
    assert_scores(await store.query(collection, QUERY, 2), {"same": 1.0, "close": EXPECTED_SCORES["close"]})
    assert_scores(await store.query(collection, QUERY, 10), EXPECTED_SCORES)
    hits = await store.query(collection, QUERY, 1)
    assert hits[0].chunk == chunks[0], "a hit carries the whole chunk"

    # Upsert replaces a chunk with the same id: new text, meta and vector; no duplicate.
    replaced = Chunk(IDS["far"], DOCUMENTS["far"], "rewritten", {"v": 2})
    await store.upsert(collection, [replaced], [[1.0, 0.0, 0.0, 0.0]])
    stored = by_id(await store.chunks(collection))
    assert len(stored) == 4 and stored[IDS["far"]] == replaced, "upsert replaces by id"
    top = await store.query(collection, QUERY, 2)
    assert {h.chunk.id for h in top} == {IDS["same"], IDS["far"]}, "replaced vector is searched"
    assert all(abs(h.score - 1.0) < SCORE_TOLERANCE for h in top)

    # delete_documents removes every chunk of those documents and nothing else.
    await store.delete_documents(collection, ["guides/setup.md", "not-there.md"])
    await store.delete_documents(collection, [])
    assert set(by_id(await store.chunks(collection))) == {IDS["far"], IDS["opposite"]}, "delete_documents"
    assert [h.chunk.id for h in await store.query(collection, QUERY, 5)] == [IDS["far"], IDS["opposite"]]

    # Many chunks: chunks() pages through all of them; query still finds the best.
    bulk_chunks, bulk_vectors = many_chunks(bulk)
    await store.upsert(collection, bulk_chunks, bulk_vectors)
    everything = by_id(await store.chunks(collection))
    assert len(everything) == bulk + 2, f"chunks() returned {len(everything)} of {bulk + 2}"
    assert everything[f"bulk.md#{bulk - 1}"].meta == {"i": bulk - 1}
    best = await store.query(collection, BULK_QUERY, 3)
    assert [h.chunk.id for h in best] == ["bulk.md#0", "bulk.md#1", "bulk.md#2"], "bulk ranking"

    # Another embedder, then another dimension: the old vectors are dropped and True is returned.
    assert await store.open_collection(collection, OTHER_EMBEDDER, DIMENSION) is True, "embedder change"
    assert await store.chunks(collection) == [], "reset empties the collection"
    await store.upsert(collection, chunks[:1], vectors[:1])
    assert await store.open_collection(collection, OTHER_EMBEDDER, DIMENSION) is False
    assert await store.open_collection(collection, OTHER_EMBEDDER, 3) is True, "dimension change"
    assert await store.chunks(collection) == []
    await store.upsert(collection, chunks[:2], [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    assert_scores(
        await store.query(collection, [1.0, 0.0, 0.0], 5),
        {"same": 1.0, "close": EXPECTED_SCORES["close"]},
    )


async def check_isolation(store: VectorStore, first: str, second: str) -> None:
    """Two collections of one store do not see each other's chunks."""
    await store.open_collection(first, EMBEDDER, DIMENSION)
    await store.open_collection(second, EMBEDDER, DIMENSION)
    chunks, vectors = sample_chunks()
    await store.upsert(first, chunks[:2], vectors[:2])
    await store.upsert(second, chunks[2:], vectors[2:])
    assert set(by_id(await store.chunks(first))) == {IDS["same"], IDS["close"]}
    assert set(by_id(await store.chunks(second))) == {IDS["far"], IDS["opposite"]}
    await store.delete_documents(second, ["guides/setup.md"])
    assert len(await store.chunks(first)) == 2, "a delete in one collection leaves the other alone"


async def check_one_collection(store: VectorStore) -> None:
    """A store whose ``collection`` setting names its one collection keeps the first Hector
    collection asked for there; a second (another document store, another user's memories) is
    refused on every call, before it can overwrite, delete or read the first one's chunks."""
    chunks, vectors = sample_chunks()
    await store.open_collection("first", EMBEDDER, DIMENSION)
    await store.upsert("first", chunks, vectors)
    refused = "already holds 'first', and 'second' cannot share it"
    with pytest.raises(VectorStoreError, match=refused):
        await store.open_collection("second", EMBEDDER, DIMENSION)
    with pytest.raises(VectorStoreError, match=refused):
        await store.upsert("second", [Chunk(IDS["same"], DOCUMENTS["same"], "theirs")], [QUERY])
    with pytest.raises(VectorStoreError, match=refused):
        await store.delete_documents("second", [DOCUMENTS["same"]])
    with pytest.raises(VectorStoreError, match=refused):
        await store.query("second", QUERY, 3)
    with pytest.raises(VectorStoreError, match=refused):
        await store.chunks("second")
    assert by_id(await store.chunks("first")) == by_id(chunks), "the first collection is untouched"
    assert await store.open_collection("first", EMBEDDER, DIMENSION) is False


async def check_contract_and_restart(open_store: Callable[[], VectorStore]) -> None:
    """The contract and isolation on a store *open_store* makes; then the chunks it wrote are all
    there for the next store it makes on the same storage (a restart): the collection opens as
    kept (False), nothing to re-index."""
    store = open_store()
    await check_contract(store, "contract")
    await check_isolation(store, "one", "two")
    chunks, vectors = sample_chunks()
    assert await store.open_collection("kept", EMBEDDER, DIMENSION) is True  # new: nothing indexed yet
    await store.upsert("kept", chunks, vectors)
    await store.aclose()
    again = open_store()
    assert await again.open_collection("kept", EMBEDDER, DIMENSION) is False
    assert by_id(await again.chunks("kept")) == by_id(chunks)
    await again.aclose()


StoreAt = Callable[..., VectorStore]
"""A store of one TLS endpoint, made with the TLS options given as keywords."""


async def check_tls_cases(
    endpoint: Callable[[str], AbstractAsyncContextManager[StoreAt]],
    certs: Any,
    caplog: pytest.LogCaptureFixture,
    component: str,
    refused: str,
) -> None:
    """The TLS options of a back end against *endpoint*, a server that presents the certificate
    file it is given (the ``certs`` fixture's) and yields its ``StoreAt``:

    * no option: the private CA is not trusted; the error matches *refused* (a regex naming the
      store and address) and says so in the seed's words, pointing at ca_certificate;
    * ca_certificate: trusted, the sample chunks are written;
    * insecure_skip_verify: two stores read them, and *component* is warned about once;
    * a certificate for another name is refused, even from the trusted CA.
    """
    collection = "tls-docs"
    chunks, vectors = sample_chunks()
    async with endpoint(certs.good) as store_at:
        plain = store_at()
        with pytest.raises(VectorStoreError) as failed:
            await plain.open_collection(collection, EMBEDDER, DIMENSION)
        message = failed.value.message
        assert re.search(refused, message), message
        assert "certificate signed by unknown authority" in message and "ca_certificate" in message

        trusted = store_at(ca_certificate=certs.ca)
        assert isinstance(await trusted.open_collection(collection, EMBEDDER, DIMENSION), bool)
        await trusted.upsert(collection, chunks, vectors)

        with caplog.at_level(logging.WARNING, logger="hector.tls"):
            insecure = [store_at(insecure_skip_verify=True) for _ in range(2)]
            for store in insecure:
                assert await store.open_collection(collection, EMBEDDER, DIMENSION) is False
                assert (await store.query(collection, QUERY, 1))[0].chunk == chunks[0]
        assert len(insecure_records(caplog, component)) == 1
        for store in (plain, trusted, *insecure):
            await store.aclose()

    async with endpoint(certs.wrong_host) as store_at:
        wrong = store_at(ca_certificate=certs.ca)
        with pytest.raises(VectorStoreError, match="certificate is not valid for this host"):
            await wrong.chunks(collection)
        await wrong.aclose()


async def check_client_certificate(store_at: StoreAt, certs: Any, refused: str) -> None:
    """Against a server that requires a client certificate from the ``certs`` CA: a store without
    one fails with an error matching *refused*; one with the client pair works."""
    anonymous = store_at(ca_certificate=certs.ca)
    with pytest.raises(VectorStoreError, match=refused):
        await anonymous.chunks("docs")
    pair = {"client_certificate": certs.client_cert, "client_key": certs.client_key}
    mutual = store_at(ca_certificate=certs.ca, **pair)
    assert await mutual.open_collection("docs", EMBEDDER, DIMENSION) is True
    for store in (anonymous, mutual):
        await store.aclose()


@contextlib.asynccontextmanager
async def stalling_proxy(upstream: int) -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A byte proxy to the server on loopback port *upstream*, and an event: once it is set, what
    clients send is dropped, so connections stay open and no answer ever comes (a server that
    hangs). Yields the proxy's port and the event."""
    stalled = asyncio.Event()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not stalled.is_set():
                    writer.write(data)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(forward(reader, server_w), forward(server_r, writer))

    async with serve_proxy(handle) as port:
        yield port, stalled


async def index_and_search_folder(
    vector_store: dict[str, Any], tmp_path: Path, kind: type[VectorStore], starts: int = 1, name: str = "kb"
) -> None:
    """A document store *name* of the labelled corpus on *vector_store* (its settings; the back end
    is of type *kind*) indexes every file and finds the one that answers, by vector and by hybrid
    search. Each of *starts* runs finds the vectors the one before stored: nothing to re-embed."""
    write_labelled(tmp_path / "kb")
    raw = {
        "version": "2",
        "llms": {"t": {"type": "test"}},
        "vector_stores": {"v": vector_store},
        "document_stores": {name: {"path": str(tmp_path / "kb")}},
        "agents": {"helper": {"llm": "t"}},
    }
    config = parse_config(raw, "<test>").config
    for _ in range(starts):
        async with build_runtime(config, tmp_path) as runtime:
            assert runtime.library is not None
            docs = runtime.library.stores[name]
            assert isinstance(docs.vectors, kind)
            hits = await docs.search("how long until my refund is paid", top_k=3, mode="vector")
            assert hits[0].chunk.document == "refunds.md"
            hybrid = await docs.search("INV-4042", top_k=1)
            assert hybrid[0].chunk.document == "invoice.md"
            assert len({c.document for c in await docs.vectors.chunks(name)}) == 12
            report = await docs.index()
            assert (report.added, report.unchanged) == (0, 12)
