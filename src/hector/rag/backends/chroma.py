"""Chroma as a vector store, through the official client (``chromadb``).

Two modes:

* **server**: ``url`` (``https://chroma.example:443``), or ``host`` + ``port`` (default 8000) +
  ``enable_tls``; ``api_key`` is sent as the ``X-Chroma-Token`` header (Chroma's token auth).
* **local**: ``path`` (a folder, relative to the configuration's folder): Chroma's embedded
  engine inside the Hector process.

The client is chromadb's synchronous one, run in worker threads: its async client keeps one HTTP
connection pool per event loop shared by *every* client of the process, so two Chroma stores
with different TLS settings or keys would silently use the first one's. Hector passes vectors
itself and gives Chroma no embedding function, so Chroma never loads (or downloads) a model.

Each chunk is one record with the chunk id as its id, the text as its document and
``{"document": ..., "meta": <JSON>}`` as metadata (Chroma metadata is flat). The embedder identity
and dimension are the collection's metadata; the space is cosine (score = 1 - distance).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings
from chromadb.errors import ChromaError, NotFoundError

from hector.config.schema import VectorStoreConfig
from hector.config.tls import effective_tls, vector_store_component
from hector.errors import ConfigError, VectorStoreError
from hector.rag.backends.common import (
    OneCollection,
    decode_meta,
    encode_meta,
    failure_reason,
    identity,
    local_path,
    not_both,
    not_written_by_hector,
    same_identity,
    server_host,
    translated_errors,
)
from hector.rag.vectors import Chunk, Hit, VectorStore
from hector.tls import create_ssl_context

log = logging.getLogger("hector.rag.chroma")

DEFAULT_PORT = 8000
BATCH = 256
TIMEOUT = 60.0  # seconds for one request to a Chroma server
CONNECT_TIMEOUT = 10.0
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
T = TypeVar("T")


def chroma_name(collection: str) -> str:
    """A collection name Chroma accepts (3-512 of ``[A-Za-z0-9._-]``, alphanumeric at both ends):
    the name itself when it is one, else a readable form plus a hash, so names never collide."""
    if _VALID_NAME.match(collection) and ".." not in collection:
        return collection
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", collection).strip("-_")[:40]
    digest = hashlib.sha256(collection.encode()).hexdigest()[:10]
    return f"hector-{readable}-{digest}" if readable else f"hector-{digest}"


def _record(chunk: Chunk) -> dict[str, str]:
    return {"document": chunk.document, "meta": encode_meta(chunk.meta)}


def _chunk(chunk_id: str, text: str | None, metadata: Any) -> Chunk:
    m = metadata or {}
    return Chunk(chunk_id, str(m.get("document", "")), text or "", decode_meta(m.get("meta")))


def _transport_error(exc: BaseException) -> httpx.TransportError | None:
    """The connection failure behind *exc*: chromadb re-raises some as a plain ValueError."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None or isinstance(current, httpx.TransportError):
            return current
        current = current.__cause__ or current.__context__
    return None


class ChromaVectorStore(VectorStore):
    def __init__(
        self, name: str, connect: Callable[[], ClientAPI], where: str, collection: str | None
    ) -> None:
        self.name = name
        self._connect = connect
        self._where = where
        self._one = OneCollection(f"vector store {name!r} (chroma)", collection)
        self._client: ClientAPI | None = None
        self._collections: dict[str, Collection] = {}
        self._lock = asyncio.Lock()

    def _explain(self, action: str, exc: Exception) -> VectorStoreError:
        """A failure of the client library as a VectorStoreError naming the store and the fix."""
        transport = _transport_error(exc)
        if transport is not None:
            reason = failure_reason(transport)
            return VectorStoreError(
                f"vector store {self.name!r} (chroma): cannot reach {self._where}: {reason}"
            )
        detail = exc.message() if isinstance(exc, ChromaError) else str(exc)
        return VectorStoreError(
            f"vector store {self.name!r} (chroma at {self._where}): {action} failed: {detail}"
        )

    async def _run(self, action: str, call: Callable[[], T]) -> T:
        """*call* in a worker thread (the client blocks), with errors explained."""
        with translated_errors(lambda exc: self._explain(action, exc), chain=True):
            return await asyncio.to_thread(call)

    async def _api(self) -> ClientAPI:
        # Connecting asks the server for the tenant and database: done on first use, not at start-up.
        async with self._lock:
            if self._client is None:
                self._client = await self._run("connecting", self._connect)
            return self._client

    def _name(self, collection: str) -> str:
        # `collection` in the vector store's settings names the one collection it keeps.
        return chroma_name(self._one.name(collection))

    async def _get(self, collection: str) -> Collection:
        name = self._name(collection)
        found = self._collections.get(name)
        if found is None:
            api = await self._api()
            found = await self._run(
                f"opening collection {name!r}", lambda: api.get_collection(name, embedding_function=None)
            )
            self._collections[name] = found
        return found

    async def open_collection(self, collection: str, embedder: str, dimension: int) -> bool:
        api = await self._api()
        name = self._name(collection)
        wanted = identity(embedder, dimension)

        def create() -> Collection:
            return api.create_collection(
                name, configuration={"hnsw": {"space": "cosine"}}, metadata=wanted, embedding_function=None
            )

        def open_or_reset() -> tuple[Collection, bool]:
            try:
                found = api.get_collection(name, embedding_function=None)
            except NotFoundError:
                # Nothing indexed before is here (a new or wiped server): the caller re-indexes.
                return create(), True
            same = same_identity(found.metadata or {}, wanted)
            if same:
                return found, False
            if same is None and found.count():
                raise not_written_by_hector(
                    f"vector store {self.name!r} (chroma)", f"collection {name!r}", "records"
                )
            api.delete_collection(name)
            return create(), True

        found, reset = await self._run(f"opening collection {name!r}", open_or_reset)
        self._collections[name] = found
        return reset

    async def upsert(self, collection: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        if not chunks:
            return
        target = await self._get(collection)

        def write() -> None:
            for start in range(0, len(chunks), BATCH):
                part = chunks[start : start + BATCH]
                target.upsert(
                    ids=[c.id for c in part],
                    embeddings=cast(Any, vectors[start : start + BATCH]),
                    documents=[c.text for c in part],
                    metadatas=[_record(c) for c in part],
                )

        await self._run(f"writing to collection {target.name!r}", write)

    async def delete_documents(self, collection: str, documents: list[str]) -> None:
        if not documents:
            return
        target = await self._get(collection)

        def delete() -> None:
            for start in range(0, len(documents), BATCH):
                part = documents[start : start + BATCH]
                target.delete(where=cast(Any, {"document": {"$in": part}}))  # a valid Where

        await self._run(f"deleting from collection {target.name!r}", delete)

    async def query(self, collection: str, vector: list[float], top_k: int) -> list[Hit]:
        target = await self._get(collection)
        found = await self._run(
            f"searching collection {target.name!r}",
            lambda: target.query(
                query_embeddings=cast(Any, [vector]),
                n_results=top_k,
                include=cast(Any, ["documents", "metadatas", "distances"]),
            ),
        )
        ids, texts = found["ids"][0], (found["documents"] or [[]])[0]
        metas, distances = (found["metadatas"] or [[]])[0], (found["distances"] or [[]])[0]
        # Cosine space: distance = 1 - cosine similarity.
        return [
            Hit(_chunk(i, t, m), 1.0 - float(d))
            for i, t, m, d in zip(ids, texts, metas, distances, strict=True)
        ]

    async def chunks(self, collection: str) -> list[Chunk]:
        target = await self._get(collection)

        def read_all() -> list[Chunk]:
            out: list[Chunk] = []
            while True:
                page = target.get(limit=BATCH, offset=len(out), include=cast(Any, ["documents", "metadatas"]))
                texts, metas = page["documents"] or [], page["metadatas"] or []
                out += [_chunk(i, t, m) for i, t, m in zip(page["ids"], texts, metas, strict=True)]
                if len(page["ids"]) < BATCH:
                    return out

        return await self._run(f"reading collection {target.name!r}", read_all)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._collections.clear()
        close = getattr(client, "close", None)  # chromadb's Client has it; its ClientAPI type does not
        if close is not None:
            with contextlib.suppress(Exception):  # closing must not hide the error that ended a run
                await asyncio.to_thread(close)


def _settings(name: str, cfg: VectorStoreConfig, secure: bool) -> Settings:
    settings = Settings(anonymized_telemetry=False, chroma_server_ssl_enabled=secure)
    if secure:
        # chromadb hands this to its httpx.Client as `verify`; an SSL context carries Hector's
        # trust store, CA, client certificate and minimum version. (Left unset, chromadb's async
        # client would not verify at all.) The settings model declares bool | str, hence setattr.
        ctx = create_ssl_context(effective_tls(cfg), vector_store_component("chroma", name))
        setattr(settings, "chroma_server_ssl_verify", ctx)  # noqa: B010
    return settings


def _server(name: str, cfg: VectorStoreConfig) -> tuple[Callable[[], ClientAPI], str]:
    if cfg.url:
        url = httpx.URL(cfg.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"vector store {name!r}: url must be http(s)://host[:port] ({cfg.url})")
        secure, host = url.scheme == "https", url.host
        port = url.port or cfg.port or (443 if secure else DEFAULT_PORT)
    else:
        host = server_host(name, cfg)
        secure, port = cfg.enable_tls, cfg.port or DEFAULT_PORT
    headers = {"X-Chroma-Token": cfg.api_key.get_secret_value()} if cfg.api_key else None
    settings = _settings(name, cfg, secure)

    def connect() -> ClientAPI:
        client = chromadb.HttpClient(host=host, port=port, ssl=secure, headers=headers, settings=settings)
        # chromadb's httpx client has no timeout, and no setting for one: a server that stops
        # answering would hold the call (and a worker thread) forever.
        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT)
        else:  # a chromadb whose insides moved: it still works, only without the deadline
            log.warning("vector store %s (chroma): this chromadb version takes no request timeout", name)
        return client

    return connect, f"{'https' if secure else 'http'}://{host}:{port}"


def create(name: str, cfg: VectorStoreConfig, base_dir: Path) -> VectorStore:
    not_both(name, cfg, "local Chroma")
    if cfg.path:
        folder = local_path(cfg, base_dir)
        settings = Settings(anonymized_telemetry=False)
        return ChromaVectorStore(
            name, lambda: chromadb.PersistentClient(str(folder), settings), str(folder), cfg.collection
        )
    connect, where = _server(name, cfg)
    return ChromaVectorStore(name, connect, where, cfg.collection)
