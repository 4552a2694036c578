"""The openai embedder over HTTPS: the embedder's TLS options and the top-level defaults."""

from __future__ import annotations

import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hector.config import parse_config
from hector.config.schema import EmbedderConfig
from hector.rag.embedders import OpenAIEmbedder
from tests.tls.conftest import Certs, https


async def embeddings(request: Request) -> JSONResponse:
    texts = json.loads(await request.body())["input"]
    data = [{"object": "embedding", "index": i, "embedding": [1.0, 0.0, 0.0]} for i in range(len(texts))]
    return JSONResponse(
        {"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}}
    )


APP = Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])


@pytest.mark.parametrize(
    ("leaf", "own", "top", "expected"),
    [
        ("good", {}, {}, "unknown authority"),
        ("good", {"ca_certificate": "CA"}, {}, None),
        ("good", {}, {"ca_certificate": "CA"}, None),
        ("wrong_host", {"ca_certificate": "CA"}, {}, "not valid for this host"),
    ],
)
async def test_openai_embedder_over_https(
    certs: Certs, leaf: str, own: dict[str, str], top: dict[str, str], expected: str | None
) -> None:
    def resolve(options: dict[str, str]) -> dict[str, str]:
        return {k: (certs.ca if v == "CA" else v) for k, v in options.items()}

    async with https(APP, getattr(certs, leaf)) as url:
        cfg = EmbedderConfig.model_validate(
            {
                "type": "openai",
                "model": "m",
                "dimension": 3,
                "host": f"{url}/v1",
                "api_key": "k",
                "max_retries": 0,
                **resolve(own),
            }
        )
        embedder = OpenAIEmbedder("e", cfg, parse_config(resolve(top)).config)
        if expected is None:
            assert await embedder.embed(["a", "b"]) == [[1.0, 0.0, 0.0]] * 2
        else:
            with pytest.raises(Exception) as caught:
                await embedder.embed(["a"])
            assert expected in str(caught.value)
        await embedder.aclose()
