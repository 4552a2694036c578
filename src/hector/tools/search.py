"""The ``search`` tool: search over the calling agent's document stores.

The tool is shared by every agent that lists it; each call searches the stores of the agent
making it, with that agent's ``search`` settings (``hector.rag.retrieval.Searcher``). The call's
own arguments (mode, limit, threshold) override the tool's ``search`` block, which overrides the
stores' and the agent's. ``language`` keeps the chunks of one language (``meta["language"]``,
known from the file's extension at indexing time): the search goes deeper, then filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import ValidationError

from hector.config.schema import SearchConfig, SearchModeName, ToolConfig
from hector.errors import ToolError
from hector.rag.retrieval import MAX_LIMIT, Found, Searcher, cite
from hector.rag.sources import LANGUAGES, language_of
from hector.tools import Tool, ToolContext
from hector.tools.registry import ToolEnv

MODES = list(get_args(SearchModeName))


def _call_layer(arguments: dict[str, Any], max_limit: int) -> SearchConfig:
    """The call's arguments as the most specific search settings."""
    mode = arguments.get("type") or arguments.get("mode")
    if mode is not None and mode not in MODES:
        raise ToolError(f"unknown search type {mode!r}; use one of {', '.join(MODES)}")
    limit = arguments.get("limit") or arguments.get("top_k")
    try:
        # Limit 0 or none means the configured top_k; anything above the cap is cut to it.
        top_k = min(int(limit), max_limit) if limit else None
        threshold = arguments.get("threshold")
        return SearchConfig(
            search_mode=mode,
            top_k=max(1, top_k) if top_k is not None else None,
            threshold=float(threshold) if threshold is not None else None,
        )
    except (TypeError, ValueError, ValidationError) as exc:
        raise ToolError(f"invalid search arguments: {exc}") from exc


def _language(found: Found) -> str | None:
    meta = found.hit.chunk.meta
    # Chunks indexed before languages were recorded: the path still tells.
    return str(meta.get("language") or language_of(str(meta.get("path", found.hit.chunk.document))) or "")


def _wanted_language(value: Any) -> str:
    """The language asked for; an extension (``py``, ``.ts``) means its language."""
    text = str(value or "").strip().lower()
    return LANGUAGES.get(f".{text.lstrip('.')}", text) if text else ""


class SearchTool(Tool):
    description = (
        "Search the documents available to you. Returns the most relevant passages with their "
        "source file, line range and score; cite the sources you use."
    )

    def __init__(self, searchers: Mapping[str, Searcher], cfg: ToolConfig) -> None:
        # agent id → its searcher; filled by the runtime as it builds agents, read at call time.
        self._searchers = searchers
        self._cfg = cfg
        self.parameters = {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What to look for, in natural language or keywords.",
                },
                "type": {
                    "type": "string",
                    "enum": MODES,
                    "description": "hybrid: meaning and exact words; vector: meaning only; keyword: "
                    "mostly exact words; multi_query: several rewordings of the query; hyde: "
                    "search with an imagined answer. Default: the configured mode.",
                },
                "limit": {"type": "integer", "minimum": 1, "maximum": cfg.max_limit},
                "threshold": {
                    "type": "number",
                    "description": "Minimum semantic similarity (cosine, -1..1) of a result.",
                },
                "stores": {"type": "array", "items": {"type": "string"}, "description": "Only these stores."},
                "language": {
                    "type": "string",
                    "description": "Only passages of files in this language, e.g. python, go, "
                    "typescript, javascript, markdown.",
                },
            },
            "required": ["query"],
        }

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        query = str(arguments.get("query") or "").strip()
        if not query:
            raise ToolError("query must not be empty")
        searcher = self._searchers.get(ctx.agent_id)
        wanted = arguments.get("stores")
        stores = [s.name for s in searcher.stores] if searcher else []
        if wanted:
            stores = [name for name in stores if name in wanted]
        if searcher is None or not stores:
            return "No document stores are available to search."
        layers = [_call_layer(arguments, self._cfg.max_limit), self._cfg.search]
        limit = min(searcher.settings(layers).top_k, self._cfg.max_limit)
        language = _wanted_language(arguments.get("language"))
        if language:
            layers.insert(0, SearchConfig(top_k=MAX_LIMIT))
        found = await searcher.search(query, layers, stores)
        if language:
            found = [f for f in found if _language(f) == language]
        found = found[:limit]
        if not found:
            return f"No results for {query!r}" + (f" in {language} files." if language else ".")
        return "\n\n".join(
            f"[{i}] {cite(f.hit)} (score {f.hit.score:.3f}, store {f.store})\n{f.hit.chunk.text}"
            for i, f in enumerate(found, 1)
        )


def build(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return SearchTool(env.searchers, cfg)
