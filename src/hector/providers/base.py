"""The contract every LLM provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypedDict

from hector.messages import ChatMessage, ModelResponse, ModelStreamEvent, ToolSpec


class ModelSettings(TypedDict, total=False):
    """Per-request knobs; a provider ignores what its API cannot express."""

    temperature: float
    max_tokens: int
    output_schema: dict[str, Any]
    """A JSON schema the answer must match (structured output)."""
    output_schema_name: str


class Model(ABC):
    """One configured model of one provider.

    Implementations must:
    - send ``messages`` (system first, if any) and ``tools`` in the provider's native format;
    - return tool calls with parsed ``arguments`` dicts and token usage;
    - raise ``ProviderTimeoutError`` on timeout and ``ProviderHTTPError`` for an error status,
      after their retries (429 and 5xx, with backoff, honouring ``Retry-After``) are spent;
    - never put the API key in an exception message.
    """

    provider: str
    model_name: str

    @abstractmethod
    async def request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> ModelResponse:
        """One complete, non-streaming answer."""

    @abstractmethod
    def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ModelSettings
    ) -> AsyncIterator[ModelStreamEvent]:
        """Text deltas as they arrive, then exactly one ``ResponseDone`` with the whole answer."""

    async def aclose(self) -> None:
        """Release connections. The default holds none."""
        return None
