"""Usage quotas: requests and model tokens per session or user, over fixed windows.

A window starts at first use and lasts its length (minute … month = 30 days); when it ends the
counter starts again. ``count`` limits are charged one per request before the run; ``token``
limits are charged after the run with the tokens the model reported, and refuse new requests
once reached.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.config.schema import QuotaConfig, QuotaLimitConfig
from hector.errors import HectorError
from hector.stores.db import quota_usage

WINDOW_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400}


class QuotaExceeded(HectorError):
    def __init__(self, message: str, retry_after: float, usage: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.usage = usage


@dataclass(frozen=True)
class Counter:
    amount: int
    window_end: float


class QuotaStore(ABC):
    """Counters keyed by (scope, identifier, type, window)."""

    @abstractmethod
    async def get(self, key: tuple[str, str, str, str], now: float) -> Counter | None:
        """The live counter, or None when there is none or its window has ended."""

    @abstractmethod
    async def add(self, key: tuple[str, str, str, str], amount: int, window: float, now: float) -> None:
        """Add to the live counter, or start a new window with *amount*."""


class MemoryQuotaStore(QuotaStore):
    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str, str], Counter] = {}
        self._lock = asyncio.Lock()

    async def get(self, key: tuple[str, str, str, str], now: float) -> Counter | None:
        counter = self._counters.get(key)
        return counter if counter is not None and counter.window_end > now else None

    async def add(self, key: tuple[str, str, str, str], amount: int, window: float, now: float) -> None:
        async with self._lock:
            live = await self.get(key, now)
            if live is None:
                self._counters[key] = Counter(amount, now + window)
            else:
                self._counters[key] = Counter(live.amount + amount, live.window_end)


class SQLQuotaStore(QuotaStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @staticmethod
    def _where(key: tuple[str, str, str, str]) -> Any:
        scope, identifier, limit_type, window = key
        c = quota_usage.c
        return (
            (c.scope == scope)
            & (c.identifier == identifier)
            & (c.limit_type == limit_type)
            & (c.window == window)
        )

    async def get(self, key: tuple[str, str, str, str], now: float) -> Counter | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(quota_usage.c.amount, quota_usage.c.window_end).where(self._where(key))
                )
            ).first()
        return Counter(row.amount, row.window_end) if row is not None and row.window_end > now else None

    async def add(self, key: tuple[str, str, str, str], amount: int, window: float, now: float) -> None:
        where = self._where(key)
        async with self.engine.begin() as conn:
            # Add within the live window in one statement, so concurrent replicas don't lose counts.
            live = await conn.execute(
                quota_usage.update()
                .where(where & (quota_usage.c.window_end > now))
                .values(amount=quota_usage.c.amount + amount)
            )
            if live.rowcount:
                return
            await conn.execute(quota_usage.delete().where(where))
            scope, identifier, limit_type, window_name = key
            await conn.execute(
                quota_usage.insert().values(
                    scope=scope,
                    identifier=identifier,
                    limit_type=limit_type,
                    window=window_name,
                    amount=amount,
                    window_end=now + window,
                )
            )


class Quotas:
    """The quota rules of one session store, applied to its agents' requests."""

    def __init__(self, cfg: QuotaConfig, store: QuotaStore) -> None:
        self.scope = cfg.scope
        self.limits = cfg.effective_limits()
        self.store = store

    def identifier(self, agent_id: str, context_id: str, user: str) -> str:
        return user if self.scope == "user" else f"{agent_id}/{context_id}"

    def _key(self, identifier: str, limit: QuotaLimitConfig) -> tuple[str, str, str, str]:
        return (self.scope, identifier, limit.type, limit.window)

    async def admit(self, identifier: str) -> None:
        """Charge one request, or raise ``QuotaExceeded`` (and charge nothing)."""
        now = time.time()
        usage: list[dict[str, Any]] = []
        refused: list[tuple[QuotaLimitConfig, Counter]] = []
        for limit in self.limits:
            counter = await self.store.get(self._key(identifier, limit), now)
            current = counter.amount if counter else 0
            end = counter.window_end if counter else now + WINDOW_SECONDS[limit.window]
            usage.append(
                {
                    "type": limit.type,
                    "window": limit.window,
                    "current": current,
                    "limit": limit.limit,
                    "remaining": max(0, limit.limit - current),
                    "resets_at": round(end),
                }
            )
            over = current + 1 > limit.limit if limit.type == "count" else current >= limit.limit
            if over:
                refused.append((limit, Counter(current, end)))
        if refused:
            limit, counter = refused[0]
            retry = max(0.0, min(c.window_end for _, c in refused) - now)
            raise QuotaExceeded(
                f"{limit.type} limit exceeded for {limit.window} window ({counter.amount}/{limit.limit}); "
                f"retry in {int(retry) + 1} s",
                retry,
                usage,
            )
        for limit in self.limits:
            if limit.type == "count":
                await self.store.add(self._key(identifier, limit), 1, WINDOW_SECONDS[limit.window], now)

    async def charge_tokens(self, identifier: str, tokens: int) -> None:
        if tokens <= 0:
            return
        now = time.time()
        for limit in self.limits:
            if limit.type == "token":
                await self.store.add(self._key(identifier, limit), tokens, WINDOW_SECONDS[limit.window], now)
