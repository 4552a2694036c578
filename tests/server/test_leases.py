"""Who runs a task: a replica that lost its task's lease stops, one whose clock runs ahead or that
stalled takes nothing over it should not, and a takeover never overwrites a task that ended."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import GetTaskRequest, StreamResponse, Task, TaskState, TaskStatus
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.agent.loop import LoopState
from hector.assembly import build_runtime
from hector.config import parse_config
from hector.messages import ChatMessage
from hector.server.app import create_app
from hector.stores.checkpoints import Checkpoint, CheckpointStore
from hector.stores.db import create_engine, migrate, sqlite_url, task_checkpoints, task_leases
from hector.stores.leases import Recovery, TaskLeases
from hector.stores.tasks import LeanDatabaseTaskStore
from tests.harness import running_hector
from tests.llm_server import ScriptedLLMServer
from tests.observability.test_takeover import CONTEXT, TASK, leave_a_running_task
from tests.server.test_a2a import Gate, client_for, final_text, request
from tests.server.test_llm_e2e import llm_config

CTX = ServerCallContext()


def engine_url(store: dict[str, Any], data_dir: Path) -> str:
    return str(store.get("url") or sqlite_url(data_dir / ".hector"))


@pytest.fixture
async def tasks(store: dict[str, Any], tmp_path: Path) -> AsyncIterator[LeanDatabaseTaskStore]:
    engine = create_engine(engine_url(store, tmp_path))
    await migrate(engine)
    found = LeanDatabaseTaskStore(engine)
    await found.initialize()
    yield found
    await engine.dispose()


async def save(
    tasks: LeanDatabaseTaskStore, task_id: str, state: TaskState.ValueType, age: float = 600
) -> None:
    status = TaskStatus(state=state)
    status.timestamp.FromDatetime(datetime.now(UTC) - timedelta(seconds=age))
    await tasks.save(Task(id=task_id, context_id="c", status=status), CTX)


async def state_of(tasks: LeanDatabaseTaskStore, task_id: str) -> TaskState.ValueType:
    task = await tasks.get(task_id, CTX)
    assert task is not None
    return task.status.state


async def lease_of(engine: AsyncEngine, task_id: str) -> str | None:
    async with engine.connect() as conn:
        query = sa.select(task_leases.c.replica_id).where(task_leases.c.task_id == task_id)
        return (await conn.execute(query)).scalar()


async def test_a_run_whose_task_was_taken_over_stops_and_writes_nothing_more(
    tmp_path: Path, store: dict[str, Any]
) -> None:
    """Replica A stalled (or lost the database) long enough for replica B to take its task over:
    A's run must not go on beside B's, nor take the lease back."""
    gate = Gate()
    cfg = {
        "session_stores": {"main": store},
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t", "tools": ["slow"]}},
        "server": {"task_lease_interval": "0.2s"},
    }
    engine = create_engine(engine_url(store, tmp_path))
    async with running_hector(cfg, tmp_path, {"slow": gate}) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=True, http=http)
        stream = client.send_message(request("please use slow", "ctx-lost"))
        task_id = (await anext(stream)).task.id
        await asyncio.wait_for(gate.entered.wait(), 10)
        deadline = time.monotonic() + 10
        while await lease_of(engine, task_id) is None:  # A's lease, written after one interval
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        async with engine.begin() as conn:  # B's claim of the lease (kept fresh for the test)
            await conn.execute(
                task_leases.update()
                .where(task_leases.c.task_id == task_id)
                .values(replica_id="replica-b", heartbeat_at=task_leases.c.heartbeat_at + 3600)
            )
        rest: list[StreamResponse] = await asyncio.wait_for(collect(stream), 10)
        assert gate.cancelled, "the tool call in progress on A was stopped"
        assert TaskState.TASK_STATE_COMPLETED not in [e.status_update.status.state for e in rest]
        assert await lease_of(engine, task_id) == "replica-b", "A neither renewed nor removed B's lease"
        stored = await client.get_task(GetTaskRequest(id=task_id))
        assert stored.status.state == TaskState.TASK_STATE_WORKING, "B runs it; A wrote no end"
        gate.release.set()  # A serves on
        more = [e async for e in client.send_message(request("hello", "ctx-other"))]
        assert final_text(more)[0] == TaskState.TASK_STATE_COMPLETED
        await client.close()
    await engine.dispose()


async def test_a_replica_whose_clock_runs_ahead_leaves_a_renewed_lease_alone(
    tasks: LeanDatabaseTaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await save(tasks, "long-tool-call", TaskState.TASK_STATE_WORKING)  # its tool runs for 10 minutes
    a = TaskLeases(tasks.engine, tasks.table(), interval=10)
    assert await a.claim("long-tool-call", "worker", 30)  # A holds a lease it has just renewed
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)  # B's clock is two minutes ahead
    b = TaskLeases(tasks.engine, tasks.table(), interval=10)
    assert (await b.recover()).failed == []
    assert await state_of(tasks, "long-tool-call") == TaskState.TASK_STATE_WORKING
    assert await lease_of(tasks.engine, "long-tool-call") == a.replica_id


async def test_a_stalled_replica_does_not_take_over_its_own_running_task(
    tasks: LeanDatabaseTaskStore,
) -> None:
    """After a long event-loop stall the sweep may come before the renewal: the task this very
    process runs looks stale, and must not be claimed (and run a second time, or failed)."""
    await save(tasks, "mine", TaskState.TASK_STATE_WORKING)
    leases = TaskLeases(tasks.engine, tasks.table(), interval=10)
    async with leases.hold("mine", "worker"):  # no lease written yet: the loop stalled
        assert (await leases.recover()).failed == []
        assert await state_of(tasks, "mine") == TaskState.TASK_STATE_WORKING
    assert await lease_of(tasks.engine, "mine") is None


async def test_a_task_canceled_while_being_taken_over_stays_canceled(tasks: LeanDatabaseTaskStore) -> None:
    """The cancel lands between the sweep finding the task stale and the takeover: the takeover
    fails to start (the SDK refuses a terminal task), and the task is not then marked failed."""
    await save(tasks, "canceled-meanwhile", TaskState.TASK_STATE_WORKING)
    checkpoints = CheckpointStore(tasks.engine)
    record = checkpoints.recorder("canceled-meanwhile", "worker", "c", "anonymous")
    await record(LoopState(1, [ChatMessage("user", "go")]))
    leases = TaskLeases(tasks.engine, tasks.table(), interval=10, checkpoints=checkpoints)

    async def resume(checkpoint: Checkpoint) -> None:
        await save(tasks, checkpoint.task_id, TaskState.TASK_STATE_CANCELED, age=0)  # CancelTask elsewhere
        raise RuntimeError("Task canceled-meanwhile is in terminal state: TASK_STATE_CANCELED")

    leases.resumers["worker"] = resume
    assert (await leases.recover()).failed == []
    assert await state_of(tasks, "canceled-meanwhile") == TaskState.TASK_STATE_CANCELED
    assert await lease_of(tasks.engine, "canceled-meanwhile") is None
    assert await checkpoints.load("canceled-meanwhile") is None


async def test_a_task_canceled_while_its_replica_was_dead_leaves_no_rows(
    tasks: LeanDatabaseTaskStore,
) -> None:
    await save(tasks, "dead-and-canceled", TaskState.TASK_STATE_WORKING)
    checkpoints = CheckpointStore(tasks.engine)
    record = checkpoints.recorder("dead-and-canceled", "worker", "c", "anonymous")
    await record(LoopState(1, [ChatMessage("user", "go")]))
    async with tasks.engine.begin() as conn:  # the dead replica's last renewal, long ago
        values = {"agent_id": "worker", "replica_id": "dead", "heartbeat_at": time.time() - 600}
        await conn.execute(task_leases.insert().values(task_id="dead-and-canceled", **values))
    await save(tasks, "dead-and-canceled", TaskState.TASK_STATE_CANCELED, age=0)
    leases = TaskLeases(tasks.engine, tasks.table(), interval=10, checkpoints=checkpoints)
    resumed: list[str] = []

    async def resume(checkpoint: Checkpoint) -> None:
        resumed.append(checkpoint.task_id)

    leases.resumers["worker"] = resume
    assert await leases.recover() == Recovery()
    assert resumed == []
    assert await state_of(tasks, "dead-and-canceled") == TaskState.TASK_STATE_CANCELED
    async with tasks.engine.connect() as conn:
        for table in (task_leases, task_checkpoints):
            assert (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar() == 0


async def test_a_stopping_server_leaves_the_tasks_it_cannot_run_to_another(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    """Between draining its runs and closing its runtime, a stopping server may still sweep: a
    stale task it finds then is left for another replica, which continues it, not failed."""
    llm_server.reply("There are 3 files.")
    cfg = {
        "llms": {"main": llm_config(llm_server)},
        "session_stores": {"main": {"backend": "sql"}},
        "agents": {"worker": {"llm": "main"}},
    }
    runtime = build_runtime(parse_config(cfg, "<test>").config, tmp_path)
    app = create_app(runtime, own_runtime=False)
    async with runtime:
        async with app.router.lifespan_context(app):
            pass  # served, then stopped: its runs are drained
        await leave_a_running_task(tmp_path / ".hector")
        assert (await runtime.leases[0].recover()).failed == []
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(
            url, "worker", binding="HTTP+JSON", version="1.0", streaming=False, http=http
        )
        deadline = time.monotonic() + 10
        task = await client.get_task(GetTaskRequest(id=TASK))
        while task.status.state != TaskState.TASK_STATE_COMPLETED and time.monotonic() < deadline:
            assert task.status.state == TaskState.TASK_STATE_WORKING, task.status
            await asyncio.sleep(0.1)
            task = await client.get_task(GetTaskRequest(id=TASK))
        assert (task.status.state, task.context_id) == (TaskState.TASK_STATE_COMPLETED, CONTEXT)
        await client.close()


async def collect(stream: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    return [e async for e in stream]
