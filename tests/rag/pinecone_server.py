"""A scripted Pinecone on loopback: the data-plane REST API of one dense index (upsert, query,
fetch, list, delete, describe_index_stats) and the control plane's describe-index, as the
official SDK calls them (API version 2026-07), keeping vectors in memory.

No Pinecone can run here, so this answers what the service answers, including its refusals:
a missing or wrong ``Api-Key`` (401), a vector of another dimension, an all-zero dense vector,
non-ASCII ids and nested metadata (400). Every request is recorded for the tests to check.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.harness import serve_app

PAGE = 100  # ids per page of /vectors/list, as Pinecone's default


@dataclass
class Seen:
    method: str
    path: str
    api_key: str | None
    api_version: str | None
    body: Any


@dataclass
class PineconeState:
    api_key: str
    dimension: int
    metric: str = "cosine"
    index_name: str = "hector-index"
    host: str = ""
    """What describe-index answers as the index's host (set once the server listens)."""
    namespaces: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _flat(metadata: Any) -> None:
    """Pinecone metadata: strings, numbers, booleans or lists of strings, nothing nested."""
    for key, value in (metadata or {}).items():
        ok = isinstance(value, (str, int, float, bool)) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
        if not ok:
            raise _Refused(
                400, f"Metadata value for field {key!r} must be a string, number, boolean or list of strings"
            )


def _cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm or 1e-12)


class Index:
    def __init__(self, state: PineconeState) -> None:
        self.state = state

    def _check_vector(self, values: list[float]) -> None:
        if len(values) != self.state.dimension:
            raise _Refused(
                400,
                f"Vector dimension {len(values)} does not match the dimension of the index "
                f"{self.state.dimension}",
            )
        if not any(values):
            raise _Refused(400, "Dense vectors must contain at least one non-zero value")

    def upsert(self, body: dict[str, Any]) -> dict[str, Any]:
        space = self.state.namespaces.setdefault(body.get("namespace", ""), {})
        for vector in body["vectors"]:
            if not vector["id"].isascii():
                raise _Refused(400, f"Vector ID must be ASCII, but got '{vector['id']}'")
            self._check_vector(vector["values"])
            _flat(vector.get("metadata"))
        for vector in body["vectors"]:
            space[vector["id"]] = {
                "id": vector["id"],
                "values": vector["values"],
                "metadata": vector.get("metadata"),
            }
        return {"upsertedCount": len(body["vectors"])}

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = body.get("namespace", "")
        self._check_vector(body["vector"])
        scored = sorted(
            ((_cosine(v["values"], body["vector"]), v) for v in self.state.namespaces.get(ns, {}).values()),
            key=lambda item: -item[0],
        )[: body["topK"]]
        matches = [
            {"id": v["id"], "score": score, "values": v["values"] if body.get("includeValues") else []}
            | ({"metadata": v["metadata"]} if body.get("includeMetadata") and v["metadata"] else {})
            for score, v in scored
        ]
        return {"matches": matches, "namespace": ns, "usage": {"readUnits": 1}}

    def fetch(self, ids: list[str], ns: str) -> dict[str, Any]:
        space = self.state.namespaces.get(ns, {})
        return {
            "vectors": {i: space[i] for i in ids if i in space},
            "namespace": ns,
            "usage": {"readUnits": 1},
        }

    def list(self, ns: str, prefix: str, limit: int, token: str | None) -> dict[str, Any]:
        ids = sorted(i for i in self.state.namespaces.get(ns, {}) if i.startswith(prefix))
        start = int(token) if token else 0
        page = ids[start : start + limit]
        reply: dict[str, Any] = {
            "vectors": [{"id": i} for i in page],
            "namespace": ns,
            "usage": {"readUnits": 1},
        }
        if start + limit < len(ids):
            reply["pagination"] = {"next": str(start + limit)}
        return reply

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = body.get("namespace", "")
        if body.get("deleteAll"):
            self.state.namespaces.pop(ns, None)
        else:
            space = self.state.namespaces.get(ns, {})
            for i in body.get("ids", []):
                space.pop(i, None)
        return {}

    def stats(self) -> dict[str, Any]:
        spaces = {ns: {"vectorCount": len(v)} for ns, v in self.state.namespaces.items() if v}
        return {
            "namespaces": spaces,
            "dimension": self.state.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(s["vectorCount"] for s in spaces.values()),
            "metric": self.state.metric,
            "vectorType": "dense",
        }

    def describe(self, name: str) -> dict[str, Any]:
        if name != self.state.index_name:
            raise _Refused(404, f"Resource {name} not found")
        return {
            "name": name,
            "status": {"ready": True, "state": "Ready"},
            "schema": {
                "fields": {
                    "values": {
                        "type": "dense_vector",
                        "dimension": self.state.dimension,
                        "metric": self.state.metric,
                    }
                }
            },
            "deployment": {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"},
            "deletion_protection": "disabled",
            "host": self.state.host,
        }


def pinecone_app(state: PineconeState) -> Starlette:
    index = Index(state)

    async def handle(request: Request) -> Response:
        raw = await request.body()
        body: Any = json.loads(raw) if raw else {}
        path = request.url.path
        key = request.headers.get("api-key")
        state.seen.append(
            Seen(request.method, path, key, request.headers.get("x-pinecone-api-version"), body)
        )
        params = request.query_params
        try:
            if key != state.api_key:
                raise _Refused(401, "Invalid API Key")
            match request.method, path:
                case "POST", "/vectors/upsert":
                    reply = index.upsert(body)
                case "POST", "/query":
                    reply = index.query(body)
                case "GET", "/vectors/fetch":
                    reply = index.fetch(params.getlist("ids"), params.get("namespace", ""))
                case "GET", "/vectors/list":
                    ns, prefix = params.get("namespace", ""), params.get("prefix", "")
                    reply = index.list(
                        ns, prefix, int(params.get("limit", PAGE)), params.get("paginationToken")
                    )
                case "POST", "/vectors/delete":
                    reply = index.delete(body)
                case "POST", "/describe_index_stats":
                    reply = index.stats()
                case "GET", _ if path.startswith("/indexes/"):
                    reply = index.describe(path.removeprefix("/indexes/"))
                case _:
                    raise _Refused(404, f"no route {request.method} {path}")
        except _Refused as refused:
            code = {400: 3, 401: 16, 404: 5}[refused.status]
            return JSONResponse({"code": code, "message": str(refused), "details": []}, refused.status)
        return JSONResponse(reply)

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "DELETE"])])


@contextlib.asynccontextmanager
async def pinecone_server(
    api_key: str, dimension: int, certfile: str | None = None, **state: Any
) -> AsyncIterator[tuple[PineconeState, str]]:
    """One index on loopback (HTTPS with *certfile*); yields its state and URL, which is also
    the control plane's."""
    index = PineconeState(api_key=api_key, dimension=dimension, **state)
    options = {"ssl_certfile": certfile} if certfile else {}
    async with serve_app(pinecone_app(index), **options) as url:
        index.host = url
        yield index, url
