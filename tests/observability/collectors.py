"""In-process OTLP trace collectors: a gRPC TraceService and an OTLP/HTTP endpoint.

Both decode the real OTLP protobuf requests an exporter sends and keep the spans, flattened
into ``CollectedSpan`` records (ids as lower-case hex, as in ``traceparent``).
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class CollectedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    """Empty for a root span."""
    kind: int
    attributes: dict[str, Any]
    status: int
    service: str
    start: int
    """Nanoseconds since the epoch."""


def _value(value: AnyValue) -> Any:
    field = value.WhichOneof("value")
    return getattr(value, field) if field else None


class SpanStore:
    """Spans received so far, from any number of export requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: list[CollectedSpan] = []
        self.requests = 0

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        collected = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    collected.append(_collected(span, str(resource.get("service.name", ""))))
        with self._lock:
            self.spans.extend(collected)
            self.requests += 1

    def named(self, name: str) -> list[CollectedSpan]:
        with self._lock:
            return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> CollectedSpan:
        found = self.named(name)
        assert len(found) == 1, (name, found)
        return found[0]


def _collected(span: Span, service: str) -> CollectedSpan:
    return CollectedSpan(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        kind=span.kind,
        attributes={a.key: _value(a.value) for a in span.attributes},
        status=span.status.code,
        service=service,
        start=span.start_time_unix_nano,
    )


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: SpanStore) -> None:
        self.store = store

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.store.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class GRPCCollector(SpanStore):
    """An OTLP/gRPC collector on a loopback port, served by gRPC's own threads."""

    def __init__(self) -> None:
        super().__init__()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


def http_collector_app(store: SpanStore) -> Starlette:
    """OTLP/HTTP: ``POST /v1/traces`` with a binary protobuf body."""

    async def traces(request: Request) -> Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        message = trace_service_pb2.ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        store.add(message)
        body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return Response(body, media_type="application/x-protobuf")

    return Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
