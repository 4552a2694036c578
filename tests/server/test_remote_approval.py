"""Tool approvals of an external agent, proxied: a Hector agent behind another Hector's ``type: a2a``.

The upstream agent's tool needs approval; the user talks only to the local proxy, which must
show the question, send the decision on to the same upstream task, and bring its answer back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState

from tests.harness import running_hector
from tests.server.test_a2a import client_for, final_text, request
from tests.server.test_approval import Deployments, answer, config as upstream_config, paused

UP_KEY = "upstream-key-0123456789"
KEY_A, KEY_B = "key-alice-0123456789", "key-bob-9876543210"
DEPLOY = 'use deploy {"env": "prod"}'


def upstream() -> dict[str, Any]:
    return upstream_config() | {"server": {"auth": {"enabled": True, "api_keys": [UP_KEY]}}}


def local(up: str, store: dict[str, Any] | None = None, auth: bool = False) -> dict[str, Any]:
    proxy = {
        "type": "a2a",
        "url": f"{up}/agents/ops",
        "credentials": {"type": "bearer", "token": UP_KEY},
    }
    cfg: dict[str, Any] = {"llms": {"t": {"type": "test"}}, "agents": {"proxy": proxy}}
    if store is not None:
        cfg["session_stores"] = {"main": store}
    if auth:
        cfg["server"] = {"auth": {"enabled": True, "api_keys": [KEY_A, KEY_B]}}
    return cfg


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "blocking"])
async def test_approve_through_the_proxy(tmp_path: Path, streaming: bool) -> None:
    deploys = Deployments()
    async with (
        running_hector(upstream(), tmp_path / "up", {"deploy": deploys.tool()}) as up,
        running_hector(local(up), tmp_path / "local") as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(
            url, "proxy", binding="JSONRPC", version="1.0", streaming=streaming, http=http
        )
        task_id, prompt, data = paused([e async for e in client.send_message(request(DEPLOY, "c-ok"))])
        assert prompt == "Deploy to prod?"
        assert data["interaction_type"] == "tool_approval" and data["tool_name"] == "deploy"
        assert data["tool_input"] == {"env": "prod"} and data["options"] == ["approve", "deny"]
        assert deploys.done == []
        resumed = [e async for e in client.send_message(answer(task_id, "c-ok", decision="approve"))]
        assert final_text(resumed)[:2] == (
            TaskState.TASK_STATE_COMPLETED,
            "Tool deploy returned: deployed prod",
        )
        assert deploys.done == ["prod"]
        await client.close()


async def test_deny_by_text_and_unclear_answers(tmp_path: Path) -> None:
    deploys = Deployments()
    async with (
        running_hector(upstream(), tmp_path / "up", {"deploy": deploys.tool()}) as up,
        running_hector(local(up), tmp_path / "local") as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "proxy", binding="HTTP+JSON", version="1.0", streaming=True, http=http)
        task_id, _, data = paused([e async for e in client.send_message(request(DEPLOY, "c-deny"))])
        unclear = [e async for e in client.send_message(answer(task_id, "c-deny", text="what does it do?"))]
        assert paused(unclear)[1:] == ("Please answer with: approve or deny\n\nDeploy to prod?", data)
        done = [e async for e in client.send_message(answer(task_id, "c-deny", text="deny"))]
        assert final_text(done)[:2] == (
            TaskState.TASK_STATE_COMPLETED,
            "Tool deploy returned: TOOL_EXECUTION_DENIED: The user rejected this tool call.",
        )
        assert deploys.done == []
        await client.close()


async def test_only_the_local_owner_can_approve(tmp_path: Path) -> None:
    deploys = Deployments()
    async with (
        running_hector(upstream(), tmp_path / "up", {"deploy": deploys.tool()}) as up,
        running_hector(local(up, auth=True), tmp_path / "local") as url,
        httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {KEY_A}"}) as alice_http,
        httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {KEY_B}"}) as bob_http,
    ):
        alice = await client_for(
            url, "proxy", binding="JSONRPC", version="1.0", streaming=False, http=alice_http
        )
        bob = await client_for(url, "proxy", binding="JSONRPC", version="1.0", streaming=False, http=bob_http)
        task_id, _, _ = paused([e async for e in alice.send_message(request(DEPLOY, "c-own"))])
        with pytest.raises(Exception, match=r"(?i)not found"):
            _ = [e async for e in bob.send_message(answer(task_id, "c-own", decision="approve"))]
        assert deploys.done == []
        done = [e async for e in alice.send_message(answer(task_id, "c-own", decision="approve"))]
        assert final_text(done)[0] == TaskState.TASK_STATE_COMPLETED and deploys.done == ["prod"]
        await alice.close()
        await bob.close()


async def test_pending_remote_approval_survives_a_local_restart(tmp_path: Path) -> None:
    deploys = Deployments()
    store = {"backend": "sql"}
    async with running_hector(upstream(), tmp_path / "up", {"deploy": deploys.tool()}) as up:
        async with (
            running_hector(local(up, store), tmp_path / "local") as url,
            httpx.AsyncClient(timeout=30) as http,
        ):
            client = await client_for(
                url, "proxy", binding="JSONRPC", version="1.0", streaming=True, http=http
            )
            task_id, _, _ = paused([e async for e in client.send_message(request(DEPLOY, "c-restart"))])
            await client.close()
        async with (
            running_hector(local(up, store), tmp_path / "local") as url,
            httpx.AsyncClient(timeout=30) as http,
        ):
            client = await client_for(
                url, "proxy", binding="JSONRPC", version="1.0", streaming=True, http=http
            )
            done = [e async for e in client.send_message(answer(task_id, "c-restart", decision="approve"))]
            assert final_text(done)[:2] == (
                TaskState.TASK_STATE_COMPLETED,
                "Tool deploy returned: deployed prod",
            )
            await client.close()
    assert deploys.done == ["prod"]


async def test_agent_call_cannot_answer_a_remote_approval(tmp_path: Path) -> None:
    deploys = Deployments()
    async with running_hector(upstream(), tmp_path / "up", {"deploy": deploys.tool()}) as up:
        cfg = local(up)
        cfg["agents"]["boss"] = {"llm": "t", "tools": ["agent_call"], "sub_agents": ["proxy"]}
        async with running_hector(cfg, tmp_path / "local") as url, httpx.AsyncClient(timeout=30) as http:
            client = await client_for(
                url, "boss", binding="JSONRPC", version="1.0", streaming=False, http=http
            )
            call = 'use agent_call {"agent": "proxy", "task": "use deploy {\\"env\\": \\"prod\\"}"}'
            state, text, _ = final_text([e async for e in client.send_message(request(call, "c-sub"))])
            await client.close()
    assert state == TaskState.TASK_STATE_COMPLETED
    assert "asks for approval" in text and "Deploy to prod?" in text
    assert deploys.done == []
