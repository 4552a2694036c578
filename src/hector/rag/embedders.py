"""Embedders: text → vectors, in batches, with the dimension checked on every answer.

The local, OpenAI and Ollama embedders live here; Cohere's in ``embedders_cohere``, as its SDK
is an optional extra, imported only when used.
"""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import ollama
import openai

from hector.config.base import TLSClientOptions
from hector.config.checks import EMBEDDER_TYPES
from hector.config.schema import EmbedderConfig
from hector.config.tls import effective_tls, embedder_component
from hector.errors import ConfigError, ProviderError, ProviderHTTPError, ProviderTimeoutError
from hector.http_client import create_async_client
from hector.observability import retrieval as telemetry
from hector.observability.tracing import inject_trace_context
from hector.providers.retry import Retryable, RetryPolicy, call_with_retries, is_retryable_status
from hector.rag.backends.common import without_credentials
from hector.tls import create_ssl_context, describe_tls_error, find_tls_error

OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
NO_KEY_PLACEHOLDER = "none"  # a keyless OpenAI-compatible server still needs a value

Batch = Callable[[list[str]], Awaitable[list[list[float]]]]


@dataclass(frozen=True)
class EmbedderFailures:
    """One embedder's exceptions, worded alike for every kind.

    None shows the API key: a proxy may echo request headers back in its error body, so server
    text is redacted.
    """

    kind: str
    name: str
    host: str
    timeout: float
    secret: str | None = None

    def __post_init__(self) -> None:
        # A proxy's basic-auth credentials may sit in the host URL: never in a message.
        object.__setattr__(self, "host", without_credentials(self.host))

    @property
    def where(self) -> str:
        return f"embedder {self.name!r} ({self.kind})"

    def redact(self, text: str) -> str:
        return text.replace(self.secret, "[redacted]") if self.secret else text

    def http(self, status: int, detail: str) -> ProviderHTTPError:
        return ProviderHTTPError(self.where, status, self.redact(detail) or "no detail given")

    def timed_out(self) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"{self.where}: no answer from {self.host} within {self.timeout:g}s "
            f"(raise `timeout` in embedders.{self.name} if the model needs longer)"
        )

    def unreachable(self, reason: BaseException) -> ProviderError:
        if find_tls_error(reason) is not None:
            return ProviderError(
                f"{self.where}: TLS connection to {self.host} failed: {describe_tls_error(reason)} "
                f"(TLS options go in embedders.{self.name} or at the top level)"
            )
        return ProviderError(
            f"{self.where}: cannot connect to {self.host}: {self.redact(str(reason))}; "
            f"check `host` in embedders.{self.name} and that the server is running"
        )


class Embedder(ABC):
    """Turns texts into vectors of one fixed length.

    ``embed`` splits its input into ``batch_size`` requests; subclasses implement one batch.
    ``embed_query`` is for search queries: models trained with separate query and document
    inputs (Cohere's) override it; for the others a query is embedded like any text.
    """

    name: str
    model: str
    dimension: int | None
    """Known up front for models Hector knows, else learned from the first answer."""
    batch_size: int = 32

    @abstractmethod
    async def _embed_batch(self, texts: list[str]) -> list[list[float]]: ...

    @property
    def kind(self) -> str:
        """The embedder's type for metrics: ``OllamaEmbedder`` → ``ollama``."""
        return type(self).__name__.removesuffix("Embedder").lower() or "custom"

    @property
    def identity(self) -> str:
        """What must stay the same for stored vectors to remain comparable with new ones."""
        return f"{type(self).__name__}:{self.model}"

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """The vectors of *texts* to be stored (document chunks), in order."""
        return await self._in_batches(texts, self._embed_batch)

    async def embed_query(self, text: str) -> list[float]:
        """The vector of a search query, to compare with stored ones."""
        return (await self.embed([text]))[0]

    async def _in_batches(self, texts: list[str], embed_batch: Batch) -> list[list[float]]:
        # One span and one count per call, not per batch: what a caller waited for.
        with telemetry.embedding(self.kind, self.model, self.name, len(texts)):
            return await self._batched(texts, embed_batch)

    async def _batched(self, texts: list[str], embed_batch: Batch) -> list[list[float]]:
        # Batches of similar lengths: a batch is padded to its longest text, so mixing a title
        # with a full chunk would spend most of the work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            batch = [texts[i] for i in indices]
            got = await embed_batch(batch)
            if len(got) != len(batch):
                raise ProviderError(f"embedder {self.name!r}: {len(got)} vectors for {len(batch)} texts")
            for vector in got:
                if self.dimension is None:
                    self.dimension = len(vector)
                if len(vector) != self.dimension:
                    raise ProviderError(
                        f"embedder {self.name!r}: got a {len(vector)}-dimensional vector, expected "
                        f"{self.dimension} (check embedders.{self.name}.dimension and model)"
                    )
            for i, vector in zip(indices, got, strict=True):
                vectors[i] = vector
        return vectors

    async def aclose(self) -> None:  # noqa: B027  # most embedders hold nothing to close
        pass


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 on this machine: no server, no key, no network (384 dimensions)."""

    def __init__(self, name: str, cfg: EmbedderConfig, base_dir: Path) -> None:
        from hector.rag import minilm  # NumPy and the 90 MB model load only when used

        model_dir = None
        if cfg.model and cfg.model not in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
            # Any folder with the same files (a copy of the model, or a fine-tuned variant).
            model_dir = Path(cfg.model) if Path(cfg.model).is_absolute() else base_dir / cfg.model
        self._model = minilm.load(model_dir)
        self.name = name
        self.model = cfg.model or "all-MiniLM-L6-v2"
        self.dimension = self._model.dimension
        self.batch_size = cfg.batch_size
        if cfg.dimension is not None and cfg.dimension != self.dimension:
            raise ConfigError(
                f"embedder {name!r}: dimension {cfg.dimension} given, but the local model makes "
                f"{self.dimension}-dimensional vectors"
            )

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        # The encoder is pure NumPy (it releases the GIL in its matrix products): off the loop.
        matrix = await asyncio.to_thread(self._model.encode, texts)
        return cast(list[list[float]], matrix.tolist())


class OpenAIEmbedder(Embedder):
    """OpenAI's /v1/embeddings, or any server that speaks it; the SDK retries 429s and 5xx."""

    def __init__(self, name: str, cfg: EmbedderConfig, tls_defaults: TLSClientOptions | None) -> None:
        self.name = name
        self.model = cfg.model or "text-embedding-3-small"
        self.batch_size = cfg.batch_size
        self.dimension = cfg.dimension or OPENAI_DIMENSIONS.get(self.model)
        # Only the text-embedding-3 models can shorten their vectors on request.
        self._dimensions_param = (
            cfg.dimension if cfg.dimension and self.model.startswith("text-embedding-3") else None
        )
        api_key = (cfg.api_key.get_secret_value() if cfg.api_key else "") or os.environ.get("OPENAI_API_KEY")
        if not api_key and not cfg.host:
            raise ConfigError(
                f"embedder {name!r} (openai) has no API key: set api_key: ${{OPENAI_API_KEY}} and export it"
            )
        self._fail = EmbedderFailures(
            "openai", name, cfg.host or "https://api.openai.com/v1", cfg.timeout, api_key
        )
        http_client = create_async_client(
            component=embedder_component("openai", name),
            tls=effective_tls(cfg, tls_defaults),
            timeout=cfg.timeout,
        )
        # As for the chat models: the SDK accepts an httpx.AsyncClient at runtime.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY_PLACEHOLDER,
            base_url=cfg.host,
            max_retries=cfg.max_retries,
            http_client=cast(Any, http_client),
        )

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self._dimensions_param} if self._dimensions_param else {}
        try:
            response = await self._client.embeddings.create(model=self.model, input=texts, **extra)
        except openai.APITimeoutError as exc:  # before its base class, APIConnectionError
            raise self._fail.timed_out() from exc
        except openai.APIConnectionError as exc:
            raise self._fail.unreachable(exc.__cause__ or exc) from exc
        except openai.APIStatusError as exc:
            raise self._fail.http(exc.status_code, exc.message) from exc
        except openai.APIError as exc:
            raise ProviderError(f"{self._fail.where}: {self._fail.redact(str(exc))}") from exc
        # The API may answer out of order; `index` says which input each vector belongs to.
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    async def aclose(self) -> None:
        await self._client.close()


OLLAMA_HOST = "http://localhost:11434"
OLLAMA_MODEL = "nomic-embed-text"
OLLAMA_RETRY_DELAY = 0.5
"""First pause before a retry, doubled each time (with jitter): Ollama answers 5xx mostly while
it loads a model, which takes seconds."""

# Sizes of well-known models as pulled without a tag (or ``:latest``); other tags of the same
# model may differ (snowflake-arctic-embed:s is smaller), so those are learned from an answer.
OLLAMA_DIMENSIONS = {
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
    "bge-m3": 1024,
}


def _ollama_dimension(model: str) -> int | None:
    base, _, tag = model.partition(":")
    return OLLAMA_DIMENSIONS.get(base) if tag in ("", "latest") else None


def _ollama_retryable(exc: Exception) -> Retryable | None:
    """Server errors and refused connections are worth another try (Ollama may be starting or
    loading the model); a failed certificate check or a 4xx is not."""
    if isinstance(exc, ollama.ResponseError) and is_retryable_status(exc.status_code):
        return Retryable(f"HTTP {exc.status_code}")
    if isinstance(exc, ConnectionError | httpx.ConnectError) and find_tls_error(exc) is None:
        return Retryable("connection failed")
    return None


class OllamaEmbedder(Embedder):
    """An Ollama server's ``POST /api/embed`` through the ``ollama`` SDK, a batch a request."""

    def __init__(self, name: str, cfg: EmbedderConfig, tls_defaults: TLSClientOptions | None) -> None:
        self.name = name
        self.model = cfg.model or OLLAMA_MODEL
        self.batch_size = cfg.batch_size
        self.dimension = cfg.dimension or _ollama_dimension(self.model)
        host = cfg.host or OLLAMA_HOST
        api_key = cfg.api_key.get_secret_value() if cfg.api_key else None
        self._fail = EmbedderFailures("ollama", name, host, cfg.timeout, api_key)
        # The SDK builds its own httpx client from these keyword arguments, so Hector's TLS
        # context and timeouts go in that way, as for the Ollama chat models.
        self._client = ollama.AsyncClient(
            host=host,
            # A key only matters behind an authenticating proxy or on ollama.com; without one,
            # the SDK still sends $OLLAMA_API_KEY if that is set.
            headers={"authorization": f"Bearer {api_key}"} if api_key else None,
            timeout=httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 10.0)),
            verify=create_ssl_context(effective_tls(cfg, tls_defaults), embedder_component("ollama", name)),
            follow_redirects=False,
            event_hooks={"request": [inject_trace_context]},
        )
        self._retry = RetryPolicy(cfg.max_retries, OLLAMA_RETRY_DELAY, self._fail.where)

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        try:
            response = await call_with_retries(
                lambda: self._client.embed(model=self.model, input=texts), self._retry, _ollama_retryable
            )
        except ollama.ResponseError as exc:
            hint = f" (is the model pulled? ollama pull {self.model})" if exc.status_code == 404 else ""
            raise self._fail.http(exc.status_code, f"{exc.error}{hint}") from exc
        except httpx.TimeoutException as exc:  # before its base class, HTTPError
            raise self._fail.timed_out() from exc
        except (ConnectionError, httpx.HTTPError) as exc:
            # The SDK swaps a connect error for a generic ConnectionError; the real reason
            # (refused, TLS verification, DNS) survives as its context.
            reason = exc.__context__ if isinstance(exc, ConnectionError) and exc.__context__ else exc
            raise self._fail.unreachable(reason) from exc
        return [list(vector) for vector in response.embeddings]

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # the SDK leaves close() unannotated


def build_embedder(
    name: str, cfg: EmbedderConfig, base_dir: Path, tls_defaults: TLSClientOptions | None = None
) -> Embedder:
    if cfg.type == "local":
        return LocalEmbedder(name, cfg, base_dir)
    if cfg.type == "openai":
        return OpenAIEmbedder(name, cfg, tls_defaults)
    if cfg.type == "ollama":
        return OllamaEmbedder(name, cfg, tls_defaults)
    if cfg.type == "cohere":
        try:
            from hector.rag.embedders_cohere import CohereEmbedder
        except ModuleNotFoundError as exc:
            if exc.name != "cohere":
                raise
            raise ConfigError(
                f"embedder {name!r} (cohere) needs the Cohere SDK: pip install 'hector-agents[cohere]'"
            ) from None
        return CohereEmbedder(name, cfg, tls_defaults)
    raise ConfigError(
        f"embedder {name!r}: unknown type {cfg.type!r} (expected one of: {', '.join(EMBEDDER_TYPES)})"
    )
