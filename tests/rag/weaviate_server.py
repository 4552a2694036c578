"""A scripted Weaviate on loopback: the REST schema API and the gRPC data API of Weaviate 1.30,
as far as Hector's back end uses them, keeping collections in memory.

No Weaviate binary can run here, so this speaks the wire protocol the official v4 client
speaks: REST (``/v1/meta``, ``/v1/schema``...) on one port, gRPC (``weaviate.v1.Weaviate``
Search / BatchObjects / BatchDelete, with the client's own generated stubs) on another. It
checks what a real server checks (the bearer API key on both protocols, that the named vector
exists, vector lengths, that filters only use field-tokenized properties) and records every
request, so tests can assert on them.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from weaviate.proto.v1 import (
    base_pb2,
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    properties_pb2,
    search_get_pb2,
)

from tests.harness import serve_app

VERSION = "1.30.0"
_OP = base_pb2.Filters


@dataclass
class Stored:
    properties: dict[str, Any]
    vectors: dict[str, list[float]]


@dataclass
class WeaviateState:
    api_key: str | None = None
    schema: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: dict[str, dict[str, Stored]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(protocol, method and path, authorization header) of every request."""
    max_results: int = 10_000
    """QUERY_MAXIMUM_RESULTS: the most objects one batch delete removes."""

    def authorized(self, header: str | None) -> bool:
        return self.api_key is None or header == f"Bearer {self.api_key}"


def _class_with_defaults(body: dict[str, Any]) -> dict[str, Any]:
    """The class as Weaviate returns it: what was posted, with the server's defaults filled in."""
    hnsw = {
        "skip": False, "cleanupIntervalSeconds": 300, "maxConnections": 32, "efConstruction": 128,
        "ef": -1, "dynamicEfMin": 100, "dynamicEfMax": 500, "dynamicEfFactor": 8,
        "vectorCacheMaxObjects": 1000000000000, "flatSearchCutoff": 40000, "distance": "cosine",
        "filterStrategy": "sweeping",
    }  # fmt: skip
    vectors = {
        name: {**v, "vectorIndexType": v.get("vectorIndexType", "hnsw"),
               "vectorIndexConfig": hnsw | v.get("vectorIndexConfig", {})}
        for name, v in body.get("vectorConfig", {}).items()
    }  # fmt: skip
    properties = [
        {"indexFilterable": True, "indexSearchable": p["dataType"] == ["text"], "tokenization": "word"} | p
        for p in body.get("properties", [])
    ]
    return body | {
        "properties": properties,
        "vectorConfig": vectors,
        "invertedIndexConfig": {
            "bm25": {"b": 0.75, "k1": 1.2}, "cleanupIntervalSeconds": 60,
            "stopwords": {"additions": None, "preset": "en", "removals": None},
        },
        "multiTenancyConfig": {"enabled": False, "autoTenantCreation": False, "autoTenantActivation": False},
        "replicationConfig": {
            "factor": 1, "asyncEnabled": False, "deletionStrategy": "NoAutomatedResolution",
        },
        "shardingConfig": {
            "actualCount": 1, "actualVirtualCount": 128, "desiredCount": 1, "desiredVirtualCount": 128,
            "function": "murmur3", "key": "_id", "strategy": "hash", "virtualPerPhysical": 128,
        },
    }  # fmt: skip


def rest_app(state: WeaviateState) -> Starlette:
    def error(status: int, message: str) -> Response:
        return JSONResponse({"error": [{"message": message}]}, status)

    async def handle(request: Request) -> Response:
        auth = request.headers.get("authorization")
        state.requests.append(("rest", f"{request.method} {request.url.path}", auth))
        path = request.url.path
        if path == "/v1/.well-known/ready":
            return Response(status_code=200)
        if path == "/v1/.well-known/openid-configuration":
            return Response(status_code=404)
        if not state.authorized(auth):
            return error(401, "anonymous access not enabled, please provide an auth scheme")
        if path == "/v1/meta":
            return JSONResponse({"hostname": "http://[::]:8080", "modules": {}, "version": VERSION})
        if path == "/v1/schema" and request.method == "POST":
            body = await request.json()
            name = body["class"]
            if not name[:1].isupper():
                return error(422, f"class name {name!r} must start with an uppercase letter")
            if name in state.schema:
                return error(422, f"class name {name!r} already exists")
            state.schema[name] = _class_with_defaults(body)
            state.objects[name] = {}
            return JSONResponse(state.schema[name])
        if path.startswith("/v1/schema/"):
            name = path.removeprefix("/v1/schema/")
            if request.method == "GET":
                found = state.schema.get(name)
                return JSONResponse(found) if found else error(404, f"class {name!r} not found")
            if request.method == "DELETE":
                state.schema.pop(name, None)
                state.objects.pop(name, None)
                return Response(status_code=200)
        return error(404, f"no route {request.method} {path}")

    methods = ["GET", "POST", "PUT", "DELETE", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", handle, methods=methods)])


def _vector(raw: bytes) -> list[float]:
    return [float(x) for x in np.frombuffer(raw, dtype="<f4")]


def _cosine_distance(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1.0 - sum(x * y for x, y in zip(a, b, strict=True)) / (norm or 1e-12)


class _Failure(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class GrpcService:
    """The ``weaviate.v1.Weaviate`` methods the client's data API calls."""

    def __init__(self, state: WeaviateState) -> None:
        self.state = state

    def _check(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        auth = dict(context.invocation_metadata() or ()).get("authorization")
        self.state.requests.append(("grpc", method, str(auth) if auth is not None else None))
        if not self.state.authorized(str(auth) if auth is not None else None):
            raise _Failure(grpc.StatusCode.UNAUTHENTICATED, "invalid api key")

    def _collection(self, name: str) -> tuple[dict[str, Any], dict[str, Stored]]:
        if name not in self.state.schema:
            raise _Failure(grpc.StatusCode.NOT_FOUND, f"class {name} not found")
        return self.state.schema[name], self.state.objects[name]

    def _matches(self, cls: dict[str, Any], where: base_pb2.Filters, obj: Stored) -> bool:
        if where.operator == _OP.OPERATOR_OR:
            return any(self._matches(cls, f, obj) for f in where.filters)
        if where.operator == _OP.OPERATOR_AND:
            return all(self._matches(cls, f, obj) for f in where.filters)
        prop = where.target.property or where.on[0]
        spec = next((p for p in cls["properties"] if p["name"] == prop), None)
        if spec is None or spec["tokenization"] != "field" or not spec["indexFilterable"]:
            raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, f"property {prop!r} cannot be filtered exactly")
        value = obj.properties.get(prop)
        if where.operator == _OP.OPERATOR_EQUAL:
            return bool(value == where.value_text)
        if where.operator == _OP.OPERATOR_CONTAINS_ANY:
            return value in where.value_text_array.values
        raise _Failure(grpc.StatusCode.UNIMPLEMENTED, f"operator {where.operator} is not scripted")

    async def BatchObjects(  # named as the gRPC method
        self, request: batch_pb2.BatchObjectsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> batch_pb2.BatchObjectsReply:
        self._check(context, "BatchObjects")
        errors = []
        for index, obj in enumerate(request.objects):
            cls, objects = self._collection(obj.collection)
            vectors = {v.name: _vector(v.vector_bytes) for v in obj.vectors}
            if set(vectors) - set(cls["vectorConfig"]) or not vectors:
                errors.append(batch_pb2.BatchObjectsReply.BatchError(index=index, error="unknown vector"))
                continue
            props = dict(obj.properties.non_ref_properties)
            objects[obj.uuid] = Stored(props, vectors)  # an existing id is replaced, as in Weaviate
        return batch_pb2.BatchObjectsReply(took=0.001, errors=errors)

    async def BatchDelete(
        self, request: batch_delete_pb2.BatchDeleteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> batch_delete_pb2.BatchDeleteReply:
        self._check(context, "BatchDelete")
        cls, objects = self._collection(request.collection)
        gone = [key for key, obj in objects.items() if self._matches(cls, request.filters, obj)]
        gone = gone[: self.state.max_results]
        if not request.dry_run:
            for key in gone:
                del objects[key]
        return batch_delete_pb2.BatchDeleteReply(took=0.001, matches=len(gone), successful=len(gone))

    async def Search(
        self, request: search_get_pb2.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> search_get_pb2.SearchReply:
        self._check(context, "Search")
        cls, objects = self._collection(request.collection)
        found = [(key, obj) for key, obj in objects.items()]
        if request.HasField("filters"):
            found = [(k, o) for k, o in found if self._matches(cls, request.filters, o)]
        distances: dict[str, float] = {}
        if request.HasField("near_vector"):
            near = request.near_vector
            targets = list(near.targets.target_vectors) or list(near.target_vectors)
            raw = near.vectors[0].vector_bytes if near.vectors else near.vector_bytes
            if len(targets) != 1 or targets[0] not in cls["vectorConfig"]:
                raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, f"unknown target vector {targets}")
            query = _vector(raw)
            for key, obj in found:
                stored = obj.vectors[targets[0]]
                if len(stored) != len(query):
                    raise _Failure(
                        grpc.StatusCode.UNKNOWN,
                        f"vector search: knn search: distance between entrypoint and query node: "
                        f"vector lengths don't match: {len(stored)} vs {len(query)}",
                    )
                distances[key] = _cosine_distance(stored, query)
            found.sort(key=lambda item: distances[item[0]])
        else:  # the cursor: objects in id order, after the last one seen
            found.sort(key=lambda item: uuid.UUID(item[0]).int)
            if request.after:
                after = uuid.UUID(request.after).int
                found = [(k, o) for k, o in found if uuid.UUID(k).int > after]
        found = found[: request.limit or 10]
        wanted = set(request.properties.non_ref_properties)
        results = []
        for key, obj in found:
            props = properties_pb2.Properties(
                fields={
                    k: properties_pb2.Value(text_value=str(v))
                    for k, v in obj.properties.items()
                    if k in wanted
                }
            )
            metadata = search_get_pb2.MetadataResult(id=key, id_as_bytes=uuid.UUID(key).bytes)
            if request.metadata.distance and key in distances:
                metadata.distance, metadata.distance_present = distances[key], True
            results.append(
                search_get_pb2.SearchResult(
                    properties=search_get_pb2.PropertiesResult(non_ref_props=props), metadata=metadata
                )
            )
        return search_get_pb2.SearchReply(took=0.001, results=results)


def _handlers(service: GrpcService) -> list[grpc.GenericRpcHandler]:
    def unary(method: Any, request: Any, reply: Any) -> grpc.RpcMethodHandler[Any, Any]:
        async def call(message: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await method(message, context)
            except _Failure as failure:
                await context.abort(failure.code, str(failure))

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=request.FromString, response_serializer=reply.SerializeToString
        )

    async def health(message: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return health_weaviate_pb2.WeaviateHealthCheckResponse(
            status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING
        )

    health_request = health_weaviate_pb2.WeaviateHealthCheckRequest
    health_reply = health_weaviate_pb2.WeaviateHealthCheckResponse
    return [
        grpc.method_handlers_generic_handler(
            "weaviate.v1.Weaviate",
            {
                "Search": unary(service.Search, search_get_pb2.SearchRequest, search_get_pb2.SearchReply),
                "BatchObjects": unary(
                    service.BatchObjects, batch_pb2.BatchObjectsRequest, batch_pb2.BatchObjectsReply
                ),
                "BatchDelete": unary(
                    service.BatchDelete,
                    batch_delete_pb2.BatchDeleteRequest,
                    batch_delete_pb2.BatchDeleteReply,
                ),
            },
        ),
        grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    health,
                    request_deserializer=health_request.FromString,
                    response_serializer=health_reply.SerializeToString,
                )
            },
        ),
    ]


@dataclass
class WeaviateServer:
    state: WeaviateState
    http_port: int
    grpc_port: int


@contextlib.asynccontextmanager
async def weaviate_server(api_key: str | None = None) -> AsyncIterator[WeaviateServer]:
    """REST and gRPC of one scripted Weaviate, plaintext on loopback."""
    state = WeaviateState(api_key=api_key)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(_handlers(GrpcService(state)))
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with serve_app(rest_app(state)) as url:
            yield WeaviateServer(state, int(url.rsplit(":", 1)[1]), grpc_port)
    finally:
        await server.stop(None)
