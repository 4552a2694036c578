"""How each vendor's API answers, as the scripted LLM server (``tests/llm_server.py``) speaks it.

One function per protocol turns a scripted ``Reply`` into that vendor's response: its JSON, its
stream format (OpenAI and Anthropic SSE, Gemini ``alt=sse``, Ollama NDJSON) and its error body.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    """A dict, or raw argument text (to send broken JSON where the protocol carries text)."""
    thought_signature: bytes | None = None
    """Gemini only: the signature attached to the functionCall part."""

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)

    @property
    def arguments_dict(self) -> dict[str, Any]:
        return self.arguments if isinstance(self.arguments, dict) else {}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: text and/or tool calls, or (``status`` >= 400) an error carrying
    ``error`` as its message; ``usage`` is (input, output) tokens; ``delay`` seconds pass first."""

    text: str = ""
    tool_calls: tuple[ScriptedCall, ...] = ()
    usage: tuple[int, int] = (10, 5)
    status: int = 200
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def _pieces(text: str) -> list[str]:
    """Text as a model streams it: a word (with its trailing space) at a time."""
    return re.findall(r"\S+\s*|\s+", text)


def _thirds(text: str) -> list[str]:
    step = max(1, -(-len(text) // 3))
    return [text[i : i + step] for i in range(0, len(text), step)] or [""]


def _sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


async def _drip(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item
        await asyncio.sleep(0)  # let each piece go out as its own write


_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


def last_user_text(body: dict[str, Any]) -> str:
    """What the echo answers: the last user text of an OpenAI, Anthropic, Gemini or Ollama body."""
    for message in reversed(body.get("messages") or body.get("contents") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content", message.get("parts"))
        if isinstance(content, str):
            return content
        texts = [p.get("text", "") for p in content or [] if isinstance(p, dict) and "text" in p]
        if texts:
            return "".join(texts)
    return ""


# ---- OpenAI ---------------------------------------------------------------------------------

_OPENAI_ERRORS = {429: "rate_limit_exceeded", 401: "invalid_api_key"}


def openai_response(request: Request, body: dict[str, Any], reply: Reply) -> Response:
    if reply.status >= 400:
        error_type = _OPENAI_ERRORS.get(
            reply.status, "server_error" if reply.status >= 500 else "invalid_request"
        )
        error = {"message": reply.error, "type": error_type, "param": None, "code": None}
        return JSONResponse({"error": error}, status_code=reply.status)
    head = {"id": _id("chatcmpl-"), "created": int(time.time()), "model": body["model"]}
    finish = "tool_calls" if reply.tool_calls else "stop"
    calls = [(_id("call_"), c) for c in reply.tool_calls]
    usage = {
        "prompt_tokens": reply.usage[0],
        "completion_tokens": reply.usage[1],
        "total_tokens": sum(reply.usage),
    }
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
                for i, c in calls
            ]
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        return JSONResponse({**head, "object": "chat.completion", "choices": [choice], "usage": usage})

    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        data: dict[str, Any] = {**head, "object": "chat.completion.chunk", "choices": [choice]}
        if with_usage:
            data["usage"] = None
        return _sse(data)

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in _pieces(reply.text)]
    for index, (call_id, call) in enumerate(calls):
        start = {"index": index, "id": call_id, "type": "function", "function": {"name": call.name}}
        events.append(chunk({"tool_calls": [{**start, "function": {"name": call.name, "arguments": ""}}]}))
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            for part in _thirds(call.arguments_json)
        ]
    events.append(chunk({}, finish))
    if with_usage:
        events.append(_sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
    events.append("data: [DONE]\n\n")
    return StreamingResponse(_drip(events), media_type="text/event-stream")


# ---- Anthropic ------------------------------------------------------------------------------

_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_response(request: Request, body: dict[str, Any], reply: Reply) -> Response:
    if reply.status >= 400:
        error = {"type": _ANTHROPIC_ERRORS.get(reply.status, "api_error"), "message": reply.error}
        return JSONResponse(
            {"type": "error", "error": error, "request_id": _id("req_")}, status_code=reply.status
        )
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        blocks.append({"type": "tool_use", "id": _id("toolu_"), "name": call.name, "input": call.arguments})
    stop = "tool_use" if reply.tool_calls else "end_turn"
    message = {
        "id": _id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1]},
    }
    if not body.get("stream"):
        return JSONResponse(message)

    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": reply.usage[0], "output_tokens": 1}
    events = [
        _sse({"type": "message_start", "message": start}, "message_start"),
        _sse({"type": "ping"}, "ping"),
    ]
    streamed: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if reply.text:
        text_deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(reply.text)]
        streamed.append(({"type": "text", "text": ""}, text_deltas))
    for block, call in zip(blocks[bool(reply.text) :], reply.tool_calls, strict=True):
        json_deltas = [
            {"type": "input_json_delta", "partial_json": p} for p in ["", *_thirds(call.arguments_json)]
        ]
        streamed.append(({**block, "input": {}}, json_deltas))
    for index, (first, deltas) in enumerate(streamed):
        events.append(
            _sse(
                {"type": "content_block_start", "index": index, "content_block": first}, "content_block_start"
            )
        )
        events += [
            _sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
            for d in deltas
        ]
        events.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": reply.usage[1]},
    }
    events += [_sse(delta, "message_delta"), _sse({"type": "message_stop"}, "message_stop")]
    return StreamingResponse(_drip(events), media_type="text/event-stream")


# ---- Gemini ---------------------------------------------------------------------------------

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def gemini_response(request: Request, body: dict[str, Any], reply: Reply) -> Response:
    model, _, action = request.path_params["target"].partition(":")
    if action not in ("generateContent", "streamGenerateContent"):
        return JSONResponse({"error": {"code": 404, "message": f"no action {action!r}"}}, status_code=404)
    if reply.status >= 400:
        error = {
            "code": reply.status,
            "message": reply.error,
            "status": _GEMINI_STATUS.get(reply.status, "INTERNAL"),
        }
        return JSONResponse({"error": error}, status_code=reply.status)
    call_parts: list[dict[str, Any]] = []
    for call in reply.tool_calls:
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.arguments_dict}}
        if call.thought_signature is not None:
            part["thoughtSignature"] = base64.b64encode(call.thought_signature).decode()
        call_parts.append(part)
    usage = {
        "promptTokenCount": reply.usage[0],
        "candidatesTokenCount": reply.usage[1],
        "totalTokenCount": sum(reply.usage),
    }
    head = {"modelVersion": model, "responseId": _id("resp-")}

    def response(parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        meta = usage if last else {"promptTokenCount": reply.usage[0], "totalTokenCount": reply.usage[0]}
        return {"candidates": [candidate], "usageMetadata": meta, **head}

    if action == "generateContent":
        text_parts = [{"text": reply.text}] if reply.text else []
        return JSONResponse(response(text_parts + call_parts, last=True))
    chunks = [[{"text": piece}] for piece in _pieces(reply.text)]
    if call_parts:
        chunks.append(call_parts)
    chunks = chunks or [[{"text": ""}]]
    events = [
        f"data: {json.dumps(response(c, last=i == len(chunks) - 1))}\r\n\r\n" for i, c in enumerate(chunks)
    ]
    return StreamingResponse(_drip(events), media_type="text/event-stream")


# ---- Ollama ---------------------------------------------------------------------------------


def ollama_response(request: Request, body: dict[str, Any], reply: Reply) -> Response:
    if reply.status >= 400:
        return JSONResponse({"error": reply.error}, status_code=reply.status)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    calls = [
        {"id": _id("call_"), "function": {"index": i, "name": c.name, "arguments": c.arguments_dict}}
        for i, c in enumerate(reply.tool_calls)
    ]
    done = {
        "done": True,
        "done_reason": "stop",
        "total_duration": 1_000_000,
        "load_duration": 1000,
        "prompt_eval_count": reply.usage[0],
        "prompt_eval_duration": 1000,
        "eval_count": reply.usage[1],
        "eval_duration": 1000,
    }

    def line(message: dict[str, Any], final: bool) -> dict[str, Any]:
        base = {"model": body["model"], "created_at": now, "message": {"role": "assistant", **message}}
        return {**base, **done} if final else {**base, "done": False}

    if not body.get("stream", True):
        message: dict[str, Any] = {"content": reply.text}
        if calls:
            message["tool_calls"] = calls
        return JSONResponse(line(message, final=True))
    lines = [line({"content": piece}, final=False) for piece in _pieces(reply.text)]
    if calls:
        lines.append(line({"content": "", "tool_calls": calls}, final=False))
    lines.append(line({"content": ""}, final=True))
    return StreamingResponse(_drip([json.dumps(x) + "\n" for x in lines]), media_type="application/x-ndjson")
