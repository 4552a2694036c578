"""OpenTelemetry tracing of one app (``server.observability.tracing``), and W3C propagation.

Each app owns its ``TracerProvider`` instead of installing one globally: several apps in one
process keep their own exporters, and an embedding application's global OpenTelemetry setup
is left alone. The *context* (which span is current) is OpenTelemetry's global context all the
same, so propagation below works whichever provider made the span.

The exporters are imported only when tracing is on: gRPC costs a noticeable part of start-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from hector.config.schema import TracingConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

INSTRUMENTATION = "hector"
# The headers a W3C trace context (and baggage) travels in; only these are decoded from a request.
_PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})


def otlp_http_url(endpoint: str | None, insecure: bool) -> str | None:
    """The full OTLP/HTTP traces URL for *endpoint*.

    Collectors are usually given as ``host:4318`` or ``http://host:4318``, while the exporter
    wants the whole signal URL; a bare address gets a scheme (``insecure`` → http) and
    ``/v1/traces``. ``None`` leaves the choice to the ``OTEL_EXPORTER_OTLP_*`` variables.
    """
    if not endpoint:
        return None
    if "://" not in endpoint:
        endpoint = ("http://" if insecure else "https://") + endpoint
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def _exporter(cfg: TracingConfig) -> SpanExporter:
    headers = {k: v.get_secret_value() for k, v in cfg.headers.items()} or None
    if cfg.exporter == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPExporter

        return HTTPExporter(endpoint=otlp_http_url(cfg.endpoint, cfg.insecure), headers=headers)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCExporter

    return GRPCExporter(endpoint=cfg.endpoint, insecure=cfg.insecure, headers=headers)


class Tracing:
    """A provider with a batching OTLP exporter, and the tracer Hector's spans come from."""

    def __init__(self, cfg: TracingConfig, exporter: SpanExporter | None = None) -> None:
        # Parent-based: a caller's sampling decision (the traceparent flag) wins over the rate,
        # so a trace is never cut in half between services.
        sampler = ParentBased(TraceIdRatioBased(cfg.sampling_rate))
        self.provider = TracerProvider(
            sampler=sampler,
            resource=Resource.create({SERVICE_NAME: cfg.service_name}),
            # The app's lifespan shuts it down; an atexit hook would keep every provider alive.
            shutdown_on_exit=False,
        )
        self.provider.add_span_processor(BatchSpanProcessor(exporter or _exporter(cfg)))
        self.tracer = self.provider.get_tracer(INSTRUMENTATION)

    async def shutdown(self) -> None:
        """Export what is still queued and stop. Runs in a thread: the export blocks, and the
        collector may be served by this very event loop (tests, sidecars in-process)."""
        await asyncio.to_thread(self.provider.shutdown)


def extract_context(headers: Iterable[tuple[bytes, bytes]]) -> Context:
    """The remote parent carried by an ASGI request's ``traceparent``, if any."""
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in _PROPAGATION_HEADERS}
    return propagate.extract(carrier)


async def inject_trace_context(request: Any) -> None:
    """An httpx ``request`` event hook: outbound calls continue the caller's trace.

    Typed loosely because it serves both ``httpx`` and the ``httpx2`` clients of the vendor
    SDKs; it only writes ``traceparent`` (and ``tracestate``) into ``request.headers``, and
    nothing at all without a current span.
    """
    propagate.inject(request.headers)


def log_fields() -> Mapping[str, str]:
    """``trace_id`` and ``span_id`` of the current span, for log lines; empty without one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
