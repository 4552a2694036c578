"""A2A clients → Hector → a real-protocol LLM server on loopback, and back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.helpers.proto_helpers import get_text_parts
from a2a.types.a2a_pb2 import GetTaskRequest, Message, Role, TaskState

from hector.tools import FunctionTool, Tool
from tests.harness import running_hector
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.server.test_a2a import client_for, final_text, request


def llm_config(server: ScriptedLLMServer, kind: str = "openai", **extra: Any) -> dict[str, Any]:
    host = f"{server.url}/v1" if kind == "openai" else server.url
    return {
        "type": kind,
        "model": "scripted",
        "host": host,
        "api_key": "sk-test-e2e",
        "max_retries": 0,
        **extra,
    }


def hector_config(server: ScriptedLLMServer, kind: str = "openai", **llm: Any) -> dict[str, Any]:
    return {
        "llms": {"main": llm_config(server, kind, **llm)},
        "agents": {"helper": {"llm": "main", "instruction": "Be exact.", "tools": ["lookup"]}},
    }


def lookup(city: str) -> str:
    """Population of a city."""
    return {"Oslo": "709000"}.get(city, "unknown")


TOOLS: dict[str, Tool] = {"lookup": FunctionTool(lookup)}


def chat_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in body["messages"]]


async def test_openai_conversation_with_tool_over_a2a(tmp_path: Path, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply(tool_calls=[ScriptedCall("lookup", {"city": "Oslo"})])
    llm_server.reply("Oslo has 709000 people.")
    llm_server.reply("You asked about Oslo.")
    async with (
        running_hector(hector_config(llm_server), tmp_path, TOOLS) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "helper", binding="JSONRPC", version="1.0", streaming=True, http=http)
        events = [e async for e in client.send_message(request("How many people live in Oslo?", "conv"))]
        assert final_text(events)[:2] == (TaskState.TASK_STATE_COMPLETED, "Oslo has 709000 people.")
        second = [e async for e in client.send_message(request("What did I ask?", "conv"))]
        assert final_text(second)[:2] == (TaskState.TASK_STATE_COMPLETED, "You asked about Oslo.")
        await client.close()
    bodies = [r.body for r in llm_server.requests]
    assert len(bodies) == 3
    assert bodies[0]["stream"] is True and bodies[0]["tools"][0]["function"]["name"] == "lookup"
    tool_reply = bodies[1]["messages"][-1]
    assert tool_reply["role"] == "tool" and tool_reply["content"] == "709000"
    assert chat_messages(bodies[2]) == [
        ("system", "Be exact."),
        ("user", "How many people live in Oslo?"),
        ("assistant", ""),
        ("tool", "709000"),
        ("assistant", "Oslo has 709000 people."),
        ("user", "What did I ask?"),
    ]
    assert llm_server.last.headers["authorization"] == "Bearer sk-test-e2e"


def event_types(message: Message) -> list[str]:
    return [p.metadata["event_type"] for p in message.parts if p.HasField("data")]


@pytest.mark.parametrize("version", ["1.0", "0.3"])
async def test_text_said_before_tool_calls_is_stored_with_them(
    tmp_path: Path, llm_server: ScriptedLLMServer, version: str
) -> None:
    oslo, bergen = ScriptedCall("lookup", {"city": "Oslo"}), ScriptedCall("lookup", {"city": "Bergen"})
    llm_server.reply("Let me look both up.", tool_calls=[oslo, bergen])
    llm_server.reply(tool_calls=[ScriptedCall("lookup", {"city": "Oslo"})])  # a step that says nothing
    llm_server.reply("Oslo has 709000 people; Bergen is unknown.")
    async with (
        running_hector(hector_config(llm_server), tmp_path, TOOLS) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(
            url, "helper", binding="JSONRPC", version=version, streaming=True, http=http
        )
        events = [e async for e in client.send_message(request("Oslo and Bergen?", "narrate"))]
        state, answer, task_id = final_text(events)
        task = await client.get_task(GetTaskRequest(id=task_id))
        await client.close()
    assert (state, answer) == (TaskState.TASK_STATE_COMPLETED, "Oslo has 709000 people; Bergen is unknown.")
    # Live clients still get the text as it streams, before the call.
    first_chunk = next(n for n, e in enumerate(events) if e.HasField("artifact_update"))
    first_call = next(
        n for n, e in enumerate(events) if "tool_call" in event_types(e.status_update.status.message)
    )
    assert first_chunk < first_call
    assert get_text_parts(events[first_chunk].artifact_update.artifact.parts) == ["Let me look both up."]
    # Stored, the text goes once, with the step's first call; the artifact is the answer alone.
    agent_messages = [m for m in task.history if m.role == Role.ROLE_AGENT]
    assert [(get_text_parts(m.parts), event_types(m)) for m in agent_messages] == [
        (["Let me look both up."], ["tool_call"]),
        ([], ["tool_result"]),
        ([], ["tool_call"]),
        ([], ["tool_result"]),
        ([], ["tool_call"]),
        ([], ["tool_result"]),
    ]
    assert [get_text_parts(a.parts) for a in task.artifacts] == [[answer]]
    assert get_text_parts(task.status.message.parts) == [answer]


async def test_anthropic_streams_through_a2a(tmp_path: Path, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply("Hello from a scripted Claude, in pieces.")
    async with (
        running_hector(hector_config(llm_server, "anthropic"), tmp_path, TOOLS) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(
            url, "helper", binding="HTTP+JSON", version="1.0", streaming=True, http=http
        )
        events = [e async for e in client.send_message(request("hi", "a1"))]
        await client.close()
    assert final_text(events)[:2] == (
        TaskState.TASK_STATE_COMPLETED,
        "Hello from a scripted Claude, in pieces.",
    )
    assert llm_server.last.body["system"] == "Be exact."


async def test_provider_5xx_fails_the_task_with_the_reason(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    llm_server.fail(503, "model overloaded")
    async with (
        running_hector(hector_config(llm_server), tmp_path, TOOLS) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "helper", binding="JSONRPC", version="1.0", streaming=False, http=http)
        events = [e async for e in client.send_message(request("hi", "f1"))]
        state, text, _ = final_text(events)
        assert state == TaskState.TASK_STATE_FAILED
        assert "503" in text and "model overloaded" in text
        assert "sk-test-e2e" not in text
        # The server keeps serving after the failure.
        llm_server.reply("recovered")
        again = [e async for e in client.send_message(request("hi again", "f1"))]
        assert final_text(again)[:2] == (TaskState.TASK_STATE_COMPLETED, "recovered")
        await client.close()


async def test_provider_timeout_fails_the_task_promptly(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    llm_server.reply("too late", delay=5)
    async with (
        running_hector(hector_config(llm_server, timeout="0.5s"), tmp_path, TOOLS) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(
            url, "helper", binding="HTTP+JSON", version="1.0", streaming=True, http=http
        )
        started = time.monotonic()
        events = [e async for e in client.send_message(request("hi", "t1"))]
        elapsed = time.monotonic() - started
        await client.close()
    state, text, _ = final_text(events)
    assert state == TaskState.TASK_STATE_FAILED and "no answer from" in text and "within 0.5s" in text
    assert elapsed < 4, f"a timed-out provider must not hang the request ({elapsed:.1f} s)"
    assert not any(
        "too late" in "".join(get_text_parts(e.artifact_update.artifact.parts))
        for e in events
        if e.HasField("artifact_update")
    )
