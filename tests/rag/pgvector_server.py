"""PostgreSQL with pgvector on loopback for the tests, and a TLS front that speaks PostgreSQL's
SSLRequest negotiation.

Debian's PostgreSQL here has no pgvector (and bookworm packages none for PostgreSQL 15), so the
tests run PGlite, PostgreSQL 18 compiled to WebAssembly with the real pgvector extension, served
over the PostgreSQL wire protocol by pglite-socket (``tests/pglite/server.mjs``, installed by
``npm ci`` in ``tests/pglite``; ``.ci/run`` does it). The back end talks to it with asyncpg exactly
as it would to a PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.tls.conftest import serve_proxy, splice

PGLITE = Path(__file__).resolve().parents[1] / "pglite"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (PGLITE / "node_modules" / "@electric-sql" / "pglite-socket").is_dir():
        return "tests/pglite/node_modules is missing: run `npm ci` in tests/pglite (.ci/run does)"
    return None


@contextlib.contextmanager
def pglite_server() -> Iterator[int]:
    """Start PGlite with pgvector; yield its port. Skips (outside CI) when it is not installed."""
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"pgvector tests need PGlite in CI: {missing}")
        pytest.skip(f"pgvector tests need PGlite: {missing}")
    process = subprocess.Popen(
        ["node", "server.mjs"], cwd=PGLITE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"PGlite did not start: {process.stderr.read() if process.stderr else ''}")
        yield int(json.loads(line)["port"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def postgres_tls_proxy(certfile: str, upstream: tuple[str, int]) -> AsyncIterator[int]:
    """A PostgreSQL TLS front on a free loopback port: answers the client's SSLRequest with 'S',
    terminates TLS with *certfile* and passes the plaintext protocol on to *upstream*."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            if await client_r.readexactly(8) != SSL_REQUEST:
                client_w.close()  # a TLS-only server: plaintext clients are turned away
                return
            client_w.write(b"S")
            await client_w.drain()
            await client_w.start_tls(context)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            client_w.close()
            return
        await splice(client_r, client_w, upstream)

    async with serve_proxy(handle) as port:
        yield port
