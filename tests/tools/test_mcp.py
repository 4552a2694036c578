"""MCP tools against a real MCP server (tests/mcp_server.py): stdio, streamable HTTP, SSE, HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from a2a.types.a2a_pb2 import TaskState
from mcp_types import CallToolResult, ImageContent, TextContent, Tool as MCPToolInfo
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from hector.assembly import build_runtime
from hector.config import parse_config
from hector.config.schema import ToolConfig
from hector.errors import ConfigError, ToolError
from hector.runtime import Runtime
from hector.tools import ToolContext
from hector.tools.mcp import MCPToolSource, agent_tools, result_text, selected
from tests import mcp_server
from tests.harness import running_hector, serve_app
from tests.server.test_a2a import client_for, final_text, request
from tests.server.test_approval import answer, paused

SERVER = str(Path(mcp_server.__file__))
STDIO = {"type": "mcp", "command": sys.executable, "args": [SERVER]}
CTX = ToolContext("a", "c", None, "u")


def runtime(tools: dict[str, Any], agent_tools: list[str], tmp_path: Path) -> Runtime:
    cfg = {
        "llms": {"t": {"type": "test"}},
        "tools": tools,
        "agents": {"a": {"llm": "t", "tools": agent_tools}},
    }
    return build_runtime(parse_config(cfg, "<test>").config, tmp_path)


def by_name(rt: Runtime, agent: str = "a") -> dict[str, Any]:
    return {t.name: t for t in rt.agents[agent].agent.tools}


@contextlib.asynccontextmanager
async def serve_on(app: Any, port: int) -> AsyncIterator[None]:
    """Serve *app* on a fixed loopback port, so a test can stop and restart it in the same place."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- rules without a server ------------------------------------------------------------------


def test_filter_includes_and_excludes() -> None:
    assert selected("add", None) and selected("add", [])
    assert selected("add", ["add", "echo"]) and not selected("slow", ["add", "echo"])
    assert not selected("slow", ["!slow"]) and selected("add", ["!slow"])
    assert selected("db_read", ["db_*", "!db_drop"]) and not selected("db_drop", ["db_*", "!db_drop"])


def test_result_text() -> None:
    text = CallToolResult(content=[TextContent(type="text", text="5")], structured_content={"result": 5})
    assert result_text(text) == "5"
    assert result_text(CallToolResult(content=[], structured_content={"x": [1]})) == '{"x": [1]}'
    image = ImageContent(type="image", data="AAAA", mime_type="image/png")
    assert result_text(CallToolResult(content=[image])) == "[image content omitted]"


def test_names_are_prefixed_only_on_a_clash(tmp_path: Path) -> None:
    one = MCPToolSource("one", ToolConfig(type="mcp", url="http://x"), tmp_path, None)
    two = MCPToolSource("two.v2", ToolConfig(type="mcp", url="http://y"), tmp_path, None)
    schema: dict[str, Any] = {"type": "object"}
    infos = [MCPToolInfo(name=n, input_schema=schema) for n in ("add", "read_file", "a.b")]
    tools = agent_tools({"read_file"}, {"one": (one, infos), "two.v2": (two, infos[:1])})
    assert [t.name for t in tools] == ["one__add", "one__read_file", "a_b", "two_v2__add"]
    assert [t.remote_name for t in tools] == ["add", "read_file", "a.b", "add"]


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"type": "mcp"}, "give exactly one of server_url (or url) or command (got none)"),
        ({**STDIO, "url": "http://x"}, "got url, command"),
        ({"type": "mcp", "url": "http://x", "transport": "stdio"}, "transport stdio starts a local command"),
        ({**STDIO, "transport": "sse"}, "transport sse connects to a URL"),
    ],
)
def test_config_checks(entry: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_config({"tools": {"m": entry}}, "<test>")


# --- stdio ----------------------------------------------------------------------------------------


async def test_stdio_discovery_filter_and_calls(tmp_path: Path) -> None:
    rt = runtime(
        {"calc": {**STDIO, "filter": ["*", "!slow"]}, "read_file": {}}, ["read_file", "calc"], tmp_path
    )
    async with rt:
        tools = by_name(rt)
        assert sorted(tools) == ["add", "echo", "fail", "pid", "read_file"]
        assert tools["add"].description == "Add two integers."
        assert tools["add"].parameters["required"] == ["a", "b"]
        assert not tools["add"].require_approval, "MCP tools need no approval by default"
        assert await tools["add"].call({"a": 2, "b": 3}, CTX) == "5"
        with pytest.raises(ToolError, match="fail"):
            await tools["fail"].call({"reason": "x"}, CTX)
    assert rt.mcp_sources["calc"]._client is None


async def test_declared_description_introduces_each_tool(tmp_path: Path) -> None:
    rt = runtime({"calc": {**STDIO, "description": "Arithmetic for invoices."}}, ["calc"], tmp_path)
    async with rt:
        tools = by_name(rt)
        assert tools["add"].description == "Arithmetic for invoices. Add two integers."
        assert tools["echo"].description.startswith("Arithmetic for invoices. ")


async def test_timeout_is_a_clear_tool_error(tmp_path: Path) -> None:
    async with runtime({"calc": {**STDIO, "timeout": "1s"}}, ["calc"], tmp_path) as rt:
        with pytest.raises(ToolError, match=r"MCP server calc .*slow did not answer within 1s"):
            await by_name(rt)["slow"].call({"seconds": 5}, CTX)
        assert await by_name(rt)["echo"].call({"text": "still here"}, CTX) == "still here"


async def test_server_that_cannot_start_fails_start_up(tmp_path: Path) -> None:
    rt = runtime(
        {"calc": {"type": "mcp", "command": sys.executable, "args": ["-c", "pass"]}}, ["calc"], tmp_path
    )
    with pytest.raises(ConfigError, match=r"cannot start MCP tools:\n  cannot connect to MCP server calc"):
        await rt.__aenter__()


async def test_stdio_server_restarts_after_it_died(tmp_path: Path) -> None:
    async with runtime({"calc": STDIO}, ["calc"], tmp_path) as rt:
        first = int(await by_name(rt)["pid"].call({}, CTX))
        os.kill(first, signal.SIGKILL)
        second = int(await by_name(rt)["pid"].call({}, CTX))
        assert second != first
        assert await by_name(rt)["add"].call({"a": 1, "b": 2}, CTX) == "3"


def test_disabled_source_cannot_be_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="disabled"):
        runtime({"calc": {**STDIO, "enabled": False}}, ["calc"], tmp_path)


# --- HTTP -----------------------------------------------------------------------------------------


async def test_streamable_http_with_bearer_from_env_and_trace_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-mcp-token-7c1f"
    monkeypatch.setenv("MCP_TOKEN", secret)
    mcp_server.HEADERS.clear()
    caplog.set_level(logging.DEBUG)
    async with serve_app(mcp_server.app()) as url:
        headers = {"Authorization": "Bearer ${MCP_TOKEN}"}
        tools = {"remote": {"type": "mcp", "server_url": f"{url}/mcp", "headers": headers}}
        async with runtime(tools, ["remote"], tmp_path) as rt:
            mcp_server.HEADERS.clear()
            span = TracerProvider().get_tracer("test").start_span("caller")
            with trace.use_span(span, end_on_exit=True):
                assert await by_name(rt)["echo"].call({"text": "hi"}, CTX) == "hi"
    assert {h.get("authorization") for h in mcp_server.HEADERS} == {f"Bearer {secret}"}
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert mcp_server.HEADERS[0]["traceparent"].split("-")[1] == trace_id
    assert secret not in caplog.text


async def test_sse(tmp_path: Path) -> None:
    async with serve_app(mcp_server.app("sse")) as url:
        tools = {"remote": {"type": "mcp", "url": f"{url}/sse", "transport": "sse", "filter": ["add"]}}
        async with runtime(tools, ["remote"], tmp_path) as rt:
            assert list(by_name(rt)) == ["add"]
            assert await by_name(rt)["add"].call({"a": 1, "b": 1}, CTX) == "2"


async def test_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    port = free_port()
    tools = {"remote": {"type": "mcp", "server_url": f"http://127.0.0.1:{port}/mcp"}}
    rt = runtime(tools, ["remote"], tmp_path)
    async with serve_on(mcp_server.app(), port):
        await rt.__aenter__()
        echo = by_name(rt)["echo"]
        assert await echo.call({"text": "one"}, CTX) == "one"
    try:
        async with serve_on(mcp_server.app(), port):
            assert await echo.call({"text": "two"}, CTX) == "two"
        with pytest.raises(ToolError, match=r"cannot connect to MCP server remote .*ConnectError"):
            await echo.call({"text": "three"}, CTX)
    finally:
        await rt.__aexit__(None, None, None)


async def test_https_needs_the_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    async with serve_app(mcp_server.app(), ssl_certfile=str(tmp_path / "server.pem")) as url:
        entry = {"type": "mcp", "server_url": f"{url}/mcp"}
        with pytest.raises(ConfigError, match="x509: certificate signed by unknown authority"):
            async with runtime({"docs": entry}, ["docs"], tmp_path):
                pass
        for option in ({"ca_certificate": str(tmp_path / "ca.pem")}, {"insecure_skip_verify": True}):
            async with runtime({"docs": {**entry, **option}}, ["docs"], tmp_path) as rt:
                assert await by_name(rt)["echo"].call({"text": "secure"}, CTX) == "secure"


# --- through a running Hector ---------------------------------------------------------------------


def hector_config(**source: Any) -> dict[str, Any]:
    return {
        "llms": {"t": {"type": "test"}},
        "tools": {"calc": {**STDIO, **source}},
        "agents": {"math": {"llm": "t", "tools": ["calc"]}},
    }


async def test_call_through_hector(tmp_path: Path) -> None:
    async with running_hector(hector_config(), tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "math", binding="JSONRPC", version="1.0", streaming=False, http=http)
        events = [e async for e in client.send_message(request('use add {"a": 2, "b": 3}', "c-mcp"))]
        assert final_text(events)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool add returned: 5")
        await client.close()


async def test_approval_pauses_an_mcp_call(tmp_path: Path) -> None:
    cfg = hector_config(require_approval=True, approval_prompt="Add {a} and {b}?")
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "math", binding="JSONRPC", version="1.0", streaming=True, http=http)
        events = [e async for e in client.send_message(request('use add {"a": 2, "b": 3}', "c-appr"))]
        task_id, prompt, data = paused(events)
        assert prompt == "Add 2 and 3?" and data["tool_name"] == "add"
        resumed = [e async for e in client.send_message(answer(task_id, "c-appr", decision="approve"))]
        assert final_text(resumed)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool add returned: 5")
        await client.close()
