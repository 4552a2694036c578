"""agent_call: agents handing tasks to other agents in-process, scoped by sub_agents, bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from a2a.types.a2a_pb2 import TaskState

from hector.agent import Agent
from hector.assembly import build_runtime
from hector.config import parse_config
from tests.harness import running_hector
from tests.server.test_a2a import client_for, final_text, request


def call(agent: str, task: str) -> str:
    return "use agent_call " + json.dumps({"agent": agent, "task": task})


async def ask(url: str, agent: str, text: str, context: str) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, agent, binding="JSONRPC", version="1.0", streaming=False, http=http)
        events = [e async for e in client.send_message(request(text, context))]
        await client.close()
    state, answer, _ = final_text(events)
    return state, answer


CONFIG: dict[str, Any] = {
    "llms": {"t": {"type": "test"}},
    "agents": {
        "boss": {"llm": "t", "tools": ["agent_call"], "sub_agents": ["helper", "vault"]},
        "helper": {"llm": "t"},
        "vault": {"llm": "t", "visibility": "private"},
        "other": {"llm": "t"},
    },
}


async def test_calls_a_sub_agent_including_a_private_one(tmp_path: Path) -> None:
    async with running_hector(CONFIG, tmp_path) as url:
        assert await ask(url, "boss", call("vault", "say hi"), "c1") == (
            TaskState.TASK_STATE_COMPLETED,
            "Tool agent_call returned: [test model] You said: say hi",
        )
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{url}/agents/vault")).status_code == 404, "still invisible over HTTP"


async def test_only_listed_sub_agents(tmp_path: Path) -> None:
    async with running_hector(CONFIG, tmp_path) as url:
        state, answer = await ask(url, "boss", call("other", "hello"), "c2")
    assert state == TaskState.TASK_STATE_COMPLETED
    assert "ERROR: unknown agent 'other'; you may call: ['helper', 'vault']" in answer


async def test_loops_and_depth_are_refused(tmp_path: Path) -> None:
    cfg: dict[str, Any] = {
        "llms": {"t": {"type": "test"}},
        "agents": {
            "a": {"llm": "t", "tools": ["agent_call"], "sub_agents": ["b"]},
            "b": {"llm": "t", "tools": ["agent_call"], "sub_agents": ["a", "c"]},
            "c": {"llm": "t", "tools": ["agent_call"], "sub_agents": ["d"]},
            "d": {"llm": "t", "tools": ["agent_call"], "sub_agents": ["e"]},
            "e": {"llm": "t"},
        },
    }
    async with running_hector(cfg, tmp_path) as url:
        _, looped = await ask(url, "a", call("b", call("a", "again")), "c3")
        assert "agent call loop refused: a → b → a" in looped
        deep = call("b", call("c", call("d", call("e", "bottom"))))
        _, answer = await ask(url, "a", deep, "c4")
        assert "agent call depth limit (3) reached: a → b → c → d" in answer


async def test_supervisor_gets_agent_call_and_knows_its_team(tmp_path: Path) -> None:
    cfg: dict[str, Any] = {
        "llms": {"t": {"type": "test"}},
        "agents": {
            "lead": {
                "llm": "t",
                "instruction": "Be brief.",
                "reasoning": {"engine": "supervisor"},
                "sub_agents": ["researcher", "writer"],
            },
            "researcher": {"llm": "t", "description": "Finds facts"},
            "writer": {"llm": "t", "description": "Writes prose"},
        },
    }
    runtime = build_runtime(parse_config(cfg).config, tmp_path)
    lead = runtime.agents["lead"].agent
    assert isinstance(lead, Agent)
    assert [t.name for t in lead.tools] == ["agent_call"]
    instruction = lead.instruction or ""
    assert instruction.startswith("Be brief.\n\nYou are a supervisor.")
    assert "- researcher: Finds facts\n- writer: Writes prose" in instruction
    async with runtime:
        answer = await lead.run(call("writer", "a haiku"), context_id="s")
    assert answer == "Tool agent_call returned: [test model] You said: a haiku"
