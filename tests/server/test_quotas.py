"""Usage quotas (session_stores.<name>.rate_limit): requests and tokens per window, over A2A."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState
from google.protobuf.json_format import MessageToDict

from hector.config import parse_config
from hector.errors import ConfigError
from tests.harness import running_hector
from tests.llm_server import ScriptedLLMServer
from tests.server.test_a2a import client_for, request

KEY_A, KEY_B = "quota-key-alice-0001", "quota-key-bob-00002"


def config(
    limits: list[dict[str, Any]],
    *,
    scope: str = "session",
    store: dict[str, Any] | None = None,
    llm: dict[str, Any] | None = None,
    auth: bool = False,
) -> dict[str, Any]:
    session_store = {
        **(store or {"backend": "sql"}),
        "rate_limit": {"enabled": True, "scope": scope, "backend": "sql", "limits": limits},
    }
    cfg: dict[str, Any] = {
        "llms": {"m": llm or {"type": "test"}},
        "session_stores": {"main": session_store},
        "agents": {"echo": {"llm": "m"}},
    }
    if auth:
        cfg["server"] = {"auth": {"enabled": True, "api_keys": [KEY_A, KEY_B]}}
    return cfg


async def send(client: Any, text: str, context: str) -> tuple[int, dict[str, Any], str]:
    """(final state, final status update metadata, status text)."""
    events = [e async for e in client.send_message(request(text, context))]
    last = events[-1]
    task = last.task
    metadata: dict[str, Any] = {}
    for e in events:
        if e.HasField("status_update") and e.status_update.HasField("metadata"):
            metadata = MessageToDict(e.status_update.metadata)
    text_parts = (
        [p.text for p in task.status.message.parts]
        if last.HasField("task")
        else [p.text for p in last.status_update.status.message.parts]
    )
    state = task.status.state if last.HasField("task") else last.status_update.status.state
    return state, metadata, "".join(text_parts)


async def test_count_limit_rejects_with_usage(tmp_path: Path, store: dict[str, Any]) -> None:
    cfg = config([{"type": "count", "window": "minute", "limit": 2}], store=store)
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=True, http=http)
        assert (await send(client, "one", "s1"))[0] == TaskState.TASK_STATE_COMPLETED
        assert (await send(client, "two", "s1"))[0] == TaskState.TASK_STATE_COMPLETED
        state, metadata, text = await send(client, "three", "s1")
        assert state == TaskState.TASK_STATE_REJECTED
        assert "count limit exceeded for minute window (2/2)" in text
        assert metadata["error"] == "rate_limit_exceeded" and 1 <= metadata["retry_after_seconds"] <= 61
        assert metadata["usage"][0]["current"] == 2 and metadata["usage"][0]["remaining"] == 0
        # Session scope: another conversation has its own counter.
        assert (await send(client, "fresh", "s2"))[0] == TaskState.TASK_STATE_COMPLETED
        await client.close()
    # Counters live in the database: a restart does not reset them.
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "echo", binding="HTTP+JSON", version="1.0", streaming=False, http=http)
        assert (await send(client, "again", "s1"))[0] == TaskState.TASK_STATE_REJECTED
        await client.close()


async def test_user_scope_is_per_authenticated_user(tmp_path: Path) -> None:
    cfg = config([{"type": "count", "window": "hour", "limit": 1}], scope="user", auth=True)
    async with (
        running_hector(cfg, tmp_path) as url,
        httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {KEY_A}"}) as alice_http,
        httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {KEY_B}"}) as bob_http,
    ):
        alice = await client_for(
            url, "echo", binding="JSONRPC", version="1.0", streaming=False, http=alice_http
        )
        bob = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=False, http=bob_http)
        assert (await send(alice, "a", "a1"))[0] == TaskState.TASK_STATE_COMPLETED
        assert (await send(alice, "b", "a2"))[0] == TaskState.TASK_STATE_REJECTED, "user scope spans sessions"
        assert (await send(bob, "c", "b1"))[0] == TaskState.TASK_STATE_COMPLETED
        await alice.close()
        await bob.close()


async def test_token_limit_uses_reported_usage(tmp_path: Path, llm_server: ScriptedLLMServer) -> None:
    llm = {"type": "openai", "model": "m", "host": f"{llm_server.url}/v1", "api_key": "k", "max_retries": 0}
    for _ in range(2):
        llm_server.reply("ok", usage=(10, 5))
    cfg = config([{"type": "token", "window": "day", "limit": 20}], llm=llm)
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=True, http=http)
        assert (await send(client, "one", "t"))[0] == TaskState.TASK_STATE_COMPLETED  # 15 used
        assert (await send(client, "two", "t"))[0] == TaskState.TASK_STATE_COMPLETED  # 30 used
        state, _, text = await send(client, "three", "t")
        assert (
            state == TaskState.TASK_STATE_REJECTED and "token limit exceeded for day window (30/20)" in text
        )
        assert len(llm_server.requests) == 2, "a refused request never reaches the model"
        await client.close()


def test_sql_counters_need_a_sql_store() -> None:
    with pytest.raises(ConfigError, match=r"rate_limit\.backend sql"):
        parse_config(config([{"type": "count", "window": "minute", "limit": 1}], store={"backend": "memory"}))
