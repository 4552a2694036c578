"""The model ↔ tool loop."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from hector.errors import AgentRunError
from hector.messages import (
    AgentEvent,
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


async def _call_tool(tools: dict[str, Tool], call: ToolCall, ctx: ToolContext) -> tuple[str, bool]:
    tool = tools.get(call.name)
    if tool is None:
        return f"ERROR: unknown tool {call.name!r}; available tools: {sorted(tools)}", True
    started = time.monotonic()
    try:
        output = await tool.call(call.arguments, ctx)
        is_error = False
    except Exception as exc:  # a tool failure is a result for the model, not a crashed task
        output, is_error = f"ERROR: {exc}", True
    log.info(
        "tool executed",
        extra={
            "component": "tool",
            "action": "execute",
            "tool": call.name,
            "agent": ctx.agent_id,
            "user": ctx.user,
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


async def run_loop(
    *,
    model: Model,
    prompt: list[ChatMessage],
    tools: Sequence[Tool],
    settings: ModelSettings,
    max_iterations: int,
    streaming: bool,
    ctx: ToolContext,
    save: Callable[[Sequence[ChatMessage]], Awaitable[None]],
    agent_id: str,
) -> AsyncIterator[AgentEvent]:
    by_name = {t.name: t for t in tools}
    specs = [t.spec() for t in tools]
    messages = list(prompt)
    usage = Usage()
    for _ in range(max_iterations):
        response: ModelResponse | None = None
        if streaming:
            async for chunk in model.stream(messages, specs, settings):
                if chunk.kind == "text_delta":
                    yield chunk
                else:
                    response = chunk.response
        else:
            response = await model.request(messages, specs, settings)
            if response.text and not response.tool_calls:
                yield TextDelta(response.text)
        if response is None:  # a provider that broke the stream contract
            raise AgentRunError(f"agent {agent_id!r}: the model stream ended without a response")
        usage = usage + response.usage
        if not response.tool_calls:
            text = response.text or "[Internal: agent returned an empty response]"
            await save([ChatMessage("assistant", text)])
            structured = None
            if "output_schema" in settings:
                try:
                    structured = json.loads(text)
                except json.JSONDecodeError:
                    structured = None
            yield FinalEvent(text, usage, structured)
            return
        step = [ChatMessage("assistant", response.text, tool_calls=response.tool_calls)]
        for call in response.tool_calls:
            yield ToolCallEvent(call)
            output, is_error = await _call_tool(by_name, call, ctx)
            yield ToolResultEvent(call, output, is_error)
            step.append(ChatMessage("tool", output, tool_call_id=call.id, name=call.name, is_error=is_error))
        messages.extend(step)
        await save(step)
    raise AgentRunError(
        f"agent {agent_id!r} stopped after {max_iterations} iterations without a final answer; "
        "raise reasoning.max_iterations or check the tools it keeps calling"
    )
