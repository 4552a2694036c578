"""``type: openai``: OpenAI's Chat Completions API, or any server that speaks it (``host``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Required, TypedDict, cast

import openai
from openai.types.chat import (
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
    completion_create_params,
)

from hector.config.schema import LLMConfig
from hector.config.tls import llm_component
from hector.http_client import create_async_client
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
from hector.providers.common import Failures, parse_arguments
from hector.tls import TLSOptions

NO_KEY_PLACEHOLDER = "no-api-key"
"""Sent to self-hosted OpenAI-compatible servers that need no key: the SDK insists on one."""


def _to_openai(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    if message.role == "assistant":
        if not message.tool_calls:
            return {"role": "assistant", "content": message.content}
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ],
        }
    if message.role == "system":
        return {"role": "system", "content": message.content}
    return {"role": "user", "content": message.content}


def _to_tool(spec: ToolSpec) -> ChatCompletionToolParam:
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
    }


class _Params(TypedDict, total=False):
    """The arguments a request and a stream share, typed so the SDK's overloads still apply."""

    model: Required[str]
    messages: Required[list[ChatCompletionMessageParam]]
    tools: list[ChatCompletionToolParam]
    temperature: float
    max_tokens: int
    max_completion_tokens: int
    response_format: completion_create_params.ResponseFormat


@dataclass
class _PendingCall:
    """A tool call being assembled from streamed fragments."""

    id: str = ""
    name: str = ""
    arguments: str = ""


def _detail(exc: openai.APIStatusError) -> str:
    """The server's own error message, not the SDK's dump of the whole body."""
    message = exc.body.get("message") if isinstance(exc.body, dict) else None
    return str(message) if message else exc.response.reason_phrase


class OpenAIModel(Model):
    provider = "openai"

    def __init__(self, name: str, cfg: LLMConfig, model: str, api_key: str | None, tls: TLSOptions) -> None:
        self.model_name = model
        self._cfg = cfg
        http_client = create_async_client(
            component=llm_component("openai", name), tls=tls, timeout=cfg.timeout
        )
        # The SDK accepts an `httpx.AsyncClient` at runtime (openai._httpx2 checks for the legacy
        # class) but annotates only `httpx2.AsyncClient`. Its timeout is taken from that client.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY_PLACEHOLDER,
            base_url=cfg.host,
            max_retries=cfg.max_retries,
            http_client=cast(Any, http_client),
        )
        self._fail = Failures("openai", name, str(self._client.base_url), cfg.timeout, api_key)

    def _params(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> _Params:
        params: _Params = {
            "model": self.model_name,
            "messages": [_to_openai(m) for m in messages],
        }
        if tools:
            params["tools"] = [_to_tool(t) for t in tools]
        temperature = settings.get("temperature", self._cfg.temperature)
        if temperature is not None:
            params["temperature"] = temperature
        max_tokens = settings.get("max_tokens", self._cfg.max_tokens)
        if max_tokens is not None:
            # OpenAI's reasoning models reject `max_tokens`; compatible servers often only know it.
            if self._cfg.host:
                params["max_tokens"] = max_tokens
            else:
                params["max_completion_tokens"] = max_tokens
        if "output_schema" in settings:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": settings.get("output_schema_name", "response"),
                    "schema": settings["output_schema"],
                    "strict": True,
                },
            }
        return params

    async def request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> ModelResponse:
        with self._mapped_errors():
            completion = await self._client.chat.completions.create(
                **self._params(messages, tools, settings), stream=False
            )
        usage = Usage()
        if completion.usage is not None:
            usage = Usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        if not completion.choices:
            return ModelResponse("", usage=usage)
        choice = completion.choices[0]
        calls = tuple(
            ToolCall(
                call.id, call.function.name, parse_arguments(call.function.arguments, call.function.name)
            )
            for call in choice.message.tool_calls or ()
            if call.type == "function"
        )
        return ModelResponse(choice.message.content or "", calls, usage, choice.finish_reason)

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> AsyncIterator[ModelStreamEvent]:
        text: list[str] = []
        pending: dict[int, _PendingCall] = {}
        usage = Usage()
        finish_reason: str | None = None
        with self._mapped_errors():
            chunks = await self._client.chat.completions.create(
                **self._params(messages, tools, settings),
                stream=True,
                stream_options={"include_usage": True},
            )
            async with chunks:
                async for chunk in chunks:
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    finish_reason = choice.finish_reason or finish_reason
                    if choice.delta.content:
                        text.append(choice.delta.content)
                        yield TextDelta(choice.delta.content)
                    for fragment in choice.delta.tool_calls or ():
                        call = pending.setdefault(fragment.index, _PendingCall())
                        call.id = call.id or fragment.id or ""
                        if fragment.function is not None:
                            # The name arrives whole in the first fragment; the arguments in pieces.
                            call.name = call.name or fragment.function.name or ""
                            call.arguments += fragment.function.arguments or ""
        calls = tuple(
            ToolCall(
                call.id or f"call_{uuid.uuid4().hex[:12]}",
                call.name,
                parse_arguments(call.arguments, call.name),
            )
            for _, call in sorted(pending.items())
        )
        yield ResponseDone(ModelResponse("".join(text), calls, usage, finish_reason))

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """SDK exceptions → Hector's, after the SDK's own retries are spent."""
        try:
            yield
        except openai.APITimeoutError as exc:  # before its base class, APIConnectionError
            raise self._fail.timed_out() from exc
        except openai.APIStatusError as exc:
            raise self._fail.http(exc.status_code, _detail(exc)) from exc
        except openai.APIConnectionError as exc:
            raise self._fail.unreachable(exc.__cause__ or exc) from exc
        except openai.APIError as exc:  # an `error` event in a stream
            raise self._fail.stream_failed(exc.message) from exc

    async def aclose(self) -> None:
        await self._client.close()
