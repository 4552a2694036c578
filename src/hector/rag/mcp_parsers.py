"""Document parsing by MCP tools (``document_stores.<name>.mcp_parsers``), e.g. a Docling server.

For a file whose extension is listed, the store calls the listed tools in order and indexes the
text of the first one that answers. Which goes first, MCP or the native parsers, is decided by
priority: the MCP parsers' ``priority`` (default 8) against the native parsers' 5, the higher
first, a tie going to native; ``prefer_native`` puts native first whatever the priority. The
one that goes second is the fallback: when the MCP tools fail, native parsing is used (with a
warning); when native parsing finds no text (a .pptx, a scanned PDF), the MCP tools are asked.

A tool gets the file the way its input schema asks for it: the absolute path in the first of
``path``, ``file_path``, ``source``, ``uri``, … it declares (``file://`` URI for ``uri``/``url``),
the bytes base64-encoded in ``content_base64`` (or ``base64``, ``data``) and the file's name in
``filename``. A tool that declares none of these gets ``{"path": <absolute path>}``, so the
MCP server must be able to read the folder (stdio servers run on the same machine).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hector.config.schema import Config, MCPParsersConfig
from hector.errors import ConfigError, ToolError
from hector.rag.sources import Section, extension, parse_file

if TYPE_CHECKING:
    from mcp_types import Tool as MCPToolInfo

    from hector.rag.documents import DocumentStore
    from hector.tools.mcp import MCPToolSource

log = logging.getLogger("hector.rag")

NATIVE_PRIORITY = 5
PATH_KEYS = ("path", "file_path", "filepath", "file", "source", "document", "document_path", "uri", "url")
CONTENT_KEYS = ("content_base64", "file_base64", "base64", "data")
NAME_KEYS = ("filename", "file_name", "name")


def arguments_for(schema: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The arguments that hand the file at *path* to a tool with input *schema*."""
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    key = next((k for k in PATH_KEYS if k in properties), None)
    if key is not None:
        arguments[key] = path.as_uri() if key in ("uri", "url") else str(path)
    content = next((k for k in CONTENT_KEYS if k in properties), None)
    if content is not None:
        arguments[content] = base64.b64encode(path.read_bytes()).decode("ascii")
        name = next((k for k in NAME_KEYS if k in properties), None)
        if name is not None:
            arguments[name] = path.name
    return arguments or {"path": str(path)}


def _text(result: Any) -> str:
    from hector.tools.mcp import result_text

    structured = result.structured_content
    # A structured answer such as {"markdown": "..."} carries the text in one field.
    if isinstance(structured, dict) and not any(getattr(b, "type", "") == "text" for b in result.content):
        for field in ("text", "markdown", "content", "result"):
            if isinstance(structured.get(field), str):
                return str(structured[field])
    return result_text(result)


@dataclass(frozen=True)
class ParserTool:
    source: MCPToolSource
    info: MCPToolInfo

    def describe(self) -> str:
        return f"MCP tool {self.info.name} of {self.source.name}"

    async def text(self, path: Path) -> str:
        arguments = await asyncio.to_thread(arguments_for, self.info.input_schema, path)
        result = await self.source.call(self.info.name, arguments)
        text = _text(result)
        if result.is_error:
            raise ToolError(f"{self.describe()} failed: {text.strip()[:300] or 'no reason given'}")
        if not text.strip():
            raise ToolError(f"{self.describe()} returned no text")
        return text


class MCPParser:
    """The parsing of one document store with ``mcp_parsers``: ``parse_file`` replaces the
    store's native one."""

    def __init__(self, store: str, cfg: MCPParsersConfig, tools: Sequence[ParserTool]) -> None:
        self.store = store
        self.extensions = set(cfg.extensions)
        self.tools = list(tools)
        self.native_first = cfg.prefer_native or cfg.priority <= NATIVE_PRIORITY

    async def _mcp(self, path: Path) -> list[Section]:
        reasons = []
        for tool in self.tools:
            try:
                return [Section(await tool.text(path))]
            except Exception as exc:  # the next tool, then the fallback, may still read it
                reasons.append(str(exc) or type(exc).__name__)
        raise ToolError("; ".join(reasons))

    async def parse_file(self, rel: str, path: Path) -> list[Section]:
        if extension(rel) not in self.extensions:
            return await parse_file(rel, path)
        if self.native_first:
            try:
                sections = await parse_file(rel, path)
            except Exception as exc:
                log.info(
                    "document store %s: native parsing of %s failed (%s); asking MCP", self.store, rel, exc
                )
                sections = []
            # No text at all (a format only the MCP server knows, a scanned PDF): MCP's turn.
            return sections if any(s.text.strip() for s in sections) else await self._mcp(path)
        try:
            return await self._mcp(path)
        except ToolError as exc:
            log.warning(
                "document store %s: MCP parsing of %s failed (%s); using the native parser",
                self.store, rel, exc,
            )  # fmt: skip
            sections = await parse_file(rel, path)
            if not any(s.text.strip() for s in sections):
                # Not indexed, so not recorded: the next indexing run asks the MCP server again.
                raise ToolError(f"MCP parsing failed ({exc}) and the native parsers find no text") from None
            return sections


def sources_needed(config: Config, stores: Iterable[DocumentStore]) -> list[str]:
    """The MCP sources (tool keys) that the *stores*' parsers may call: those named in
    ``tool_names``; for a tool named by its server's name, every enabled MCP source."""
    enabled = [n for n, t in config.tools.items() if t.type == "mcp" and t.enabled]
    needed: set[str] = set()
    for store in stores:
        parsers = store.cfg.mcp_parsers
        for name in parsers.tool_names if parsers else []:
            needed.update([name] if name in config.tools else enabled)
    return [n for n in enabled if n in needed]


def _tools_for(
    store: str,
    names: Sequence[str],
    sources: Mapping[str, MCPToolSource],
    found: Mapping[str, Sequence[MCPToolInfo]],
) -> list[ParserTool]:
    tools = []
    for name in names:
        if name in found:
            offered = found[name]
            if len(offered) != 1:
                raise ConfigError(
                    f"document store {store!r}: mcp_parsers names MCP source {name!r}, which offers "
                    f"{len(offered)} tools ({', '.join(t.name for t in offered)}); name the parsing tool"
                )
            tools.append(ParserTool(sources[name], offered[0]))
            continue
        match = next(((s, t) for s, infos in found.items() for t in infos if t.name == name), None)
        if match is None:
            offered_names = sorted({t.name for infos in found.values() for t in infos})
            raise ConfigError(
                f"document store {store!r}: no MCP source offers the parser tool {name!r} "
                f"(MCP tools: {', '.join(offered_names) or 'none'})"
            )
        tools.append(ParserTool(sources[match[0]], match[1]))
    return tools


def attach(
    stores: Iterable[DocumentStore],
    sources: Mapping[str, MCPToolSource],
    found: Mapping[str, Sequence[MCPToolInfo]],
) -> None:
    """Give each store with ``mcp_parsers`` its MCP parsing; *found*: source → its tools (started)."""
    for store in stores:
        cfg = store.cfg.mcp_parsers
        if cfg is None or not cfg.tool_names:
            continue
        tools = _tools_for(store.name, cfg.tool_names, sources, found)
        store.parse_file = MCPParser(store.name, cfg, tools).parse_file
        log.info(
            "document store %s: %s parsed by %s",
            store.name, " ".join(sorted(cfg.extensions)), ", ".join(t.describe() for t in tools),
        )  # fmt: skip


@contextlib.asynccontextmanager
async def mcp_parsing(config: Config, base_dir: Path, stores: Sequence[DocumentStore]) -> AsyncIterator[None]:
    """MCP parsing for *stores* outside a runtime (``hector index``): the sources they need are
    connected for the duration."""
    from hector.tools.mcp import MCPToolSource, start_sources

    names = sources_needed(config, stores)
    if not names:
        yield
        return
    sources = {n: MCPToolSource(n, config.tools[n], base_dir, config) for n in names}
    found = await start_sources(sources)
    try:
        attach(stores, sources, found)
        yield
    finally:
        for source in sources.values():
            await source.aclose()
