"""One app's telemetry: what agent runs, model requests and tool calls record.

Model requests and tool calls are context managers yielding an ``Operation``, an agent run
wraps the run's event stream: each times the work, ends its span (when tracing) and counts it
(when metrics are on), including how it failed. With both off they do nothing, so instrumented
code needs no ``if enabled`` of its own.

Spans are started as children of the current span but are *not* made current by the context
managers: the model loop is an async generator that yields inside them, and a span attached
across a ``yield`` would leak into its consumer (and fail to detach if the generator is
finalized elsewhere). ``Operation.current()`` / ``Operation.iterate()`` attach it exactly
around the awaits that should see it. The same goes for the name of the agent whose run is in
progress (``current_agent``): work deep inside a run (a memory summary, a search's LLM call)
counts its tokens for that agent without being told its name.

Operations that contain no ``yield`` (retrieval, see ``hector.observability.retrieval``) are
made current for their whole body instead (``scoped``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from hector.config.schema import ObservabilityConfig
from hector.messages import FinalEvent, Usage
from hector.observability.metrics import Metrics
from hector.observability.tracing import Tracing

if TYPE_CHECKING:  # a runtime import would cycle: providers → http_client → observability
    from hector.providers.base import Model

T = TypeVar("T")

UNKNOWN_TOOL = "unknown"
Note = str | int | float | bool

_agent: ContextVar[str | None] = ContextVar("hector_agent", default=None)


def current_agent() -> str | None:
    """The agent whose run is in progress (with telemetry on), else None."""
    return _agent.get()


class Operation:
    """What instrumented code tells its operation: a failure, token usage, a denied tool call,
    and ``notes``: span attributes that its metrics may read too (e.g. the hits of a search)."""

    __slots__ = ("agent", "denied", "error_type", "notes", "span", "usage")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.error_type: str | None = None
        self.usage: Usage | None = None
        self.denied = False
        self.notes: dict[str, Note] = {}
        self.agent: str | None = None
        """Set on an agent run: made ``current_agent`` along with the span."""

    def fail(self, error_type: str) -> None:
        """Mark the work failed without an exception escaping (e.g. an error turned into a result)."""
        self.error_type = error_type

    def note(self, key: str, value: Note) -> None:
        self.notes[key] = value

    def current(self) -> AbstractContextManager[object]:
        """Make the span current, so children and outbound requests link to it."""
        if self.span is None and self.agent is None:
            return contextlib.nullcontext()
        return self._attached_here()

    @contextlib.contextmanager
    def _attached_here(self) -> Iterator[None]:
        token = _agent.set(self.agent) if self.agent is not None else None
        try:
            if self.span is None:
                yield
            else:
                with trace.use_span(self.span, record_exception=False, set_status_on_exception=False):
                    yield
        finally:
            if token is not None:
                _agent.reset(token)

    def iterate(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """*items* with the span current while each item is produced, not while it is consumed."""
        return items if self.span is None and self.agent is None else self._attached(items)

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
    if op.notes:
        span.set_attributes(op.notes)
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
    def operation(
        self, name: str, attributes: dict[str, Note], record: _Record, root: bool = False
    ) -> Iterator[Operation]:
        """Time the body as span *name*, then let *record* count it (when metrics are on).
        *root*: a trace of its own, whatever span is current (background work)."""
        span = None
        if self.tracing is not None:
            context = Context() if root else None
            span = self.tracing.tracer.start_span(name, context=context, attributes=attributes)
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

    @contextlib.contextmanager
    def scoped(
        self, name: str, attributes: dict[str, Note], record: _Record, root: bool = False
    ) -> Iterator[Operation]:
        """``operation`` with its span current for the whole body: for work without a ``yield``."""
        if not self.enabled:
            yield Operation(None)
            return
        with self.operation(name, attributes, record, root) as op, op.current():
            yield op

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
        attributes: dict[str, Note] = {"agent.name": agent, "agent.llm": model_name, "llm.provider": provider}
        with self.operation("agent.call", attributes, record) as op:
            op.agent = agent
            async for event in op.iterate(events):
                if isinstance(event, FinalEvent):
                    op.usage = event.usage
                yield event

    def llm_request(
        self, model: Model, agent: str | None = None, purpose: str | None = None
    ) -> AbstractContextManager[Operation]:
        """One model request or stream, on behalf of *agent* (default: the run in progress),
        whose token count it adds to. *purpose* marks requests that are not a step of the agent
        loop: ``summary`` (summary_buffer memory), ``multi_query``, ``hyde``, ``rerank``."""
        if not self.enabled:
            return contextlib.nullcontext(Operation(None))
        labels = (model.provider, model.model_name)
        agent = agent if agent is not None else current_agent()

        def record(m: Metrics, op: Operation, elapsed: float) -> None:
            m.llm_duration.labels(*labels).observe(elapsed)
            m.llm_requests.labels(*labels, "ok" if op.error_type is None else "error").inc()
            if op.error_type is not None:
                m.llm_errors.labels(*labels, op.error_type).inc()
            if op.usage is not None:
                m.llm_tokens_input.labels(*labels).inc(op.usage.input_tokens)
                m.llm_tokens_output.labels(*labels).inc(op.usage.output_tokens)
                if agent:
                    m.agent_tokens.labels(agent, "input").inc(op.usage.input_tokens)
                    m.agent_tokens.labels(agent, "output").inc(op.usage.output_tokens)
            if purpose == "summary" and agent:
                m.memory_summaries.labels(agent, "ok" if op.error_type is None else "error").inc()

        attributes: dict[str, Note] = {"llm.provider": model.provider, "llm.model": model.model_name}
        if agent:
            attributes["agent.name"] = agent
        if purpose:
            attributes["llm.purpose"] = purpose
        return self.operation("agent.llm_request", attributes, record)

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

        return self.operation("agent.tool_execution", {"tool.name": label, "agent.name": agent}, record)

    async def aclose(self) -> None:
        if self.tracing is not None:
            await self.tracing.shutdown()


NO_TELEMETRY = Telemetry()
