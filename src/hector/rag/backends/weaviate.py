"""Weaviate as a vector store, through the official v4 client (async).

The v4 client speaks two protocols: REST for the schema (collections) and gRPC for data
(batch writes, deletes, searches, the cursor). Each Hector collection is one Weaviate
collection, named with a capital first letter as Weaviate requires (``docs`` → ``Docs``; other
characters than letters, digits and ``_`` become ``_`` and a short hash keeps such names
apart). Vectors are supplied by Hector (no vectorizer), indexed with the cosine distance; the
embedder and dimension a collection was made for are kept in its description.

TLS: the client has no setting for the REST connection's trust, so Hector builds that HTTP
client itself (``create_ssl_context``: CA, client certificate, insecure). For gRPC, grpcio
offers no way to turn verification off: with ``insecure_skip_verify`` Hector fetches the
certificate the gRPC port presents (without checking it) and trusts exactly that certificate
for the name it carries, which accepts a self-signed or otherwise untrusted server just as
skipping verification would, but only the one it saw when connecting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
import weaviate
from cryptography import x509
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, GrpcConfig, Timeout
from weaviate.classes.query import Filter, MetadataQuery
from weaviate.collections import CollectionAsync
from weaviate.proto.v1 import health_weaviate_pb2

from hector.agent.remote_grpc import channel_credentials
from hector.config.schema import VectorStoreConfig
from hector.config.tls import effective_tls, vector_store_component
from hector.errors import VectorStoreError
from hector.rag.backends.common import (
    OneCollection,
    chunk_from_fields,
    flat_fields,
    redact,
    tls_failure,
    translated_errors,
)
from hector.rag.vectors import Chunk, Hit, VectorStore
from hector.tls import TLSOptions, create_ssl_context

DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 50051
BATCH = 200  # objects per gRPC batch request, ids per delete filter
_ID_NAMESPACE = uuid.UUID("5b0a6f53-3c0e-4b8e-9a57-0d3c9f1e2a41")  # fixed: ids must be stable
_MARKER_KEY = "hector"
VECTOR = "default"  # the one named vector of a collection
_PROPERTIES = ["chunk_id", "document", "text", "meta"]
# grpcio reports a failed handshake only as text in the status details.
_GRPC_TLS = re.compile(r"ssl|handshake|certificate|hostname verification", re.IGNORECASE)


def class_name(collection: str) -> str:
    """The Weaviate collection for a Hector collection: capitalized, and hashed when changed
    beyond that, so that ``my-docs`` and ``my_docs`` stay two collections."""
    cleaned = re.sub(r"[^0-9A-Za-z_]", "_", collection) or "_"
    if not cleaned[0].isalpha():
        cleaned = "C" + cleaned
    name = cleaned[0].upper() + cleaned[1:]
    if cleaned != collection and name[1:] != collection[1:]:
        name += "_" + hashlib.sha256(collection.encode()).hexdigest()[:8]
    return name


def object_id(chunk_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, chunk_id))


def _endpoint(cfg: VectorStoreConfig) -> tuple[str, int, bool]:
    """(host, HTTP port, https?) from ``url``, else ``host``/``port``/``enable_tls``."""
    if cfg.url:
        parts = urlsplit(cfg.url if "://" in cfg.url else f"http://{cfg.url}")
        secure = parts.scheme == "https"
        return parts.hostname or "localhost", parts.port or (443 if secure else DEFAULT_HTTP_PORT), secure
    return cfg.host or "localhost", cfg.port or DEFAULT_HTTP_PORT, cfg.enable_tls


async def _presented_certificate(host: str, port: int) -> bytes:
    """The certificate the TLS server at host:port presents, unchecked (insecure mode only)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])  # gRPC servers refuse a handshake without it
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host), 10
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return ssl.DER_cert_to_PEM_cert(der).encode()


def _name_in(pem: bytes) -> str | None:
    """A name the certificate is valid for, so that gRPC's hostname check accepts it."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        return str(names[0]) if names else None
    found = san.get_values_for_type(x509.DNSName) or [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    ]
    return found[0] if found else None


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


class WeaviateVectorStore(VectorStore):
    def __init__(self, name: str, cfg: VectorStoreConfig) -> None:
        self.where = f"vector store {name!r} (weaviate)"
        self.component = vector_store_component("weaviate", name)
        self.host, self.http_port, self.secure = _endpoint(cfg)
        self.grpc_port = cfg.grpc_port or DEFAULT_GRPC_PORT
        self.tls: TLSOptions = effective_tls(cfg)
        self._api_key = cfg.api_key.get_secret_value() if cfg.api_key else None
        self._one = OneCollection(self.where, cfg.collection)  # `collection`: the one it keeps
        self._client: weaviate.WeaviateAsyncClient | None = None
        self._lock = asyncio.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.http_port}"

    def _reason(self, exc: BaseException) -> str:
        """*exc* for the user: TLS failures in the seed's words, else the innermost cause (what
        the client's own errors wrap), never the API key."""
        reason = tls_failure(exc, self.where)
        if reason is None:
            root = exc
            while root.__cause__ is not None or root.__context__ is not None:
                root = root.__cause__ or root.__context__  # type: ignore[assignment]
            if isinstance(root, grpc.aio.AioRpcError):
                reason = f"gRPC {root.code().name}: {root.details()}"
            else:
                reason = str(root).strip() or str(exc).strip() or type(exc).__name__
            if _GRPC_TLS.search(reason) and self.secure:
                reason = (
                    f"TLS connection to the gRPC port {self.grpc_port} failed ({reason}); "
                    "check ca_certificate, and that the certificate names this host"
                )
        return redact(reason, self._api_key)

    def _errors(self, action: str) -> AbstractContextManager[None]:
        """Any failure inside as one ``VectorStoreError``: what failed, and why."""
        return translated_errors(
            lambda exc: VectorStoreError(f"{self.where}: {action} failed: {self._reason(exc)}"),
            chain=True,
            keep=VectorStoreError,
        )

    @asynccontextmanager
    async def _call(self, action: str) -> AsyncIterator[weaviate.WeaviateAsyncClient]:
        """The connected client; any failure inside becomes one ``VectorStoreError``."""
        client = await self._connected()
        with self._errors(action):
            yield client

    async def _grpc_config(self) -> GrpcConfig:
        """gRPC channel credentials from the same TLS options as the REST side."""
        if not self.tls.insecure_skip_verify:
            # The system roots plus ca_certificate, as on the REST side: handed the CA file alone,
            # grpcio would trust nothing else (a top-level company CA would break a public server).
            return GrpcConfig(credentials=channel_credentials(self.tls, self.component))
        chain, key = _read(self.tls.client_certificate), _read(self.tls.client_key)
        if chain and not key:
            key = chain  # a PEM file holding both, as the HTTP side accepts
        pinned = await _presented_certificate(self.host, self.grpc_port)
        name = _name_in(pinned)
        return GrpcConfig(
            credentials=grpc.ssl_channel_credentials(pinned, key, chain),
            channel_options=[("grpc.ssl_target_name_override", name)] if name else None,
        )

    async def _connected(self) -> weaviate.WeaviateAsyncClient:
        async with self._lock:
            if self._client is None:
                with self._errors(f"connecting to {self.url}"):
                    self._client = await self._connect()
            return self._client

    async def _connect(self) -> weaviate.WeaviateAsyncClient:
        grpc_config = GrpcConfig()
        context: ssl.SSLContext | None = None
        if self.secure:
            context = create_ssl_context(self.tls, self.component)  # warns once if insecure
            grpc_config = await self._grpc_config()
        client = weaviate.use_async_with_custom(
            http_host=self.host,
            http_port=self.http_port,
            http_secure=self.secure,
            grpc_host=self.host,
            grpc_port=self.grpc_port,
            grpc_secure=self.secure,
            auth_credentials=Auth.api_key(self._api_key) if self._api_key else None,
            additional_config=AdditionalConfig(timeout=Timeout(init=10), grpc_config=grpc_config),
            # The start-up checks ask PyPI for the latest client version: not from a server.
            skip_init_checks=True,
        )
        if context is not None:
            self._trust(client, context)
        try:
            await client.connect()
            await self._check_grpc(grpc_config)
        except BaseException:
            await client.close()
            raise
        return client

    async def _check_grpc(self, config: GrpcConfig) -> None:
        """Ask the gRPC port for its health once, as the client's own start-up check would (it
        is off, see above): a gRPC port that cannot be reached, or whose certificate is refused,
        fails here at once instead of after the client's minute of retries on the first query."""
        target, options = f"{self.host}:{self.grpc_port}", list(config.channel_options or [])
        if config.credentials is not None:
            channel = grpc.aio.secure_channel(target, config.credentials, options)
        else:
            channel = grpc.aio.insecure_channel(target, options)
        async with channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_weaviate_pb2.WeaviateHealthCheckRequest.SerializeToString,
                response_deserializer=health_weaviate_pb2.WeaviateHealthCheckResponse.FromString,
            )
            try:
                await check(health_weaviate_pb2.WeaviateHealthCheckRequest(), timeout=10)
            except grpc.aio.AioRpcError as exc:
                raise VectorStoreError(
                    f"{self.where}: connecting to the gRPC port {self.grpc_port} failed: {self._reason(exc)}"
                ) from None

    @staticmethod
    def _trust(client: weaviate.WeaviateAsyncClient, context: ssl.SSLContext) -> None:
        """Make the client's REST connection verify with *context*: the client builds its
        ``httpx`` client in ``_make_client`` and takes no TLS setting of its own."""
        connection = client._connection
        if not hasattr(connection, "_make_client") or not hasattr(connection, "_headers"):
            raise VectorStoreError("this weaviate-client version cannot take TLS options; use 4.16 to 4.x")

        def make_client(colour: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(headers=connection._headers, verify=context, trust_env=False)

        setattr(connection, "_make_client", make_client)  # noqa: B010  # a method of the instance

    def name_of(self, collection: str) -> str:
        return class_name(self._one.name(collection))

    async def _collection(self, collection: str) -> CollectionAsync:
        client = await self._connected()  # a handle only: no request until it is used
        return client.collections.use(self.name_of(collection))

    async def open_collection(self, collection: str, embedder: str, dimension: int) -> bool:
        name = self.name_of(collection)
        marker = {"embedder": embedder, "dimension": dimension}
        reset = False
        async with self._call(f"opening collection {collection!r} ({name})") as client:
            if await client.collections.exists(name):
                config = await client.collections.use(name).config.get()
                try:
                    found = json.loads(config.description or "")[_MARKER_KEY]
                except (ValueError, TypeError, KeyError):
                    raise VectorStoreError(
                        f"{self.where}: collection {name} exists but was not made by Hector; "
                        "name another collection for this document store, or delete it"
                    ) from None
                if found == marker:
                    return False
                await client.collections.delete(name)
                reset = True
            await client.collections.create(
                name,
                description=json.dumps({_MARKER_KEY: marker}),
                vector_config=Configure.Vectors.self_provided(
                    name=VECTOR,
                    vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE),
                ),
                properties=[
                    Property(name="chunk_id", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
                    Property(name="document", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
                    Property(name="text", data_type=DataType.TEXT),
                    Property(
                        name="meta", data_type=DataType.TEXT, index_filterable=False, index_searchable=False
                    ),
                ],
            )
        return reset

    async def upsert(self, collection: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        if not chunks:
            return
        objects = [
            DataObject(
                uuid=object_id(c.id),
                vector={VECTOR: v},
                properties=flat_fields(c),
            )
            for c, v in zip(chunks, vectors, strict=True)
        ]
        target = await self._collection(collection)
        async with self._call(f"writing to collection {collection!r}"):
            for start in range(0, len(objects), BATCH):  # a batch with an existing id replaces it
                result = await target.data.insert_many(objects[start : start + BATCH])
                if result.has_errors:
                    first = next(iter(result.errors.values()))
                    raise VectorStoreError(
                        f"{self.where}: writing to collection {collection!r} failed for "
                        f"{len(result.errors)} chunks: {first.message}"
                    )

    async def delete_documents(self, collection: str, documents: list[str]) -> None:
        target = await self._collection(collection)
        async with self._call(f"deleting from collection {collection!r}"):
            for start in range(0, len(documents), BATCH):
                where = Filter.by_property("document").contains_any(documents[start : start + BATCH])
                # One request deletes at most QUERY_MAXIMUM_RESULTS objects (10,000 by default):
                # again until none is left, or a re-indexed file would keep stale chunks.
                while (await target.data.delete_many(where=where)).successful:
                    pass

    async def query(self, collection: str, vector: list[float], top_k: int) -> list[Hit]:
        target = await self._collection(collection)
        async with self._call(f"searching collection {collection!r}"):
            result = await target.query.near_vector(
                near_vector=vector,
                target_vector=VECTOR,
                limit=top_k,
                return_properties=_PROPERTIES,
                return_metadata=MetadataQuery(distance=True),
            )
        # The cosine distance is 1 - cosine similarity.
        return [
            Hit(chunk_from_fields(o.properties), 1.0 - (o.metadata.distance or 0.0)) for o in result.objects
        ]

    async def chunks(self, collection: str) -> list[Chunk]:
        target = await self._collection(collection)
        async with self._call(f"reading collection {collection!r}"):
            return [
                chunk_from_fields(o.properties) async for o in target.iterator(return_properties=_PROPERTIES)
            ]

    async def aclose(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await client.close()


def create(name: str, cfg: VectorStoreConfig, base_dir: Path) -> VectorStore:
    return WeaviateVectorStore(name, cfg)
