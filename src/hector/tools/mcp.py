"""MCP tools (``tools.<name>: type: mcp``): the tools of an MCP server, through the official SDK.

An agent lists the source's name in its ``tools`` and gets every tool the server offers that
passes the source's ``filter``. The connection (streamable HTTP, SSE, or a stdio subprocess)
opens when the runtime starts and closes at shutdown; a call whose connection fails is retried
once on a fresh connection. HTTP transports use Hector's TLS rules and carry ``traceparent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import REQUEST_TIMEOUT, CallToolResult, TextContent, Tool as MCPToolInfo

from hector.config.base import TLSClientOptions
from hector.config.schema import ToolConfig
from hector.config.tls import effective_tls, mcp_component
from hector.errors import ConfigError, ToolError
from hector.observability.tracing import inject_trace_context
from hector.tls import TLSOptions, create_ssl_context, describe_tls_error
from hector.tools import Tool, ToolContext

log = logging.getLogger("hector.tools.mcp")

DEFAULT_TIMEOUT = 300.0
CONNECT_TIMEOUT = 30.0
"""Connecting (process start or HTTP handshake plus discovery) never waits longer than this. It is
separate from the call ``timeout``: a short call timeout must not fail a server that merely takes
a second or two to start (a Python stdio server on a busy machine)."""


class MCPConnectionError(ToolError):
    """The MCP server cannot be reached, or stopped answering; the message names it and why."""


def transport_of(cfg: ToolConfig) -> str:
    """The transport a source uses: the one it names, else stdio for a command, else streamable HTTP."""
    if cfg.transport:
        return cfg.transport
    return "stdio" if cfg.command else "streamable-http"


def selected(tool: str, patterns: Sequence[str] | None) -> bool:
    """Whether *tool* passes ``filter``: entries are shell-style patterns (``fnmatch``), an entry
    starting with ``!`` excludes. Kept: matched by an include (or there are none), by no exclude."""
    includes = [p for p in patterns or [] if not p.startswith("!")]
    excludes = [p[1:] for p in patterns or [] if p.startswith("!")]
    if includes and not any(fnmatch.fnmatchcase(tool, p) for p in includes):
        return False
    return not any(fnmatch.fnmatchcase(tool, p) for p in excludes)


def failure_reason(exc: BaseException) -> str:
    """What went wrong, in words: the first leaf of a task group's exception group, TLS errors as
    the seed's troubleshooting guide words them."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.message
    text = describe_tls_error(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def result_text(result: CallToolResult) -> str:
    """The text blocks of a result; without any, its structured content as JSON. Other blocks
    (images, audio, resources) cannot reach the model as text, so they are named only."""
    parts = [
        block.text if isinstance(block, TextContent) else f"[{block.type} content omitted]"
        for block in result.content
    ]
    if not any(isinstance(block, TextContent) for block in result.content) and (
        result.structured_content is not None
    ):
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await task


class MCPToolSource:
    """One configured MCP server: its connection, its discovered tools and calls to them."""

    def __init__(self, name: str, cfg: ToolConfig, base_dir: Path, tls_defaults: TLSClientOptions | None):
        self.name = name
        self.cfg = cfg
        self.transport = transport_of(cfg)
        self.timeout = cfg.timeout or DEFAULT_TIMEOUT
        self._base_dir = base_dir
        self._tls: TLSOptions = effective_tls(cfg, tls_defaults)
        self._client: Client | None = None
        self._stop: asyncio.Event | None = None
        self._holder: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        where = self.cfg.server_url or self.cfg.url or self.cfg.command
        return f"{mcp_component(self.name)} ({self.transport} {where})"

    def _http_client(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        # The SDK runs on httpx2 and takes only its clients, so `create_async_client` (httpx)
        # cannot be used; this client gets the same TLS context and the trace hook instead.
        secrets = {key: value.get_secret_value() for key, value in self.cfg.headers.items()}
        return httpx2.AsyncClient(
            verify=create_ssl_context(self._tls, mcp_component(self.name)),
            headers={**(headers or {}), **secrets},
            timeout=timeout or httpx2.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            auth=auth,
            event_hooks={"request": [inject_trace_context]},
        )

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[Client]:
        url = self.cfg.server_url or self.cfg.url or ""
        async with contextlib.AsyncExitStack() as stack:
            if self.transport == "stdio":
                assert self.cfg.command is not None  # config checks: stdio needs a command
                params = StdioServerParameters(
                    command=self.cfg.command, args=self.cfg.args, env=self.cfg.env or None, cwd=self._base_dir
                )
                client = Client(stdio_client(params))
            elif self.transport == "sse":
                client = Client(sse_client(url, timeout=self.timeout, httpx_client_factory=self._http_client))
            else:
                http = await stack.enter_async_context(self._http_client())
                client = Client(streamable_http_client(url, http_client=http))
            yield await stack.enter_async_context(client)

    async def _hold(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        # The SDK's task groups must be entered and left in one task: this one owns the
        # connection for its whole life, whichever tasks make calls through it.
        try:
            async with self._session() as client:
                ready.set_result(client)
                await stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("%s: connection lost: %s", self.describe(), failure_reason(exc))

    async def _open(self) -> Client:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Client] = loop.create_future()
        stop = asyncio.Event()
        holder = loop.create_task(self._hold(ready, stop), name=f"mcp:{self.name}")
        limit = CONNECT_TIMEOUT
        try:
            async with asyncio.timeout(limit):
                client = await asyncio.shield(ready)
        except BaseException as exc:
            await _cancel(holder)
            if isinstance(exc, TimeoutError):
                raise MCPConnectionError(
                    f"cannot connect to {self.describe()}: no answer in {limit:g}s"
                ) from None
            if isinstance(exc, Exception):
                raise MCPConnectionError(
                    f"cannot connect to {self.describe()}: {failure_reason(exc)}"
                ) from exc
            raise
        self._client, self._stop, self._holder = client, stop, holder
        return client

    async def _drop(self) -> None:
        stop, holder = self._stop, self._holder
        self._client = self._stop = self._holder = None
        if stop is not None and holder is not None:
            stop.set()
            try:
                async with asyncio.timeout(10):
                    await holder
            except TimeoutError:
                await _cancel(holder)

    async def connect(self) -> None:
        async with self._lock:
            if self._client is None:
                await self._open()

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop()

    async def _current(self, failed: Client | None = None) -> Client:
        """The live connection; a new one if there is none, it is *failed*, or it was lost."""
        async with self._lock:
            alive = self._holder is not None and not self._holder.done()
            if self._client is not None and self._client is not failed and alive:
                return self._client
            await self._drop()
            return await self._open()

    async def discover(self) -> list[MCPToolInfo]:
        """The server's tools that pass ``filter``, in the server's order."""
        client = await self._current()
        tools: list[MCPToolInfo] = []
        cursor: str | None = None
        while True:
            async with asyncio.timeout(self.timeout):
                page = await client.list_tools(cursor=cursor)
            tools += [t for t in page.tools if selected(t.name, self.cfg.filter)]
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        client = await self._current()
        first: Exception
        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=self.timeout)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise ToolError(
                    f"{self.describe()}: {tool} did not answer within {self.timeout:g}s"
                ) from None
            first = exc
        except Exception as exc:
            first = exc
        # A dropped connection (server restarted, process died, network): one fresh attempt.
        log.warning("%s: call failed (%s); reconnecting", self.describe(), failure_reason(first))
        client = await self._current(failed=client)
        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=self.timeout)
        except Exception as exc:
            raise MCPConnectionError(
                f"{self.describe()}: {tool} failed after reconnecting: {failure_reason(exc)}"
            ) from exc


class MCPTool(Tool):
    """One tool of an MCP server, as the model sees it."""

    def __init__(self, source: MCPToolSource, info: MCPToolInfo, name: str) -> None:
        self.source = source
        self.remote_name = info.name
        self.name = name
        cfg = source.cfg
        own = info.description or info.title or info.name
        # The declaration's description is about the server (one entry, many tools): it
        # introduces each tool's own description instead of replacing them all with one text.
        self.description = f"{cfg.description.rstrip('.')}. {own}" if cfg.description else own
        self.parameters = dict(info.input_schema) or {"type": "object", "properties": {}}
        # MCP tools need no approval unless the source asks for it (SPEC §2.7, V2 defaults).
        self.require_approval = bool(cfg.require_approval)
        self.approval_prompt = cfg.approval_prompt
        self.approval_timeout = cfg.approval_timeout

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        result = await self.source.call(self.remote_name, arguments)
        text = result_text(result)
        if result.is_error:
            raise ToolError(text or f"{self.remote_name} failed")
        return text


def model_name(name: str) -> str:
    """*name* as providers accept tool names: letters, digits, ``_`` and ``-``, at most 64."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def agent_tools(
    taken: Collection[str], found: Mapping[str, tuple[MCPToolSource, Sequence[MCPToolInfo]]]
) -> list[MCPTool]:
    """The tools an agent gets from the MCP sources it lists (source name → source, tools).

    A tool keeps the MCP server's name unless another of the agent's tools has it too (one it
    lists itself, *taken*, or one from another source): then it is ``<source>__<tool>``.
    """
    counts = Counter(info.name for _, infos in found.values() for info in infos)
    tools = []
    for source_name, (source, infos) in found.items():
        for info in infos:
            clash = counts[info.name] > 1 or info.name in taken
            tools.append(
                MCPTool(source, info, model_name(f"{source_name}__{info.name}" if clash else info.name))
            )
    return tools


async def start_sources(sources: Mapping[str, MCPToolSource]) -> dict[str, list[MCPToolInfo]]:
    """Connect every source and discover its tools; a ``ConfigError`` naming each one that failed.

    Start-up fails rather than serving agents without tools they were configured with; a server
    that is meant to be absent is marked ``enabled: false`` (and not listed by agents).
    """

    async def start(source: MCPToolSource) -> list[MCPToolInfo]:
        await source.connect()
        try:
            return await source.discover()
        except Exception as exc:
            raise MCPConnectionError(
                f"{source.describe()}: listing tools failed: {failure_reason(exc)}"
            ) from exc

    results = await asyncio.gather(*(start(s) for s in sources.values()), return_exceptions=True)
    found: dict[str, list[MCPToolInfo]] = {}
    failures: list[str] = []
    for name, result in zip(sources, results, strict=True):
        if isinstance(result, BaseException):
            failures.append(str(result))
        else:
            found[name] = result
            tools = ", ".join(t.name for t in result)
            log.info("%s: %d tools (%s)", sources[name].describe(), len(result), tools)
    if failures:
        await asyncio.gather(*(s.aclose() for s in sources.values()))
        raise ConfigError("cannot start MCP tools:\n  " + "\n  ".join(failures))
    return found
