"""Metrics, traces and trace-aware logs (``server.observability``); see README "Observability".

The app builds one ``Telemetry``; its HTTP middleware *activates* it for each request. The
layers inside (authentication, the A2A executor, the model loop) find it with ``current()``
rather than having it passed through every constructor in between; a2a-sdk runs the executor
in the context of the request that sent the message, so agent runs see it too. Code running
outside a server (``hector call``, tests) sees ``NO_TELEMETRY``, whose methods do nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from hector.observability.metrics import Metrics
from hector.observability.telemetry import NO_TELEMETRY, Operation, Telemetry
from hector.observability.tracing import Tracing

__all__ = [
    "NO_TELEMETRY",
    "Metrics",
    "Operation",
    "Telemetry",
    "Tracing",
    "activate",
    "count_auth_failure",
    "count_rate_limited",
    "current",
]

_current: ContextVar[Telemetry] = ContextVar("hector_telemetry", default=NO_TELEMETRY)


def current() -> Telemetry:
    """The telemetry of the agent run in progress (``NO_TELEMETRY`` outside one)."""
    return _current.get()


@contextlib.contextmanager
def activate(telemetry: Telemetry) -> Iterator[None]:
    token = _current.set(telemetry)
    try:
        yield
    finally:
        _current.reset(token)


def count_auth_failure(reason: str) -> None:
    """A credential was missing (``missing``) or rejected (``invalid``)."""
    metrics = _current.get().metrics
    if metrics is not None:
        metrics.auth_failures.labels(reason).inc()


def count_rate_limited(limiter: str) -> None:
    """A request was answered 429 by *limiter* (``requests`` or ``auth_failures``)."""
    metrics = _current.get().metrics
    if metrics is not None:
        metrics.rate_limited.labels(limiter).inc()
