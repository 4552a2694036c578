"""The HTTP application: A2A endpoints for every exposed agent, discovery, health."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from hector.a2a.cards import build_card
from hector.a2a.executor import HectorAgentExecutor
from hector.runtime import AgentEntry, Runtime
from hector.server.limits import BodySizeLimitMiddleware

log = logging.getLogger("hector.server")


class AgentEndpoints:
    """The a2a-sdk request handler of one agent and the card it serves."""

    def __init__(self, entry: AgentEntry, base_url: str | None) -> None:
        self.entry = entry
        self.base_url = base_url
        placeholder = build_card(entry.agent, base_url or "http://localhost", entry.config.skills)
        self.handler = DefaultRequestHandler(
            agent_executor=HectorAgentExecutor(entry.agent),
            task_store=entry.task_store,
            agent_card=placeholder,
        )
        self._cards: dict[str, dict[str, Any]] = {}

    def card(self, request: Request) -> dict[str, Any]:
        """The card, with URLs from ``server.base_url`` or else from how the client reached us."""
        base = self.base_url or str(request.base_url).rstrip("/")
        if base not in self._cards:
            if len(self._cards) > 32:  # many Host headers: don't let a client grow this forever
                self._cards.clear()
            self._cards[base] = agent_card_to_dict(
                build_card(self.entry.agent, base, self.entry.config.skills)
            )
        return self._cards[base]

    def routes(self) -> list[BaseRoute]:
        prefix = f"/agents/{self.entry.agent.id}"

        async def card(request: Request) -> Response:
            return JSONResponse(self.card(request))

        routes: list[BaseRoute] = [
            Route(f"{prefix}/.well-known/agent-card.json", card, methods=["GET"]),
            Route(prefix, card, methods=["GET"]),
            *create_jsonrpc_routes(self.handler, prefix, enable_v0_3_compat=True),
        ]
        # The SDK adds a /{tenant} mount for multi-tenant servers; Hector has no tenants, so it
        # would only widen the URL space.
        routes += [
            r
            for r in create_rest_routes(self.handler, enable_v0_3_compat=True, path_prefix=prefix)
            if not isinstance(r, Mount)
        ]
        return routes


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(runtime: Runtime) -> Starlette:
    server = runtime.config.server
    exposed = {
        agent_id: AgentEndpoints(entry, server.base_url)
        for agent_id, entry in runtime.agents.items()
        if entry.agent.visibility != "private"
    }

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        problems = await runtime.check_ready()
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def discovery(request: Request) -> Response:
        cards = [endpoints.card(request) for endpoints in exposed.values()]
        return JSONResponse({"agents": cards, "total": len(cards)})

    async def root_card(request: Request) -> Response:
        if not exposed:
            return _error(404, "no agent is exposed over HTTP")
        return JSONResponse(next(iter(exposed.values())).card(request))

    async def unknown_agent(request: Request) -> Response:
        name = request.path_params["name"].split("/")[0]
        return _error(404, f"agent {name!r} not found", available=sorted(exposed))

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/agents", discovery, methods=["GET"]),
        Route("/v1/agents", discovery, methods=["GET"]),
        Route("/.well-known/agent-card.json", root_card, methods=["GET"]),
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
        async with runtime:
            try:
                yield
            finally:
                for endpoints in exposed.values():
                    await endpoints.handler.aclose()

    cors = server.cors
    middleware = [Middleware(BodySizeLimitMiddleware, max_body_size=server.max_body_size)]
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
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
