"""Turning an ``Authorization`` header into a ``Principal``: API keys and JWTs."""

from __future__ import annotations

import hashlib
import hmac
import logging

from hector.config.schema import AuthConfig
from hector.http_client import create_async_client
from hector.security import AuthError, Principal
from hector.security.jwks import JWKSCache
from hector.security.tokens import JWTVerifier

log = logging.getLogger("hector.auth")


def _key_id(key: str) -> str:
    # A stable, non-reversible name for an API key in logs and task ownership.
    return "api-key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Authenticator:
    """Checks bearer credentials: API keys first (constant time), then JWTs if configured."""

    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self._keys = [(k.get_secret_value().encode(), _key_id(k.get_secret_value())) for k in cfg.api_keys]
        self.jwks: JWKSCache | None = None
        self._jwt: JWTVerifier | None = None
        if cfg.jwks_url:
            client = create_async_client(component="JWKS fetch (server.auth)", timeout=10.0)
            self.jwks = JWKSCache(cfg.jwks_url, client, cfg.refresh_interval)
            self._jwt = JWTVerifier(self.jwks, cfg.issuer, cfg.audience)

    async def start(self) -> None:
        if self.jwks is not None:
            await self.jwks.refresh()

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
