"""Retrieval over an agent's document stores: search modes that ask an LLM, re-ranking, and the
context injected into a prompt.

``DocumentStore.search`` answers one query on one store (vector, hybrid, keyword). A
``Searcher`` sits above it, one per agent: it resolves the settings of each store from the
layered ``search`` blocks, writes query variants (multi_query) or a hypothetical answer (hyde)
with an LLM, merges the stores' results and lets an LLM re-rank the best of them. Whatever the
LLM answers, search still returns results: a failed or malformed answer falls back to the plain
query or the original order, with a warning.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hector import observability
from hector.config.schema import (
    HydeConfig,
    MultiQueryConfig,
    RerankConfig,
    SearchConfig,
    SearchModeName,
)
from hector.errors import ToolError
from hector.messages import ChatMessage
from hector.observability import retrieval as telemetry
from hector.rag.documents import fuse
from hector.rag.vectors import Hit

if TYPE_CHECKING:
    from hector.providers.base import Model
    from hector.rag.documents import DocumentStore

log = logging.getLogger("hector.rag")

MAX_LIMIT = 100
RERANK_PASSAGE_CHARS = 1000  # what the re-ranking LLM sees of each passage
ModelFor = Callable[[str | None], "Model"]
"""An llm name → the model; None → the agent's own."""

VARIANTS_PROMPT = (
    "You rewrite search queries for a document search engine. Write {n} alternative queries "
    "for the user's query: other wordings, synonyms, more specific or more general phrasings. "
    "Answer with one query per line and nothing else."
)
HYDE_PROMPT = (
    "Write a short passage, three to five sentences, that answers the user's question as a "
    "document on the subject would. Answer with the passage only."
)
RERANK_PROMPT = (
    "You rank search results by how well they answer a query. Answer with a JSON array of the "
    "passage numbers, most relevant first, for example [3, 1, 2]. List every number once."
)


@dataclass(frozen=True)
class Settings:
    """Search settings once every level is merged."""

    top_k: int = 10
    threshold: float = 0.0
    preserve_case: bool = True
    mode: SearchModeName = "hybrid"
    alpha: float | None = None
    """Weight of the vector ranking in hybrid fusions (default 0.5)."""
    rerank: bool = False
    rerank_llm: str | None = None
    rerank_max: int = 20
    variations: int = 3
    variants_llm: str | None = None
    hyde_llm: str | None = None


def resolve(layers: Sequence[SearchConfig | None]) -> Settings:
    """Merge *layers*, most specific first: each key comes from the first layer that sets it."""
    given = [layer for layer in layers if layer is not None]

    def first(name: str, default: Any) -> Any:
        return next((v for layer in given if (v := getattr(layer, name)) is not None), default)

    defaults = Settings()
    rerank: RerankConfig | None = first("rerank", None)
    multi: MultiQueryConfig | None = first("multi_query", None)
    hyde: HydeConfig | None = first("hyde", None)
    # `multi_query.enabled` / `hyde.enabled` (the Go original's switches) pick the default mode.
    implied = "multi_query" if multi and multi.enabled else "hyde" if hyde and hyde.enabled else "hybrid"
    return Settings(
        top_k=first("top_k", defaults.top_k),
        threshold=first("threshold", defaults.threshold),
        preserve_case=first("preserve_case", defaults.preserve_case),
        mode=first("search_mode", implied),
        alpha=first("hybrid_alpha", None),
        rerank=bool(rerank and rerank.enabled),
        rerank_llm=rerank.llm if rerank else None,
        rerank_max=rerank.max_results if rerank else defaults.rerank_max,
        variations=multi.num_variations if multi else defaults.variations,
        variants_llm=multi.llm if multi else None,
        hyde_llm=hyde.llm if hyde else None,
    )


@dataclass(frozen=True)
class Found:
    hit: Hit
    store: str


def cite(hit: Hit) -> str:
    """Where a chunk comes from: path, page, lines."""
    meta = hit.chunk.meta
    where = str(meta.get("path", hit.chunk.document))
    if "page" in meta:
        where += f" (page {meta['page']})"
    if "start_line" in meta:
        where += f":{meta['start_line']}-{meta['end_line']}"
    return where


_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.):]|query\s*\d*\s*:)\s*", re.IGNORECASE)


def parse_variants(text: str, query: str, n: int) -> list[str]:
    """Up to *n* distinct queries from an LLM's answer, without bullets, numbers and quotes."""
    seen = {query.casefold()}
    out: list[str] = []
    for line in text.splitlines():
        variant = _BULLET.sub("", line).strip().strip("\"'`").strip()
        if variant and variant.casefold() not in seen:
            seen.add(variant.casefold())
            out.append(variant)
    return out[:n]


def parse_ranking(text: str, count: int) -> list[int] | None:
    """The 0-based order an LLM gave for *count* passages, or None when its answer is unusable.

    Numbers left out keep their original order after the ranked ones; a number out of range,
    or anything but numbers in the array, makes the whole answer unusable.
    """
    start = text.find("[")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except (json.JSONDecodeError, RecursionError):  # deep nesting ("[[[[…") overflows the parser
        return None
    if not isinstance(value, list) or not value:
        return None
    order: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= count:
            return None
        if item - 1 not in order:
            order.append(item - 1)
    return order + [i for i in range(count) if i not in order]


def distinct(found: Sequence[Found]) -> list[Found]:
    """*found* with each passage once, where it ranked best: stores over the same files (or one
    collection) find the same chunks, and a passage twice would only take another's place."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in found:
        key = (f.hit.chunk.id, f.hit.chunk.text)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def rank_score(position: int) -> float:
    """The score at 0-based *position* after re-ranking: 1.0 - 0.05 * position, at least 0.1."""
    return max(0.1, round(1.0 - 0.05 * position, 4))


@dataclass
class _Call:
    """What one search asked the LLM, so several stores share one variants/hyde answer."""

    variants: dict[tuple[str | None, int], list[str]] = field(default_factory=dict)
    passages: dict[str | None, str] = field(default_factory=dict)


class Searcher:
    """Search over one agent's document stores with the agent's ``search`` settings."""

    def __init__(self, stores: Sequence[DocumentStore], agent: SearchConfig, model_for: ModelFor) -> None:
        self.stores = list(stores)
        self.agent = agent
        self.model_for = model_for

    def settings(self, overrides: Sequence[SearchConfig | None] = ()) -> Settings:
        """The settings that apply to the whole search (top_k, rerank, case)."""
        return resolve([*overrides, self.agent])

    async def search(
        self,
        query: str,
        overrides: Sequence[SearchConfig | None] = (),
        stores: Collection[str] | None = None,
    ) -> list[Found]:
        """The best chunks of the agent's stores (or of *stores* among them), best first."""
        overall = self.settings(overrides)
        query = query.strip()
        if not query:
            raise ToolError("query must not be empty")
        if not overall.preserve_case:
            query = query.lower()
        depth = max(overall.top_k, overall.rerank_max if overall.rerank else 0)
        chosen = [s for s in self.stores if stores is None or s.name in stores]
        for store in chosen:
            # Before any LLM call (variants, hyde): waits for a store still being indexed at
            # start-up, fails at once for one that could not be.
            await store.readiness.wait()
        call = _Call()
        found: list[Found] = []
        for store in chosen:
            own = resolve([*overrides, store.cfg.search, self.agent])
            with telemetry.rag_search(store.name, own.mode, depth) as searched:
                hits = await self._store_search(store, query, own, depth, call)
                searched.note("rag.hits", len(hits))
            found += [Found(h, store.name) for h in hits]
        found.sort(key=lambda f: -f.hit.score)
        found = distinct(found)
        if overall.rerank and len(found) > 1:
            found = await self._rerank(query, found, overall)
        return found[: overall.top_k]

    async def _store_search(
        self, store: DocumentStore, query: str, s: Settings, depth: int, call: _Call
    ) -> list[Hit]:
        if s.mode in ("vector", "hybrid", "keyword"):
            # hybrid_alpha is hybrid's: keyword mode is always the keyword-heavy fusion (0.1).
            alpha = s.alpha if s.mode == "hybrid" else None
            return await store.search(query, depth, s.mode, s.threshold, alpha)
        if s.mode == "hyde":
            if s.hyde_llm not in call.passages:
                call.passages[s.hyde_llm] = await self._hypothetical(query, s.hyde_llm)
            # The passage is what gets embedded: answers resemble answers more than questions do.
            return await store.search(call.passages[s.hyde_llm], depth, "vector", s.threshold)
        key = (s.variants_llm, s.variations)
        if key not in call.variants:
            call.variants[key] = await self._variants(query, s.variants_llm, s.variations)
        rankings = [
            await store.search(q, depth, "hybrid", s.threshold, s.alpha) for q in [query, *call.variants[key]]
        ]
        # One fused ranking; a chunk found by several variants counts once, ranked higher.
        return fuse(rankings, depth)

    async def _ask(self, llm: str | None, system: str, user: str, purpose: str) -> str:
        model = self.model_for(llm)
        # Counted and traced like the agent's own model requests, with what it was for.
        with observability.current().llm_request(model, purpose=purpose) as request, request.current():
            response = await model.request([ChatMessage("system", system), ChatMessage("user", user)], [], {})
            request.usage = response.usage
        return response.text

    async def _variants(self, query: str, llm: str | None, n: int) -> list[str]:
        try:
            text = await self._ask(llm, VARIANTS_PROMPT.format(n=n), query, "multi_query")
        except Exception as exc:  # search still works with the user's own query
            log.warning(
                "multi_query: the LLM could not write query variants (%s); searching the query alone", exc
            )
            return []
        variants = parse_variants(text, query, n)
        log.debug("multi_query variants for %r: %s", query, variants)
        return variants

    async def _hypothetical(self, query: str, llm: str | None) -> str:
        try:
            passage = (await self._ask(llm, HYDE_PROMPT, query, "hyde")).strip()
        except Exception as exc:
            log.warning("hyde: the LLM could not write a hypothetical passage (%s); searching the query", exc)
            return query
        return passage or query

    async def _rerank(self, query: str, found: list[Found], s: Settings) -> list[Found]:
        head, tail = found[: s.rerank_max], found[s.rerank_max :]
        passages = "\n\n".join(
            f"[{i}] {cite(f.hit)}\n{f.hit.chunk.text[:RERANK_PASSAGE_CHARS]}" for i, f in enumerate(head, 1)
        )
        try:
            answer = await self._ask(
                s.rerank_llm, RERANK_PROMPT, f"Query: {query}\n\nPassages:\n\n{passages}", "rerank"
            )
        except Exception as exc:
            log.warning("rerank: the LLM call failed (%s); keeping the search order", exc)
            return found
        order = parse_ranking(answer, len(head))
        if order is None:
            log.warning("rerank: unusable answer from the LLM (%.200r); keeping the search order", answer)
            return found
        ranked = [head[i] for i in order] + tail
        return [Found(Hit(f.hit.chunk, rank_score(pos)), f.store) for pos, f in enumerate(ranked)]


def context_block(found: Sequence[Found], max_length: int) -> str:
    """Documents for a system prompt, each cut to *max_length* characters."""
    if not found:
        return ""
    parts = []
    for i, f in enumerate(found, 1):
        text = f.hit.chunk.text.strip()
        if len(text) > max_length:
            text = text[:max_length].rstrip() + "…"
        parts.append(f"[{i}] {cite(f.hit)}\n{text}")
    return (
        "Documents that may help with the user's message (from your document stores; cite the "
        "sources you use):\n\n" + "\n\n".join(parts)
    )


class ContextInjector:
    """``prompt.include_context``: the top documents for the user's message, for the prompt."""

    def __init__(self, searcher: Searcher, limit: int | None, max_length: int) -> None:
        self.searcher = searcher
        self.limit = limit
        self.max_length = max_length

    async def block(self, message: str) -> str:
        if not message.strip():
            return ""
        limit = SearchConfig(top_k=self.limit) if self.limit else None
        try:
            found = await self.searcher.search(message, [limit])
        except Exception as exc:  # the agent still answers, without the documents
            log.warning("include_context: document search failed (%s); answering without it", exc)
            return ""
        return context_block(found, self.max_length)
