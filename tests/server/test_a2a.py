"""End to end: a2a-sdk clients (protocol 1.0 and 0.3, JSON-RPC and HTTP+JSON) against `create_app`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import get_text_parts
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskState,
)

from hector.tools import FunctionTool, Tool
from tests.harness import running_hector


def config(store: dict[str, Any], **agent: Any) -> dict[str, Any]:
    return {
        "version": "2",
        "llms": {"t": {"type": "test"}},
        "session_stores": {"main": store},
        "agents": {
            "echo": {"llm": "t", "description": "Echoes", **agent},
            "hidden": {"llm": "t", "visibility": "private"},
        },
    }


async def client_for(
    url: str, agent: str, *, binding: str, version: str, streaming: bool, http: httpx.AsyncClient
):
    card = await A2ACardResolver(http, f"{url}/agents/{agent}").get_agent_card()
    # Keep only the interfaces of one protocol version, as a client of that version would see them.
    pruned = AgentCard()
    pruned.CopyFrom(card)
    del pruned.supported_interfaces[:]
    pruned.supported_interfaces.extend(
        i
        for i in card.supported_interfaces
        if i.protocol_version == version and i.protocol_binding == binding
    )
    assert len(pruned.supported_interfaces) == 1
    return ClientFactory(
        ClientConfig(streaming=streaming, httpx_client=http, supported_protocol_bindings=[binding])
    ).create(pruned)


def request(text: str, context_id: str = "ctx-1", task_id: str | None = None) -> SendMessageRequest:
    message = Message(
        role=Role.ROLE_USER,
        message_id=f"m-{text[:8]}-{context_id}",
        context_id=context_id,
        parts=[Part(text=text)],
    )
    if task_id:
        message.task_id = task_id
    return SendMessageRequest(message=message)


def final_text(events: list[StreamResponse]) -> tuple[int, str, str]:
    """(final state, answer text from the status message, task id)."""
    last = events[-1]
    if last.HasField("task"):
        task = last.task
        return task.status.state, "".join(get_text_parts(task.status.message.parts)), task.id
    assert last.HasField("status_update"), last
    status = last.status_update.status
    return status.state, "".join(get_text_parts(status.message.parts)), last.status_update.task_id


@pytest.mark.parametrize("version", ["1.0", "0.3"])
@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "blocking"])
async def test_send_message_then_get_and_list(
    tmp_path: Path, store: dict[str, Any], version: str, binding: str, streaming: bool
) -> None:
    async with running_hector(config(store), tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(
            url, "echo", binding=binding, version=version, streaming=streaming, http=http
        )
        events = [e async for e in client.send_message(request("hello there"))]
        state, text, task_id = final_text(events)
        assert state == TaskState.TASK_STATE_COMPLETED
        assert text == "[test model] You said: hello there"
        if streaming:
            # The test model answers at once, so the coalesced stream is the one closing chunk.
            updates = [e.artifact_update for e in events if e.HasField("artifact_update")]
            assert [(u.append, u.last_chunk) for u in updates] == [(False, True)]
            assert get_text_parts(updates[0].artifact.parts) == [text]
        task = await client.get_task(GetTaskRequest(id=task_id))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert task.context_id == "ctx-1"
        assert [get_text_parts(a.parts) for a in task.artifacts] == [[text]]
        assert get_text_parts(task.history[0].parts) == ["hello there"]
        if version == "1.0":  # ListTasks is new in 1.0
            listed = await client.list_tasks(ListTasksRequest(context_id="ctx-1"))
            assert task_id in [t.id for t in listed.tasks]
        await client.close()


async def test_tasks_and_history_survive_restart(tmp_path: Path, store: dict[str, Any]) -> None:
    calls: list[str] = []

    async def remember(note: str) -> str:
        """Stores a note."""
        calls.append(note)
        return f"stored {note}"

    tools: dict[str, Tool] = {"remember": FunctionTool(remember)}
    cfg = config(store, tools=["remember"])
    async with running_hector(cfg, tmp_path, tools) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=False, http=http)
        events = [e async for e in client.send_message(request('use remember {"note": "blue"}', "ctx-r"))]
        state, text, task_id = final_text(events)
        assert (state, text) == (TaskState.TASK_STATE_COMPLETED, "Tool remember returned: stored blue")
        assert calls == ["blue"]
        await client.close()
    async with running_hector(cfg, tmp_path, tools) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "echo", binding="HTTP+JSON", version="1.0", streaming=False, http=http)
        task = await client.get_task(GetTaskRequest(id=task_id))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert "".join(get_text_parts(task.status.message.parts)) == text
        await client.close()


class Gate(Tool):
    """A tool that blocks until the test opens it, so a task can be observed mid-flight."""

    name = "slow"
    description = "waits"
    parameters = {"type": "object", "properties": {}}

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False

    async def call(self, arguments: dict[str, Any], ctx: Any) -> str:
        self.entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "done"


async def test_cancel_running_task(tmp_path: Path, store: dict[str, Any]) -> None:
    gate = Gate()
    async with (
        running_hector(config(store, tools=["slow"]), tmp_path, {"slow": gate}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=True, http=http)
        first: asyncio.Queue[StreamResponse] = asyncio.Queue()

        async def consume() -> list[StreamResponse]:
            seen = []
            async for event in client.send_message(request("please use slow", "ctx-c")):
                seen.append(event)
                await first.put(event)
            return seen

        runner = asyncio.create_task(consume())
        task_id = (await first.get()).task.id
        await asyncio.wait_for(gate.entered.wait(), 10)
        canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        events = await asyncio.wait_for(runner, 10)
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_CANCELED
        assert gate.cancelled
        stored = await client.get_task(GetTaskRequest(id=task_id))
        assert stored.status.state == TaskState.TASK_STATE_CANCELED
        await client.close()


async def test_subscribe_and_tool_events(tmp_path: Path, store: dict[str, Any]) -> None:
    gate = Gate()
    async with (
        running_hector(config(store, tools=["slow"]), tmp_path, {"slow": gate}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "echo", binding="HTTP+JSON", version="1.0", streaming=True, http=http)
        other = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=True, http=http)
        stream = client.send_message(request("please use slow", "ctx-s"))
        task_id = (await anext(stream)).task.id
        await asyncio.wait_for(gate.entered.wait(), 10)

        async def follow() -> list[StreamResponse]:
            return [e async for e in other.subscribe(SubscribeToTaskRequest(id=task_id))]

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.2)
        gate.release.set()
        rest = [e async for e in stream]
        followed = await asyncio.wait_for(follower, 10)
        for events in (rest, followed):
            assert final_text(events)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool slow returned: done")
        parts = [p for e in rest if e.HasField("status_update") for p in e.status_update.status.message.parts]
        kinds = [p.metadata["event_type"] for p in parts if p.HasField("data")]
        assert kinds == ["tool_call", "tool_result"]
        assert parts[0].data.struct_value["name"] == "slow"
        assert parts[1].data.struct_value["content"] == "done"
        await client.close()
        await other.close()
