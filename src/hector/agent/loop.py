"""The model ↔ tool loop."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from hector import observability
from hector.errors import AgentRunError
from hector.messages import (
    AgentEvent,
    ApprovalRequiredEvent,
    ChatMessage,
    FinalEvent,
    ModelResponse,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolResultEvent,
    Usage,
)
from hector.providers.base import Model, ModelSettings
from hector.tools import Tool, ToolContext

log = logging.getLogger("hector.agent")

MAX_TOOL_OUTPUT = 50_000

RequestApproval = Callable[[ChatMessage, list[ToolCall]], Awaitable[ApprovalRequiredEvent]]


@dataclass(frozen=True)
class ResumedStep:
    """A step that waited for approval: its calls, and why each refused call was refused."""

    step: ChatMessage
    refused: Mapping[str, str] = field(default_factory=dict)
    """tool_call_id → reason, for calls that were denied (or whose approval expired)."""
    done: Mapping[str, ChatMessage] = field(default_factory=dict)
    """tool_call_id → result recorded before an interruption: the call is not run again."""
    narrated: bool = False
    """The step's text went out with its first call already (a step continued after a crash)."""


@dataclass(frozen=True)
class LoopState:
    """Where a run stands, checkpointed so another server can continue it (``hector.stores.checkpoints``).

    ``iteration`` is the loop round; ``messages`` what the model sees next. While a step's tools
    run, ``step`` is that step, ``results`` the calls finished so far and ``running`` the call
    under way.
    """

    iteration: int
    messages: Sequence[ChatMessage]
    step: ChatMessage | None = None
    results: Sequence[ChatMessage] = ()
    running: str | None = None


Checkpoint = Callable[[LoopState], Awaitable[None]]


async def _call_tool(
    tools: dict[str, Tool], call: ToolCall, ctx: ToolContext, refusal: str | None
) -> tuple[str, bool]:
    tool = tools.get(call.name)
    started = time.monotonic()
    with observability.current().tool_call(call.name if tool else None, ctx.agent_id) as op, op.current():
        if refusal is not None:
            output, is_error, decision = f"TOOL_EXECUTION_DENIED: {refusal}", True, "denied"
            op.denied = True
        elif tool is None:
            op.fail("UnknownTool")
            return f"ERROR: unknown tool {call.name!r}; available tools: {sorted(tools)}", True
        else:
            decision = "approved" if tool.require_approval else "not_required"
            try:
                output = await tool.call(call.arguments, ctx)
                is_error = False
            except Exception as exc:  # a tool failure is a result for the model, not a crashed task
                output, is_error = f"ERROR: {exc}", True
                op.fail(type(exc).__name__)
        log.info(
            "tool executed" if refusal is None else "tool call denied",
            extra={
                "component": "tool",
                "action": "execute",
                "tool": call.name,
                "agent": ctx.agent_id,
                "user": ctx.user,
                "task": ctx.task_id,
                "decision": decision,
                "success": not is_error,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
    if len(output) > MAX_TOOL_OUTPUT:
        output = (
            output[:MAX_TOOL_OUTPUT]
            + f"\n[Warning: output truncated: showing {MAX_TOOL_OUTPUT} of {len(output)} characters]"
        )
    return output, is_error


async def _run_step(
    resumed: ResumedStep,
    tools: dict[str, Tool],
    ctx: ToolContext,
    mark: Callable[[list[ChatMessage], str], Awaitable[None]] | None = None,
) -> AsyncIterator[ToolCallEvent | ToolResultEvent | list[ChatMessage]]:
    """Execute a step's calls in order; the last item yielded is the step's messages.

    *mark* records (results so far, the call about to run) before each call runs."""
    messages = [resumed.step]
    narration = "" if resumed.narrated else resumed.step.content
    for call in resumed.step.tool_calls:
        if call.id in resumed.done:  # finished before an interruption: its events went out then
            messages.append(resumed.done[call.id])
            continue
        if mark is not None:
            await mark(messages[1:], call.id)
        yield ToolCallEvent(call, narration)
        narration = ""
        output, is_error = await _call_tool(tools, call, ctx, resumed.refused.get(call.id))
        yield ToolResultEvent(call, output, is_error)
        messages.append(ChatMessage("tool", output, tool_call_id=call.id, name=call.name, is_error=is_error))
    yield messages


def _marker(
    checkpoint: Checkpoint, iteration: int, messages: list[ChatMessage], step: ChatMessage
) -> Callable[[list[ChatMessage], str], Awaitable[None]]:
    async def mark(results: list[ChatMessage], running: str) -> None:
        await checkpoint(LoopState(iteration, messages, step, results, running))

    return mark


@dataclass(frozen=True)
class LoopSetup:
    model: Model
    tools: Sequence[Tool]
    settings: ModelSettings
    max_iterations: int
    streaming: bool
    agent_id: str


async def run_loop(
    setup: LoopSetup,
    prompt: list[ChatMessage],
    ctx: ToolContext,
    save: Callable[[Sequence[ChatMessage]], Awaitable[None]],
    request_approval: RequestApproval | None,
    resume: ResumedStep | None = None,
    checkpoint: Checkpoint | None = None,
    restored: LoopState | None = None,
) -> AsyncIterator[AgentEvent]:
    """Call the model, run the tools it asks for, repeat until it answers without tools.

    A step with a call to a tool that needs approval is not run: ``request_approval`` records
    it and the loop stops with its event. Resuming runs that step first (``resume``).
    ``checkpoint`` is told the state before each tool call and after each step; a run continued
    from such a state (``restored``, with its step as ``resume``) starts where it stood.
    """
    telemetry = observability.current()
    by_name = {t.name: t for t in setup.tools}
    specs = [t.spec() for t in setup.tools]
    messages = list(restored.messages if restored is not None else prompt)
    usage = Usage()
    pending = resume
    for iteration in range(restored.iteration if restored else 0, setup.max_iterations):
        if pending is not None:
            mark = _marker(checkpoint, iteration, messages, pending.step) if checkpoint else None
            async for item in _run_step(pending, by_name, ctx, mark):
                if isinstance(item, list):
                    messages.extend(item)
                    if checkpoint is not None:
                        # Before the session: a crash between the two writes may leave the
                        # step out of the conversation's history, never in it twice.
                        await checkpoint(LoopState(iteration, messages))
                    await save(item)
                else:
                    yield item
            pending = None
        response: ModelResponse | None = None
        with telemetry.llm_request(setup.model, setup.agent_id) as request:
            if setup.streaming:
                async for chunk in request.iterate(setup.model.stream(messages, specs, setup.settings)):
                    if chunk.kind == "text_delta":
                        yield chunk
                    else:
                        response = chunk.response
            else:
                with request.current():
                    response = await setup.model.request(messages, specs, setup.settings)
            if response is not None:
                request.usage = response.usage
        if response is None:  # a provider that broke the stream contract
            raise AgentRunError(f"agent {setup.agent_id!r}: the model stream ended without a response")
        if not setup.streaming and response.text and not response.tool_calls:
            yield TextDelta(response.text)
        usage = usage + response.usage
        if not response.tool_calls:
            text = response.text or "[Internal: agent returned an empty response]"
            await save([ChatMessage("assistant", text)])
            yield FinalEvent(text, usage, _structured(text, setup.settings))
            return
        step = ChatMessage("assistant", response.text, tool_calls=response.tool_calls)
        gated = [c for c in response.tool_calls if c.name in by_name and by_name[c.name].require_approval]
        if gated and request_approval is not None:
            yield await request_approval(step, gated)
            return
        # Nobody can be asked (e.g. a local run without a task): a gated call is refused.
        refused = {c.id: "approval is required and no approver is available" for c in gated}
        pending = ResumedStep(step, refused)
    raise AgentRunError(
        f"agent {setup.agent_id!r} stopped after {setup.max_iterations} iterations without a final answer; "
        "raise reasoning.max_iterations or check the tools it keeps calling"
    )


def _structured(text: str, settings: ModelSettings) -> object:
    if "output_schema" not in settings:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
