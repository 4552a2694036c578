"""A2A over gRPC (``server.grpc``): one gRPC server for every exposed agent.

Both A2A gRPC services are served: protocol 1.0 (``lf.a2a.v1.A2AService``) and 0.3
(``a2a.v1.A2AService``), by a2a-sdk's gRPC handlers over the agents' HTTP request handlers, so
a task started over one transport can be read, answered or cancelled over the other.

A call is for the agent named by the request's ``tenant`` (each card lists the agent's gRPC
interface with its id as tenant, and a2a-sdk clients put it on every request), else by the
``agent-name`` metadata (the Go original's routing; Hector's own client sends it too), else
for the only agent served. The rules of the HTTP server apply unchanged: credentials come from
the ``authorization`` metadata (``Bearer <API key or JWT>``), ``require_auth`` and internal
agents need them, private agents do not exist here, failed credentials and requests count
against the same rate limits, and tasks belong to the authenticated subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote

import grpc
import grpc.aio
from a2a.auth.user import UnauthenticatedUser
from a2a.compat.v0_3 import a2a_v0_3_pb2_grpc
from a2a.compat.v0_3.grpc_handler import CompatGrpcHandler
from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import GrpcHandler, GrpcServerCallContextBuilder, RequestHandler
from a2a.types import a2a_pb2_grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from hector.a2a.executor import SubjectUser
from hector.config.schema import AuthConfig, RateLimitConfig, ServerConfig
from hector.errors import ConfigError
from hector.observability import activate, count_auth_failure, count_rate_limited
from hector.observability.telemetry import Telemetry
from hector.security import AuthError, Principal
from hector.security.authn import Authenticator
from hector.security.clientip import Network, forwarded_client
from hector.security.ratelimit import RateLimiter

log = logging.getLogger("hector.server.grpc")
audit = logging.getLogger("hector.auth")

AGENT_METADATA = "agent-name"
# Answers with large artifacts: gRPC's 4 MiB default is too small for some tasks.
_SEND_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class GrpcAgent:
    handler: RequestHandler
    visibility: str


class _ContextBuilder(GrpcServerCallContextBuilder):
    """The SDK's call context for one admitted call. Unlike the SDK's default builder it keeps
    no reference to the gRPC context, whose metadata holds the credentials."""

    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal

    def build(self, context: grpc.aio.ServicerContext[Any, Any]) -> ServerCallContext:
        extensions = [v for k, v in _metadata_pairs(context) if k == HTTP_EXTENSION_HEADER.lower()]
        return ServerCallContext(
            user=SubjectUser(self.principal.subject) if self.principal is not None else UnauthenticatedUser(),
            requested_extensions=get_requested_extensions(extensions),
        )


def _metadata_pairs(context: grpc.aio.ServicerContext[Any, Any]) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in context.invocation_metadata() or () if isinstance(v, str)]


def peer_address(peer: str) -> str:
    """The client's IP address from grpcio's peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``)."""
    kind, _, rest = unquote(peer).partition(":")
    if kind not in ("ipv4", "ipv6"):
        return peer or "unknown"
    host = rest.rsplit(":", 1)[0].strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host or "unknown"


class GrpcGateway:
    """Admits each gRPC call of one configuration: its credentials, its agent, its rate."""

    def __init__(
        self,
        agents: Mapping[str, GrpcAgent],
        auth: AuthConfig,
        authenticator: Authenticator | None,
        rate: RateLimitConfig,
        limiter: RateLimiter | None,
        failure_limiter: RateLimiter | None,
        telemetry: Telemetry,
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.agents = agents
        self.trusted_proxies = trusted_proxies
        """Peers whose ``x-forwarded-for`` metadata names the client, as over HTTP."""
        self.auth = auth
        self.authenticator = authenticator
        self.rate = rate
        self.limiter = limiter
        self.failure_limiter = failure_limiter
        self.telemetry = telemetry
        self.activity: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext
        """Held for the whole of each call: ``--config-watch`` counts the calls in flight with it."""
        self._last_limiter_error = 0.0

    async def admit(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[str, GrpcAgent, Principal | None]:
        """(agent id, agent, principal) of an acceptable call; otherwise the call is aborted."""
        metadata = dict(_metadata_pairs(context))
        client = forwarded_client(
            peer_address(context.peer()), metadata.get("x-forwarded-for", ""), self.trusted_proxies
        )
        principal = None
        header = metadata.get("authorization")
        if self.authenticator is not None and header is not None:
            try:
                principal = await self.authenticator.authenticate(header)
            except AuthError as exc:
                self._audit(method, client, None, exc.message)
                await self._throttle("authfail:" + client, self.failure_limiter, "auth_failures", context)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"unauthorized: {exc.message}")
            self._audit(method, client, principal, None)
        name = self._agent_name(request, metadata)
        agent = self.agents.get(name) if name else None
        if principal is None:
            if agent is not None and agent.visibility == "internal":
                await self._unauthenticated(context, "unauthorized: agent is internal")
            if self.authenticator is not None and self.auth.require_auth:
                await self._unauthenticated(context, "missing authorization metadata")
        if self.limiter is not None:  # as over HTTP, calls for agents that are not there count too
            per_user = self.rate.per_user and principal is not None
            key = f"user:{principal.subject}" if per_user and principal else f"ip:{client}"
            await self._throttle(key, self.limiter, "requests", context)
        if agent is None:
            visible = sorted(a for a, e in self.agents.items() if e.visibility == "public" or principal)
            if not name:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"which agent? set the request's tenant or the {AGENT_METADATA} metadata "
                    f"(available: {visible})",
                )
            await context.abort(grpc.StatusCode.NOT_FOUND, f"agent {name!r} not found (available: {visible})")
        assert name is not None
        return name, agent, principal

    def _agent_name(self, request: Any, metadata: Mapping[str, str]) -> str | None:
        named = getattr(request, "tenant", "") or metadata.get(AGENT_METADATA, "")
        if named:
            return str(named)
        return next(iter(self.agents)) if len(self.agents) == 1 else None

    async def _unauthenticated(self, context: grpc.aio.ServicerContext[Any, Any], message: str) -> NoReturn:
        count_auth_failure("missing")
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def _throttle(
        self,
        key: str,
        limiter: RateLimiter | None,
        name: str,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        """Take a token from *key*'s bucket; abort RESOURCE_EXHAUSTED when there is none."""
        if limiter is None:
            return
        try:
            decision = await limiter.hit(key)
        except Exception as exc:  # the limiter's store is down: serve, and say so (not per call)
            if time.monotonic() - self._last_limiter_error > 30:
                self._last_limiter_error = time.monotonic()
                log.error("rate limiter unavailable, not limiting: %s", type(exc).__name__)
            return
        if decision.allowed:
            return
        count_rate_limited(name)
        retry = max(1, round(decision.retry_after + 0.5))
        log.info("rate limit exceeded", extra={"component": "ratelimit", "action": "reject", "key": key})
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"too many requests; retry in {retry} s",
            (("retry-after", str(retry)),),
        )

    def _audit(self, method: str, client: str, principal: Principal | None, reason: str | None) -> None:
        if principal is None:
            count_auth_failure("invalid")
        audit.info(
            "authentication %s" % ("failed" if principal is None else "succeeded"),
            extra={
                "component": "auth",
                "action": "authenticate",
                "user": principal.display if principal else None,
                "success": principal is not None,
                "reason": reason,
                "path": method,
                "client": client,
            },
        )


class _Dispatcher:
    """The base of the servicers: every RPC is admitted by the current gateway, then handed to
    a2a-sdk's gRPC handler for the agent's request handler, with the caller as its user."""

    def __init__(
        self,
        gateway: Callable[[], GrpcGateway],
        sdk_handler: Callable[[RequestHandler, GrpcServerCallContextBuilder], Any],
        service: str,
    ) -> None:
        self.gateway = gateway
        self.sdk_handler = sdk_handler
        self.service = service

    @contextlib.asynccontextmanager
    async def call(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        gateway = self.gateway()
        # Entered before any await, so a configuration reload counts this call before it could
        # retire the gateway's configuration.
        with gateway.activity():
            telemetry = gateway.telemetry
            agent_label = "unknown"
            span = None
            if telemetry.tracing is not None:
                parent = propagate.extract(dict(_metadata_pairs(context)))
                span = telemetry.tracing.tracer.start_span(
                    "grpc.request",
                    context=parent,
                    kind=SpanKind.SERVER,
                    attributes={"rpc.system": "grpc", "rpc.service": self.service, "rpc.method": method},
                )
            outcome = "OK"
            try:
                with activate(telemetry), trace.use_span(span) if span else contextlib.nullcontext():
                    agent_id, agent, principal = await gateway.admit(method, request, context)
                    agent_label = agent_id
                    yield self.sdk_handler(agent.handler, _ContextBuilder(principal))
            except grpc.aio.BaseError:  # an abort, or grpcio's own failure: its status stands
                raise
            except Exception:
                # grpcio would answer UNKNOWN with the exception's class and text: SQL statements and
                # their parameters, addresses, paths. The log has the details; the client does not.
                log.exception("gRPC %s failed", method, extra={"component": "server"})
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            except BaseException:  # cancelled, or the process is going down
                outcome = "UNKNOWN"
                raise
            finally:
                code = context.code()
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # The client went away (or the server stops). a2a-sdk's streams end quietly
                    # when cancelled, so the cancellation is seen here rather than as an exception.
                    outcome = "CANCELLED"
                name = code.name if isinstance(code, grpc.StatusCode) else outcome
                if telemetry.metrics is not None:
                    telemetry.metrics.grpc_requests.labels(method, agent_label, name).inc()
                if span is not None:
                    span.set_attribute("rpc.grpc.status_code", name)
                    span.end()


def _rpc(method: str, streaming: bool) -> Callable[..., Any]:
    if streaming:

        async def stream(self: _Dispatcher, request: Any, context: Any) -> AsyncIterator[Any]:
            async with self.call(method, request, context) as handler:
                async for item in getattr(handler, method)(request, context):
                    yield item

        return stream

    async def unary(self: _Dispatcher, request: Any, context: Any) -> Any:
        async with self.call(method, request, context) as handler:
            return await getattr(handler, method)(request, context)

    return unary


def _servicer(base: type, sdk: type) -> type:
    """A servicer class for *base* whose RPCs go through ``_Dispatcher.call`` to *sdk*'s."""
    methods = {
        name: _rpc(name, inspect.isasyncgenfunction(getattr(sdk, name)))
        for name in vars(base)
        if name[:1].isupper()
    }
    return type(f"Hector{sdk.__name__}", (_Dispatcher, base), methods)


_V1 = _servicer(a2a_pb2_grpc.A2AServiceServicer, GrpcHandler)
_V03 = _servicer(a2a_v0_3_pb2_grpc.A2AServiceServicer, CompatGrpcHandler)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"server.tls: failed to read {what} from {path}: {exc.strerror or exc}") from None


class GrpcListener:
    """The gRPC server of ``hector serve``: bound to ``server.grpc``, TLS from ``server.tls``.

    *gateway* gives the configuration that admits each call (with ``--config-watch``, the
    current one), so the listener outlives configuration reloads.
    """

    def __init__(self, server: ServerConfig, gateway: Callable[[], GrpcGateway]) -> None:
        self.cfg = server
        self.gateway = gateway
        host = server.grpc.host or server.host
        self.address = f"[{host}]:{server.grpc.port}" if ":" in host else f"{host}:{server.grpc.port}"
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(
            options=[
                # Two servers on one port would each get some connections: fail to start instead.
                ("grpc.so_reuseport", 0),
                # Requests are bounded as HTTP bodies are.
                ("grpc.max_receive_message_length", self.cfg.max_body_size),
                ("grpc.max_send_message_length", _SEND_LIMIT),
            ]
        )
        a2a_pb2_grpc.add_A2AServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _V1(self.gateway, GrpcHandler, "lf.a2a.v1.A2AService"), server
        )
        a2a_v0_3_pb2_grpc.add_A2AServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _V03(self.gateway, CompatGrpcHandler, "a2a.v1.A2AService"), server
        )
        tls = self.cfg.tls if self.cfg.tls is not None and self.cfg.tls.enabled else None
        try:
            if tls is None:
                server.add_insecure_port(self.address)
            else:
                key, chain = _read(tls.key_file, "the key"), _read(tls.cert_file, "the certificate")
                client_ca = _read(tls.client_ca_file, "the client CA") if tls.client_ca_file else None
                credentials = grpc.ssl_server_credentials(
                    [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
                )
                server.add_secure_port(self.address, credentials)
        except RuntimeError:
            raise ConfigError(
                f"server.grpc: cannot listen on {self.address} (port in use, or not an address of "
                "this machine)"
            ) from None
        await server.start()
        self._server = server
        scheme = "grpcs" if tls else "grpc"
        log.info("A2A gRPC server listening on %s://%s", scheme, self.address, extra={"component": "server"})

    async def stop(self, grace: float) -> None:
        """Stop taking calls; calls in progress (streams too) get *grace* seconds to finish."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
