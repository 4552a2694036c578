"""A cached JSON Web Key Set: fetched off the request path, refreshed, never emptied by a failure."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

from hector.tls import describe_tls_error, find_tls_error

log = logging.getLogger("hector.auth")

# An unknown `kid` may mean the issuer rotated its keys; refetch then, but not more often than
# this, so a stream of forged kids cannot turn us into a load generator against the issuer.
UNKNOWN_KID_REFETCH_INTERVAL = 60.0
# After a failed fetch, wait this long (or refresh_interval, if shorter) before trying again:
# without it, an issuer outage made every request that carried a JWT an outbound fetch (each
# up to the client timeout), and a cache that never loaded was only retried by such requests.
RETRY_AFTER_FAILURE = 10.0


class JWKSCache:
    def __init__(self, url: str, client: httpx.AsyncClient, refresh_interval: float) -> None:
        self.url = url
        self._client = client
        self._refresh_interval = refresh_interval
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._last_attempt = 0.0
        self._lock = asyncio.Lock()
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    async def _fetch(self) -> None:
        self._last_attempt = time.monotonic()
        try:
            response = await self._client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data: Any = response.json()
            keys = {}
            for entry in data.get("keys", []) if isinstance(data, dict) else []:
                try:
                    key = jwt.PyJWK(entry)
                except (jwt.PyJWKError, jwt.InvalidKeyError):
                    continue  # an unusable key (e.g. an unsupported type) must not hide the others
                if entry.get("use", "sig") == "sig" and key.key_id:
                    keys[key.key_id] = key
            if not keys:
                raise ValueError("no usable signing keys with a 'kid' in the key set")
        except (httpx.HTTPError, ValueError) as exc:
            reason = describe_tls_error(exc) if find_tls_error(exc) else f"{type(exc).__name__}: {exc}"
            self.last_error = f"failed to fetch JWKS from {self.url}: {reason}"
            log.error(self.last_error, extra={"component": "auth", "action": "jwks_fetch", "success": False})
            return  # keep the keys we had
        self._keys = keys
        self._fetched_at = time.monotonic()
        self.last_error = None
        log.info("JWKS loaded", extra={"component": "auth", "action": "jwks_fetch", "keys": len(keys)})

    async def refresh(self, *, force: bool = False) -> None:
        """Fetch now (single-flight): concurrent callers wait for the one fetch in progress."""
        attempted = self._last_attempt
        async with self._lock:
            if self._last_attempt != attempted and not force:
                return  # someone else fetched while we waited
            await self._fetch()

    def _refresh_due(self, now: float) -> bool:
        if self.last_error is not None:
            return now - self._last_attempt >= min(RETRY_AFTER_FAILURE, self._refresh_interval)
        return not self._keys or now - self._fetched_at > self._refresh_interval

    async def ensure_fresh(self) -> None:
        """Refresh if the keys are due (or missing), at most once per retry interval after a failure."""
        if self._refresh_due(time.monotonic()):
            await self.refresh()

    async def get(self, kid: str) -> jwt.PyJWK | None:
        await self.ensure_fresh()
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._last_attempt > UNKNOWN_KID_REFETCH_INTERVAL:
            await self.refresh()
            key = self._keys.get(kid)
        return key
