"""A server killed with SIGKILL mid-task: on restart the task is failed cleanly, nothing lost."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from a2a.helpers.proto_helpers import get_text_parts
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import GetTaskRequest, Task, TaskState, TaskStatus

from hector.stores.db import create_engine, migrate, sqlite_url
from hector.stores.leases import INTERRUPTED, TaskLeases
from hector.stores.tasks import LeanDatabaseTaskStore
from tests.harness import running_hector
from tests.server.test_a2a import Gate, client_for, request

HECTOR = str(Path(sys.executable).with_name("hector"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(config: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [HECTOR, "serve", "--config", str(config), "--port", str(port), "--log-level", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def sleeper_config(tmp_path: Path, server: dict[str, Any]) -> Path:
    """A config file: one agent whose only tool may run `sleep`, without approval."""
    config = tmp_path / "hector.yaml"
    tool = {
        "type": "command",
        "deny_by_default": True,
        "allowed_commands": ["sleep"],
        "require_approval": False,
    }
    data = {
        "llms": {"t": {"type": "test"}},
        "tools": {"execute_command": tool},
        "agents": {"worker": {"llm": "t", "tools": ["execute_command"]}},
        "server": server,
    }
    config.write_text(yaml.safe_dump(data))
    return config


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "server exited during start-up"
            try:
                if (await http.get(f"{url}/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not become ready")


async def test_sigkill_mid_task_fails_it_on_restart(tmp_path: Path) -> None:
    config = sleeper_config(tmp_path, {"task_lease_interval": "0.3s"})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(config, port)
    try:
        await wait_ready(url, proc)
        async with httpx.AsyncClient(timeout=30) as http:
            client = await client_for(
                url, "worker", binding="JSONRPC", version="1.0", streaming=True, http=http
            )
            stream = client.send_message(request('use execute_command {"command": "sleep 20"}', "ctx-crash"))
            task_id = ""
            async for event in stream:  # until the tool is running
                if event.HasField("task"):
                    task_id = event.task.id
                if event.HasField("status_update") and any(
                    p.HasField("data") for p in event.status_update.status.message.parts
                ):
                    break
            assert task_id
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    restarted = start(config, port)
    try:
        await wait_ready(url, restarted)
        async with httpx.AsyncClient(timeout=30) as http:
            client = await client_for(
                url, "worker", binding="HTTP+JSON", version="1.0", streaming=False, http=http
            )
            # The dead server's lease goes stale within three intervals; then the task is failed.
            deadline = time.monotonic() + 10
            task = await client.get_task(GetTaskRequest(id=task_id))
            while task.status.state != TaskState.TASK_STATE_FAILED and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                task = await client.get_task(GetTaskRequest(id=task_id))
            assert task.status.state == TaskState.TASK_STATE_FAILED
            assert get_text_parts(task.status.message.parts) == [INTERRUPTED]
            assert get_text_parts(task.history[0].parts) == ['use execute_command {"command": "sleep 20"}']
            # The server serves on: the same conversation goes on after the failure.
            events = [e async for e in client.send_message(request("still there?", "ctx-crash"))]
            assert events[-1].task.status.state == TaskState.TASK_STATE_COMPLETED
            await client.close()
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(15)


async def test_a_live_replicas_task_is_left_alone(tmp_path: Path, store: dict[str, Any]) -> None:
    gate = Gate()
    cfg = {
        "session_stores": {"main": store},
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t", "tools": ["slow"]}},
        "server": {"task_lease_interval": "0.2s"},
    }
    async with running_hector(cfg, tmp_path, {"slow": gate}) as url_a, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url_a, "echo", binding="JSONRPC", version="1.0", streaming=True, http=http)
        stream = client.send_message(request("please use slow", "ctx-live"))
        task_id = (await anext(stream)).task.id
        await asyncio.wait_for(gate.entered.wait(), 10)
        # A second replica on the same database starts and sweeps several times meanwhile.
        async with running_hector(cfg, tmp_path, {"slow": Gate()}) as url_b:
            other = await client_for(
                url_b, "echo", binding="HTTP+JSON", version="1.0", streaming=False, http=http
            )
            await asyncio.sleep(1.5)
            seen = await other.get_task(GetTaskRequest(id=task_id))
            assert seen.status.state == TaskState.TASK_STATE_WORKING, "a renewed lease protects the task"
            await other.close()
        gate.release.set()
        rest = [e async for e in stream]
        assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        await client.close()


async def test_sigterm_lets_an_open_stream_finish(tmp_path: Path) -> None:
    config = sleeper_config(tmp_path, {})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(config, port)
    try:
        await wait_ready(url, proc)
        async with httpx.AsyncClient(timeout=30) as http:
            client = await client_for(
                url, "worker", binding="JSONRPC", version="1.0", streaming=True, http=http
            )
            stream = client.send_message(request('use execute_command {"command": "sleep 1.5"}', "ctx-drain"))
            first = await anext(stream)
            assert first.HasField("task")
            proc.send_signal(signal.SIGTERM)  # the server drains instead of cutting the stream
            rest = [e async for e in stream]
            assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
            assert "exit code: 0" in "".join(get_text_parts(rest[-1].status_update.status.message.parts))
        # uvicorn re-raises the signal once it has shut down, so the exit status says SIGTERM.
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


async def test_recover_fails_only_stale_unleased_working_tasks(store: dict[str, Any], tmp_path: Path) -> None:
    engine = create_engine(store.get("url") or sqlite_url(tmp_path))
    await migrate(engine)
    tasks = LeanDatabaseTaskStore(engine)
    await tasks.initialize()
    ctx = ServerCallContext()

    async def save(task_id: str, state: TaskState.ValueType, age: float) -> None:
        status = TaskStatus(state=state)
        status.timestamp.FromDatetime(datetime.now(UTC) - timedelta(seconds=age))
        await tasks.save(Task(id=task_id, context_id="c", status=status), ctx)

    await save("old-working", TaskState.TASK_STATE_WORKING, 120)
    await save("new-working", TaskState.TASK_STATE_WORKING, 0)
    await save("old-done", TaskState.TASK_STATE_COMPLETED, 120)
    await save("old-waiting", TaskState.TASK_STATE_INPUT_REQUIRED, 120)
    leases = TaskLeases(engine, tasks.table(), interval=10)
    assert await leases.recover() == ["old-working"]
    failed = await tasks.get("old-working", ctx)
    assert failed is not None and failed.status.state == TaskState.TASK_STATE_FAILED
    assert get_text_parts(failed.status.message.parts) == [INTERRUPTED]
    assert await leases.recover() == [], "a failed task is not failed twice"
    await engine.dispose()
