"""The ``search`` tool: semantic and keyword search over the calling agent's document stores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hector.config.schema import ToolConfig
from hector.errors import ToolError
from hector.rag.documents import DocumentStore, SearchMode
from hector.rag.vectors import Hit
from hector.tools import Tool, ToolContext
from hector.tools.registry import ToolEnv

MAX_RESULTS = 50
DEFAULT_TOP_K = 5


def _cite(hit: Hit) -> str:
    meta = hit.chunk.meta
    where = str(meta.get("path", hit.chunk.document))
    if "page" in meta:
        where += f" (page {meta['page']})"
    if "start_line" in meta:
        where += f":{meta['start_line']}-{meta['end_line']}"
    return where


class SearchTool(Tool):
    description = (
        "Search the documents available to you. Returns the most relevant passages with their "
        "source file, line range and score; cite the sources you use."
    )
    parameters = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for, in natural language or keywords."},
            "mode": {
                "type": "string",
                "enum": ["hybrid", "vector"],
                "description": "hybrid (default): meaning and exact words; vector: meaning only.",
            },
            "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": DEFAULT_TOP_K},
            "threshold": {
                "type": "number",
                "description": "Minimum semantic similarity (cosine, 0..1) of a result; default 0.",
            },
            "stores": {"type": "array", "items": {"type": "string"}, "description": "Only these stores."},
        },
        "required": ["query"],
    }

    def __init__(self, scopes: Mapping[str, Sequence[DocumentStore]]) -> None:
        # agent id → its stores; filled by the runtime as it builds agents, read at call time.
        self._scopes = scopes

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        query = str(arguments.get("query") or "").strip()
        if not query:
            raise ToolError("query must not be empty")
        mode: SearchMode = "vector" if arguments.get("mode") == "vector" else "hybrid"
        top_k = max(1, min(int(arguments.get("top_k") or DEFAULT_TOP_K), MAX_RESULTS))
        threshold = float(arguments.get("threshold") or 0.0)
        stores = list(self._scopes.get(ctx.agent_id, ()))
        wanted = arguments.get("stores")
        if wanted:
            stores = [s for s in stores if s.name in wanted]
        if not stores:
            return "No document stores are available to search."
        hits: list[tuple[Hit, str]] = []
        for store in stores:
            hits += [(h, store.name) for h in await store.search(query, top_k, mode, threshold)]
        hits.sort(key=lambda pair: -pair[0].score)
        if not hits:
            return f"No results for {query!r}."
        blocks = [
            f"[{i}] {_cite(hit)} (score {hit.score:.3f}, store {store})\n{hit.chunk.text}"
            for i, (hit, store) in enumerate(hits[:top_k], 1)
        ]
        return "\n\n".join(blocks)


def build(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return SearchTool(env.document_stores)
