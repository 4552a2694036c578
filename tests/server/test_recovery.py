"""A server killed with SIGKILL mid-task: the task is continued from its checkpoint on restart (or
by another replica), or failed cleanly when it cannot be; nothing already produced is lost."""

from __future__ import annotations

import asyncio
import contextlib
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
from a2a.types.a2a_pb2 import (
    GetTaskRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
    TaskStatus,
)

from hector.agent.loop import LoopState
from hector.messages import ChatMessage, ToolCall
from hector.stores.checkpoints import Checkpoint
from hector.stores.db import create_engine, migrate, sqlite_url
from hector.stores.leases import INTERRUPTED, INTERRUPTED_TOOL, TaskLeases
from hector.stores.tasks import LeanDatabaseTaskStore
from tests.harness import postgres_or_skip, running_hector
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.server.test_a2a import Gate, client_for, final_text, request
from tests.server.test_llm_e2e import event_types, llm_config

HECTOR = str(Path(sys.executable).with_name("hector"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOGS: dict[int, Path] = {}
"""pid → the server's output, shown when it fails to start."""


def start(config: Path, port: int) -> subprocess.Popen[bytes]:
    path = config.parent / f"server-{port}.log"
    with path.open("ab") as log:
        proc = subprocess.Popen(
            [HECTOR, "serve", "--config", str(config), "--port", str(port), "--log-level", "warn"],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    LOGS[proc.pid] = path
    return proc


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


def _log_of(proc: subprocess.Popen[bytes]) -> str:
    return LOGS[proc.pid].read_text()[-2000:]


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "server exited during start-up: " + _log_of(proc)
            try:
                if (await http.get(f"{url}/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not become ready")


async def test_sigkill_while_a_tool_runs_fails_the_task_on_restart(tmp_path: Path) -> None:
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
            # The dead server's lease goes stale within three intervals; then the task is taken over,
            # and failed: `sleep` was running, and by default an interrupted call is not run again.
            deadline = time.monotonic() + 10
            task = await client.get_task(GetTaskRequest(id=task_id))
            while task.status.state != TaskState.TASK_STATE_FAILED and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                task = await client.get_task(GetTaskRequest(id=task_id))
            assert task.status.state == TaskState.TASK_STATE_FAILED
            assert get_text_parts(task.status.message.parts) == [
                INTERRUPTED_TOOL.format(tool="execute_command")
            ]
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
    assert (await leases.recover()).failed == ["old-working"]
    failed = await tasks.get("old-working", ctx)
    assert failed is not None and failed.status.state == TaskState.TASK_STATE_FAILED
    assert get_text_parts(failed.status.message.parts) == [INTERRUPTED]
    assert (await leases.recover()).failed == [], "a failed task is not failed twice"
    await engine.dispose()


def marker_config(
    tmp_path: Path, llm: ScriptedLLMServer, store: dict[str, Any], server: dict[str, Any]
) -> Path:
    """An agent on the scripted LLM whose tool may run `mktemp`: each run leaves one more file."""
    config = tmp_path / "marker.yaml"
    (tmp_path / "ws").mkdir(exist_ok=True)
    tool = {
        "type": "command",
        "deny_by_default": True,
        "allowed_commands": ["mktemp"],
        "require_approval": False,
        "working_directory": str(tmp_path / "ws"),
    }
    data = {
        "llms": {"main": llm_config(llm)},
        "tools": {"execute_command": tool},
        "session_stores": {"main": store},
        "agents": {"worker": {"llm": "main", "instruction": "Be exact.", "tools": ["execute_command"]}},
        "server": {"task_lease_interval": "0.3s", **server},
    }
    config.write_text(yaml.safe_dump(data))
    return config


async def wait_for(check: Any, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def roles(body: dict[str, Any]) -> list[str]:
    return [m["role"] for m in body["messages"]]


async def test_sigkill_between_steps_continues_the_task_on_restart(
    tmp_path: Path, llm_server: ScriptedLLMServer, store: dict[str, Any]
) -> None:
    llm_server.reply("Making a marker.", [ScriptedCall("execute_command", {"command": "mktemp run.XXXXXX"})])
    llm_server.reply("never heard: the server dies first", delay=60)
    llm_server.reply("Done: one marker made.")
    config = marker_config(tmp_path, llm_server, store, {})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(config, port)
    streamed: list[StreamResponse] = []
    try:
        await wait_ready(url, proc)
        async with httpx.AsyncClient(timeout=30) as http:
            client = await client_for(
                url, "worker", binding="JSONRPC", version="1.0", streaming=True, http=http
            )

            async def follow() -> None:
                with contextlib.suppress(Exception):  # the stream breaks when the server dies
                    async for event in client.send_message(request("make a marker", "ctx-resume")):
                        streamed.append(event)

            follower = asyncio.create_task(follow())
            # Step 1's tool ran and its result is checkpointed before step 2 asks the model.
            await wait_for(lambda: len(llm_server.requests) == 2, "the second model call")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            await asyncio.wait_for(follower, 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    task_id = streamed[0].task.id
    before_kill = [
        p.text for e in streamed if e.HasField("artifact_update") for p in e.artifact_update.artifact.parts
    ]
    assert "".join(before_kill) == "Making a marker."
    assert len(list((tmp_path / "ws").glob("run.*"))) == 1

    restarted = start(config, port)
    try:
        await wait_ready(url, restarted)
        async with httpx.AsyncClient(timeout=30) as http:
            client = await client_for(
                url, "worker", binding="HTTP+JSON", version="1.0", streaming=False, http=http
            )
            task = await client.get_task(GetTaskRequest(id=task_id))
            deadline = time.monotonic() + 15
            while task.status.state != TaskState.TASK_STATE_COMPLETED and time.monotonic() < deadline:
                assert task.status.state == TaskState.TASK_STATE_WORKING, task.status
                await asyncio.sleep(0.2)
                task = await client.get_task(GetTaskRequest(id=task_id))
            assert task.status.state == TaskState.TASK_STATE_COMPLETED
            assert get_text_parts(task.status.message.parts) == ["Done: one marker made."]
            assert [get_text_parts(a.parts) for a in task.artifacts] == [["Done: one marker made."]]
            history = [p for m in task.history for p in m.parts]
            tools = [p.metadata["event_type"] for p in history if p.HasField("data")]
            assert tools == ["tool_call", "tool_result"], (
                "the finished call is neither run nor reported again"
            )
            notes = [p.text for p in history if p.text.startswith("Resumed after an interruption")]
            assert len(notes) == 1
            # What the model said before its call is kept once, with the call.
            calls = [get_text_parts(m.parts) for m in task.history if "tool_call" in event_types(m)]
            assert calls == [["Making a marker."]]
            assert [p.text for p in history].count("Making a marker.") == 1
            # The conversation goes on with every step stored once.
            events = [e async for e in client.send_message(request("thanks", "ctx-resume"))]
            assert final_text(events)[0] == TaskState.TASK_STATE_COMPLETED
            await client.close()
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(15)
    assert len(list((tmp_path / "ws").glob("run.*"))) == 1, "the finished tool call did not run again"
    bodies = [r.body for r in llm_server.requests]
    assert len(bodies) == 4
    # The continued run asks the model exactly what the dead server was asking.
    assert bodies[2]["messages"] == bodies[1]["messages"]
    assert roles(bodies[2]) == ["system", "user", "assistant", "tool"]
    assert "[exit code: 0]" in bodies[2]["messages"][-1]["content"]
    assert roles(bodies[3]) == ["system", "user", "assistant", "tool", "assistant", "user"]


async def test_sigkill_one_replica_another_continues_its_task(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    """Two `hector serve` on one PostgreSQL and Redis: A dies mid-task, B takes the task over, and a
    client following it on B sees it through."""
    async with postgres_or_skip() as db:
        await _replica_takeover(tmp_path, llm_server, db)


async def _replica_takeover(tmp_path: Path, llm_server: ScriptedLLMServer, db: str) -> None:
    llm_server.reply("Making a marker.", [ScriptedCall("execute_command", {"command": "mktemp run.XXXXXX"})])
    llm_server.reply("never heard: the server dies first", delay=60)
    llm_server.reply("Done: one marker made.")
    relay = {"event_relay": {"enabled": True, "redis_url": "redis://127.0.0.1:6379/0"}}
    config = marker_config(tmp_path, llm_server, {"backend": "sql", "url": db}, relay)
    ports = free_port(), free_port()
    a, b = start(config, ports[0]), start(config, ports[1])
    try:
        await wait_ready(f"http://127.0.0.1:{ports[0]}", a)
        await wait_ready(f"http://127.0.0.1:{ports[1]}", b)
        async with httpx.AsyncClient(timeout=30) as http:
            on_a = await client_for(
                f"http://127.0.0.1:{ports[0]}",
                "worker",
                binding="JSONRPC",
                version="1.0",
                streaming=True,
                http=http,
            )
            on_b = await client_for(
                f"http://127.0.0.1:{ports[1]}",
                "worker",
                binding="HTTP+JSON",
                version="1.0",
                streaming=True,
                http=http,
            )
            stream = on_a.send_message(request("make a marker", "ctx-takeover"))
            task_id = (await anext(stream)).task.id
            await wait_for(lambda: len(llm_server.requests) == 2, "the second model call")
            os.killpg(a.pid, signal.SIGKILL)
            a.wait(10)
            followed = [e async for e in on_b.subscribe(SubscribeToTaskRequest(id=task_id))]
            assert final_text(followed)[:2] == (TaskState.TASK_STATE_COMPLETED, "Done: one marker made.")
            texts = [
                p.text
                for e in followed
                if e.HasField("status_update")
                for p in e.status_update.status.message.parts
            ]
            assert any(t.startswith("Resumed after an interruption") for t in texts)
            await on_a.close()
            await on_b.close()
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
    assert len(list((tmp_path / "ws").glob("run.*"))) == 1, "the finished tool call did not run again"
    assert len(llm_server.requests) == 3


def test_what_a_continued_run_does_with_the_interrupted_call() -> None:
    first, second = ToolCall("c1", "mktemp", {}), ToolCall("c2", "deploy", {"env": "eu"})
    step = ChatMessage("assistant", "", tool_calls=(first, second))
    finished = ChatMessage("tool", "run.abc", tool_call_id="c1", name="mktemp")
    state = LoopState(2, [ChatMessage("user", "go")], step, [finished], running="c2")
    checkpoint = Checkpoint("t", "worker", "ctx", "alice", state, 0.0)
    assert checkpoint.interrupted_call() == "deploy"
    retried = checkpoint.resume_step("retry")
    assert retried is not None and dict(retried.done) == {"c1": finished}
    reported = checkpoint.resume_step("report")
    assert reported is not None and reported.done["c1"] == finished
    assert reported.done["c2"].is_error and reported.done["c2"].content.startswith("TOOL_INTERRUPTED")
    between = Checkpoint("t", "worker", "ctx", "alice", LoopState(3, [ChatMessage("user", "go")]), 0.0)
    assert between.interrupted_call() is None and between.resume_step("fail") is None
