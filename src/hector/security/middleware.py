"""Pure-ASGI middleware: who is calling (authentication, visibility) and how often (rate limits).

Order in the app: CORS → telemetry (when enabled) → body size → authentication → rate limit →
routes. Preflights are answered by CORS before any credential is asked for.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence

from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hector.config.schema import AuthConfig, RateLimitConfig
from hector.observability import count_auth_failure, count_rate_limited
from hector.security import AuthError, HectorUser, Principal
from hector.security.authn import Authenticator
from hector.security.clientip import Network, client_ip
from hector.security.ratelimit import Decision, RateLimiter

log = logging.getLogger("hector.auth")

ALWAYS_OPEN = frozenset({"/health", "/ready"})
DISCOVERY = frozenset({"/agents", "/v1/agents"})
# The web UI's page and its scripts/styles: they hold no data, and the page must load before the
# user can give it a key. Its API calls (including /ui/whoami) are checked like any other.
UI_PAGE = "/"
UI_ASSETS = "/ui/assets/"


def is_ui_file(path: str) -> bool:
    return path == UI_PAGE or path.startswith(UI_ASSETS)


async def send_json(send: Send, status: int, body: object, headers: Sequence[tuple[str, str]] = ()) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def _normalize(path: str) -> str:
    return path.rstrip("/") or "/"


def agent_in_path(path: str) -> str | None:
    if path.startswith("/agents/"):
        return path.split("/", 3)[2] or None
    return None


def principal_of(scope: Scope) -> Principal | None:
    user = scope.get("user")
    return user.principal if isinstance(user, HectorUser) else None


class AuthMiddleware:
    """Authenticates bearer credentials and applies ``require_auth`` and agent visibility."""

    def __init__(
        self,
        app: ASGIApp,
        cfg: AuthConfig,
        authenticator: Authenticator | None,
        visibility: Mapping[str, str],
        failure_limiter: RateLimiter | None,
        trusted_proxies: Sequence[Network],
    ) -> None:
        self.app = app
        self.cfg = cfg
        self.authenticator = authenticator
        self.visibility = visibility
        self.excluded = {_normalize(p) for p in cfg.excluded_paths} | ALWAYS_OPEN
        self.failure_limiter = failure_limiter
        self.trusted = trusted_proxies

    def _audit(self, scope: Scope, success: bool, user: str | None, reason: str | None = None) -> None:
        if not success:
            count_auth_failure("invalid")
        log.info(
            "authentication %s" % ("succeeded" if success else "failed"),
            extra={
                "component": "auth",
                "action": "authenticate",
                "user": user,
                "success": success,
                "reason": reason,
                "path": scope["path"],
                "client": client_ip(scope, self.trusted),
            },
        )

    async def _throttled(self, scope: Scope, send: Send) -> bool:
        """Count a failed credential; answers 429 (and returns True) when there were too many."""
        if self.failure_limiter is None:
            return False
        # Failed credentials count against the caller's address: guessing keys is throttled
        # even where request rate limiting is keyed per user.
        decision = await self.failure_limiter.hit("authfail:" + client_ip(scope, self.trusted))
        if not decision.allowed:
            count_rate_limited("auth_failures")
            await send_rate_limited(send, decision)
        return not decision.allowed

    async def _unauthorized(self, scope: Scope, send: Send, message: str, invalid: bool) -> None:
        challenge = 'Bearer realm="hector"' + (', error="invalid_token"' if invalid else "")
        if not invalid:  # a rejected credential was counted when it was audited
            count_auth_failure("missing")
        if invalid and await self._throttled(scope, send):
            return
        await send_json(send, 401, {"error": message}, [("WWW-Authenticate", challenge)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _normalize(scope["path"])
        excluded = path in self.excluded or is_ui_file(scope["path"])
        agent = agent_in_path(path)
        principal: Principal | None = None
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        if self.authenticator is not None and header is not None:
            try:
                principal = await self.authenticator.authenticate(header)
            except AuthError as exc:
                self._audit(scope, False, None, exc.message)
                if path in DISCOVERY and not excluded:
                    # SPEC §5.3: discovery is never rejected; the token is validated softly, so a
                    # bad one lists what an anonymous caller sees. It still counts as a failure:
                    # the listing shows whether a key is valid (internal agents appear), so it
                    # must not become an unthrottled way to guess keys.
                    if await self._throttled(scope, send):
                        return
                elif not excluded:
                    await self._unauthorized(scope, send, exc.message, invalid=True)
                    return
            else:
                self._audit(scope, True, principal.display)
                scope["user"] = HectorUser(principal)
                scope["auth"] = AuthCredentials(["authenticated"])
        if not excluded and principal is None and path not in DISCOVERY:
            if agent is not None and self.visibility.get(agent) == "internal":
                await self._unauthorized(scope, send, "Unauthorized: agent is internal", invalid=False)
                return
            if self.authenticator is not None and self.cfg.require_auth:
                message = "Missing Authorization header"
                await self._unauthorized(scope, send, message, invalid=False)
                return
        await self.app(scope, receive, send)


async def send_rate_limited(send: Send, decision: Decision) -> None:
    retry = max(1, round(decision.retry_after + 0.5))
    await send_json(
        send,
        429,
        {
            "error": {"code": "rate_limit_exceeded", "message": f"too many requests; retry in {retry} s"},
            "retry_after_seconds": retry,
        },
        [("Retry-After", str(retry)), *_rate_headers(decision)],
    )


def _rate_headers(decision: Decision) -> list[tuple[str, str]]:
    reset = max(0, round(decision.reset_after + 0.5))
    return [
        ("RateLimit-Limit", str(decision.limit)),
        ("RateLimit-Remaining", str(decision.remaining)),
        ("RateLimit-Reset", str(reset)),
        ("X-RateLimit-Limit", str(decision.limit)),
        ("X-RateLimit-Remaining", str(decision.remaining)),
        ("X-RateLimit-Reset", str(int(time.time()) + reset)),
    ]


class RateLimitMiddleware:
    """One token bucket per user (``per_user``, when authenticated) or per client address."""

    def __init__(
        self, app: ASGIApp, cfg: RateLimitConfig, limiter: RateLimiter, trusted_proxies: Sequence[Network]
    ) -> None:
        self.app = app
        self.cfg = cfg
        self.limiter = limiter
        self.trusted = trusted_proxies
        self._last_error_log = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or _normalize(scope["path"]) in ALWAYS_OPEN
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        principal = principal_of(scope)
        key = (
            f"user:{principal.subject}"
            if self.cfg.per_user and principal is not None
            else f"ip:{client_ip(scope, self.trusted)}"
        )
        try:
            decision = await self.limiter.hit(key)
        except Exception as exc:  # the limiter's store is down: serve, and say so (not per request)
            if time.monotonic() - self._last_error_log > 30:
                self._last_error_log = time.monotonic()
                log.error(
                    "rate limiter unavailable, not limiting: %s",
                    type(exc).__name__,
                    extra={"component": "ratelimit"},
                )
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            log.info("rate limit exceeded", extra={"component": "ratelimit", "action": "reject", "key": key})
            count_rate_limited("requests")
            await send_rate_limited(send, decision)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in _rate_headers(decision)]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
