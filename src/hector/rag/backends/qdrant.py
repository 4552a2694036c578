"""Qdrant as a vector store, through the official async client (``qdrant-client``).

Two modes:

* **local**: ``path`` (a folder, relative to the configuration's folder) or ``path: ":memory:"``:
  qdrant-client's embedded engine, no server needed.
* **remote**: ``url`` (``https://qdrant.example:6333``), or ``host`` + ``port`` + ``enable_tls``;
  ``api_key`` is sent in the ``api-key`` header. Hector speaks Qdrant's REST API, so ``port`` is
  the REST port (default 6333, not the gRPC port 6334 of the Go original): REST takes Hector's
  own TLS settings (``ca_certificate``, ``insecure_skip_verify``, client certificates) through
  httpx, which the client library's gRPC channel could not.

Each chunk is one point: its id is a UUIDv5 of the chunk id (Qdrant only takes UUIDs or integers)
and the payload keeps the chunk id, document, text and meta. The embedder identity and dimension
live in the collection's own metadata (Qdrant ≥ 1.16), so a collection tells which vectors it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from hector.config.schema import VectorStoreConfig
from hector.config.tls import effective_tls, vector_store_component
from hector.errors import ConfigError, VectorStoreError
from hector.rag.backends.common import (
    OneCollection,
    failure_reason,
    identity,
    local_path,
    not_both,
    not_written_by_hector,
    same_identity,
    server_host,
    translated_errors,
    without_credentials,
)
from hector.rag.vectors import Chunk, Hit, VectorStore
from hector.tls import create_ssl_context

REST_PORT = 6333
GRPC_PORT = 6334
TIMEOUT = 30
BATCH = 256  # points per upsert request and per scroll page: well under Qdrant's 32 MiB body cap
_IDS = uuid.UUID("6f4c1e2a-8f3b-5d7e-9a61-2b0c4d5e6f70")  # namespace of the point ids
T = TypeVar("T")


_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}\Z")


def qdrant_name(collection: str) -> str:
    """*collection* as a Qdrant collection name: itself when it is letters, digits, ``_.-``, else a
    readable form plus a hash (Qdrant refuses ``/`` and the client puts the name into URL paths
    unescaped, so ``?`` or ``#`` would change the request)."""
    if _SAFE_NAME.match(collection) and collection.strip("."):
        return collection
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", collection).strip("-")[:40]
    digest = hashlib.sha256(collection.encode()).hexdigest()[:10]
    return f"hector-{readable}-{digest}" if readable else f"hector-{digest}"


def point_id(chunk_id: str) -> str:
    """The Qdrant point id of a chunk: stable, so an upsert of the same chunk replaces it."""
    return str(uuid.uuid5(_IDS, chunk_id))


def _payload(chunk: Chunk) -> dict[str, Any]:
    return {"chunk_id": chunk.id, "document": chunk.document, "text": chunk.text, "meta": chunk.meta}


def _chunk(payload: dict[str, Any] | None) -> Chunk:
    p = payload or {}
    return Chunk(
        str(p.get("chunk_id", "")), str(p.get("document", "")), str(p.get("text", "")), p.get("meta") or {}
    )


def _server_error(exc: UnexpectedResponse) -> str:
    """Qdrant's own words for a refused request ({"status": {"error": ...}}), else the raw body."""
    try:
        return str(exc.structured()["status"]["error"])
    except (ValueError, KeyError, TypeError):
        return exc.content.decode("utf-8", "replace")[:300] or exc.reason_phrase


class QdrantVectorStore(VectorStore):
    def __init__(
        self, name: str, client: AsyncQdrantClient, where: str, collection: str | None, remote: bool
    ) -> None:
        self.name = name
        self.client = client
        self._where = where
        self._one = OneCollection(f"vector store {name!r} (qdrant)", collection)
        self._remote = remote
        # The local engine does its work inside its coroutines (an exact search over every point,
        # SQLite writes), which would hold up the event loop: it runs on a thread of its own, one,
        # as it is not thread-safe.
        self._worker = None if remote else ThreadPoolExecutor(1, thread_name_prefix=f"qdrant-{name}")

    def _name(self, collection: str) -> str:
        # `collection` in the vector store's settings names the one collection it keeps.
        return qdrant_name(self._one.name(collection))

    async def _do(self, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The coroutine *call* makes, of the client: awaited here for a server, on the worker
        thread (in an event loop of its own) for the local engine."""
        if self._worker is None:
            return await call()
        return await asyncio.get_running_loop().run_in_executor(self._worker, lambda: asyncio.run(call()))

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """Any failure of the client library as a VectorStoreError naming the store and the fix."""
        return translated_errors(lambda exc: self._explain(action, exc), chain=False)

    def _explain(self, action: str, exc: Exception) -> VectorStoreError:
        if isinstance(exc, ResponseHandlingException):  # the server could not be reached
            hint = ""
            if self._where.endswith(f":{GRPC_PORT}"):
                hint = f" (Hector uses Qdrant's REST API: its port is {REST_PORT}, {GRPC_PORT} is gRPC)"
            return VectorStoreError(
                f"vector store {self.name!r} (qdrant): cannot reach {self._where}: "
                f"{failure_reason(exc.source)}{hint}"
            )
        # A refusal in the server's words; local mode raises ValueError/RuntimeError of its own.
        detail = (
            f"HTTP {exc.status_code}: {_server_error(exc)}" if isinstance(exc, UnexpectedResponse) else exc
        )
        return VectorStoreError(
            f"vector store {self.name!r} (qdrant at {self._where}): {action} failed: {detail}"
        )

    async def open_collection(self, collection: str, embedder: str, dimension: int) -> bool:
        name = self._name(collection)
        with self._errors(f"opening collection {name!r}"):
            if not await self._do(partial(self.client.collection_exists, name)):
                await self._create(name, embedder, dimension)
                # Nothing indexed before is here (a new or wiped server): the caller re-indexes.
                return True
            info = await self._do(partial(self.client.get_collection, name))
            vectors = info.config.params.vectors
            size = vectors.size if isinstance(vectors, models.VectorParams) else None
            same = same_identity(info.config.metadata or {}, identity(embedder, dimension))
            if same and size == dimension:  # the vectors' own size, whatever the record says
                return False
            if same is None and (await self._do(partial(self.client.count, name, exact=True))).count:
                raise not_written_by_hector(
                    f"vector store {self.name!r} (qdrant)", f"collection {name!r}", "points"
                )
            await self._do(partial(self.client.delete_collection, name))
            await self._create(name, embedder, dimension)
            return True

    async def _create(self, name: str, embedder: str, dimension: int) -> None:
        create = partial(
            self.client.create_collection,
            name,
            vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
            metadata=identity(embedder, dimension),
        )
        await self._do(create)
        if self._remote:  # deleting a document filters on it; the local engine has no indexes
            await self.client.create_payload_index(name, "document", models.PayloadSchemaType.KEYWORD)

    async def upsert(self, collection: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        name = self._name(collection)
        points = [
            models.PointStruct(id=point_id(c.id), vector=v, payload=_payload(c))
            for c, v in zip(chunks, vectors, strict=True)
        ]
        with self._errors(f"writing to collection {name!r}"):
            for start in range(0, len(points), BATCH):
                await self._do(partial(self.client.upsert, name, points[start : start + BATCH], wait=True))

    async def delete_documents(self, collection: str, documents: list[str]) -> None:
        name = self._name(collection)
        with self._errors(f"deleting from collection {name!r}"):
            for start in range(0, len(documents), BATCH):
                match = models.MatchAny(any=documents[start : start + BATCH])
                chosen = models.FilterSelector(
                    filter=models.Filter(must=[models.FieldCondition(key="document", match=match)])
                )
                await self._do(partial(self.client.delete, name, chosen, wait=True))

    async def query(self, collection: str, vector: list[float], top_k: int) -> list[Hit]:
        name = self._name(collection)
        with self._errors(f"searching collection {name!r}"):
            search = partial(self.client.query_points, name, query=vector, limit=top_k, with_payload=True)
            found = await self._do(search)
        # With the cosine metric Qdrant's score is the cosine similarity itself, best first.
        return [Hit(_chunk(p.payload), float(p.score)) for p in found.points]

    async def chunks(self, collection: str) -> list[Chunk]:
        name = self._name(collection)
        out: list[Chunk] = []
        offset: Any = None
        with self._errors(f"reading collection {name!r}"):
            while True:
                page = partial(
                    self.client.scroll,
                    name,
                    limit=BATCH,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                )
                records, offset = await self._do(page)
                out += [_chunk(r.payload) for r in records]
                if offset is None:
                    return out

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # closing must not hide the error that ended a run
            await self._do(self.client.close)
        if self._worker is not None:
            self._worker.shutdown(wait=False)


def _remote(name: str, cfg: VectorStoreConfig) -> tuple[dict[str, Any], str]:
    """qdrant-client's connection arguments for *cfg*, and the address for messages."""
    api_key = cfg.api_key.get_secret_value() if cfg.api_key else None
    options: dict[str, Any] = {"api_key": api_key, "timeout": TIMEOUT, "check_compatibility": False}
    if cfg.url:
        if not cfg.url.startswith(("http://", "https://")):
            raise ConfigError(f"vector store {name!r}: url must start with http:// or https:// ({cfg.url})")
        secure = cfg.url.startswith("https://")
        options |= {"url": cfg.url, "port": cfg.port or REST_PORT}
        shown = without_credentials(cfg.url)
        where = shown if cfg.port is None else f"{shown} (port {cfg.port})"
    else:
        host = server_host(name, cfg)
        secure = cfg.enable_tls
        port = cfg.port or REST_PORT
        options |= {"host": host, "port": port, "https": secure}
        where = f"{'https' if secure else 'http'}://{host}:{port}"
    if secure:
        # Passed on to the REST client's httpx.AsyncClient: Hector's trust store and options.
        options["verify"] = create_ssl_context(effective_tls(cfg), vector_store_component("qdrant", name))
    return options, where


def create(name: str, cfg: VectorStoreConfig, base_dir: Path) -> VectorStore:
    not_both(name, cfg, "local Qdrant")
    if cfg.path == ":memory:":
        return QdrantVectorStore(
            name, AsyncQdrantClient(location=":memory:"), "memory", cfg.collection, False
        )
    if cfg.path:
        folder = local_path(cfg, base_dir)
        try:
            client = AsyncQdrantClient(path=str(folder))
        except (OSError, RuntimeError) as exc:  # e.g. the folder is locked by another process
            raise VectorStoreError(f"vector store {name!r} (qdrant): cannot open {folder}: {exc}") from exc
        return QdrantVectorStore(name, client, str(folder), cfg.collection, False)
    options, where = _remote(name, cfg)
    return QdrantVectorStore(name, AsyncQdrantClient(**options), where, cfg.collection, True)
