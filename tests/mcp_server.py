"""A small MCP server for the tests, built with the official SDK.

Run as a script it serves stdio (the default) or, with ``--http PORT``, streamable HTTP.
Imported, ``app(...)`` gives the ASGI app to serve in-process; it records the headers of
every HTTP request in ``HEADERS`` so a test can check, on the server side, what arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

HEADERS: list[dict[str, str]] = []

server = MCPServer("hector-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Repeat the text."""
    return text


@server.tool()
def fail(reason: str) -> str:
    """Always fails (the result carries isError)."""
    raise ValueError(f"failed on purpose: {reason}")


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "done"


def _recording(inner: ASGIApp) -> ASGIApp:
    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            HEADERS.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await inner(scope, receive, send)

    return record


def app(transport: Literal["streamable-http", "sse"] = "streamable-http") -> Any:
    inner = server.streamable_http_app() if transport == "streamable-http" else server.sse_app()
    # Starlette's lifespan runs the session manager; the wrapper passes it through.
    return _recording(inner)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, help="serve streamable HTTP on this loopback port")
    port = parser.parse_args().http
    if port:
        server.run("streamable-http", port=port)
    else:
        server.run()
