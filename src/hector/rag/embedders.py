"""Embedders: text → vectors, in batches, with the dimension checked on every answer."""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, cast

import openai

from hector.config.base import TLSClientOptions
from hector.config.schema import EmbedderConfig
from hector.config.tls import effective_tls, embedder_component
from hector.errors import ConfigError, ProviderError
from hector.http_client import create_async_client
from hector.tls import describe_tls_error, find_tls_error

OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
NO_KEY_PLACEHOLDER = "none"  # a keyless OpenAI-compatible server still needs a value


class Embedder(ABC):
    """Turns texts into vectors of one fixed length.

    ``embed`` splits its input into ``batch_size`` requests; subclasses implement one batch.
    """

    name: str
    model: str
    dimension: int | None
    """Known up front for models Hector knows, else learned from the first answer."""
    batch_size: int = 32

    @abstractmethod
    async def _embed_batch(self, texts: list[str]) -> list[list[float]]: ...

    @property
    def identity(self) -> str:
        """What must stay the same for stored vectors to remain comparable with new ones."""
        return f"{type(self).__name__}:{self.model}"

    async def embed(self, texts: list[str]) -> list[list[float]]:
        # Batches of similar lengths: a batch is padded to its longest text, so mixing a title
        # with a full chunk would spend most of the work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            batch = [texts[i] for i in indices]
            got = await self._embed_batch(batch)
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
        except openai.APIConnectionError as exc:
            reason = exc.__cause__ or exc
            if find_tls_error(reason) is not None:
                raise ProviderError(
                    f"embedder {self.name!r} (openai): TLS connection failed: {describe_tls_error(reason)} "
                    f"(TLS options go in embedders.{self.name} or at the top level)"
                ) from exc
            raise ProviderError(f"embedder {self.name!r} (openai): cannot connect: {reason}") from exc
        except openai.APIError as exc:
            raise ProviderError(f"embedder {self.name!r} (openai): {type(exc).__name__}: {exc}") from exc
        # The API may answer out of order; `index` says which input each vector belongs to.
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    async def aclose(self) -> None:
        await self._client.close()


def build_embedder(
    name: str, cfg: EmbedderConfig, base_dir: Path, tls_defaults: TLSClientOptions | None = None
) -> Embedder:
    if cfg.type == "local":
        return LocalEmbedder(name, cfg, base_dir)
    if cfg.type == "openai":
        return OpenAIEmbedder(name, cfg, tls_defaults)
    raise ConfigError(
        f"embedder {name!r}: type {cfg.type!r} is not supported in this version yet (use local or openai)"
    )
