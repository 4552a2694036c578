"""Two Hector replicas on one PostgreSQL: a task started on one is read and approved on the other."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types.a2a_pb2 import GetTaskRequest, TaskState

from tests.harness import fresh_postgres_database, running_hector
from tests.server.test_a2a import client_for, final_text, request
from tests.server.test_approval import Deployments, answer, paused


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    try:
        async with fresh_postgres_database() as url:
            yield url
    except OSError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")


async def test_start_on_one_replica_approve_on_the_other(tmp_path: Path, postgres_url: str) -> None:
    deploys = Deployments()
    cfg: dict[str, Any] = {
        "llms": {"t": {"type": "test"}},
        "session_stores": {"main": {"backend": "sql", "url": postgres_url}},
        "agents": {"ops": {"llm": "t", "tools": ["deploy"]}},
    }
    tools = {"deploy": deploys.tool()}
    async with (
        running_hector(cfg, tmp_path / "a", tools) as url_a,
        running_hector(cfg, tmp_path / "b", tools) as url_b,
        httpx.AsyncClient(timeout=30) as http,
    ):
        a = await client_for(url_a, "ops", binding="JSONRPC", version="1.0", streaming=True, http=http)
        b = await client_for(url_b, "ops", binding="HTTP+JSON", version="1.0", streaming=True, http=http)
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
        await a.close()
        await b.close()
    assert deploys.done == ["eu"]
