"""Milvus: a Milvus server over gRPC, or Milvus Lite (a local ``.db`` file) through pymilvus.

One Milvus collection per Hector collection, COSINE metric, Strong consistency (a search right
after an upsert sees it). The embedder and dimension that filled a collection are collection
properties. Rows are keyed by a UUID of the chunk id and carry a UUID of the document, so every
filter Hector writes is made of hex digits only: no user text is ever quoted into Milvus's
expression language.

pymilvus's blocking ``MilvusClient`` runs in worker threads. Its ``AsyncMilvusClient`` (3.0) cannot
create an index on Milvus Lite: it asks for a timestamp that Lite does not implement, and the
"ignore unimplemented" guard of that call does not work on coroutines.

TLS to a server (trust bundle, a first handshake for clear errors, certificate pinning for
``insecure_skip_verify``) is ``hector.rag.backends.milvus_tls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import ssl
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
from pymilvus import DataType, MilvusClient, MilvusException  # type: ignore[import-untyped]

from hector.config.schema import VectorStoreConfig
from hector.config.tls import effective_tls
from hector.errors import ConfigError, VectorStoreError
from hector.rag.backends.common import (
    OneCollection,
    local_path,
    not_both,
    redact,
    same_identity,
    server_host,
    translated_errors,
    without_credentials,
    wrong_dimension,
)
from hector.rag.backends.milvus_tls import CONNECT_TIMEOUT, MilvusTLS, tls_options
from hector.rag.vectors import Chunk, Hit, VectorStore

DEFAULT_PORT = 19530
TIMEOUT = 60.0
"""Seconds for one call, retries included: without it pymilvus retries an unavailable server
75 times with back-off up to a minute, and a call to a server that stopped answering never ends."""
LOAD_TIMEOUT = 600.0  # creating or loading a collection waits until its index is in memory
VARCHAR_MAX = 65535  # bytes: Milvus's longest VARCHAR
PAGE = 1000
_EMBEDDER = "hector.embedder"
_DIMENSION = "hector.dimension"
_FIELDS = ("pk", "doc_key", "chunk_id", "document", "text", "meta", "vector")
_OUTPUT = ["chunk_id", "document", "text", "meta"]
_VALID_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}\Z")
_NAMESPACE = uuid.UUID("7d4f3a52-5c1e-4d0b-9a55-8f0e6c2b9d13")

T = TypeVar("T")


def row_key(kind: str, value: str) -> str:
    """The hex key of a chunk id or document (a UUID: fixed length, safe in any filter)."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{value}").hex


def milvus_name(collection: str) -> str:
    """*collection* as a Milvus collection name (letters, digits, underscores; no leading digit)."""
    if _VALID_NAME.match(collection):
        return collection
    clean = re.sub(r"[^A-Za-z0-9_]", "_", collection)[:200]
    digest = hashlib.sha256(collection.encode()).hexdigest()[:10]
    return f"c_{clean}_{digest}"  # the digest keeps "a-b" and "a.b" apart


def _identity(embedder: str, dimension: int) -> dict[str, str]:
    """The collection properties recording its embedder (Milvus's property values are strings)."""
    return {_EMBEDDER: embedder, _DIMENSION: str(dimension)}


def _chunk(entity: dict[str, Any]) -> Chunk:
    return Chunk(entity["chunk_id"], entity["document"], entity["text"], dict(entity["meta"] or {}))


class MilvusVectorStore(VectorStore):
    def __init__(
        self,
        name: str,
        options: dict[str, Any],
        where: str,
        collection: str | None,
        tls: ssl.SSLContext | None = None,
        insecure: bool = False,
        secret: str | None = None,
        ca: str | None = None,
    ) -> None:
        self.name = name
        self._options = options
        self._where = where
        self._one = OneCollection(f"vector store {name!r} (milvus)", collection)
        self._net = MilvusTLS(options, tls, insecure, ca, self._fail)
        self._secret = secret
        self._client: MilvusClient | None = None
        self._connecting = asyncio.Lock()
        self._dimensions: dict[str, int] = {}

    def _name(self, collection: str) -> str:
        # `collection` in the vector store's settings names the one collection it keeps.
        return milvus_name(self._one.name(collection))

    def _fail(self, text: str) -> VectorStoreError:
        return VectorStoreError(
            f"vector store {self.name!r} (milvus at {self._where}): {redact(text, self._secret)}"
        )

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        def explain(exc: Exception) -> VectorStoreError:
            # Milvus's own words, else gRPC's status, else the library's own ValueErrors.
            if isinstance(exc, MilvusException):
                detail = exc.message
            elif isinstance(exc, grpc.Call):
                detail = f"gRPC {exc.code().name}: {exc.details()}"
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    detail += " (the server did not answer in time)"
            else:
                detail = f"{type(exc).__name__}: {exc}"
            return self._fail(f"{action} failed: {detail}")

        return translated_errors(explain, chain=False)  # the token may be in the library's error

    def _connect(self) -> MilvusClient:
        self._net.trust_system_roots()
        uri = str(self._options["uri"])
        address = None
        if uri.startswith(("http://", "https://", "tcp://")):
            parts = urlsplit(uri)
            default = 443 if parts.scheme == "https" else DEFAULT_PORT
            address = (parts.hostname or "localhost", parts.port or default)
            self._net.handshake(*address)
        try:
            with self._errors("connecting"):
                # Its own connection: pymilvus would otherwise share one among the clients of an
                # address and token, whatever TLS options (CA, client certificate) each was given.
                return MilvusClient(**self._options, timeout=CONNECT_TIMEOUT, dedicated=True)
        except VectorStoreError:
            self._net.check_pinned_dates()
            if address is not None and self._net.context is not None:
                self._net.handshake(*address, listen=1.0)  # explains a refused client certificate
            raise

    async def _run(self, action: str, call: Callable[[MilvusClient], T]) -> T:
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    self._client = await asyncio.to_thread(self._connect)
        client = self._client

        def work() -> T:
            with self._errors(action):
                return call(client)

        return await asyncio.to_thread(work)

    async def open_collection(self, collection: str, embedder: str, dimension: int) -> bool:
        name = self._name(collection)

        def open_or_reset(client: MilvusClient) -> bool:
            if not client.has_collection(name, timeout=TIMEOUT):
                self._create(client, name, embedder, dimension)
                # Nothing indexed before is here (a new or wiped server): the caller re-indexes.
                return True
            info = client.describe_collection(name, timeout=TIMEOUT)
            fields = {f["name"] for f in info.get("fields", [])}
            same = same_identity(info.get("properties") or {}, _identity(embedder, dimension))
            if same is None or not set(_FIELDS) <= fields:  # refused even when empty
                raise self._fail(
                    f"collection {name!r} was not written by Hector (no embedder recorded or other "
                    "fields); set another collection or drop it"
                )
            if same:
                client.load_collection(name, timeout=LOAD_TIMEOUT)  # a restarted server keeps them released
                return False
            client.drop_collection(name, timeout=TIMEOUT)
            self._create(client, name, embedder, dimension)
            return True

        reset = await self._run(f"opening collection {name!r}", open_or_reset)
        self._dimensions[name] = dimension
        return reset

    @staticmethod
    def _create(client: MilvusClient, name: str, embedder: str, dimension: int) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=32)
        schema.add_field("doc_key", DataType.VARCHAR, max_length=32)
        for text_field in ("chunk_id", "document", "text"):
            schema.add_field(text_field, DataType.VARCHAR, max_length=VARCHAR_MAX)
        schema.add_field("meta", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        index = MilvusClient.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        client.create_collection(
            name,
            schema=schema,
            index_params=index,
            consistency_level="Strong",
            properties=_identity(embedder, dimension),
            timeout=LOAD_TIMEOUT,
        )

    def _check_dimension(self, name: str, vectors: list[list[float]]) -> None:
        if problem := wrong_dimension(name, self._dimensions.get(name), vectors):
            raise self._fail(problem)

    async def upsert(self, collection: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        if not chunks:
            return
        name = self._name(collection)
        self._check_dimension(name, vectors)
        rows = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            for label, value in (("id", chunk.id), ("document", chunk.document), ("text", chunk.text)):
                if len(value.encode()) > VARCHAR_MAX:
                    raise self._fail(
                        f"chunk {chunk.id[:80]!r}: its {label} is longer than Milvus's {VARCHAR_MAX} "
                        "bytes; lower chunk_size"
                    )
            rows.append(
                {
                    "pk": row_key("chunk", chunk.id),
                    "doc_key": row_key("document", chunk.document),
                    "chunk_id": chunk.id,
                    "document": chunk.document,
                    "text": chunk.text,
                    "meta": chunk.meta,
                    "vector": [float(x) for x in vector],
                }
            )

        def write(client: MilvusClient) -> None:
            for start in range(0, len(rows), 500):
                client.upsert(name, rows[start : start + 500], timeout=TIMEOUT)

        await self._run(f"writing to collection {name!r}", write)

    async def delete_documents(self, collection: str, documents: list[str]) -> None:
        if not documents:
            return
        name = self._name(collection)
        keys = [row_key("document", d) for d in documents]

        def delete(client: MilvusClient) -> None:
            for start in range(0, len(keys), 500):
                quoted = ", ".join(f'"{k}"' for k in keys[start : start + 500])
                client.delete(name, filter=f"doc_key in [{quoted}]", timeout=TIMEOUT)

        await self._run(f"deleting from collection {name!r}", delete)

    async def query(self, collection: str, vector: list[float], top_k: int) -> list[Hit]:
        name = self._name(collection)
        self._check_dimension(name, [vector])

        def search(client: MilvusClient) -> list[Hit]:
            [found] = client.search(
                name,
                data=[[float(x) for x in vector]],
                limit=top_k,
                output_fields=_OUTPUT,
                search_params={"metric_type": "COSINE"},
                timeout=TIMEOUT,
            )
            # With the COSINE metric Milvus's "distance" is the similarity itself, best first.
            return [Hit(_chunk(hit["entity"]), float(hit["distance"])) for hit in found]

        return await self._run(f"searching collection {name!r}", search)

    async def chunks(self, collection: str) -> list[Chunk]:
        name = self._name(collection)

        def scroll(client: MilvusClient) -> list[Chunk]:
            # Paged by primary key, as pymilvus's own query iterator does: the iterator flag makes
            # the server return the lowest keys after the cursor (offsets stop at 16384 rows).
            found: list[Chunk] = []
            cursor = ""
            while True:
                page = client.query(
                    name,
                    filter=f'pk > "{cursor}"',
                    output_fields=["pk", *_OUTPUT],
                    limit=PAGE,
                    iterator="True",
                    timeout=TIMEOUT,
                )
                page.sort(key=lambda entity: str(entity["pk"]))
                found += [_chunk(entity) for entity in page]
                if len(page) < PAGE:
                    return found
                cursor = str(page[-1]["pk"])

        return await self._run(f"reading collection {name!r}", scroll)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # closing must not hide the error that ended a run
                await asyncio.to_thread(client.close)
        self._net.remove_files()


def create(name: str, cfg: VectorStoreConfig, base_dir: Path) -> VectorStore:
    not_both(name, cfg, "Milvus Lite")
    token = cfg.api_key.get_secret_value() if cfg.api_key else None
    if cfg.path:
        file = local_path(cfg, base_dir)
        if file.suffix != ".db":
            raise ConfigError(f"vector store {name!r}: a Milvus Lite path names a .db file ({cfg.path})")
        file.parent.mkdir(parents=True, exist_ok=True)
        return MilvusVectorStore(name, {"uri": str(file)}, str(file), cfg.collection)
    if cfg.url:
        if not cfg.url.startswith(("http://", "https://", "tcp://")):
            raise ConfigError(f"vector store {name!r}: url must start with http:// or https:// ({cfg.url})")
        uri, secure = cfg.url, cfg.url.startswith("https://") or cfg.enable_tls
    else:
        secure = cfg.enable_tls
        uri = f"{'https' if secure else 'http'}://{server_host(name, cfg)}:{cfg.port or DEFAULT_PORT}"
    options: dict[str, Any] = {"uri": uri, "token": token or ""}
    context = None
    if secure:
        extra, context = tls_options(name, cfg)
        options |= extra
    insecure = bool(secure and cfg.insecure_skip_verify)
    where = without_credentials(uri)
    ca = effective_tls(cfg).ca_certificate if secure else None
    return MilvusVectorStore(name, options, where, cfg.collection, context, insecure, token, ca)
