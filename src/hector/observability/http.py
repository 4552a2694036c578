"""The HTTP side of telemetry: request metrics, the ``http.request`` server span, ``/metrics``.

A pure-ASGI middleware just inside CORS, so it sees every request, including the ones that
authentication, body-size and rate limits answer themselves, and activates the app's telemetry
for everything the request runs (see ``hector.observability``). It also serves the metrics
endpoint: answering before authentication and rate limiting is what keeps a scrape open
(like ``/health``) and never throttled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hector.observability import activate
from hector.observability.metrics import CONTENT_TYPE
from hector.observability.telemetry import Telemetry
from hector.observability.tracing import extract_context

OTHER_ROUTE = "other"


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The template of the route that served (or would serve) the request, e.g.
    ``/agents/echo/tasks/{id}``; ``other`` for paths no route knows.

    Templates keep the label set as small as the app's routes: raw paths carry task ids and
    whatever a client invents. Agent routes are literal per configured agent, so the template
    names the agent; unknown agents fall to the ``/agents/{name:path}`` catch-all.
    """
    matched = scope.get("route")
    if isinstance(matched, Route):
        return matched.path
    # Not routed: a middleware answered first (401, 413, 429), so look the template up here.
    for route in routes:
        match, _ = route.matches(scope)
        if match != Match.NONE and isinstance(route, Route):
            return route.path
    return OTHER_ROUTE


def _is_event_stream(message: Message) -> bool:
    return any(
        k.lower() == b"content-type" and v.startswith(b"text/event-stream")
        for k, v in message.get("headers", ())
    )


class TelemetryMiddleware:
    def __init__(
        self, app: ASGIApp, telemetry: Telemetry, routes: Sequence[BaseRoute], metrics_path: str | None
    ) -> None:
        self.app = app
        self.telemetry = telemetry
        self.routes = routes
        self.metrics_path = metrics_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.metrics_path and scope["method"] in ("GET", "HEAD"):
            await self._scrape(scope, send)
            return
        metrics = self.telemetry.metrics
        method = scope["method"]
        span = None
        if self.telemetry.tracing is not None:
            span = self.telemetry.tracing.tracer.start_span(
                "http.request",
                context=extract_context(scope["headers"]),
                kind=SpanKind.SERVER,
                attributes={"http.method": method, "http.path": scope["path"]},
            )
        status = 500  # what the client gets when the app fails before answering
        streaming = False

        async def observe(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                if metrics is not None and _is_event_stream(message):
                    streaming = True
                    metrics.active_streams.inc()
            await send(message)

        started = time.perf_counter()
        try:
            with activate(self.telemetry):
                if span is None:
                    await self.app(scope, receive, observe)
                else:
                    with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                        await self.app(scope, receive, observe)
        except BaseException as exc:
            if span is not None:
                span.set_attribute("error.type", type(exc).__name__)
            raise
        finally:
            elapsed = time.perf_counter() - started
            if streaming and metrics is not None:
                metrics.active_streams.dec()
            route = route_template(scope, self.routes)
            if metrics is not None:
                metrics.http_requests.labels(method, route, str(status)).inc()
                metrics.http_duration.labels(method, route).observe(elapsed)
            if span is not None:
                span.set_attribute("http.route", route)
                span.set_attribute("http.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                span.end()

    async def _scrape(self, scope: Scope, send: Send) -> None:
        metrics = self.telemetry.metrics
        assert metrics is not None  # metrics_path is only set when metrics are on
        body = metrics.render()
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
