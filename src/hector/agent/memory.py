"""Working memory: which part of a conversation's history the model sees on each turn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hector import observability
from hector.messages import ChatMessage
from hector.providers.base import Model

SUMMARY_PROMPT = (
    "Summarize the conversation below for your own future reference. Keep names, numbers, "
    "decisions, open questions and anything the user asked you to remember. Be concise."
)


def estimate_tokens(messages: Sequence[ChatMessage]) -> int:
    # About four characters per token for English; exact counts need the model's tokenizer,
    # which not every provider ships. Tool calls count through their JSON arguments.
    chars = sum(
        len(m.content) + sum(len(str(c.arguments)) + len(c.name) for c in m.tool_calls) for m in messages
    )
    return chars // 4 + 4 * len(messages)


def _safe_start(messages: Sequence[ChatMessage], start: int) -> int:
    """Move *start* forward to a user message, so a tool call is never cut from its result."""
    while start < len(messages) and messages[start].role != "user":
        start += 1
    return start


@dataclass(frozen=True)
class MemoryView:
    messages: list[ChatMessage]
    summary: str | None = None
    summarized_upto: int = 0
    """How many of the stored messages the summary covers."""


class BufferWindowMemory:
    """The last ``window_size`` messages, trimmed so no tool exchange is split."""

    def __init__(self, window_size: int) -> None:
        self.window_size = window_size

    async def view(
        self, history: Sequence[ChatMessage], summary: str | None, summarized_upto: int
    ) -> MemoryView:
        start = _safe_start(history, max(0, len(history) - self.window_size))
        return MemoryView(list(history[start:]))


class SummaryBufferMemory:
    """Keeps recent messages verbatim; when the history passes ``budget * threshold`` tokens,
    older messages are replaced by a summary written by the agent's own model."""

    def __init__(self, model: Model, budget: int, threshold: float, target: float) -> None:
        self.model = model
        self.budget = budget
        self.threshold = threshold
        self.target = target

    async def view(
        self, history: Sequence[ChatMessage], summary: str | None, summarized_upto: int
    ) -> MemoryView:
        recent = history[summarized_upto:]
        if estimate_tokens(recent) <= self.budget * self.threshold:
            return MemoryView(list(recent), summary, summarized_upto)
        keep_tokens = int(self.budget * self.target * 0.8)
        cut = len(history)
        while cut > summarized_upto and estimate_tokens(history[cut - 1 :]) <= keep_tokens:
            cut -= 1
        cut = _safe_start(history, cut)
        older = history[summarized_upto:cut]
        if not older:
            return MemoryView(list(recent), summary, summarized_upto)
        transcript = "\n".join(f"{m.role}: {m.content}" for m in older if m.content)
        if summary:
            transcript = f"Earlier summary: {summary}\n{transcript}"
        prompt = [ChatMessage("system", SUMMARY_PROMPT), ChatMessage("user", transcript)]
        # A model request like the loop's (counted, traced), marked as the memory's own.
        with observability.current().llm_request(self.model, purpose="summary") as request, request.current():
            response = await self.model.request(prompt, [], {})
            request.usage = response.usage
        return MemoryView(list(history[cut:]), response.text.strip() or summary, cut)


WorkingMemory = BufferWindowMemory | SummaryBufferMemory
