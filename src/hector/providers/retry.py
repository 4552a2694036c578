"""Retries with exponential backoff, for the SDKs whose own retries fall short.

The OpenAI and Anthropic SDKs retry 429/5xx themselves and honour ``Retry-After``. The Gemini
SDK's retries ignore ``Retry-After`` and the Ollama SDK does not retry at all, so those two
providers wrap their calls in :func:`call_with_retries` / :func:`stream_with_retries`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger("hector.providers")

T = TypeVar("T")

MAX_RETRY_AFTER = 120.0
"""A server asking for a longer pause gets an error instead: holding a request open for minutes
helps nobody (the same limit the OpenAI SDK applies)."""
MAX_BACKOFF = 30.0


def is_retryable_status(status: int) -> bool:
    """Rate limits, request timeouts and server errors are worth another try; other 4xx are not."""
    return status in (408, 429) or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - time.time()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


@dataclass(frozen=True)
class Retryable:
    """The verdict that a failure is transient: why, and how long the server asked us to wait."""

    reason: str
    retry_after: float | None = None


Classifier = Callable[[Exception], Retryable | None]
"""Tells a transient failure (``Retryable``) from a final one (``None``)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_delay: float
    what: str
    """Names the model in log lines, e.g. ``gemini (default)``."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        backoff: float = min(MAX_BACKOFF, self.base_delay * 2**attempt)
        # Jitter spreads out clients that failed together, so they do not retry together.
        return backoff * (0.75 + random.random() / 4)


async def call_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, classify: Classifier) -> T:
    """Await ``call()``, calling again after transient failures until the retries are spent."""
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None or attempt >= policy.max_retries:
                raise
            if verdict.retry_after is not None and verdict.retry_after > MAX_RETRY_AFTER:
                raise
            pause = policy.delay(attempt, verdict.retry_after)
            attempt += 1
            log.warning(
                "%s: %s; retry %d of %d in %.2fs",
                policy.what,
                verdict.reason,
                attempt,
                policy.max_retries,
                pause,
            )
            await asyncio.sleep(pause)


async def stream_with_retries(
    open_stream: Callable[[], Awaitable[AsyncIterator[T]]], policy: RetryPolicy, classify: Classifier
) -> AsyncIterator[T]:
    """Items of a stream, retrying its opening until the first item has arrived.

    After the first item a failure is final: the caller has already passed parts of the answer
    on, and a second attempt would produce a different answer.
    """

    async def start() -> tuple[list[T], AsyncIterator[T]]:
        stream = await open_stream()
        async for item in stream:
            return [item], stream
        return [], stream

    head, rest = await call_with_retries(start, policy, classify)
    for item in head:
        yield item
    async for item in rest:
        yield item
