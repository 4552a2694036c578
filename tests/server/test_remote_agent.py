"""External A2A agents (type: a2a): another Hector, and a plain a2a-sdk server speaking 0.3."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.helpers.proto_helpers import get_text_parts
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    GetTaskRequest,
    Part,
    Task,
    TaskState,
    TaskStatus,
)
from starlette.applications import Starlette

from hector.tools import FunctionTool, Tool
from tests.harness import running_hector, serve_app
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.server.test_a2a import client_for, final_text, request
from tests.server.test_llm_e2e import llm_config

KEY = "upstream-key-0123456789"


class Shouter(AgentExecutor):
    """A non-Hector A2A agent: answers in capitals, as a completed task."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None and context.task_id and context.context_id
        text = "".join(p.text for p in context.message.parts)
        await event_queue.enqueue_event(
            Task(
                id=context.task_id,
                context_id=context.context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
            )
        )
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.complete(updater.new_agent_message([Part(text=text.upper())]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None


@pytest.fixture
async def sample_server() -> AsyncIterator[str]:
    """An a2a-sdk server whose card offers only protocol 0.3 JSON-RPC."""
    card = AgentCard(
        name="shouter",
        description="Shouts",
        version="1",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
    )
    handler = DefaultRequestHandler(agent_executor=Shouter(), task_store=InMemoryTaskStore(), agent_card=card)
    app = Starlette(
        routes=[
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True),
        ]
    )
    async with serve_app(app) as url:
        card.supported_interfaces.append(
            AgentInterface(url=url + "/", protocol_binding="JSONRPC", protocol_version="0.3")
        )
        yield url


def local_config(upstream: str, **credentials: Any) -> dict[str, Any]:
    return {
        "llms": {"t": {"type": "test"}},
        "agents": {
            "proxy": {"type": "a2a", "url": upstream, "description": "Upstream echo", **credentials},
            "boss": {"llm": "t", "tools": ["agent_call"], "sub_agents": ["proxy"]},
        },
    }


async def ask(url: str, agent: str, text: str, context: str = "c", streaming: bool = True) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=30) as http:
        client = await client_for(
            url, agent, binding="JSONRPC", version="1.0", streaming=streaming, http=http
        )
        events = [e async for e in client.send_message(request(text, context))]
        await client.close()
    return final_text(events)[:2]


async def test_another_hector_as_an_external_agent(tmp_path: Path) -> None:
    upstream_cfg = {
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t"}},
        "server": {"auth": {"enabled": True, "api_keys": [KEY]}},
    }
    async with running_hector(upstream_cfg, tmp_path / "up") as up:
        creds = {"credentials": {"type": "bearer", "token": KEY}}
        async with running_hector(local_config(f"{up}/agents/echo", **creds), tmp_path / "local") as url:
            for streaming in (True, False):
                assert await ask(url, "proxy", "hello", streaming=streaming) == (
                    TaskState.TASK_STATE_COMPLETED,
                    "[test model] You said: hello",
                )
            call = "use agent_call " + json.dumps({"agent": "proxy", "task": "hi"})
            assert await ask(url, "boss", call) == (
                TaskState.TASK_STATE_COMPLETED,
                "Tool agent_call returned: [test model] You said: hi",
            )
            async with httpx.AsyncClient() as http:
                names = [a["name"] for a in (await http.get(f"{url}/agents")).json()["agents"]]
            assert "proxy" in names
        bad = {"credentials": {"type": "bearer", "token": "wrong-key"}}
        async with running_hector(local_config(f"{up}/agents/echo", **bad), tmp_path / "bad") as url:
            state, text = await ask(url, "proxy", "hello")
            assert state == TaskState.TASK_STATE_FAILED
            assert "external agent 'proxy'" in text and "401" in text and "wrong-key" not in text


async def test_a_plain_a2a_sdk_server_speaking_0_3(tmp_path: Path, sample_server: str) -> None:
    async with running_hector(local_config(sample_server), tmp_path) as url:
        assert await ask(url, "proxy", "quiet please") == (TaskState.TASK_STATE_COMPLETED, "QUIET PLEASE")


async def test_target_agent_id_picks_one_agent_of_a_server(tmp_path: Path) -> None:
    def whoami() -> str:
        """Says which agent this is."""
        return "agent b"

    upstream_cfg = {
        "llms": {"t": {"type": "test"}},
        "agents": {"a": {"llm": "t", "tools": []}, "b": {"llm": "t", "tools": ["whoami"]}},
    }
    tools: dict[str, Tool] = {"whoami": FunctionTool(whoami)}
    async with running_hector(upstream_cfg, tmp_path / "up", tools) as up:
        cfg = local_config(up, target_agent_id="b")
        cfg["agents"]["missing"] = {"type": "a2a", "url": up, "target_agent_id": "nobody"}
        async with running_hector(cfg, tmp_path / "local") as url:
            for _ in range(2):  # the second call uses the place the card was found at
                assert await ask(url, "proxy", "whoami") == (
                    TaskState.TASK_STATE_COMPLETED,
                    "Tool whoami returned: agent b",
                )
            state, text = await ask(url, "missing", "whoami")
    assert state == TaskState.TASK_STATE_FAILED
    assert f"{up}/v1/agents/nobody" in text and "404" in text


async def test_an_external_agents_text_before_a_tool_call_is_not_the_answer(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    def whoami() -> str:
        """Says which agent this is."""
        return "agent b"

    llm_server.reply("Let me check.", tool_calls=[ScriptedCall("whoami", {})])
    llm_server.reply("This is agent b.")
    upstream_cfg = {
        "llms": {"main": llm_config(llm_server)},
        "agents": {"b": {"llm": "main", "tools": ["whoami"]}},
    }
    tools: dict[str, Tool] = {"whoami": FunctionTool(whoami)}
    async with (
        running_hector(upstream_cfg, tmp_path / "up", tools) as up,
        running_hector(local_config(f"{up}/agents/b"), tmp_path / "local") as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "proxy", binding="JSONRPC", version="1.0", streaming=True, http=http)
        events = [e async for e in client.send_message(request("who are you?", "c-remote"))]
        state, answer, task_id = final_text(events)
        task = await client.get_task(GetTaskRequest(id=task_id))
        await client.close()
    assert (state, answer) == (TaskState.TASK_STATE_COMPLETED, "This is agent b.")
    # Its text before the call may stream (as it comes: a fast run sends only the answer), but its
    # status messages (the call, with that text) are not taken for text of the answer.
    chunks = [
        "".join(get_text_parts(e.artifact_update.artifact.parts))
        for e in events
        if e.HasField("artifact_update")
    ]
    assert chunks[-1] == "This is agent b." and "".join(chunks).count("Let me check.") <= 1
    assert [get_text_parts(a.parts) for a in task.artifacts] == [["This is agent b."]]
    assert get_text_parts(task.status.message.parts) == ["This is agent b."]
