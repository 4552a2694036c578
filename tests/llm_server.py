"""A scripted LLM server for tests: real HTTP on loopback, speaking each vendor's wire protocol.

Routes: OpenAI ``POST /v1/chat/completions``, Anthropic ``POST /v1/messages``, Gemini
``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse`` (also
under ``/v1``), Ollama ``POST /api/chat``. Each answers as JSON or in its own streaming format
(see ``tests/llm_wire.py``).

A test queues replies (text and/or tool calls, an error status, a delay); each request takes the
next one, whatever the route. With nothing queued the server echoes the last user message.
Every request is recorded (path, query, headers, JSON body) for assertions.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.llm_wire import (
    Reply,
    ScriptedCall,
    anthropic_response,
    gemini_response,
    last_user_text,
    ollama_response,
    openai_response,
)

__all__ = ["Recorded", "ScriptedCall", "ScriptedLLMServer"]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-cased names."""
    body: Any


class ScriptedLLMServer:
    def __init__(self, certfile: str | None = None) -> None:
        """*certfile*: a PEM with key and certificate chain, to serve HTTPS instead of HTTP."""
        self._certfile = certfile
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---- scripting --------------------------------------------------------------------------

    def reply(
        self,
        text: str = "",
        tool_calls: list[ScriptedCall] | None = None,
        usage: tuple[int, int] = (10, 5),
        delay: float = 0.0,
    ) -> None:
        """Queue an answer; *usage* is (input, output) tokens, *delay* seconds pass before it."""
        self._queue(Reply(text, tuple(tool_calls or ()), usage, delay=delay))

    def fail(
        self,
        status: int,
        message: str = "scripted failure",
        *,
        retry_after: str | None = None,
        times: int = 1,
    ) -> None:
        """Queue *times* error answers with *status*, in the vendor's error format."""
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        for _ in range(times):
            self._queue(Reply(status=status, error=message, headers=headers))

    def _queue(self, reply: Reply) -> None:
        with self._lock:
            self._script.append(reply)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()

    @property
    def last(self) -> Recorded:
        with self._lock:
            return self.requests[-1]

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        routes = [
            Route("/v1/chat/completions", self._handler(openai_response), methods=["POST"]),
            Route("/v1/messages", self._handler(anthropic_response), methods=["POST"]),
            # google-genai 3 calls the stable /v1; older SDKs and most docs use /v1beta.
            Route("/v1beta/models/{target:path}", self._handler(gemini_response), methods=["POST"]),
            Route("/v1/models/{target:path}", self._handler(gemini_response), methods=["POST"]),
            Route("/api/chat", self._handler(ollama_response), methods=["POST"]),
        ]
        config = uvicorn.Config(
            Starlette(routes=routes),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
            ssl_certfile=self._certfile,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("scripted LLM server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"{'https' if self._certfile else 'http'}://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    # ---- request handling -------------------------------------------------------------------

    def _handler(self, protocol: Callable[[Request, Any, Reply], Response]) -> Callable[..., Any]:
        async def handle(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                self.requests.append(
                    Recorded(
                        request.method,
                        request.url.path,
                        dict(request.query_params),
                        {k.lower(): v for k, v in request.headers.items()},
                        body,
                    )
                )
                reply = self._script.popleft() if self._script else None
            if reply is None:
                reply = Reply(text=last_user_text(body))
            if reply.delay:
                deadline = time.monotonic() + reply.delay
                # Give up early once the client has hung up, so shutdown does not wait for us.
                while time.monotonic() < deadline and not await request.is_disconnected():
                    await asyncio.sleep(0.02)
            response = protocol(request, body, reply)
            response.headers.update(reply.headers)
            return response

        return handle
