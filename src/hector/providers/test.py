"""``type: test``: a deterministic model for demos, CI and users' own tests.

Rules, in order:
1. after tool results, it answers ``Tool <name> returned: <result>`` for each result;
2. when the user's message names an available tool (as a word), it calls that tool, with the
   first JSON object in the message as arguments, or arguments made from the tool's schema;
3. with an output schema, it answers a JSON value that matches the schema;
4. otherwise it answers ``[test model] You said: <message>``.

It never touches the network, and it is never chosen silently: a config has to name it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from hector.messages import (
    ChatMessage,
    ModelResponse,
    ModelStreamEvent,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from hector.providers.base import Model, ModelSettings


def sample_from_schema(schema: dict[str, Any]) -> Any:
    """A small value that satisfies *schema* (enough for tests, not a full generator)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: sample_from_schema(sub) for name, sub in props.items()}
    if kind == "array":
        return [sample_from_schema(schema.get("items", {}))] if schema.get("minItems", 0) else []
    return {"string": "test", "integer": 0, "number": 0.0, "boolean": False, "null": None}.get(kind, "test")


def _first_json_object(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        return value if isinstance(value, dict) else None
    return None


def _words(messages: Sequence[ChatMessage]) -> int:
    return sum(len(m.content.split()) for m in messages)


class TestModel(Model):
    """The rule-based test model described in the module docstring."""

    __test__ = False  # not a pytest test class
    provider = "test"

    def __init__(self, model_name: str = "test", reply: str | None = None, delay: float = 0.0) -> None:
        self.model_name = model_name
        self._reply = reply
        self._delay = delay

    def _answer(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> ModelResponse:
        last = messages[-1] if messages else ChatMessage(role="user", content="")
        usage_in = _words(messages)
        if last.role == "tool":
            results = []
            for m in reversed(messages):
                if m.role != "tool":
                    break
                results.append(f"Tool {m.name or m.tool_call_id} returned: {m.content}")
            text = "\n".join(reversed(results))
            return ModelResponse(text, usage=Usage(usage_in, len(text.split())), finish_reason="stop")
        user_text = last.content if last.role == "user" else ""
        by_name = {t.name: t for t in tools}
        called = [name for name in by_name if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", user_text)]
        if called:
            given = _first_json_object(user_text)
            calls = tuple(
                ToolCall(
                    id=f"call_{i}_{name}",
                    name=name,
                    arguments=given if given is not None else sample_from_schema(by_name[name].parameters),
                )
                for i, name in enumerate(called)
            )
            return ModelResponse("", calls, Usage(usage_in, len(calls)), finish_reason="tool_calls")
        if "output_schema" in settings:
            text = json.dumps(sample_from_schema(settings["output_schema"]))
        elif self._reply is not None:
            text = self._reply
        else:
            text = f"[test model] You said: {user_text}"
        return ModelResponse(text, usage=Usage(usage_in, len(text.split())), finish_reason="stop")

    async def request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> ModelResponse:
        if self._delay:
            await asyncio.sleep(self._delay)
        return self._answer(messages, tools, settings)

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> AsyncIterator[ModelStreamEvent]:
        response = await self.request(messages, tools, settings)
        for piece in re.findall(r"\S+\s*|\s+", response.text):
            yield TextDelta(piece)
        yield ResponseDone(response)


ModelFunction = Callable[[Sequence[ChatMessage], Sequence[ToolSpec]], Awaitable[ModelResponse]]


class FunctionModel(Model):
    """A model whose every answer comes from a Python function: for scripted tests."""

    provider = "function"

    def __init__(self, fn: ModelFunction, model_name: str = "function") -> None:
        self.model_name = model_name
        self._fn = fn

    async def request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> ModelResponse:
        return await self._fn(messages, tools)

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> AsyncIterator[ModelStreamEvent]:
        response = await self._fn(messages, tools)
        if response.text:
            yield TextDelta(response.text)
        yield ResponseDone(response)
