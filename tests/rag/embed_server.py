"""A scripted embedding server for tests: Ollama's ``POST /api/embed`` and Cohere's
``POST /v2/embed``, as their real servers answer them.

Vectors are bags of hashed words (so texts sharing words are close, and a search over them
finds what it should), normalised to unit length. Every request is recorded; failures can be
queued to answer the next requests with an error status, or answer every request until cleared
(``outage``); answers can be held back until the test releases them (``hold``).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def word_vector(text: str, dimension: int) -> list[float]:
    vector = [0.0] * dimension
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dimension] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Failure:
    status: int
    body: dict[str, Any] | None = None
    """None: echo the request's Authorization header back, as a careless proxy might."""
    headers: dict[str, str] = field(default_factory=dict)


class EmbedServer:
    def __init__(self, dimension: int = 16) -> None:
        self.dimension = dimension
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.outage: Failure | None = None
        """Answers every request while set."""
        self.released = asyncio.Event()
        self.released.set()
        self.arrived = asyncio.Event()
        """Set by each request, held or not."""
        self.url = ""
        """Set by whoever serves ``app``."""
        self.app = Starlette(
            routes=[
                Route("/api/embed", self._ollama, methods=["POST"]),
                Route("/v2/embed", self._cohere, methods=["POST"]),
            ]
        )

    def fail(self, status: int, body: dict[str, Any] | None = None, **headers: str) -> None:
        """Answer the next request with *status* (requests after it succeed again)."""
        self.failures.append(Failure(status, body, headers))

    def hold(self) -> None:
        """Keep the answers to requests from now on until ``release``."""
        self.released.clear()
        self.arrived.clear()

    def release(self) -> None:
        self.released.set()

    def of(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def _record(self, request: Request, error_key: str) -> tuple[Recorded, JSONResponse | None]:
        recorded = Recorded(request.url.path, dict(request.headers), await request.json())
        self.requests.append(recorded)
        self.arrived.set()
        await self.released.wait()
        if not self.failures and self.outage is None:
            return recorded, None
        failure = self.failures.pop(0) if self.failures else self.outage
        assert failure is not None
        echoed = f"bad credentials: {request.headers.get('authorization')}"
        body = failure.body or {error_key: echoed}
        return recorded, JSONResponse(body, status_code=failure.status, headers=failure.headers)

    async def _ollama(self, request: Request) -> JSONResponse:
        recorded, failed = await self._record(request, "error")  # Ollama's error body
        if failed:
            return failed
        texts = recorded.body["input"]
        texts = [texts] if isinstance(texts, str) else texts
        return JSONResponse(
            {
                "model": recorded.body["model"],
                "embeddings": [word_vector(t, self.dimension) for t in texts],
                "total_duration": 14143917,
                "load_duration": 1019500,
                "prompt_eval_count": sum(len(t.split()) for t in texts),
            }
        )

    async def _cohere(self, request: Request) -> JSONResponse:
        recorded, failed = await self._record(request, "message")  # Cohere's error body
        if failed:
            return failed
        texts = recorded.body["texts"]
        return JSONResponse(
            {
                "id": str(uuid.uuid4()),
                "embeddings": {"float": [word_vector(t, self.dimension) for t in texts]},
                "texts": texts,
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"input_tokens": sum(len(t.split()) for t in texts)},
                },
                "response_type": "embeddings_by_type",
            }
        )
