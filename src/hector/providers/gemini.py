"""``type: gemini``: Google's Gemini API through the ``google-genai`` SDK."""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager

import httpx
from google import genai
from google.genai import errors as genai_errors, types

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
from hector.providers.common import Failures
from hector.providers.retry import (
    Retryable,
    RetryPolicy,
    call_with_retries,
    is_retryable_status,
    parse_retry_after,
    stream_with_retries,
)
from hector.tls import TLSOptions

DEFAULT_HOST = "https://generativelanguage.googleapis.com"
LOCAL_ID_PREFIX = "hector-"
"""Marks call ids Hector made up because the model sent none; they are not sent back."""
SKIP_SIGNATURE = b"skip_thought_signature_validator"
"""Google's documented stand-in for a thought signature we no longer have."""
_SIGNATURES_KEPT = 1024
_OLD_MODELS = re.compile(r"^(models/)?gemini-[12][.-]")
"""Models from before signatures were required: they get no stand-in, only real signatures."""


def _classify(exc: Exception) -> Retryable | None:
    if isinstance(exc, genai_errors.APIError) and is_retryable_status(exc.code):
        headers = getattr(exc.response, "headers", None)
        retry_after = parse_retry_after(headers.get("retry-after") if headers is not None else None)
        return Retryable(f"HTTP {exc.code}", retry_after)
    if isinstance(exc, httpx.ConnectError):
        return Retryable(f"connection failed ({exc})")
    return None


def _finish(reason: types.FinishReason | None, has_calls: bool) -> str | None:
    if has_calls:
        return "tool_calls"
    if reason is None:
        return None
    return {"STOP": "stop", "MAX_TOKENS": "length"}.get(reason.value, reason.value.lower())


def _usage(meta: types.GenerateContentResponseUsageMetadata | None) -> Usage:
    if meta is None:
        return Usage()
    # Thinking tokens are billed as output, as OpenAI's reasoning tokens are.
    output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return Usage(meta.prompt_token_count or 0, output)


class GeminiModel(Model):
    provider = "gemini"

    def __init__(self, name: str, cfg: LLMConfig, model: str, api_key: str | None, tls: TLSOptions) -> None:
        self.model_name = model
        self._cfg = cfg
        self._fail = Failures("gemini", name, cfg.host or DEFAULT_HOST, cfg.timeout, api_key)
        self._http = create_async_client(
            component=llm_component("gemini", name), tls=tls, timeout=cfg.timeout
        )
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=cfg.host,
                # The SDK passes its own per-request timeout (in ms) to the client, and None
                # would switch the client's timeout off.
                timeout=int(cfg.timeout * 1000),
                httpx_async_client=self._http,
            ),
        )
        # The SDK can retry, but ignores Retry-After; ours honours it.
        self._retry = RetryPolicy(cfg.max_retries, cfg.retry_delay, self._fail.where)
        # Gemini signs its function calls and wants each signature back with the call in later
        # turns (Gemini 3 refuses the request without). ChatMessage has no place for it, so the
        # signatures wait here, by call id.
        self._signatures: OrderedDict[str, bytes] = OrderedDict()

    def _contents(self, messages: Sequence[ChatMessage]) -> tuple[str, list[types.Content]]:
        system: list[str] = []
        contents: list[types.Content] = []
        names: dict[str, str] = {}
        for message in messages:
            if message.role == "system":
                system.append(message.content)
            elif message.role == "tool":
                part = types.Part(function_response=self._result(message, names))
                last = contents[-1] if contents else None
                if last is not None and last.parts and last.parts[0].function_response is not None:
                    # All answers to one turn's calls go back together, in one user turn.
                    last.parts.append(part)
                else:
                    contents.append(types.Content(role="user", parts=[part]))
            elif message.role == "assistant":
                parts = [types.Part(text=message.content)] if message.content else []
                for i, call in enumerate(message.tool_calls):
                    names[call.id] = call.name
                    parts.append(self._call_part(call, first=i == 0))
                if parts:
                    contents.append(types.Content(role="model", parts=parts))
            else:
                contents.append(types.Content(role="user", parts=[types.Part(text=message.content)]))
        return "\n\n".join(system), contents

    @staticmethod
    def _result(message: ChatMessage, names: dict[str, str]) -> types.FunctionResponse:
        call_id = message.tool_call_id or ""
        # The SDK documents "output" for a result and "error" for a failure.
        key = "error" if message.is_error else "output"
        return types.FunctionResponse(
            id=None if call_id.startswith(LOCAL_ID_PREFIX) else call_id or None,
            name=message.name or names.get(call_id, ""),
            response={key: message.content},
        )

    def _call_part(self, call: ToolCall, first: bool) -> types.Part:
        signature = self._signatures.get(call.id)
        if signature is None and first and not _OLD_MODELS.match(self.model_name):
            # Only a turn's first call carries a signature; without the real one, the stand-in.
            signature = SKIP_SIGNATURE
        return types.Part(
            function_call=types.FunctionCall(
                id=None if call.id.startswith(LOCAL_ID_PREFIX) else call.id,
                name=call.name,
                args=call.arguments,
            ),
            thought_signature=signature,
        )

    def _config(
        self, system: str, tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> types.GenerateContentConfig:
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=settings.get("temperature", self._cfg.temperature),
            max_output_tokens=settings.get("max_tokens", self._cfg.max_tokens),
            # The agent loop runs the tools; the SDK must not try to call them itself.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        if tools:
            declarations = [
                types.FunctionDeclaration(
                    name=t.name, description=t.description, parameters_json_schema=t.parameters
                )
                for t in tools
            ]
            config.tools = [types.Tool(function_declarations=declarations)]
        if "output_schema" in settings:
            # The JSON-schema field passes the schema on as is; `response_schema` would first
            # squeeze it into the SDK's OpenAPI subset.
            config.response_mime_type = "application/json"
            config.response_json_schema = settings["output_schema"]
        return config

    def _read(self, response: types.GenerateContentResponse) -> tuple[str, list[ToolCall]]:
        """The text and the tool calls of one response or stream chunk."""
        text: list[str] = []
        calls: list[ToolCall] = []
        candidate = response.candidates[0] if response.candidates else None
        for part in (candidate.content.parts if candidate and candidate.content else None) or ():
            if part.thought:
                continue
            if part.function_call is not None:
                call = part.function_call
                call_id = call.id or f"{LOCAL_ID_PREFIX}{uuid.uuid4().hex[:12]}"
                if part.thought_signature:
                    self._remember(call_id, part.thought_signature)
                calls.append(ToolCall(call_id, call.name or "", dict(call.args or {})))
            elif part.text:
                text.append(part.text)
        return "".join(text), calls

    def _remember(self, call_id: str, signature: bytes) -> None:
        self._signatures[call_id] = signature
        while len(self._signatures) > _SIGNATURES_KEPT:
            self._signatures.popitem(last=False)

    async def request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> ModelResponse:
        system, contents = self._contents(messages)
        config = self._config(system, tools, settings)

        async def call() -> types.GenerateContentResponse:
            return await self._client.aio.models.generate_content(
                model=self.model_name, contents=contents, config=config
            )

        with self._mapped_errors():
            response = await call_with_retries(call, self._retry, _classify)
        text, calls = self._read(response)
        reason = response.candidates[0].finish_reason if response.candidates else None
        return ModelResponse(
            text, tuple(calls), _usage(response.usage_metadata), _finish(reason, bool(calls))
        )

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> AsyncIterator[ModelStreamEvent]:
        system, contents = self._contents(messages)
        config = self._config(system, tools, settings)

        async def open_stream() -> AsyncIterator[types.GenerateContentResponse]:
            return await self._client.aio.models.generate_content_stream(
                model=self.model_name, contents=contents, config=config
            )

        text: list[str] = []
        calls: list[ToolCall] = []
        usage = Usage()
        reason: types.FinishReason | None = None
        with self._mapped_errors():
            async for chunk in stream_with_retries(open_stream, self._retry, _classify):
                piece, chunk_calls = self._read(chunk)
                calls.extend(chunk_calls)
                if piece:
                    text.append(piece)
                    yield TextDelta(piece)
                if chunk.usage_metadata is not None:
                    usage = _usage(chunk.usage_metadata)  # a running total, not an increment
                if chunk.candidates and chunk.candidates[0].finish_reason is not None:
                    reason = chunk.candidates[0].finish_reason
        yield ResponseDone(ModelResponse("".join(text), tuple(calls), usage, _finish(reason, bool(calls))))

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """SDK and transport exceptions → Hector's, after our retries are spent."""
        try:
            yield
        except genai_errors.APIError as exc:
            raise self._fail.http(exc.code, exc.message or exc.status or "") from exc
        except httpx.TimeoutException as exc:  # before its base class, HTTPError
            raise self._fail.timed_out() from exc
        except httpx.HTTPError as exc:
            raise self._fail.unreachable(exc) from exc

    async def aclose(self) -> None:
        # The SDK leaves a client it was handed to its owner.
        await self._client.aio.aclose()
        await self._http.aclose()
