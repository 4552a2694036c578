"""``type: ollama``: a local or remote Ollama server through the ``ollama`` SDK (``/api/chat``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx
import ollama

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
from hector.providers.common import Failures
from hector.providers.retry import (
    Retryable,
    RetryPolicy,
    call_with_retries,
    is_retryable_status,
    parse_retry_after,
    stream_with_retries,
)
from hector.tls import TLSOptions, create_ssl_context

DEFAULT_HOST = "http://localhost:11434"

# The SDK's ResponseError keeps the status but not the headers, so a response hook notes the
# last Retry-After of the current task here for the retry decision.
_retry_after: ContextVar[float | None] = ContextVar("ollama_retry_after", default=None)


async def _note_retry_after(response: httpx.Response) -> None:
    _retry_after.set(parse_retry_after(response.headers.get("retry-after")))


def _classify(exc: Exception) -> Retryable | None:
    if isinstance(exc, ollama.ResponseError) and is_retryable_status(exc.status_code):
        return Retryable(f"HTTP {exc.status_code}", _retry_after.get())
    if isinstance(exc, ConnectionError | httpx.ConnectError):
        return Retryable("connection failed")
    return None


class _ChatClient(ollama.AsyncClient):
    """``AsyncClient`` posting a chat body built by us.

    ``AsyncClient.chat()`` re-validates tools through ``Tool.Function.Parameters.Property``, which
    has no ``properties`` field and so drops the fields of nested object parameters without a
    word (ollama/ollama-python#724). Sending our own body keeps tool schemas whole; transport,
    errors and response parsing stay the SDK's.
    """

    async def chat_once(self, body: dict[str, Any]) -> ollama.ChatResponse:
        return await self._request(ollama.ChatResponse, "POST", "/api/chat", json={**body, "stream": False})

    async def chat_stream(self, body: dict[str, Any]) -> AsyncIterator[ollama.ChatResponse]:
        return await self._request(
            ollama.ChatResponse, "POST", "/api/chat", json={**body, "stream": True}, stream=True
        )


def _to_ollama(message: ChatMessage) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        data["tool_calls"] = [
            {"id": call.id, "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.role == "tool":
        # Older servers pair results by tool name, newer ones by call id; send both.
        data["tool_name"] = message.name or ""
        data["tool_call_id"] = message.tool_call_id or ""
    return data


def _calls(message: ollama.Message) -> list[ToolCall]:
    # The SDK's ToolCall type has no id (the server's is dropped), so every call gets a fresh one.
    return [
        ToolCall(f"call_{uuid.uuid4().hex[:12]}", call.function.name, dict(call.function.arguments))
        for call in message.tool_calls or ()
    ]


def _usage(response: ollama.ChatResponse) -> Usage:
    return Usage(response.prompt_eval_count or 0, response.eval_count or 0)


def _finish(done_reason: str | None, has_calls: bool) -> str | None:
    return "tool_calls" if has_calls else done_reason


class OllamaModel(Model):
    provider = "ollama"

    def __init__(self, name: str, cfg: LLMConfig, model: str, tls: TLSOptions) -> None:
        self.model_name = model
        self._cfg = cfg
        host = cfg.host or DEFAULT_HOST
        self._fail = Failures("ollama", name, host, cfg.timeout)
        # The SDK builds its own httpx client from these keyword arguments, so it gets Hector's
        # TLS context and timeouts that way rather than through `create_async_client`.
        self._client = _ChatClient(
            host=host,
            timeout=httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 10.0)),
            verify=create_ssl_context(tls, llm_component("ollama", name)),
            follow_redirects=False,
            event_hooks={"request": [inject_trace_context], "response": [_note_retry_after]},
        )
        self._retry = RetryPolicy(cfg.max_retries, cfg.retry_delay, self._fail.where)

    def _body(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "messages": [_to_ollama(m) for m in messages]}
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in tools
            ]
        options: dict[str, Any] = {}
        temperature = settings.get("temperature", self._cfg.temperature)
        if temperature is not None:
            options["temperature"] = temperature
        max_tokens = settings.get("max_tokens", self._cfg.max_tokens)
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        if options:
            body["options"] = options
        if "output_schema" in settings:
            body["format"] = settings["output_schema"]
        return body

    async def request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> ModelResponse:
        body = self._body(messages, tools, settings)
        with self._mapped_errors():
            response = await call_with_retries(lambda: self._client.chat_once(body), self._retry, _classify)
        calls = _calls(response.message)
        return ModelResponse(
            response.message.content or "",
            tuple(calls),
            _usage(response),
            _finish(response.done_reason, bool(calls)),
        )

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> AsyncIterator[ModelStreamEvent]:
        body = self._body(messages, tools, settings)
        text: list[str] = []
        calls: list[ToolCall] = []
        usage = Usage()
        done_reason: str | None = None
        with self._mapped_errors():
            chunks = stream_with_retries(lambda: self._client.chat_stream(body), self._retry, _classify)
            async for chunk in chunks:
                if chunk.message.content:
                    text.append(chunk.message.content)
                    yield TextDelta(chunk.message.content)
                calls.extend(_calls(chunk.message))
                if chunk.done:
                    usage = _usage(chunk)
                    done_reason = chunk.done_reason
        yield ResponseDone(
            ModelResponse("".join(text), tuple(calls), usage, _finish(done_reason, bool(calls)))
        )

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """SDK and transport exceptions → Hector's, after our retries are spent."""
        try:
            yield
        except ollama.ResponseError as exc:
            if exc.status_code < 0:  # an error line in a stream that began with 200 OK
                raise self._fail.stream_failed(exc.error) from exc
            raise self._fail.http(exc.status_code, exc.error) from exc
        except httpx.TimeoutException as exc:  # before its base class, HTTPError
            raise self._fail.timed_out() from exc
        except (ConnectionError, httpx.HTTPError) as exc:
            # The SDK swaps a connect error for a generic ConnectionError; the real reason
            # (refused, TLS verification, DNS) survives as its context.
            reason = exc.__context__ if isinstance(exc, ConnectionError) and exc.__context__ else exc
            raise self._fail.unreachable(reason, check="that `ollama serve` is running") from exc

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # the SDK leaves close() unannotated
