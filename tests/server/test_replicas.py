"""Two Hector replicas on one PostgreSQL (and Redis): a task started on one is read, approved and
followed (SubscribeToTask) on the other."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import Client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError

from hector.tools import Tool
from tests.harness import running_hector
from tests.server.test_a2a import Gate, client_for, final_text, request
from tests.server.test_approval import Deployments, answer, paused


@contextlib.asynccontextmanager
async def two_replicas(
    cfg: dict[str, Any], tmp_path: Path, tools: Mapping[str, Tool], agent: str
) -> AsyncIterator[tuple[Client, Client]]:
    """Replicas A and B of one configuration, with an A2A client each: JSON-RPC to A, REST to B."""
    async with (
        running_hector(cfg, tmp_path / "a", dict(tools)) as url_a,
        running_hector(cfg, tmp_path / "b", dict(tools)) as url_b,
        httpx.AsyncClient(timeout=30) as http,
    ):
        a = await client_for(url_a, agent, binding="JSONRPC", version="1.0", streaming=True, http=http)
        b = await client_for(url_b, agent, binding="HTTP+JSON", version="1.0", streaming=True, http=http)
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()


def replicas_config(postgres_url: str, agent: str, tool: str, relay: bool) -> dict[str, Any]:
    """One agent with one tool on the shared PostgreSQL; *relay*: task events through Redis too."""
    cfg: dict[str, Any] = {
        "llms": {"t": {"type": "test"}},
        "session_stores": {"main": {"backend": "sql", "url": postgres_url}},
        "agents": {agent: {"llm": "t", "tools": [tool]}},
    }
    if relay:
        cfg["server"] = {"event_relay": {"enabled": True, "redis_url": "redis://127.0.0.1:6379/0"}}
    return cfg


async def test_start_on_one_replica_approve_on_the_other(tmp_path: Path, postgres_url: str) -> None:
    deploys = Deployments()
    cfg = replicas_config(postgres_url, "ops", "deploy", relay=False)
    tools = {"deploy": deploys.tool()}
    async with two_replicas(cfg, tmp_path, tools, "ops") as (a, b):
        task_id, prompt, _ = paused(
            [e async for e in a.send_message(request('use deploy {"env": "eu"}', "c-rep"))]
        )
        assert prompt == "Deploy to eu?"
        on_b = await b.get_task(GetTaskRequest(id=task_id))
        assert on_b.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        done = [e async for e in b.send_message(answer(task_id, "c-rep", decision="approve"))]
        assert final_text(done)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool deploy returned: deployed eu")
        assert (await a.get_task(GetTaskRequest(id=task_id))).status.state == TaskState.TASK_STATE_COMPLETED
        # The conversation is shared too: the next turn on A sees what happened on B.
        more = [e async for e in a.send_message(request("thanks", "c-rep"))]
        assert final_text(more)[0] == TaskState.TASK_STATE_COMPLETED
    assert deploys.done == ["eu"]


async def test_subscribe_on_the_other_replica(tmp_path: Path, postgres_url: str) -> None:
    """SubscribeToTask on replica B streams the rest of a task running on replica A (via Redis)."""
    gate = Gate()
    cfg = replicas_config(postgres_url, "echo", "slow", relay=True)
    tools = {"slow": gate}
    async with two_replicas(cfg, tmp_path, tools, "echo") as (a, b):
        stream = a.send_message(request("please use slow", "c-sub"))
        task_id = (await anext(stream)).task.id
        await asyncio.wait_for(gate.entered.wait(), 10)
        followed: list[StreamResponse] = []

        async def follow() -> None:
            async for event in b.subscribe(SubscribeToTaskRequest(id=task_id)):
                followed.append(event)

        follower = asyncio.create_task(follow())
        await wait_until(lambda: bool(followed))
        # B's snapshot: what A has stored so far (A stores events a little after it sends them).
        assert followed[0].task.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
        await asyncio.sleep(0.3)  # B is listening
        gate.release.set()
        rest = [e async for e in stream]
        await asyncio.wait_for(follower, 10)
        assert final_text(followed)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool slow returned: done")
        # B got exactly the events A streamed after the snapshot, the tool's result among them (and
        # its call too when A had not stored and relayed that yet as B subscribed).
        tail = followed[1:]
        assert tail == rest[-len(tail) :], [kind(e) for e in followed]
        parts = [p for e in tail if e.HasField("status_update") for p in e.status_update.status.message.parts]
        data = [p for p in parts if p.HasField("data")]
        results = [p.data.struct_value for p in data if p.metadata["event_type"] == "tool_result"]
        assert [r["content"] for r in results] == ["done"]


async def test_paused_on_one_replica_approved_and_followed_on_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    """A task paused for approval on A, approved on B, goes on on B: SubscribeToTask on A follows it
    there (A's run of it ended at the pause)."""
    gate = Gate()
    gate.require_approval = True
    cfg = replicas_config(postgres_url, "echo", "slow", relay=True)
    async with two_replicas(cfg, tmp_path, {"slow": gate}, "echo") as (a, b):
        task_id, _, _ = paused([e async for e in a.send_message(request("please use slow", "c-moved"))])
        approved = b.send_message(answer(task_id, "c-moved", decision="approve"))
        await anext(approved)
        await asyncio.wait_for(gate.entered.wait(), 10)
        followed: list[StreamResponse] = []

        async def follow() -> None:
            async for event in a.subscribe(SubscribeToTaskRequest(id=task_id)):
                followed.append(event)

        follower = asyncio.create_task(follow())
        await wait_until(lambda: bool(followed))
        assert followed[0].task.status.state == TaskState.TASK_STATE_WORKING
        await asyncio.sleep(0.3)  # A is listening
        gate.release.set()
        assert final_text([e async for e in approved])[0] == TaskState.TASK_STATE_COMPLETED
        await asyncio.wait_for(follower, 10)
        assert final_text(followed)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool slow returned: done")


@pytest.mark.parametrize("relay", [False, True], ids=["database", "redis-relay"])
async def test_cancel_on_the_other_replica_stops_the_run(
    tmp_path: Path, postgres_url: str, relay: bool
) -> None:
    """CancelTask on replica B for a task running on replica A: B answers CANCELED, A's run stops
    and its client sees CANCELED, and the answer A would have given never lands. With the Redis
    relay A stops at once, in the middle of the tool call; without it, at its next write."""
    gate = Gate()
    cfg = replicas_config(postgres_url, "echo", "slow", relay)
    async with two_replicas(cfg, tmp_path, {"slow": gate}, "echo") as (a, b):
        stream = a.send_message(request("please use slow", "c-cancel"))
        task_id = (await anext(stream)).task.id
        await asyncio.wait_for(gate.entered.wait(), 10)
        canceled = await b.cancel_task(CancelTaskRequest(id=task_id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        if not relay:
            gate.release.set()  # the tool returns on A; its result is A's next write
        rest = await asyncio.wait_for(collect(stream), 10)
        assert final_text(rest)[0] == TaskState.TASK_STATE_CANCELED
        assert gate.cancelled == relay  # the relay stopped the tool call itself
        for client in (a, b):
            stored = await client.get_task(GetTaskRequest(id=task_id))
            assert stored.status.state == TaskState.TASK_STATE_CANCELED
            assert "Tool slow returned" not in str(stored)
        with pytest.raises(TaskNotCancelableError):  # a canceled task cannot be canceled again
            await a.cancel_task(CancelTaskRequest(id=task_id))
        # The conversation goes on: a new task in the same context runs normally on A.
        gate.release.set()
        more = [e async for e in a.send_message(request("hello", "c-cancel"))]
        assert final_text(more)[0] == TaskState.TASK_STATE_COMPLETED


async def test_cancel_on_the_running_replica_with_the_relay(tmp_path: Path, postgres_url: str) -> None:
    """The relay's cancel notice for a local cancel does not stop the run a second time."""
    gate = Gate()
    cfg = replicas_config(postgres_url, "echo", "slow", relay=True)
    async with running_hector(cfg, tmp_path, {"slow": gate}) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=True, http=http)
        stream = client.send_message(request("please use slow", "c-local"))
        task_id = (await anext(stream)).task.id
        await asyncio.wait_for(gate.entered.wait(), 10)
        canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        rest = await asyncio.wait_for(collect(stream), 10)
        states = [e.status_update.status.state for e in rest if e.HasField("status_update")]
        assert states[-1] == TaskState.TASK_STATE_CANCELED and gate.cancelled
        assert states.count(TaskState.TASK_STATE_CANCELED) == 1, states
        gate.release.set()
        more = [e async for e in client.send_message(request("hello", "c-local"))]
        assert final_text(more)[0] == TaskState.TASK_STATE_COMPLETED
        await client.close()


async def collect(stream: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    return [e async for e in stream]


def kind(event: StreamResponse) -> str:
    if event.HasField("status_update"):
        return f"status:{TaskState.Name(event.status_update.status.state)}"
    return str(event.WhichOneof("payload"))


async def wait_until(check: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
