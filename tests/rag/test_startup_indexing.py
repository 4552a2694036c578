"""Start-up indexing runs in the background: the server answers at once, ``/ready`` says when its
document stores are searchable, a search waits for its store's first indexing, and a store that
cannot be indexed says so (in ``/ready`` and in the search tool's answer) without stopping the
server; it is tried again until it can be.

The stores embed through the scripted Ollama server, which holds its answers back (a slow
embedder, a large folder) or fails them (an embedder that is down) until the test says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from a2a.types.a2a_pb2 import TaskState

from hector.config import load_config
from hector.rag import watch
from hector.server.reload import ReloadingApp
from tests.harness import running_hector, serve_app, until_ready
from tests.rag.corpus import write_labelled
from tests.rag.embed_server import EmbedServer, Failure
from tests.rag.test_retrieval import ask
from tests.server.test_grpc_server import send, stub
from tests.tls.conftest import free_port

SETTLE = 30.0
"""Seconds the background work may take on a loaded machine (never waited for in full)."""
REFUND = 'use search {"query": "how long until my refund is paid", "limit": 3}'


@pytest.fixture
async def embed_server() -> AsyncIterator[EmbedServer]:
    server = EmbedServer(dimension=16)
    async with serve_app(server.app) as server.url:
        try:
            yield server
        finally:
            server.release()  # a request still held would keep the server from stopping


def config(folder: Path, embed: EmbedServer, **server: Any) -> dict[str, Any]:
    return {
        "llms": {"t": {"type": "test"}},
        "embedders": {"e": {"type": "ollama", "host": embed.url, "model": "word-bag"}},
        "document_stores": {"kb": {"path": str(folder), "embedder": "e"}},
        "agents": {
            "helper": {"llm": "t", "tools": ["search"], "document_stores": ["kb"]},
            "chatty": {"llm": "t"},
        },
        "server": server,
    }


async def eventually(check: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLE
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def test_serving_while_indexing_and_search_waits_for_the_index(
    tmp_path: Path, embed_server: EmbedServer
) -> None:
    write_labelled(tmp_path / "kb")
    embed_server.hold()
    grpc_port = free_port()
    cfg = config(tmp_path / "kb", embed_server, grpc={"enabled": True, "port": grpc_port})
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        await embed_server.arrived.wait()  # indexing is under way, its first embedding held back
        assert (await http.get(f"{url}/health")).json() == {"status": "ok"}
        ready = await http.get(f"{url}/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "problems": ["documents: indexing kb"]}
        searching = asyncio.create_task(ask(url, REFUND, "c-early"))
        # Agents answer meanwhile, over HTTP and gRPC; the search waits for the whole index.
        assert await ask(url, "hello", "c-chat", agent="chatty") == "[test model] You said: hello"
        async with stub(grpc_port) as a2a:
            answered = await a2a.SendMessage(send("hello", tenant="chatty"))
        assert answered.task.status.state == TaskState.TASK_STATE_COMPLETED
        assert not searching.done()
        embed_server.release()
        early = await searching
        assert early.startswith("Tool search returned: [1] refunds.md:1-3 (score ")
        assert (await http.get(f"{url}/ready")).json() == {"status": "ready"}
        # What the early search found is what a search of the finished index finds.
        assert await ask(url, REFUND, "c-late") == early


async def test_a_store_that_cannot_be_indexed_says_so_and_is_retried(
    tmp_path: Path,
    embed_server: EmbedServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watch, "RETRY_FIRST", 0.05)
    caplog.set_level(logging.INFO, logger="hector.rag")
    write_labelled(tmp_path / "kb")
    embed_server.outage = Failure(404, {"error": 'model "word-bag" not found, try pulling it first'})
    async with (
        running_hector(config(tmp_path / "kb", embed_server), tmp_path) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):

        async def failed() -> bool:
            return "documents: indexing kb" not in (await http.get(f"{url}/ready")).json()["problems"]

        await eventually(failed, "the indexing never failed")
        ready = await http.get(f"{url}/ready")
        assert ready.status_code == 503
        assert ready.json()["problems"] == [
            "documents: indexing failed for kb (ProviderHTTPError); see the server log"
        ]
        assert (await http.get(f"{url}/health")).status_code == 200
        assert await ask(url, REFUND, "c-down") == (
            "Tool search returned: ERROR: document store 'kb' cannot be searched: indexing it failed and "
            "is retried in the background: embedder 'e' (ollama) answered HTTP 404: model \"word-bag\" "
            "not found, try pulling it first (is the model pulled? ollama pull word-bag)"
        )
        assert await ask(url, "hello", "c-chat", agent="chatty") == "[test model] You said: hello"

        async def retried() -> bool:
            return len(embed_server.requests) >= 3  # the first try and two retries

        await eventually(retried, "the indexing was never retried")
        embed_server.outage = None
        await until_ready(url)
        assert (await ask(url, REFUND, "c-up")).startswith("Tool search returned: [1] refunds.md:1-3 (score ")
    # One error line, naming the store, however many retries failed.
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        "document store kb: indexing failed and is retried in the background; searching it answers an "
        "error until then: embedder 'e' (ollama) answered HTTP 404: model \"word-bag\" not found, try "
        "pulling it first (is the model pulled? ollama pull word-bag)"
    ]
    assert any(m.startswith("document store kb indexed after failing at start-up: ") for m in caplog.messages)


async def test_stopping_during_indexing(
    tmp_path: Path, embed_server: EmbedServer, caplog: pytest.LogCaptureFixture
) -> None:
    write_labelled(tmp_path / "kb")
    embed_server.hold()
    async with running_hector(config(tmp_path / "kb", embed_server), tmp_path) as url:
        await embed_server.arrived.wait()
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{url}/ready")).status_code == 503
    # The server stopped although its indexing could not finish: cancelled, not reported as a
    # failure. The next start indexes the folder.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    embed_server.release()
    async with running_hector(config(tmp_path / "kb", embed_server), tmp_path) as url:
        await until_ready(url)
        assert (await ask(url, REFUND, "c-again")).startswith("Tool search returned: [1] refunds.md:1-3")


async def test_a_reload_switches_once_the_new_configuration_is_indexed(
    tmp_path: Path, embed_server: EmbedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """``hector serve --config-watch``: the first configuration serves at once, like ``serve``; a
    changed one takes over only once its stores are indexed, and is refused if they cannot be."""
    write_labelled(tmp_path / "kb")
    path = tmp_path / "hector.yaml"
    data = config(tmp_path / "kb", embed_server, data_dir=str(tmp_path / "data"))
    path.write_text(yaml.safe_dump(data))
    embed_server.hold()
    async with ReloadingApp(path, load_config(path), lambda loaded: None, interval=3600) as app:
        first = app.current
        assert first.runtime.library is not None
        assert first.runtime.library.stores["kb"].readiness.state == "indexing"
        embed_server.release()
        await first.runtime.documents_indexed()

        data["agents"]["chatty"]["description"] = "changed"
        path.write_text(yaml.safe_dump(data))
        embed_server.outage = Failure(404, {"error": 'model "word-bag" not found'})
        with caplog.at_level(logging.ERROR, logger="hector.reload"):
            assert not await app.reload()
        assert app.current is first
        assert (
            "configuration change rejected; still serving the previous one: document store 'kb'"
            in caplog.text
        )

        embed_server.outage = None
        assert await app.reload()
        assert app.current is not first
        assert app.current.runtime.library is not None
        assert app.current.runtime.library.stores["kb"].readiness.state == "ready"
