"""Turning an ``Authorization`` header into a ``Principal``: API keys and JWTs."""

from __future__ import annotations

import hashlib
import hmac
import logging

import httpx

from hector.config.schema import AuthConfig
from hector.config.tls import JWKS_COMPONENT
from hector.http_client import create_async_client
from hector.security import AuthError, Principal
from hector.security.jwks import JWKSCache
from hector.security.tokens import JWTVerifier
from hector.tls import TLSOptions

log = logging.getLogger("hector.auth")


def _key_id(key: str) -> str:
    # A stable, non-reversible name for an API key in logs and task ownership.
    return "api-key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Authenticator:
    """Checks bearer credentials: API keys first (constant time), then JWTs if configured."""

    def __init__(self, cfg: AuthConfig, tls: TLSOptions | None = None) -> None:
        """*tls*: the options for fetching the JWKS (``effective_tls`` of server.auth)."""
        self.cfg = cfg
        self._keys = [(k.get_secret_value().encode(), _key_id(k.get_secret_value())) for k in cfg.api_keys]
        self.jwks: JWKSCache | None = None
        self._jwt: JWTVerifier | None = None
        self._client: httpx.AsyncClient | None = None
        if cfg.jwks_url:
            # Built now, at start-up, so TLS problems and warnings show before the first request.
            self._client = create_async_client(component=JWKS_COMPONENT, tls=tls, timeout=10.0)
            self.jwks = JWKSCache(cfg.jwks_url, self._client, cfg.refresh_interval)
            self._jwt = JWTVerifier(self.jwks, cfg.issuer, cfg.audience)

    async def start(self) -> None:
        if self.jwks is not None:
            await self.jwks.refresh()

    async def aclose(self) -> None:
        # An open keep-alive connection would hold up the issuer's side (a TLS server waits for
        # our close_notify) and leak a socket per server start.
        if self._client is not None:
            await self._client.aclose()

    def _api_key(self, token: str) -> str | None:
        given = token.encode()
        found = None
        for key, name in self._keys:
            # Compare against every key, without stopping early, so timing says nothing.
            if hmac.compare_digest(given, key):
                found = name
        return found

    async def authenticate(self, header: str) -> Principal:
        """Raises ``AuthError`` with a client-safe reason when the header is not acceptable."""
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise AuthError("Invalid Authorization format, expected: Bearer <token>")
        name = self._api_key(token)
        if name is not None:
            return Principal(subject=name, method="api_key")
        if self._jwt is not None and token.count(".") == 2:
            return await self._jwt.verify(token)
        raise AuthError("Invalid token" if self._jwt is None else "Invalid token: malformed")
