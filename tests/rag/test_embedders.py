"""Embedders: the offline MiniLM model, batching and dimension checks, and the OpenAI, Ollama
and Cohere embedders against scripted servers speaking their wire APIs."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hector.assembly import build_runtime
from hector.cli import main
from hector.cli.zeroconfig import zero_config
from hector.config import parse_config
from hector.config.schema import EmbedderConfig
from hector.errors import ConfigError, ProviderError, ProviderHTTPError
from hector.rag.embedders import Embedder, build_embedder
from tests.harness import serve_app
from tests.rag.corpus import write_labelled
from tests.rag.embed_server import EmbedServer, word_vector


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


async def test_unknown_embedder_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = "embedder 'v': unknown type 'voyage' (expected one of: local, openai, ollama, cohere)"
    with pytest.raises(ConfigError) as caught:
        build_embedder("v", EmbedderConfig(type="voyage"), tmp_path)
    assert str(caught.value) == expected
    (tmp_path / "hector.yaml").write_text("embedders: {v: {type: voyage}}\n")
    assert main(["validate", str(tmp_path / "hector.yaml")]) == 1
    assert expected in capsys.readouterr().err


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
        cfg = EmbedderConfig(
            type="openai", model="tiny", host=f"{url}/v1", api_key=SecretStr("sk-test"), batch_size=2
        )
        embedder = build_embedder("oa", cfg, tmp_path)
        try:
            vectors = await embedder.embed(["aaa", "b", "cc"])
        finally:
            await embedder.aclose()
    assert [v[0] for v in vectors] == [3.0, 1.0, 2.0]
    assert embedder.dimension == 3
    assert [r["input"] for r in requests] == [["b", "cc"], ["aaa"]]
    assert all(r["auth"] == "Bearer sk-test" and r["model"] == "tiny" for r in requests)


@pytest.fixture
async def embed_server() -> AsyncIterator[EmbedServer]:
    server = EmbedServer(dimension=4)
    async with serve_app(server.app) as server.url:
        yield server


def ollama(server: EmbedServer, **options: Any) -> Embedder:
    cfg = EmbedderConfig.model_validate({"type": "ollama", "host": server.url, **options})
    return build_embedder("ol", cfg, Path("."))


def cohere(server: EmbedServer, **options: Any) -> Embedder:
    cfg = EmbedderConfig.model_validate({"type": "cohere", "host": server.url, **options})
    return build_embedder("co", cfg, Path("."))


async def test_ollama_embedder_batches_over_api_embed(
    embed_server: EmbedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    embedder = ollama(embed_server, model="my-embed", batch_size=2)
    assert embedder.dimension is None
    texts = ["the cat sat", "a", "dogs bark loudly today", "ok go"]
    try:
        vectors = await embedder.embed(texts)
        query = await embedder.embed_query("cat")
    finally:
        await embedder.aclose()
    assert vectors == [word_vector(t, 4) for t in texts]
    assert query == word_vector("cat", 4)
    assert embedder.dimension == 4  # learned from the first answer
    sent = embed_server.of("/api/embed")
    assert [r.body for r in sent] == [
        {"model": "my-embed", "input": ["a", "ok go"]},
        {"model": "my-embed", "input": ["the cat sat", "dogs bark loudly today"]},
        {"model": "my-embed", "input": ["cat"]},
    ]
    assert all("authorization" not in r.headers for r in sent)


async def test_ollama_embedder_sends_its_key_and_checks_known_dimensions(embed_server: EmbedServer) -> None:
    # nomic-embed-text makes 768-dimensional vectors; a server answering otherwise is an error.
    embedder = ollama(embed_server, model="nomic-embed-text", api_key="ol-secret")
    assert embedder.dimension == 768
    with pytest.raises(ProviderError, match="got a 4-dimensional vector, expected 768"):
        await embedder.embed(["hello"])
    await embedder.aclose()
    assert embed_server.requests[0].headers["authorization"] == "Bearer ol-secret"
    with pytest.raises(ProviderError, match="got a 4-dimensional vector, expected 5"):
        await ollama(embed_server, dimension=5).embed(["hello"])


async def test_ollama_embedder_retries_a_server_error(embed_server: EmbedServer) -> None:
    embed_server.fail(500, {"error": "model is loading"})
    embedder = ollama(embed_server, model="tiny")
    assert await embedder.embed(["hello world"]) == [word_vector("hello world", 4)]
    await embedder.aclose()
    assert len(embed_server.requests) == 2
    embed_server.fail(503, {"error": "busy"})
    embed_server.fail(503, {"error": "still busy"})
    embedder = ollama(embed_server, model="tiny", max_retries=1)
    with pytest.raises(ProviderHTTPError, match=r"embedder 'ol' \(ollama\) answered HTTP 503: still busy"):
        await embedder.embed(["hello"])
    await embedder.aclose()


async def test_ollama_embedder_rejected_key_is_clear_and_not_shown(embed_server: EmbedServer) -> None:
    embed_server.fail(401)  # the body echoes the Authorization header back
    embedder = ollama(embed_server, api_key="ol-secret-123")
    with pytest.raises(ProviderHTTPError) as caught:
        await embedder.embed(["hello"])
    await embedder.aclose()
    assert caught.value.status_code == 401
    assert "answered HTTP 401: bad credentials: Bearer [redacted]" in str(caught.value)
    assert "ol-secret-123" not in str(caught.value)
    assert len(embed_server.requests) == 1  # a 401 is not retried


async def test_ollama_embedder_missing_model_and_no_server(embed_server: EmbedServer) -> None:
    embed_server.fail(404, {"error": 'model "nomic-embed-text" not found, try pulling it first'})
    embedder = ollama(embed_server)
    with pytest.raises(ProviderHTTPError, match="ollama pull nomic-embed-text"):
        await embedder.embed(["hello"])
    await embedder.aclose()
    cfg = EmbedderConfig(type="ollama", host="http://127.0.0.1:9", max_retries=0)
    embedder = build_embedder("ol", cfg, Path("."))
    with pytest.raises(
        ProviderError, match=r"cannot connect to http://127.0.0.1:9.*check `host` in embedders.ol"
    ):
        await embedder.embed(["hello"])
    await embedder.aclose()


@pytest.mark.parametrize("kind", ["openai", "ollama", "cohere"])
async def test_credentials_in_the_host_url_are_never_shown(kind: str) -> None:
    """A proxy's basic-auth user and password in ``host``: used, but kept out of every message."""
    cfg = EmbedderConfig(type=kind, host="http://proxy-user:pw-s3cret@127.0.0.1:9/v1", max_retries=0)
    embedder = build_embedder("e", cfg, Path("."))
    with pytest.raises(ProviderError) as caught:
        await embedder.embed(["hello"])
    assert "cannot connect to http://127.0.0.1:9" in str(caught.value)
    assert "pw-s3cret" not in str(caught.value) and "proxy-user" not in str(caught.value)
    await embedder.aclose()


async def test_cohere_embedder_over_v2_embed(embed_server: EmbedServer) -> None:
    # The Go original's host ends in /v1; the SDK adds the version itself.
    embedder = cohere(
        embed_server, host=f"{embed_server.url}/v1", api_key="co-key", batch_size=500, dimension=4
    )
    texts = [f"text number {i}" for i in range(100)]
    try:
        vectors = await embedder.embed(texts)
        query = await embedder.embed_query("number 7")
    finally:
        await embedder.aclose()
    assert vectors == [word_vector(t, 4) for t in texts]
    assert query == word_vector("number 7", 4)
    sent = embed_server.of("/v2/embed")
    assert [len(r.body["texts"]) for r in sent] == [96, 4, 1]  # at most 96 texts a request
    assert sorted(t for r in sent[:2] for t in r.body["texts"]) == sorted(texts)
    assert [r.body["input_type"] for r in sent] == ["search_document", "search_document", "search_query"]
    assert all(r.body["model"] == "embed-english-v3.0" for r in sent)
    assert all(r.body["embedding_types"] == ["float"] for r in sent)
    assert all(r.headers["authorization"] == "Bearer co-key" for r in sent)


@pytest.mark.parametrize("variable", ["COHERE_API_KEY", "CO_API_KEY"])
async def test_cohere_key_from_the_environment(
    embed_server: EmbedServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in ("COHERE_API_KEY", "CO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r"no API key: set api_key: \$\{COHERE_API_KEY\}"):
        build_embedder("co", EmbedderConfig(type="cohere"), Path("."))
    monkeypatch.setenv(variable, "env-key")
    embedder = cohere(embed_server, model="embed-english-light-v3.0", dimension=4)
    await embedder.embed(["hi"])
    await embedder.aclose()
    assert embed_server.requests[0].headers["authorization"] == "Bearer env-key"
    assert embed_server.requests[0].body["model"] == "embed-english-light-v3.0"


async def test_cohere_embedder_retries_and_checks_dimensions(embed_server: EmbedServer) -> None:
    embed_server.fail(500, {"message": "internal error"}, **{"retry-after-ms": "10"})
    embedder = cohere(embed_server, api_key="k")
    assert embedder.dimension == 1024  # embed-english-v3.0
    with pytest.raises(ProviderError, match="got a 4-dimensional vector, expected 1024"):
        await embedder.embed(["hello"])
    await embedder.aclose()
    assert len(embed_server.requests) == 2  # the 500, then the answer
    embedder = cohere(embed_server, api_key="k", model="custom")
    assert await embedder.embed(["hello"]) == [word_vector("hello", 4)]
    await embedder.aclose()


async def test_cohere_rejected_key_is_clear_and_not_shown(embed_server: EmbedServer) -> None:
    embed_server.fail(401)  # the body echoes the Authorization header back
    embedder = cohere(embed_server, api_key="co-secret-456")
    with pytest.raises(ProviderHTTPError) as caught:
        await embedder.embed(["hello"])
    await embedder.aclose()
    assert str(caught.value) == (
        "embedder 'co' (cohere) answered HTTP 401: bad credentials: Bearer [redacted]"
    )
    assert len(embed_server.requests) == 1


@pytest.mark.parametrize("kind", ["ollama", "cohere"])
async def test_validate_index_and_search_with_a_remote_embedder(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_labelled(tmp_path / "kb")
    monkeypatch.setenv("COHERE_API_KEY", "co-env-key")
    server = EmbedServer(dimension=256)
    async with serve_app(server.app) as url:
        embedder: dict[str, Any] = {"type": kind, "host": url, "model": "tiny"}
        if kind == "cohere":
            embedder["api_key"] = "${COHERE_API_KEY}"
        config = {
            "version": "2",
            "llms": {"t": {"type": "test"}},
            "embedders": {"remote": embedder},
            "document_stores": {"kb": {"path": str(tmp_path / "kb"), "embedder": "remote"}},
            "agents": {"helper": {"llm": "t", "tools": ["search"]}},
        }
        (tmp_path / "hector.yaml").write_text(yaml.safe_dump(config))
        assert main(["validate", str(tmp_path / "hector.yaml")]) == 0
        assert capsys.readouterr().out.strip().endswith("hector.yaml: valid")
        loaded = parse_config(config, "<test>").config
        async with build_runtime(loaded, tmp_path) as runtime:  # indexes the store on start
            assert runtime.library is not None
            hits = await runtime.library.stores["kb"].search(
                "reset a forgotten password", top_k=1, mode="vector"
            )
    assert [h.chunk.document for h in hits] == ["passwords.md"]
    query = server.requests[-1]
    indexed = server.requests[:-1]
    assert len(indexed) >= 1 and all(r.body["model"] == "tiny" for r in server.requests)
    if kind == "ollama":
        assert query.body["input"] == ["reset a forgotten password"]
        assert sum(len(r.body["input"]) for r in indexed) >= 12  # every file's chunks
    else:
        assert query.body["texts"] == ["reset a forgotten password"]
        assert query.body["input_type"] == "search_query"
        assert {r.body["input_type"] for r in indexed} == {"search_document"}
        assert {r.headers["authorization"] for r in server.requests} == {"Bearer co-env-key"}


def test_zero_config_embedder_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def embedders(**flags: Any) -> Any:
        data = zero_config(provider="test", docs_folder=tmp_path, **flags)
        parse_config(data, "<zero-config>")  # a configuration `hector serve` accepts
        return data.get("embedders")

    assert embedders() is None  # the offline local embedder
    # A model alone is an Ollama model, as the Go original's flag meant.
    assert embedders(embedder_model="nomic-embed-text") == {
        "default": {"type": "ollama", "model": "nomic-embed-text"}
    }
    assert embedders(embedder="openai") == {"default": {"type": "openai"}}
    with pytest.raises(ConfigError, match="need --docs-folder"):
        zero_config(provider="test", embedder="ollama")
    (tmp_path / "c.yaml").write_text("llms: {t: {type: test}}\n")
    assert main(["serve", "--config", str(tmp_path / "c.yaml"), "--embedder-model", "m"]) == 1
    assert "cannot be combined with zero-config flags: --embedder-model" in capsys.readouterr().err
