"""Human approval of tool calls over A2A: pause, approve, deny, wrong user, replay, restart, expiry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from a2a.helpers.proto_helpers import get_text_parts
from a2a.types.a2a_pb2 import GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from hector.tools import FunctionTool, Tool
from tests.harness import running_hector
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.server.test_a2a import client_for, final_text, request
from tests.server.test_llm_e2e import event_types, llm_config

SEEDS = Path(__file__).resolve().parent.parent / "fixtures" / "seeds"
KEY_A, KEY_B = "key-alice-0123456789", "key-bob-9876543210"


class Deployments:
    def __init__(self) -> None:
        self.done: list[str] = []

    def tool(self, timeout: float = 600.0) -> Tool:
        def deploy(env: str) -> str:
            """Deploys to an environment."""
            self.done.append(env)
            return f"deployed {env}"

        tool = FunctionTool(deploy)
        tool.require_approval = True
        tool.approval_prompt = "Deploy to {env}?"
        tool.approval_timeout = timeout
        return tool


def config(store: dict[str, Any] | None = None, auth: bool = False) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "llms": {"t": {"type": "test"}},
        "agents": {"ops": {"llm": "t", "tools": ["deploy"]}},
    }
    if store is not None:
        cfg["session_stores"] = {"main": store}
    if auth:
        cfg["server"] = {"auth": {"enabled": True, "api_keys": [KEY_A, KEY_B]}}
    return cfg


def answer(
    task_id: str, context_id: str, *, text: str | None = None, decision: str | None = None
) -> SendMessageRequest:
    msg = Message(
        role=Role.ROLE_USER,
        message_id=f"d-{task_id[:8]}-{text}-{decision}",
        task_id=task_id,
        context_id=context_id,
    )
    if text is not None:
        msg.parts.append(Part(text=text))
    if decision is not None:
        msg.parts.append(Part(data=ParseDict({"decision": decision}, Value())))
    return SendMessageRequest(message=msg)


def paused(events: list[Any]) -> tuple[str, str, dict[str, Any]]:
    """(task id, prompt text, approval data part) of a run that stopped for approval."""
    last = events[-1]
    task = last.task if last.HasField("task") else None
    status = task.status if task is not None else last.status_update.status
    assert status.state == TaskState.TASK_STATE_INPUT_REQUIRED, status
    data = [MessageToDict(p.data) for p in status.message.parts if p.HasField("data")]
    task_id = task.id if task is not None else last.status_update.task_id
    return task_id, "".join(get_text_parts(status.message.parts)), data[0]


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "blocking"])
async def test_approve_runs_the_tool(tmp_path: Path, streaming: bool) -> None:
    deploys = Deployments()
    async with (
        running_hector(config(), tmp_path, {"deploy": deploys.tool()}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(
            url, "ops", binding="JSONRPC", version="1.0", streaming=streaming, http=http
        )
        events = [e async for e in client.send_message(request('use deploy {"env": "prod"}', "c-approve"))]
        task_id, prompt, data = paused(events)
        assert prompt == "Deploy to prod?"
        assert data["interaction_type"] == "tool_approval" and data["tool_name"] == "deploy"
        assert data["tool_input"] == {"env": "prod"} and data["options"] == ["approve", "deny"]
        assert deploys.done == [], "nothing runs before approval"
        resumed = [e async for e in client.send_message(answer(task_id, "c-approve", decision="approve"))]
        assert final_text(resumed)[:2] == (
            TaskState.TASK_STATE_COMPLETED,
            "Tool deploy returned: deployed prod",
        )
        assert deploys.done == ["prod"]
        # Replay: the same decision again does not run the tool again.
        with pytest.raises(Exception, match=r"(?i)terminal|not.*(allowed|found)|invalid"):
            _ = [e async for e in client.send_message(answer(task_id, "c-approve", decision="approve"))]
        assert deploys.done == ["prod"]
        await client.close()


async def test_deny_by_text_tells_the_model(tmp_path: Path) -> None:
    deploys = Deployments()
    async with (
        running_hector(config(), tmp_path, {"deploy": deploys.tool()}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "ops", binding="HTTP+JSON", version="1.0", streaming=True, http=http)
        task_id, _, data = paused(
            [e async for e in client.send_message(request('use deploy {"env": "prod"}', "c-deny"))]
        )
        unclear = [e async for e in client.send_message(answer(task_id, "c-deny", text="what does it do?"))]
        assert paused(unclear)[1:] == ("Please answer with: approve or deny\n\nDeploy to prod?", data)
        done = [e async for e in client.send_message(answer(task_id, "c-deny", text="deny"))]
        state, text, _ = final_text(done)
        assert state == TaskState.TASK_STATE_COMPLETED
        assert text == "Tool deploy returned: TOOL_EXECUTION_DENIED: The user rejected this tool call."
        assert deploys.done == []
        await client.close()


async def test_only_the_owner_can_approve(tmp_path: Path) -> None:
    deploys = Deployments()
    async with (
        running_hector(config(auth=True), tmp_path, {"deploy": deploys.tool()}) as url,
        httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {KEY_A}"}) as alice_http,
        httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {KEY_B}"}) as bob_http,
    ):
        alice = await client_for(
            url, "ops", binding="JSONRPC", version="1.0", streaming=False, http=alice_http
        )
        bob = await client_for(url, "ops", binding="JSONRPC", version="1.0", streaming=False, http=bob_http)
        task_id, _, _ = paused(
            [e async for e in alice.send_message(request('use deploy {"env": "prod"}', "c-own"))]
        )
        with pytest.raises(Exception, match=r"(?i)not found"):
            _ = [e async for e in bob.send_message(answer(task_id, "c-own", decision="approve"))]
        assert deploys.done == []
        done = [e async for e in alice.send_message(answer(task_id, "c-own", decision="approve"))]
        assert final_text(done)[0] == TaskState.TASK_STATE_COMPLETED and deploys.done == ["prod"]
        await alice.close()
        await bob.close()


async def test_pending_approval_survives_a_restart(tmp_path: Path, store: dict[str, Any]) -> None:
    deploys = Deployments()
    cfg = config(store)
    async with (
        running_hector(cfg, tmp_path, {"deploy": deploys.tool()}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "ops", binding="JSONRPC", version="1.0", streaming=True, http=http)
        task_id, _, _ = paused(
            [e async for e in client.send_message(request('use deploy {"env": "eu"}', "c-restart"))]
        )
        await client.close()
    async with (
        running_hector(cfg, tmp_path, {"deploy": deploys.tool()}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "ops", binding="HTTP+JSON", version="1.0", streaming=True, http=http)
        stored = await client.get_task(GetTaskRequest(id=task_id))
        assert stored.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        done = [e async for e in client.send_message(answer(task_id, "c-restart", decision="approve"))]
        assert final_text(done)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool deploy returned: deployed eu")
        await client.close()
    assert deploys.done == ["eu"]


async def test_expired_approval_is_a_denial(tmp_path: Path) -> None:
    deploys = Deployments()
    tool = deploys.tool(timeout=0.2)
    async with (
        running_hector(config(), tmp_path, {"deploy": tool}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "ops", binding="JSONRPC", version="1.0", streaming=True, http=http)
        task_id, _, _ = paused(
            [e async for e in client.send_message(request('use deploy {"env": "prod"}', "c-exp"))]
        )
        await asyncio.sleep(0.4)
        done = [e async for e in client.send_message(answer(task_id, "c-exp", decision="approve"))]
        assert "expired" in final_text(done)[1] and deploys.done == []
        await client.close()


async def test_text_said_before_an_approved_call_is_stored_with_it(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    deploys = Deployments()
    llm_server.reply("I will deploy now.", tool_calls=[ScriptedCall("deploy", {"env": "prod"})])
    llm_server.reply("Deployed to prod.")
    cfg = {"llms": {"main": llm_config(llm_server)}, "agents": {"ops": {"llm": "main", "tools": ["deploy"]}}}
    async with (
        running_hector(cfg, tmp_path, {"deploy": deploys.tool()}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "ops", binding="JSONRPC", version="1.0", streaming=True, http=http)
        task_id, prompt, _ = paused(
            [e async for e in client.send_message(request("deploy to prod", "c-narrate"))]
        )
        assert prompt == "Deploy to prod?"  # the question is the tool's prompt alone
        done = [e async for e in client.send_message(answer(task_id, "c-narrate", decision="approve"))]
        assert final_text(done)[:2] == (TaskState.TASK_STATE_COMPLETED, "Deployed to prod.")
        task = await client.get_task(GetTaskRequest(id=task_id))
        await client.close()
    # The step's text is kept once, with its call (which ran after the decision).
    said = [(get_text_parts(m.parts), event_types(m)) for m in task.history if m.role == Role.ROLE_AGENT]
    assert said == [
        (["Deploy to prod?"], ["approval_request"]),
        (["I will deploy now."], ["tool_call"]),
        ([], ["tool_result"]),
    ]
    assert [get_text_parts(a.parts) for a in task.artifacts] == [["Deployed to prod."]]
    assert deploys.done == ["prod"]


async def test_seed_approval_prompts_name_the_file_and_the_command(tmp_path: Path) -> None:
    """security.md, Tool Approval: "Allow writing to {file}?" and "Execute: {command}?"."""
    seed = yaml.safe_load((SEEDS / "security_11_tool_approval.yaml").read_text(encoding="utf-8"))
    cfg = {
        "llms": {"t": {"type": "test"}},
        "tools": seed["tools"],
        "agents": {"ops": {"llm": "t", "tools": ["write_file", "execute_command"]}},
    }
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "ops", binding="JSONRPC", version="1.0", streaming=False, http=http)
        write = 'use write_file {"path": "notes.txt", "content": "hi"}'
        task_id, prompt, _ = paused([e async for e in client.send_message(request(write, "c-file"))])
        assert prompt == "Allow writing to notes.txt?"
        done = [e async for e in client.send_message(answer(task_id, "c-file", decision="approve"))]
        assert final_text(done)[0] == TaskState.TASK_STATE_COMPLETED
        assert (tmp_path / "notes.txt").read_text() == "hi"

        command = 'use execute_command {"command": "echo hello"}'
        task_id, prompt, _ = paused([e async for e in client.send_message(request(command, "c-cmd"))])
        assert prompt == "Execute: echo hello?"
        done = [e async for e in client.send_message(answer(task_id, "c-cmd", decision="deny"))]
        assert "TOOL_EXECUTION_DENIED" in final_text(done)[1]
        await client.close()
