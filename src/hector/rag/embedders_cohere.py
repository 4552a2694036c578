"""``type: cohere`` embedders through Cohere's SDK (``POST /v2/embed``).

Cohere's models embed a text differently depending on its ``input_type``: chunks being indexed
are ``search_document`` and search queries ``search_query``; mixing them up costs recall.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

import cohere
import httpx
from cohere.core.api_error import ApiError

from hector.config.base import TLSClientOptions
from hector.config.schema import EmbedderConfig
from hector.config.tls import effective_tls, embedder_component
from hector.errors import ConfigError, ProviderError
from hector.http_client import create_async_client
from hector.rag.embedders import NO_KEY_PLACEHOLDER, Embedder, EmbedderFailures

DEFAULT_HOST = "https://api.cohere.com"
DEFAULT_MODEL = "embed-english-v3.0"
MAX_BATCH = 96
"""The most texts one ``/v2/embed`` request may carry."""
KEY_VARIABLES = ("COHERE_API_KEY", "CO_API_KEY")
"""Where the key is looked for when the configuration gives none (the second is the SDK's)."""

COHERE_DIMENSIONS = {
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "embed-multilingual-light-v3.0": 384,
    "embed-v4.0": 1536,
}

InputType = Literal["search_document", "search_query"]


def _base_url(host: str) -> str:
    # The SDK adds the API version itself (/v2/embed); the Go original's host carried /v1.
    return re.sub(r"/v[12]/?$", "", host.rstrip("/"))


def _detail(body: Any) -> str:
    """The message of a Cohere error body (``{"message": ...}``), else the body as text."""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return "" if body is None else str(body)


class CohereEmbedder(Embedder):
    def __init__(self, name: str, cfg: EmbedderConfig, tls_defaults: TLSClientOptions | None) -> None:
        self.name = name
        self.model = cfg.model or DEFAULT_MODEL
        self.batch_size = min(cfg.batch_size, MAX_BATCH)
        self.dimension = cfg.dimension or COHERE_DIMENSIONS.get(self.model)
        # Only the embed-v4 models shorten their vectors on request.
        self._output_dimension = (
            cfg.dimension if cfg.dimension and self.model.startswith("embed-v4") else None
        )
        api_key = (cfg.api_key.get_secret_value() if cfg.api_key else "") or next(
            (os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), ""
        )
        if not api_key and not cfg.host:
            raise ConfigError(
                f"embedder {name!r} (cohere) has no API key: set api_key: ${{COHERE_API_KEY}} and export it"
            )
        host = _base_url(cfg.host or DEFAULT_HOST)
        self._fail = EmbedderFailures("cohere", name, host, cfg.timeout, api_key or None)
        self._http = create_async_client(
            component=embedder_component("cohere", name),
            tls=effective_tls(cfg, tls_defaults),
            timeout=cfg.timeout,
        )
        # The SDK retries 429, 5xx and refused connections itself, with backoff, honouring
        # Retry-After; it takes its timeout from our client.
        self._client = cohere.AsyncClientV2(
            api_key=api_key or NO_KEY_PLACEHOLDER,
            base_url=host,
            client_name="hector",
            max_retries=cfg.max_retries,
            httpx_client=self._http,
            log_warning_experimental_features=False,
        )

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        return await self._embed_as(texts, "search_document")

    async def _embed_queries(self, texts: list[str]) -> list[list[float]]:
        return await self._embed_as(texts, "search_query")

    async def embed_query(self, text: str) -> list[float]:
        return (await self._in_batches([text], self._embed_queries))[0]

    async def _embed_as(self, texts: list[str], input_type: InputType) -> list[list[float]]:
        extra: dict[str, Any] = {"output_dimension": self._output_dimension} if self._output_dimension else {}
        try:
            response = await self._client.embed(
                texts=texts, model=self.model, input_type=input_type, embedding_types=["float"], **extra
            )
        except ApiError as exc:
            raise self._fail.http(exc.status_code or 0, _detail(exc.body)) from exc
        except httpx.TimeoutException as exc:  # before its base class, HTTPError
            raise self._fail.timed_out() from exc
        except httpx.HTTPError as exc:
            raise self._fail.unreachable(exc) from exc
        vectors = response.embeddings.float_
        if vectors is None:
            raise ProviderError(f"{self._fail.where}: the answer holds no float embeddings")
        return vectors

    async def aclose(self) -> None:
        await self._http.aclose()
