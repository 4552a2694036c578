"""Run a real Hector server on a loopback port inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.ext.asyncio import create_async_engine

from hector.assembly import build_runtime
from hector.config import parse_config
from hector.server.app import create_app
from hector.tools import Tool

POSTGRES_ADMIN_URL = os.environ.get(
    "HECTOR_TEST_POSTGRES_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"
)


@contextlib.asynccontextmanager
async def serve_app(app: Any, host: str = "127.0.0.1", **options: Any) -> AsyncIterator[str]:
    """Serve *app* on a free port of *host*; *options* go to ``uvicorn.Config`` (``ssl_*`` for HTTPS)."""
    # proxy_headers off, as `hector serve` runs it: only server.trusted_proxies decides whom to
    # believe about X-Forwarded-For.
    settings: dict[str, Any] = {
        "log_config": None,
        "lifespan": "on",
        "access_log": False,
        "proxy_headers": False,
    }
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, **(settings | options)))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # re-raise the start-up failure
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if options.get("ssl_certfile") else "http"
    try:
        yield f"{scheme}://{host}:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def running_hector(
    config: dict[str, Any], base_dir: Path, tools: dict[str, Tool] | None = None
) -> AsyncIterator[str]:
    """Validate *config*, build the runtime and serve it; yields the base URL."""
    loaded = parse_config(config, "<test>", extra_tools=tuple(tools or ()))
    app = create_app(build_runtime(loaded.config, base_dir, tools))
    async with serve_app(app) as url:
        yield url


async def until_ready(url: str, settle: float = 30.0) -> None:
    """Wait for ``/ready`` to answer 200: a server indexes its document stores in the background."""
    deadline = asyncio.get_running_loop().time() + settle
    async with httpx.AsyncClient(timeout=10) as http:
        while (response := await http.get(f"{url}/ready")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, f"never ready: {response.text}"
            await asyncio.sleep(0.05)


@contextlib.contextmanager
def hector_in_thread(
    config: dict[str, Any], base_dir: Path, tools: dict[str, Tool] | None = None
) -> Iterator[str]:
    """``running_hector`` in its own thread and event loop, for callers that run their own loop
    (the CLI calls ``asyncio.run``)."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    url: list[str] = []
    loop = asyncio.new_event_loop()

    async def run() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with running_hector(config, base_dir, tools) as base:
            url.append(base)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(15), "server did not start"
    try:
        yield url[0]
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        leftover = asyncio.all_tasks(loop)  # sse-starlette's shutdown watchers outlive the server
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.close()


@contextlib.asynccontextmanager
async def postgres_or_skip() -> AsyncIterator[str]:
    """``fresh_postgres_database``; the test is skipped when PostgreSQL cannot be reached, except
    under CI, where that is a failure."""
    stack = contextlib.AsyncExitStack()
    try:
        url = await stack.enter_async_context(fresh_postgres_database())
    except OSError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    async with stack:
        yield url


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"hector_test_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception:
        await admin.dispose()
        raise
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
