"""Embedders: the offline MiniLM model, batching and dimension checks, OpenAI over its wire API."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hector.config.schema import EmbedderConfig
from hector.errors import ConfigError, ProviderError
from hector.rag.embedders import Embedder, build_embedder
from tests.harness import serve_app


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


async def test_local_embedder_is_deterministic_normalised_and_semantic(tmp_path: Path) -> None:
    embedder = build_embedder("local", EmbedderConfig(), tmp_path)
    assert embedder.dimension == 384
    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "How do I get my money back?",
        "Our refund policy: returns within 30 days.",
    ]
    first = await embedder.embed(texts)
    again = await embedder.embed(list(reversed(texts)))
    assert [len(v) for v in first] == [384] * 5
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4 for v in first)
    assert all(cosine(a, b) > 0.9999 for a, b in zip(first, reversed(again), strict=True))
    # The published similarity of this pair for all-MiniLM-L6-v2 (sentence-transformers docs).
    assert cosine(first[0], first[1]) == pytest.approx(0.7553, abs=1e-3)
    assert cosine(first[0], first[1]) > cosine(first[0], first[2])
    assert cosine(first[3], first[4]) > max(cosine(first[3], v) for v in first[:3])


async def test_local_embedder_dimension_mismatch_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="384"):
        build_embedder("local", EmbedderConfig(dimension=768), tmp_path)


async def test_unsupported_embedder_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not supported"):
        build_embedder("c", EmbedderConfig(type="cohere"), tmp_path)


class Scripted(Embedder):
    def __init__(self, dimension: int | None, batch_size: int, wrong_at: int = -1) -> None:
        self.name, self.model, self.dimension, self.batch_size = "s", "scripted", dimension, batch_size
        self.batches: list[list[str]] = []
        self.wrong_at = wrong_at

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(texts)
        size = 3 if len(self.batches) - 1 == self.wrong_at else 2
        return [[float(len(t))] * size for t in texts]


async def test_batching_keeps_order_and_checks_dimensions() -> None:
    embedder = Scripted(None, batch_size=2)
    texts = ["ccc", "a", "bbbbb", "dd", "e"]
    vectors = await embedder.embed(texts)
    assert [v[0] for v in vectors] == [3, 1, 5, 2, 1]
    assert [len(b) for b in embedder.batches] == [2, 2, 1]
    assert embedder.dimension == 2  # learned from the first answer
    with pytest.raises(ProviderError, match="3-dimensional vector, expected 2"):
        await Scripted(2, batch_size=2, wrong_at=1).embed(texts)


async def test_openai_embedder_against_a_scripted_server(tmp_path: Path) -> None:
    requests: list[dict[str, object]] = []
    failures = [1]

    async def embeddings(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        if failures:  # one transient failure: the SDK retries it
            failures.pop()
            return JSONResponse({"error": {"message": "busy"}}, status_code=503)
        requests.append({"auth": request.headers["authorization"], **body})
        inputs = body["input"]
        # Out of order on purpose: the embedder must place vectors by their index.
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0]}
            for i, t in reversed(list(enumerate(inputs)))
        ]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})

    app = Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])
    async with serve_app(app) as url:
        cfg = EmbedderConfig(type="openai", model="tiny", host=f"{url}/v1", api_key="sk-test", batch_size=2)
        embedder = build_embedder("oa", cfg, tmp_path)
        try:
            vectors = await embedder.embed(["aaa", "b", "cc"])
        finally:
            await embedder.aclose()
    assert [v[0] for v in vectors] == [3.0, 1.0, 2.0]
    assert embedder.dimension == 3
    assert [r["input"] for r in requests] == [["b", "cc"], ["aaa"]]
    assert all(r["auth"] == "Bearer sk-test" and r["model"] == "tiny" for r in requests)
