"""Token-bucket rate limits, in process memory or in Redis (shared by every replica)."""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until the bucket is full again."""
    retry_after: float
    """Seconds until one request is allowed (0 when allowed)."""


class RateLimiter(ABC):
    """``capacity`` requests at once, refilled at ``per_minute`` requests per minute."""

    def __init__(self, per_minute: int, capacity: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = capacity

    def _decide(self, tokens: float, allowed: bool) -> Decision:
        missing = self.capacity - tokens
        return Decision(
            allowed=allowed,
            limit=self.capacity,
            remaining=max(0, math.floor(tokens)),
            reset_after=missing / self.rate,
            retry_after=0.0 if allowed else (1 - tokens) / self.rate,
        )

    @abstractmethod
    async def hit(self, key: str) -> Decision:
        """Take one token from *key*'s bucket if there is one."""

    async def aclose(self) -> None:
        return None


class MemoryRateLimiter(RateLimiter):
    MAX_KEYS = 100_000  # bounded: a flood of distinct keys cannot grow memory without end

    def __init__(self, per_minute: int, capacity: int) -> None:
        super().__init__(per_minute, capacity)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = asyncio.Lock()

    async def hit(self, key: str) -> Decision:
        async with self._lock:
            now = time.monotonic()
            tokens, updated = self._buckets.pop(key, (float(self.capacity), now))
            tokens = min(self.capacity, tokens + (now - updated) * self.rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.MAX_KEYS:
                self._buckets.popitem(last=False)  # the least recently seen key
            return self._decide(tokens, allowed)


# Atomic refill-and-take on the Redis server, using the server's clock so replicas agree.
_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter(RateLimiter):
    def __init__(self, per_minute: int, capacity: int, url: str, prefix: str = "hector:ratelimit:") -> None:
        super().__init__(per_minute, capacity)
        self._redis: Redis = Redis.from_url(url)
        self._script = self._redis.register_script(_BUCKET_LUA)
        self._prefix = prefix

    async def hit(self, key: str) -> Decision:
        allowed, tokens = await self._script(keys=[self._prefix + key], args=[self.capacity, self.rate])
        return self._decide(float(tokens), bool(int(allowed)))

    async def aclose(self) -> None:
        await self._redis.aclose()
