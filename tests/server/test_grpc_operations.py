"""Hector's gRPC server in operation: failures inside it, clients that go away, configuration
reloads (``--config-watch``) and ``hector serve --host``."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest
import yaml
from a2a.types import a2a_pb2_grpc
from a2a.types.a2a_pb2 import GetTaskRequest, TaskState

from hector.config import load_config
from hector.server.grpc import GrpcListener
from hector.server.reload import ReloadingApp
from tests.a2a_grpc_server import Gate, grpc_agent
from tests.harness import running_hector
from tests.server.test_a2a import final_text
from tests.server.test_grpc_server import UP_KEY, bearer, grpc_calls, send, stub, up_config
from tests.tls.conftest import HECTOR, free_port


async def test_failures_inside_the_server_are_not_shown_to_the_client(tmp_path: Path) -> None:
    port = free_port()
    cfg = up_config(port, data_dir=str(tmp_path / "data")) | {"session_stores": {"main": {"backend": "sql"}}}
    async with running_hector(cfg, tmp_path), stub(port) as a2a:
        sent = await a2a.SendMessage(send("hi", tenant="echo"), metadata=bearer(UP_KEY))
        with contextlib.closing(sqlite3.connect(tmp_path / "data" / "hector.db")) as db:
            db.execute("DROP TABLE tasks")  # the database breaks under the running server
        with pytest.raises(grpc.aio.AioRpcError) as read:
            await a2a.GetTask(GetTaskRequest(tenant="echo", id=sent.task.id), metadata=bearer(UP_KEY))
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            async for _ in a2a.SendStreamingMessage(send("again", tenant="echo"), metadata=bearer(UP_KEY)):
                pass
    # Not grpcio's "Unexpected <class 'sqlalchemy.exc.OperationalError'>: ... [SQL: SELECT ...]".
    for failed in (read.value, streamed.value):
        assert (failed.code(), failed.details()) == (grpc.StatusCode.INTERNAL, "internal error")


async def test_a_config_reload_lets_grpc_calls_in_flight_finish(tmp_path: Path) -> None:
    """As ``hector serve --config-watch`` runs it: one gRPC server, each call admitted by the
    configuration current when it came; the previous one must serve it to the end."""
    gate = Gate()
    port = free_port()
    path = tmp_path / "hector.yaml"

    def write(description: str) -> None:
        agent = {"type": "a2a", "url": upstream.card_url, "description": description}
        server = {"data_dir": str(tmp_path / "data"), "grpc": {"enabled": True, "port": port}}
        path.write_text(yaml.safe_dump({"agents": {"worker": agent}, "server": server}))

    async with grpc_agent(executor=gate) as upstream:
        write("first")
        async with ReloadingApp(path, load_config(path), lambda loaded: None, interval=3600) as app:
            listener = GrpcListener(app.current.loaded.config.server, lambda: app.current.app.state.grpc)
            await listener.start()
            try:
                async with stub(port) as a2a:
                    call = a2a.SendStreamingMessage(send("hi", tenant="worker"))
                    assert (await call.read()).HasField("task")
                    await gate.started.wait()
                    write("second")
                    assert await app.reload()
                    gate.opened.set()
                    events = []
                    while (event := await call.read()) != grpc.aio.EOF:
                        events.append(event)
            finally:
                await listener.stop(0)
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert "gate passed" in final_text(events)[1]


async def test_a_client_that_goes_away_mid_stream_is_counted_as_cancelled(tmp_path: Path) -> None:
    gate = Gate()
    port = free_port()
    async with grpc_agent(executor=gate) as upstream:
        cfg = up_config(port)
        cfg["agents"]["relay"] = {"type": "a2a", "url": upstream.card_url}
        async with running_hector(cfg, tmp_path) as url, stub(port) as a2a:
            call = a2a.SendStreamingMessage(send("hi", tenant="relay"))
            assert (await call.read()).HasField("task")
            await gate.started.wait()
            call.cancel()
            cancelled = ("SendStreamingMessage", "relay", "CANCELLED")
            async with asyncio.timeout(30):
                while cancelled not in (calls := await grpc_calls(url)):
                    await asyncio.sleep(0.05)
            gate.opened.set()
    assert calls == {cancelled: 1}


async def test_serve_host_option_moves_the_grpc_listener_too(tmp_path: Path) -> None:
    """The container image runs ``hector serve --host 0.0.0.0``: gRPC must follow HTTP there, not
    stay on ``server.host`` (here the default, 127.0.0.1)."""
    grpc_port, http_port = free_port(), free_port()
    path, log = tmp_path / "hector.yaml", tmp_path / "serve.log"
    path.write_text(yaml.safe_dump(up_config(grpc_port, data_dir=str(tmp_path / "data"))))
    with log.open("wb") as sink:
        command = ["serve", "--config", str(path), "--host", "127.0.0.2", "--port", str(http_port)]
        server = subprocess.Popen([str(HECTOR), *command], stdout=subprocess.DEVNULL, stderr=sink)
    try:
        async with httpx.AsyncClient() as http, asyncio.timeout(30):
            while not await _answers(http, f"http://127.0.0.2:{http_port}/health"):
                assert server.poll() is None, log.read_text()
                await asyncio.sleep(0.1)
        async with grpc.aio.insecure_channel(f"127.0.0.2:{grpc_port}") as channel:
            a2a = a2a_pb2_grpc.A2AServiceStub(channel)  # type: ignore[no-untyped-call]
            answer = await a2a.SendMessage(send("moved", tenant="echo"), timeout=30)
        assert answer.task.status.state == TaskState.TASK_STATE_COMPLETED
    finally:
        server.terminate()
        server.wait(15)
    assert f"A2A over gRPC: grpc://127.0.0.2:{grpc_port}" in log.read_text()


async def _answers(http: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await http.get(url)).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-peer"])
async def test_rate_limits_key_on_the_client_behind_a_trusted_proxy(tmp_path: Path, trusted: bool) -> None:
    """As over HTTP: x-forwarded-for names the client only when the peer is a trusted proxy."""
    port = free_port()
    limits = {"enabled": True, "requests_per_minute": 60, "burst": 1}
    proxies = {"trusted_proxies": ["127.0.0.1"]} if trusted else {}
    cfg = up_config(port, rate_limiting=limits, **proxies)

    def behind(client: str) -> tuple[tuple[str, str], ...]:
        return (("x-forwarded-for", f"198.51.100.7, {client}"),)

    async with running_hector(cfg, tmp_path), stub(port) as a2a:
        await a2a.SendMessage(send("one", tenant="echo"), metadata=behind("203.0.113.5"))
        other = a2a.SendMessage(send("two", tenant="echo"), metadata=behind("203.0.113.6"))
        if trusted:  # another client behind the same proxy has a bucket of its own
            await other
        else:  # the header of an untrusted peer is ignored: one bucket, the peer's
            with pytest.raises(grpc.aio.AioRpcError) as shared:
                await other
            assert shared.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await a2a.SendMessage(send("three", tenant="echo"), metadata=behind("203.0.113.5"))
        assert again.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
