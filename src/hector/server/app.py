"""The HTTP application: A2A endpoints for every exposed agent, discovery, health."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.types.a2a_pb2 import AgentCard
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from hector.a2a.cards import build_card
from hector.a2a.takeover import build_handler
from hector.config.schema import RateLimitConfig
from hector.config.tls import effective_tls
from hector.observability import Telemetry
from hector.observability.http import TelemetryMiddleware
from hector.runtime import AgentEntry, Runtime
from hector.security.authn import Authenticator
from hector.security.clientip import Network, forwarded_proto, parse_networks
from hector.security.middleware import AuthMiddleware, RateLimitMiddleware, principal_of
from hector.security.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from hector.server.grpc import GrpcAgent, GrpcGateway, GrpcListener
from hector.server.limits import BodySizeLimitMiddleware
from hector.web import web_routes

log = logging.getLogger("hector.server")

# On SIGTERM, open SSE streams get this long to finish before they are cut; it stays below
# uvicorn's graceful-shutdown timeout (10 s in `hector serve`).
STREAM_DRAIN_SECONDS = 5.0


class _CallContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, without credentials in its copy of the request headers.

    The SDK keeps every request header in ``ServerCallContext.state`` and logs that context at
    DEBUG (``ActiveTask ... Executing setup (call_context: ...)``), which wrote bearer tokens and
    API keys to the log. Authentication is done by then (``state['auth']`` and the user remain).
    """

    HIDDEN = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        headers = context.state.get("headers")
        if isinstance(headers, dict):
            context.state["headers"] = {k: v for k, v in headers.items() if k.lower() not in self.HIDDEN}
        return context


class AgentEndpoints:
    """The a2a-sdk request handler of one agent and the card it serves."""

    def __init__(
        self,
        entry: AgentEntry,
        base_url: str | None,
        auth: CardAuth,
        trusted_proxies: list[Network],
        transports: CardTransports | None = None,
    ) -> None:
        self.entry = entry
        self.base_url = base_url
        self.auth = auth
        self.trusted_proxies = trusted_proxies
        self.transports = transports or CardTransports()
        placeholder = self._build(base_url or "http://localhost")
        self.handler = build_handler(entry, placeholder)
        self._cards: dict[str, dict[str, Any]] = {}

    def card(self, request: Request) -> dict[str, Any]:
        """The card, with URLs from ``server.base_url`` or else from how the client reached us.

        The scheme is https when we terminate TLS ourselves, or when a trusted proxy that does
        says so in ``X-Forwarded-Proto``; nobody else is believed about it.
        """
        url = request.base_url
        proto = forwarded_proto(request.scope, self.trusted_proxies)
        if proto:
            url = url.replace(scheme=proto)
        base = self.base_url or str(url).rstrip("/")
        if base not in self._cards:
            if len(self._cards) > 32:  # many Host headers: don't let a client grow this forever
                self._cards.clear()
            self._cards[base] = agent_card_to_dict(self._build(base))
        return self._cards[base]

    def _build(self, base: str) -> AgentCard:
        required = self.auth.required or self.entry.agent.visibility == "internal"
        grpc_address = None
        if self.transports.grpc_port is not None:
            # The host the client reached us by (or base_url's) serves gRPC too, on its own port.
            host = urlsplit(base).hostname or "localhost"
            host = f"[{host}]" if ":" in host else host
            grpc_address = f"{host}:{self.transports.grpc_port}"
        return build_card(
            self.entry.agent,
            base,
            self.entry.config.skills,
            self.auth.enabled,
            required,
            grpc_address,
            self.transports.preferred,
        )

    def routes(self) -> list[BaseRoute]:
        prefix = f"/agents/{self.entry.agent.id}"

        async def card(request: Request) -> Response:
            return JSONResponse(self.card(request))

        routes: list[BaseRoute] = [
            Route(f"{prefix}/.well-known/agent-card.json", card, methods=["GET"]),
            Route(prefix, card, methods=["GET"]),
            *create_jsonrpc_routes(
                self.handler,
                prefix,
                context_builder=_CallContextBuilder(),
                enable_v0_3_compat=True,
                shutdown_grace_period=STREAM_DRAIN_SECONDS,
            ),
        ]
        # The SDK adds a /{tenant} mount for multi-tenant servers; Hector has no tenants, so it
        # would only widen the URL space.
        routes += [
            r
            for r in create_rest_routes(
                self.handler,
                context_builder=_CallContextBuilder(),
                enable_v0_3_compat=True,
                path_prefix=prefix,
                shutdown_grace_period=STREAM_DRAIN_SECONDS,
            )
            if not isinstance(r, Mount)
        ]
        return routes


@dataclass(frozen=True)
class CardAuth:
    enabled: bool
    required: bool


@dataclass(frozen=True)
class CardTransports:
    grpc_port: int | None = None
    """Set when ``server.grpc`` is enabled: the cards list the gRPC interface too."""
    preferred: str = "json-rpc"


def _limiter(cfg: RateLimitConfig) -> RateLimiter:
    capacity = cfg.burst or cfg.requests_per_minute
    if cfg.backend == "redis":
        url = cfg.redis_url.get_secret_value() if cfg.redis_url else "redis://127.0.0.1:6379/0"
        return RedisRateLimiter(cfg.requests_per_minute, capacity, url)
    return MemoryRateLimiter(cfg.requests_per_minute, capacity)


_startup_frozen = False


def _freeze_startup_objects() -> None:
    """Exempt what exists once the server has started from the cyclic garbage collector.

    Configuration, agents, SDK and library modules are ~150,000 tracked objects that live as long
    as the process; every full collection walked them all again, a pause of about 100 ms in the
    middle of some request (the p99 of bench/load.py). Frozen, they are skipped; anything created
    later is collected as before, and memory freed by reference counting is unaffected. Once
    per process: later apps (tests) would only pay for another full collection.
    """
    global _startup_frozen
    if not _startup_frozen:
        _startup_frozen = True
        gc.collect()
        gc.freeze()


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(runtime: Runtime, own_runtime: bool = True) -> Starlette:
    """The ASGI app for *runtime*; with *own_runtime* its lifespan also starts and stops the
    runtime and, with ``server.grpc`` enabled, the gRPC server (tests, embedding); otherwise the
    caller does (``hector serve``, with ``app.state.grpc`` as the gateway of its gRPC server)."""
    server = runtime.config.server
    auth = server.auth
    authenticator = Authenticator(auth, effective_tls(auth, runtime.config)) if auth.enabled else None
    card_auth = CardAuth(enabled=auth.enabled, required=auth.enabled and auth.require_auth)
    limiter = _limiter(server.rate_limiting) if server.rate_limiting.enabled else None
    trusted = parse_networks(server.trusted_proxies)
    telemetry = Telemetry.from_config(server.observability)
    runtime.telemetry = telemetry  # for what the runtime does outside requests (indexing, takeovers)
    transports = CardTransports(server.grpc.port if server.grpc.enabled else None, server.preferred_transport)
    exposed = {
        agent_id: AgentEndpoints(entry, server.base_url, card_auth, trusted, transports)
        for agent_id, entry in runtime.agents.items()
        if entry.agent.visibility != "private"
    }

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        problems = await runtime.check_ready()
        jwks = authenticator.jwks if authenticator is not None else None
        if jwks is not None and not jwks.loaded:
            # Retry the fetch here (throttled by the cache): a server that is not ready gets no
            # traffic, so waiting for a JWT-bearing request to retry it would never end.
            await jwks.ensure_fresh()
            if not jwks.loaded:
                problems.append("jwks: signing keys not loaded yet")
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    def visible(request: Request) -> dict[str, AgentEndpoints]:
        """The agents this caller may see: internal ones only when authenticated."""
        signed_in = principal_of(request.scope) is not None
        return {a: e for a, e in exposed.items() if e.entry.agent.visibility == "public" or signed_in}

    async def discovery(request: Request) -> Response:
        cards = [endpoints.card(request) for endpoints in visible(request).values()]
        return JSONResponse({"agents": cards, "total": len(cards)})

    public = [e for e in exposed.values() if e.entry.agent.visibility == "public"]

    async def root_card(request: Request) -> Response:
        if not public:
            return _error(404, "no public agent is exposed over HTTP")
        return JSONResponse(public[0].card(request))

    async def unknown_agent(request: Request) -> Response:
        name = request.path_params["name"].split("/")[0]
        # List only what discovery shows this caller: a 404 must not name hidden agents either.
        return _error(404, f"agent {name!r} not found", available=sorted(visible(request)))

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/agents", discovery, methods=["GET"]),
        Route("/v1/agents", discovery, methods=["GET"]),
        Route("/.well-known/agent-card.json", root_card, methods=["GET"]),
        *web_routes(auth.enabled, card_auth.required),
    ]
    for endpoints in exposed.values():
        routes += endpoints.routes()
    routes.append(Route("/agents/{name:path}", unknown_agent, methods=["GET", "POST", "DELETE", "PUT"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return _error(404, f"no route for {request.url.path}")
        return _error(
            exc.status_code, str(exc.detail), **({"allow": exc.headers.get("Allow")} if exc.headers else {})
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime if own_runtime else contextlib.nullcontext(runtime):
            if authenticator is not None:
                await authenticator.start()
            listener = GrpcListener(server, lambda: gateway) if own_runtime and server.grpc.enabled else None
            try:
                if listener is not None:
                    await listener.start()
                _freeze_startup_objects()
                yield
            finally:
                if listener is not None:  # first: its calls use everything closed below
                    await listener.stop(STREAM_DRAIN_SECONDS)
                for endpoints in exposed.values():
                    await endpoints.handler.aclose()
                if limiter is not None:
                    await limiter.aclose()
                if authenticator is not None:
                    await authenticator.aclose()
                await telemetry.aclose()

    cors = server.cors
    visibility = {agent_id: e.entry.agent.visibility for agent_id, e in exposed.items()}
    failure_limiter = MemoryRateLimiter(30, 30) if authenticator is not None else None
    gateway = GrpcGateway(
        {agent_id: GrpcAgent(e.handler, e.entry.agent.visibility) for agent_id, e in exposed.items()},
        auth,
        authenticator,
        server.rate_limiting,
        limiter,
        limiter or failure_limiter,
        telemetry,
        trusted,
    )
    middleware = [
        Middleware(BodySizeLimitMiddleware, max_body_size=server.max_body_size),
        Middleware(
            AuthMiddleware,
            cfg=auth,
            authenticator=authenticator,
            visibility=visibility,
            failure_limiter=limiter or failure_limiter,
            trusted_proxies=trusted,
        ),
    ]
    if limiter is not None:
        middleware.append(
            Middleware(
                RateLimitMiddleware, cfg=server.rate_limiting, limiter=limiter, trusted_proxies=trusted
            )
        )
    if telemetry.enabled:
        metrics_path = server.observability.metrics.endpoint if telemetry.metrics is not None else None
        middleware.insert(
            0, Middleware(TelemetryMiddleware, telemetry=telemetry, routes=routes, metrics_path=metrics_path)
        )
    if cors is not None:
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=cors.allowed_origins,
                allow_methods=cors.allowed_methods,
                allow_headers=cors.allowed_headers,
                allow_credentials=cors.allow_credentials and "*" not in cors.allowed_origins,
                max_age=cors.max_age or 600,
            ),
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.grpc = gateway
    return app
