"""Embedders over HTTPS: the embedder's TLS options and the top-level defaults (openai), and
the same rules for the ollama and cohere embedders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hector.config import parse_config
from hector.config.schema import EmbedderConfig
from hector.config.tls import embedder_component
from hector.errors import ProviderError
from hector.rag.embedders import OpenAIEmbedder, build_embedder
from tests.rag.embed_server import EmbedServer, word_vector
from tests.tls.conftest import Certs, https, insecure_records


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


@pytest.mark.parametrize("kind", ["ollama", "cohere"])
@pytest.mark.parametrize(
    ("leaf", "own", "top", "expected"),
    [
        ("good", {}, {}, "x509: certificate signed by unknown authority"),
        ("good", {"ca_certificate": "CA"}, {}, None),
        ("good", {}, {"ca_certificate": "CA"}, None),
        ("good", {"insecure_skip_verify": True}, {}, None),
        ("wrong_host", {"ca_certificate": "CA"}, {}, "certificate is not valid for this host"),
    ],
)
async def test_ollama_and_cohere_embedders_over_https(
    certs: Certs,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    leaf: str,
    own: dict[str, object],
    top: dict[str, object],
    expected: str | None,
) -> None:
    def resolve(options: dict[str, object]) -> dict[str, object]:
        return {k: (certs.ca if v == "CA" else v) for k, v in options.items()}

    server = EmbedServer(dimension=3)
    async with https(server.app, getattr(certs, leaf)) as url:
        cfg = EmbedderConfig.model_validate(
            # The Cohere SDK retries failed handshakes too (with a 1 s backoff): not here. Ollama's
            # keep their retries: a certificate that failed to verify is not tried again.
            {
                "type": kind,
                "model": "m",
                "host": url,
                "api_key": "k",
                "max_retries": 0 if kind == "cohere" else 3,
                **resolve(own),
            }
        )
        embedder = build_embedder("e", cfg, Path("."), parse_config(resolve(top)).config)
        try:
            if expected is None:
                assert await embedder.embed(["a b"]) == [word_vector("a b", 3)]
                assert await embedder.embed_query("c") == word_vector("c", 3)
            else:
                with pytest.raises(ProviderError) as caught:
                    await embedder.embed(["a"])
                message = str(caught.value)
                assert message.startswith(f"embedder 'e' ({kind}): TLS connection to {url} failed: ")
                assert (
                    expected in message and "(TLS options go in embedders.e or at the top level)" in message
                )
                assert server.requests == []
                assert not [r for r in caplog.records if "retry" in r.getMessage()]
        finally:
            await embedder.aclose()
    warnings = insecure_records(caplog, embedder_component(kind, "e"))
    assert len(warnings) == (1 if own.get("insecure_skip_verify") else 0)
