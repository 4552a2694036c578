"""todo_write: replace semantics, one list per (agent, conversation, user), validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hector.config.schema import ToolConfig
from hector.errors import ToolError
from hector.tools import ToolContext, todo
from hector.tools.registry import ToolEnv, build_tool

CTX = ToolContext(agent_id="agent", context_id="ctx", task_id="t1", user="alice")


def make() -> todo.TodoWriteTool:
    built = build_tool("todo_write", ToolConfig(), ToolEnv(base_dir=Path(".")))
    assert isinstance(built, todo.TodoWriteTool)
    assert not built.require_approval  # a scratchpad changes nothing outside Hector
    return built


def item(todo_id: Any, content: str = "step", status: str = "pending") -> dict[str, Any]:
    return {"id": todo_id, "content": content, "status": status}


async def test_write_renders_the_list() -> None:
    out = await make().call(
        {
            "todos": [
                item("1", "Read the spec", "completed"),
                item("2", "Write the tool", "in_progress"),
                item("3", "Write tests"),
                item("4", "Gold-plate", "canceled"),
            ]
        },
        CTX,
    )
    assert out.splitlines() == [
        "Todo list (4 items: 1 pending, 1 in progress, 1 completed, 1 canceled)",
        "[x] 1. Read the spec",
        "[>] 2. Write the tool",
        "[ ] 3. Write tests",
        "[-] 4. Gold-plate",
    ]


async def test_each_write_replaces_the_list() -> None:
    tool = make()
    await tool.call({"todos": [item("a"), item("b")]}, CTX)
    out = await tool.call({"todos": [item("b", "step", "completed")]}, CTX)
    assert out == "Todo list (1 item: 1 completed)\n[x] b. step"
    assert tool.current(CTX) == [todo.TodoItem("b", "step", "completed")]
    assert await tool.call({"todos": []}, CTX) == "Todo list is empty."
    assert tool.current(CTX) == []


async def test_lists_are_kept_per_agent_conversation_and_user() -> None:
    tool = make()
    others = [
        ToolContext("agent", "other-ctx", None, "alice"),
        ToolContext("agent", "ctx", None, "bob"),
        ToolContext("other-agent", "ctx", None, "alice"),
    ]
    await tool.call({"todos": [item("mine")]}, CTX)
    for n, ctx in enumerate(others):
        assert tool.current(ctx) == []
        await tool.call({"todos": [item(f"theirs-{n}")]}, ctx)
    assert [t.id for t in tool.current(CTX)] == ["mine"]
    assert [tool.current(ctx)[0].id for ctx in others] == ["theirs-0", "theirs-1", "theirs-2"]


async def test_oldest_lists_are_forgotten_beyond_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(todo, "MAX_LISTS", 2)
    tool = make()
    contexts = [ToolContext("agent", f"c{n}", None, "alice") for n in range(3)]
    for ctx in contexts:
        await tool.call({"todos": [item(ctx.context_id)]}, ctx)
    assert [len(tool.current(ctx)) for ctx in contexts] == [0, 1, 1]


async def test_integer_ids_are_accepted() -> None:
    assert (await make().call({"todos": [item(1)]}, CTX)).endswith("[ ] 1. step")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "todos must be a list"),
        ({"todos": "do things"}, "todos must be a list"),
        ({"todos": ["do things"]}, "todo 1: expected an object"),
        ({"todos": [{"content": "x", "status": "pending"}]}, "todo 1: id must be a non-empty string"),
        ({"todos": [item(True)]}, "todo 1: id must be a non-empty string"),
        ({"todos": [item("a"), item("a")]}, "todo 2: duplicate id 'a'"),
        ({"todos": [item("a", "  ")]}, "todo 'a': content must be a non-empty string"),
        ({"todos": [item("a", "x" * 2001)]}, r"todo 'a': content too long \(2001 characters, max 2000\)"),
        (
            {"todos": [item("a", status="done")]},
            "status must be one of pending, in_progress, completed, canceled",
        ),
        ({"todos": [item(str(n)) for n in range(101)]}, r"too many todos: 101 \(max: 100\)"),
        ({"todos": [], "merge": True}, r"unknown arguments \['merge'\]"),
    ],
)
async def test_invalid_lists_are_refused_and_keep_the_old_one(
    arguments: dict[str, Any], message: str
) -> None:
    tool = make()
    await tool.call({"todos": [item("kept")]}, CTX)
    with pytest.raises(ToolError, match=message):
        await tool.call(arguments, CTX)
    assert [t.id for t in tool.current(CTX)] == ["kept"]
