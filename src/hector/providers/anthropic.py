"""``type: anthropic``: Claude through Anthropic's Messages API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Required, TypedDict

import anthropic
from anthropic.types import (
    ContentBlockParam,
    MessageParam,
    ToolParam,
    ToolResultBlockParam,
    Usage as AnthropicUsage,
)

from hector.config.schema import LLMConfig
from hector.config.tls import llm_component
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
from hector.observability.tracing import inject_trace_context
from hector.providers.base import Model, ModelSettings
from hector.providers.common import Failures, parse_arguments
from hector.tls import TLSOptions, create_ssl_context

DEFAULT_MAX_TOKENS = 4096
"""The Messages API requires ``max_tokens``; this is used when the config sets none."""

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}


def structured_output_instructions(schema: dict[str, Any]) -> str:
    return (
        "Answer with a single JSON value that matches this JSON schema, and nothing else: "
        "no prose, no code fences.\n" + json.dumps(schema, ensure_ascii=False)
    )


def _to_blocks(message: ChatMessage) -> list[ContentBlockParam]:
    blocks: list[ContentBlockParam] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    return blocks


def to_anthropic(messages: Sequence[ChatMessage]) -> tuple[str, list[MessageParam]]:
    """The system prompt and the conversation in the Messages API's shape.

    Tool results become ``tool_result`` blocks of a user message; consecutive results share one
    message, as the API expects answers to parallel tool calls to arrive together.
    """
    system: list[str] = []
    out: list[MessageParam] = []
    results: list[ToolResultBlockParam] | None = None
    for message in messages:
        if message.role == "tool":
            block: ToolResultBlockParam = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
                "content": message.content,
            }
            if message.is_error:
                block["is_error"] = True
            if results is None:
                results = []
                out.append({"role": "user", "content": results})
            results.append(block)
            continue
        results = None
        if message.role == "system":
            system.append(message.content)
        elif message.role == "assistant":
            blocks = _to_blocks(message)
            if blocks:  # the API rejects empty assistant turns
                out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": "user", "content": message.content})
    return "\n\n".join(system), out


def _usage(usage: AnthropicUsage) -> Usage:
    # Cached prompt tokens are still prompt tokens: count them, or budgets come out too low.
    cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    return Usage(usage.input_tokens + cached, usage.output_tokens)


def _finish(stop_reason: str | None) -> str | None:
    return _STOP_REASONS.get(stop_reason or "", stop_reason)


class _Params(TypedDict, total=False):
    """The arguments a request and a stream share, typed so the SDK's overloads still apply."""

    model: Required[str]
    max_tokens: Required[int]
    messages: Required[list[MessageParam]]
    system: str
    tools: list[ToolParam]
    extra_body: dict[str, object]


@dataclass
class _Block:
    """A content block being assembled from stream events."""

    kind: str
    text: str = ""
    id: str = ""
    name: str = ""


class AnthropicModel(Model):
    provider = "anthropic"

    def __init__(self, name: str, cfg: LLMConfig, model: str, api_key: str | None, tls: TLSOptions) -> None:
        self.model_name = model
        self._cfg = cfg
        timeout = anthropic.Timeout(cfg.timeout, connect=min(cfg.timeout, 10.0))
        # This SDK runs on httpx2 and rejects `httpx` clients, so `create_async_client` cannot be
        # used; the SDK's own client gets the same TLS context and timeouts instead.
        http_client = anthropic.DefaultAsyncHttpxClient(
            verify=create_ssl_context(tls, llm_component("anthropic", name)),
            timeout=timeout,
            follow_redirects=False,
            event_hooks={"request": [inject_trace_context]},
        )
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=cfg.host,
            max_retries=cfg.max_retries,
            timeout=timeout,
            http_client=http_client,
        )
        self._fail = Failures("anthropic", name, str(self._client.base_url), cfg.timeout, api_key)

    def _params(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> _Params:
        system, conversation = to_anthropic(messages)
        if "output_schema" in settings:
            # Instructions rather than `output_config.format`, which not every Claude model takes.
            system = "\n\n".join(
                p for p in (system, structured_output_instructions(settings["output_schema"])) if p
            )
        params: _Params = {
            "model": self.model_name,
            "max_tokens": settings.get("max_tokens", self._cfg.max_tokens) or DEFAULT_MAX_TOKENS,
            "messages": conversation,
        }
        if system:
            params["system"] = system
        if tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
            ]
        temperature = settings.get("temperature", self._cfg.temperature)
        if temperature is not None:
            # SDK 1.0 dropped sampling arguments from `create()` (newer models reject them); the API
            # still takes them from older models, so the migration guide sends them as extra body.
            params["extra_body"] = {"temperature": temperature}
        return params

    async def request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> ModelResponse:
        with self._mapped_errors():
            message = await self._client.messages.create(
                **self._params(messages, tools, settings), stream=False
            )
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                text.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(block.id, block.name, dict(block.input)))
        return ModelResponse("".join(text), tuple(calls), _usage(message.usage), _finish(message.stop_reason))

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> AsyncIterator[ModelStreamEvent]:
        blocks: dict[int, _Block] = {}
        usage = Usage()
        stop_reason: str | None = None
        with self._mapped_errors():
            events = await self._client.messages.create(
                **self._params(messages, tools, settings), stream=True
            )
            async with events:
                async for event in events:
                    if event.type == "message_start":
                        usage = _usage(event.message.usage)
                    elif event.type == "content_block_start":
                        start = event.content_block
                        if start.type == "tool_use":
                            blocks[event.index] = _Block("tool_use", id=start.id, name=start.name)
                        elif start.type == "text":
                            blocks[event.index] = _Block("text", text=start.text)
                            if start.text:
                                yield TextDelta(start.text)
                    elif event.type == "content_block_delta":
                        block = blocks.get(event.index)
                        if block is None:
                            continue  # a block kind we do not use (e.g. thinking)
                        if event.delta.type == "text_delta":
                            block.text += event.delta.text
                            yield TextDelta(event.delta.text)
                        elif event.delta.type == "input_json_delta":
                            block.text += event.delta.partial_json
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        # Counts here are cumulative; input_tokens is only repeated by some servers.
                        input_tokens = usage.input_tokens
                        if event.usage.input_tokens is not None:
                            input_tokens = event.usage.input_tokens + (
                                (event.usage.cache_creation_input_tokens or 0)
                                + (event.usage.cache_read_input_tokens or 0)
                            )
                        usage = Usage(input_tokens, event.usage.output_tokens)
        ordered = [blocks[i] for i in sorted(blocks)]
        text = "".join(b.text for b in ordered if b.kind == "text")
        calls = tuple(
            ToolCall(b.id, b.name, parse_arguments(b.text, b.name)) for b in ordered if b.kind == "tool_use"
        )
        yield ResponseDone(ModelResponse(text, calls, usage, _finish(stop_reason)))

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """SDK exceptions → Hector's, after the SDK's own retries are spent."""
        try:
            yield
        except anthropic.APITimeoutError as exc:  # before its base class, APIConnectionError
            raise self._fail.timed_out() from exc
        except anthropic.APIStatusError as exc:
            detail = exc.api_message or exc.response.reason_phrase
            if exc.status_code < 400:  # an `error` event in a stream that began with 200 OK
                raise self._fail.stream_failed(detail) from exc
            raise self._fail.http(exc.status_code, detail) from exc
        except anthropic.APIConnectionError as exc:
            raise self._fail.unreachable(exc.__cause__ or exc) from exc
        except anthropic.APIError as exc:
            raise self._fail.stream_failed(exc.message) from exc

    async def aclose(self) -> None:
        await self._client.close()
