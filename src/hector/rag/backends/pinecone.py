"""Pinecone as a vector store, through the official SDK's asyncio client (REST).

One Pinecone index serves the vector store; each Hector collection is a namespace in it. The
index is given by its host (``host``/``url``, as the Pinecone console shows it) or by
``index_name``, whose host the control plane looks up. Hector does not create indexes (that
needs a cloud, region and capacity plan): create one with metric ``cosine`` and the embedder's
dimension. Because an index has one dimension, an embedder of another dimension cannot move in:
``open_collection`` says so instead of resetting.

Pinecone takes ASCII ids and flat metadata. A chunk's id is ``<document hash>#<chunk hash>``,
so the chunks of a document are found by id prefix (the listing Pinecone serverless offers);
the chunk id, document, text and the JSON-encoded ``meta`` are the vector's metadata. The
embedder and dimension of a namespace live in a marker vector in it, which searches skip.

TLS: the SDK takes a CA file (Hector's: the system roots plus ``ca_certificate``) and a verify
switch (``insecure_skip_verify``); it has no client certificates, so those are refused rather than
silently not sent. The index is reached over https unless ``url``/``host`` says ``http://`` or
``enable_tls: false`` is set (a local emulator).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from pinecone import AsyncPinecone
from pinecone.async_client.async_index import AsyncIndex

from hector.config.schema import VectorStoreConfig
from hector.config.tls import effective_tls, vector_store_component
from hector.errors import ConfigError, VectorStoreError
from hector.rag.backends.common import (
    OneCollection,
    chunk_from_fields,
    flat_fields,
    identity,
    not_written_by_hector,
    redact,
    tls_failure,
    translated_errors,
    trust_bundle,
    without_credentials,
)
from hector.rag.vectors import Chunk, Hit, VectorStore
from hector.tls import warn_insecure

MARKER_ID = "hector#collection"  # never a chunk id: those start with 16 hex digits
BATCH = 100  # vectors per upsert, ids per fetch or delete: well inside Pinecone's request caps


def _hash(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def document_prefix(document: str) -> str:
    return _hash(document, 16) + "#"


def vector_id(chunk: Chunk) -> str:
    return document_prefix(chunk.document) + _hash(chunk.id, 32)


def index_host(cfg: VectorStoreConfig) -> str | None:
    """The index's URL from ``url``, else ``host`` (+ ``port``); None for ``index_name``."""
    if cfg.url:
        return cfg.url.rstrip("/")
    if not cfg.host:
        return None
    if "://" in cfg.host:
        return cfg.host.rstrip("/")
    tls = cfg.enable_tls or "enable_tls" not in cfg.model_fields_set  # https unless turned off
    port = f":{cfg.port}" if cfg.port else ""
    return f"{'https' if tls else 'http'}://{cfg.host}{port}"


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


class PineconeVectorStore(VectorStore):
    def __init__(self, name: str, cfg: VectorStoreConfig) -> None:
        self.where = f"vector store {name!r} (pinecone)"
        if cfg.api_key is None:
            raise ConfigError(f"{self.where}: api_key is required")
        self.component = vector_store_component("pinecone", name)
        self.host = index_host(cfg)
        self.index_name = cfg.index_name
        if self.host is None and not self.index_name:
            raise ConfigError(f"{self.where}: set host or url (the index's host), or index_name")
        tls = effective_tls(cfg)
        if tls.client_certificate:
            raise ConfigError(f"{self.where}: the Pinecone client cannot present a client certificate")
        self._insecure = tls.insecure_skip_verify
        # The SDK lets a CA file win over ssl_verify=False; insecure means insecure, as elsewhere.
        self._ca = None if tls.insecure_skip_verify else tls.ca_certificate
        self._bundle: Path | None = None
        self._api_key = cfg.api_key.get_secret_value()
        self._one = OneCollection(self.where, cfg.collection)  # `collection`: the one namespace
        self._control: AsyncPinecone | None = None
        self._index: AsyncIndex | None = None
        self._dimension: int | None = None
        self._lock = asyncio.Lock()

    def namespace(self, collection: str) -> str:
        return self._one.name(collection)

    def _errors(self, action: str) -> AbstractContextManager[None]:
        """Any failure inside as one ``VectorStoreError``: what failed, and why (never the key)."""

        def explain(exc: Exception) -> VectorStoreError:
            reason = tls_failure(exc, self.where) or str(exc).strip() or type(exc).__name__
            return VectorStoreError(f"{self.where}: {action} failed: {redact(reason, self._api_key)}")

        return translated_errors(explain, chain=True, keep=VectorStoreError)

    @asynccontextmanager
    async def _call(self, action: str) -> AsyncIterator[AsyncIndex]:
        """The index client; any failure inside becomes one ``VectorStoreError``."""
        index = await self._connected()
        with self._errors(action):
            yield index

    async def _connected(self) -> AsyncIndex:
        async with self._lock:
            if self._index is None:
                where = without_credentials(self.host) if self.host else f"index {self.index_name!r}"
                with self._errors(f"connecting to {where}"):
                    await self._connect()
            assert self._index is not None
            return self._index

    async def _connect(self) -> None:
        if self._insecure:
            warn_insecure(self.component)
        elif self._bundle is None:
            # The SDK trusts the one CA file it is given (else certifi's roots): the system store
            # plus ca_certificate, as every client of Hector trusts.
            self._bundle = trust_bundle(self._ca)
        ca = str(self._bundle) if self._bundle else None
        control = AsyncPinecone(api_key=self._api_key, ssl_ca_certs=ca, ssl_verify=not self._insecure)
        index: AsyncIndex | None = None
        try:
            # By host as given, or by name: the control plane knows the index's host.
            index = (
                await control.index(host=self.host)
                if self.host
                else await control.index(self.index_name or "")
            )
            stats = await index.describe_index_stats()
            if stats.metric and stats.metric != "cosine":
                raise VectorStoreError(
                    f"{self.where}: the index uses the {stats.metric} metric, and Hector's scores are "
                    "cosine similarities: create the index with metric cosine"
                )
        except BaseException:
            if index is not None:
                await index.close()
            await control.close()
            raise
        self._control, self._index, self._dimension = control, index, stats.dimension

    async def open_collection(self, collection: str, embedder: str, dimension: int) -> bool:
        ns = self.namespace(collection)
        marker = identity(embedder, dimension)
        async with self._call(f"opening collection {collection!r}") as index:
            if self._dimension is not None and self._dimension != dimension:
                raise VectorStoreError(
                    f"{self.where}: the index holds {self._dimension}-dimensional vectors and the "
                    f"embedder {embedder!r} makes {dimension}-dimensional ones: use an index of "
                    f"dimension {dimension} (a Pinecone index cannot change its dimension)"
                )
            found = (await index.fetch(ids=[MARKER_ID], namespace=ns)).vectors.get(MARKER_ID)
            if found is not None and found.metadata == marker:
                return False
            reset = found is not None
            if reset:
                await index.delete(delete_all=True, namespace=ns)
            else:
                stats = await index.describe_index_stats()
                summary = stats.namespaces.get(ns)
                if summary is not None and summary.vector_count:
                    raise not_written_by_hector(self.where, f"namespace {ns!r}", "vectors", "empty it")
            # A marker needs a vector of the index's dimension; any non-zero one will do.
            values = [1.0] + [0.0] * (dimension - 1)
            await index.upsert(
                vectors=[{"id": MARKER_ID, "values": values, "metadata": marker}], namespace=ns
            )
        return reset

    async def upsert(self, collection: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        records = [
            {
                "id": vector_id(c),
                "values": v,
                "metadata": flat_fields(c),
            }
            for c, v in zip(chunks, vectors, strict=True)
        ]
        async with self._call(f"writing to collection {collection!r}") as index:
            for part in _batches(records):  # an existing id is overwritten
                await index.upsert(vectors=part, namespace=self.namespace(collection))

    async def _ids(self, index: AsyncIndex, ns: str, prefix: str | None = None) -> list[str]:
        ids: list[str] = []
        async for page in index.list(prefix=prefix, namespace=ns):
            ids += [item.id for item in page.vectors if item.id and item.id != MARKER_ID]
        return ids

    async def delete_documents(self, collection: str, documents: list[str]) -> None:
        ns = self.namespace(collection)
        async with self._call(f"deleting from collection {collection!r}") as index:
            for document in documents:
                for part in _batches(await self._ids(index, ns, document_prefix(document))):
                    await index.delete(ids=part, namespace=ns)

    async def query(self, collection: str, vector: list[float], top_k: int) -> list[Hit]:
        async with self._call(f"searching collection {collection!r}") as index:
            # One more than asked: the marker may be among the nearest.
            result = await index.query(
                vector=vector, top_k=top_k + 1, namespace=self.namespace(collection), include_metadata=True
            )
        hits = [Hit(chunk_from_fields(m.metadata), m.score) for m in result.matches if m.id != MARKER_ID]
        return hits[:top_k]  # a cosine index scores by cosine similarity: higher is nearer

    async def chunks(self, collection: str) -> list[Chunk]:
        ns = self.namespace(collection)
        found: list[Chunk] = []
        async with self._call(f"reading collection {collection!r}") as index:
            for part in _batches(await self._ids(index, ns)):
                fetched = await index.fetch(ids=part, namespace=ns)
                found += [chunk_from_fields(v.metadata) for v in fetched.vectors.values()]
        return found

    async def aclose(self) -> None:
        async with self._lock:
            index, control, self._index, self._control = self._index, self._control, None, None
        if index is not None:
            await index.close()
        if control is not None:
            await control.close()
        if self._bundle is not None:
            self._bundle.unlink(missing_ok=True)
            self._bundle = None


def create(name: str, cfg: VectorStoreConfig, base_dir: Path) -> VectorStore:
    return PineconeVectorStore(name, cfg)
