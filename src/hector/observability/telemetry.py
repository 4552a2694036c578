"""One app's telemetry: what agent runs, model requests and tool calls record.

Model requests and tool calls are context managers yielding an ``Operation``, an agent run
wraps the run's event stream: each times the work, ends its span (when tracing) and counts it
(when metrics are on), including how it failed. With both off they do nothing, so instrumented
code needs no ``if enabled`` of its own.

Spans are started as children of the current span but are *not* made current by the context
managers: the model loop is an async generator that yields inside them, and a span attached
across a ``yield`` would leak into its consumer (and fail to detach if the generator is
finalized elsewhere). ``Operation.current()`` / ``Operation.iterate()`` attach it exactly
around the awaits that should see it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from hector.config.schema import ObservabilityConfig
from hector.messages import FinalEvent, Usage
from hector.observability.metrics import Metrics
from hector.observability.tracing import Tracing

if TYPE_CHECKING:  # a runtime import would cycle: providers → http_client → observability
    from hector.providers.base import Model

T = TypeVar("T")

UNKNOWN_TOOL = "unknown"


class Operation:
    """What instrumented code tells its operation: a failure, token usage, a denied tool call."""

    __slots__ = ("denied", "error_type", "span", "usage")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.error_type: str | None = None
        self.usage: Usage | None = None
        self.denied = False

    def fail(self, error_type: str) -> None:
        """Mark the work failed without an exception escaping (e.g. an error turned into a result)."""
        self.error_type = error_type

    def current(self) -> AbstractContextManager[object]:
        """Make the span current, so children and outbound requests link to it."""
        if self.span is None:
            return contextlib.nullcontext()
        return trace.use_span(self.span, record_exception=False, set_status_on_exception=False)

    def iterate(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """*items* with the span current while each item is produced, not while it is consumed."""
        return items if self.span is None else self._attached(items)

    async def _attached(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        while True:
            with self.current():
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    return
            yield item


_Record = Callable[[Metrics, Operation, float], None]


def _error_type(exc: BaseException) -> str:
    # Cancellation (a client went away, a generator closed early) is not a fault of the work.
    return type(exc).__name__ if isinstance(exc, Exception) else "cancelled"


def _end_span(span: Span, op: Operation) -> None:
    if op.usage is not None:
        span.set_attribute("llm.tokens.input", op.usage.input_tokens)
        span.set_attribute("llm.tokens.output", op.usage.output_tokens)
    if op.denied:
        span.set_attribute("tool.outcome", "denied")
    if op.error_type is not None:
        span.set_attribute("error.type", op.error_type)
        span.set_status(Status(StatusCode.ERROR, op.error_type))
    span.end()


class Telemetry:
    """Metrics and tracing of one app; either may be off (``None``)."""

    def __init__(self, metrics: Metrics | None = None, tracing: Tracing | None = None) -> None:
        self.metrics = metrics
        self.tracing = tracing

    @classmethod
    def from_config(cls, cfg: ObservabilityConfig) -> Telemetry:
        return cls(
            Metrics() if cfg.metrics.enabled else None,
            Tracing(cfg.tracing) if cfg.tracing.enabled else None,
        )

    @property
    def enabled(self) -> bool:
        return self.metrics is not None or self.tracing is not None

    @contextlib.contextmanager
    def _operation(self, name: str, attributes: dict[str, str], record: _Record) -> Iterator[Operation]:
        """Time the body as span *name*, then let *record* count it (when metrics are on)."""
        span = self.tracing.tracer.start_span(name, attributes=attributes) if self.tracing else None
        op = Operation(span)
        started = time.perf_counter()
        try:
            yield op
        except BaseException as exc:
            op.error_type = _error_type(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            if op.span is not None:
                _end_span(op.span, op)
            if self.metrics is not None:
                record(self.metrics, op, elapsed)

    def agent_run(self, agent: str, labels: tuple[str, str], events: AsyncIterator[T]) -> AsyncIterator[T]:
        """*events* of one agent run (a new task, or one resumed after approval) as an
        ``agent.call``: the parent of the run's model and tool spans, timed and counted, with
        the run's token usage from its final event."""
        return self._agent_run(agent, labels, events) if self.enabled else events

    async def _agent_run(
        self, agent: str, labels: tuple[str, str], events: AsyncIterator[T]
    ) -> AsyncIterator[T]:
        def record(m: Metrics, op: Operation, elapsed: float) -> None:
            m.agent_calls.labels(agent).inc()
            m.agent_duration.labels(agent).observe(elapsed)
            if op.error_type is not None:
                m.agent_errors.labels(agent, op.error_type).inc()

        provider, model_name = labels
        attributes = {"agent.name": agent, "agent.llm": model_name, "llm.provider": provider}
        with self._operation("agent.call", attributes, record) as op:
            async for event in op.iterate(events):
                if isinstance(event, FinalEvent):
                    op.usage = event.usage
                yield event

    def llm_request(self, model: Model, agent: str) -> AbstractContextManager[Operation]:
        """One model request or stream, on behalf of *agent* (whose token count it adds to)."""
        if not self.enabled:
            return contextlib.nullcontext(Operation(None))
        labels = (model.provider, model.model_name)

        def record(m: Metrics, op: Operation, elapsed: float) -> None:
            m.llm_duration.labels(*labels).observe(elapsed)
            m.llm_requests.labels(*labels, "ok" if op.error_type is None else "error").inc()
            if op.error_type is not None:
                m.llm_errors.labels(*labels, op.error_type).inc()
            if op.usage is not None:
                m.llm_tokens_input.labels(*labels).inc(op.usage.input_tokens)
                m.llm_tokens_output.labels(*labels).inc(op.usage.output_tokens)
                m.agent_tokens.labels(agent, "input").inc(op.usage.input_tokens)
                m.agent_tokens.labels(agent, "output").inc(op.usage.output_tokens)

        attributes = {"llm.provider": model.provider, "llm.model": model.model_name, "agent.name": agent}
        return self._operation("agent.llm_request", attributes, record)

    def tool_call(self, tool: str | None, agent: str) -> AbstractContextManager[Operation]:
        """One tool call; *tool* is ``None`` when the model named a tool the agent does not have."""
        if not self.enabled:
            return contextlib.nullcontext(Operation(None))
        label = tool or UNKNOWN_TOOL

        def record(m: Metrics, op: Operation, elapsed: float) -> None:
            if op.denied:  # never ran: counted, not timed
                m.tool_calls.labels(label, "denied").inc()
                return
            m.tool_calls.labels(label, "ok" if op.error_type is None else "error").inc()
            m.tool_duration.labels(label).observe(elapsed)
            if op.error_type is not None:
                m.tool_errors.labels(label).inc()

        return self._operation("agent.tool_execution", {"tool.name": label, "agent.name": agent}, record)

    async def aclose(self) -> None:
        if self.tracing is not None:
            await self.tracing.shutdown()


NO_TELEMETRY = Telemetry()
