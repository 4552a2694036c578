"""``todo_write``: the model's working memory for its own plan.

The model writes its whole task list each time (replace, not merge) and gets it back rendered,
so the plan stays visible in the conversation as it works through long tasks. Lists live in
memory only, one per (agent, conversation, user); they are a scratchpad, not a record.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from hector.config.schema import ToolConfig
from hector.errors import ToolError
from hector.tools import Tool, ToolContext
from hector.tools.registry import ToolEnv

STATUSES = ("pending", "in_progress", "completed", "canceled")
MAX_LISTS = 10_000
"""Conversations remembered at once; the least recently written list is forgotten first."""
MAX_ITEMS = 100
MAX_CONTENT = 2_000

_MARKS = {"pending": "[ ]", "in_progress": "[>]", "completed": "[x]", "canceled": "[-]"}

Key = tuple[str, str, str]


@dataclass(frozen=True)
class TodoItem:
    id: str
    content: str
    status: str


def parse_todos(value: Any) -> list[TodoItem]:
    """Check the model's list; every error names the item and the rule, so it can fix the call."""
    if not isinstance(value, list):
        raise ToolError("todos must be a list of {id, content, status} objects")
    if len(value) > MAX_ITEMS:
        raise ToolError(f"too many todos: {len(value)} (max: {MAX_ITEMS})")
    items: list[TodoItem] = []
    seen: set[str] = set()
    for n, raw in enumerate(value, 1):
        if not isinstance(raw, dict):
            raise ToolError(f"todo {n}: expected an object with id, content and status")
        todo_id, content, status = raw.get("id"), raw.get("content"), raw.get("status")
        # Models often number their items; an integer id means the same as its digits.
        if isinstance(todo_id, int) and not isinstance(todo_id, bool):
            todo_id = str(todo_id)
        if not isinstance(todo_id, str) or not todo_id.strip():
            raise ToolError(f"todo {n}: id must be a non-empty string")
        if todo_id in seen:
            raise ToolError(f"todo {n}: duplicate id {todo_id!r}")
        if not isinstance(content, str) or not content.strip():
            raise ToolError(f"todo {todo_id!r}: content must be a non-empty string")
        if len(content) > MAX_CONTENT:
            raise ToolError(
                f"todo {todo_id!r}: content too long ({len(content)} characters, max {MAX_CONTENT})"
            )
        if status not in STATUSES:
            raise ToolError(f"todo {todo_id!r}: status must be one of {', '.join(STATUSES)}, not {status!r}")
        seen.add(todo_id)
        items.append(TodoItem(todo_id, content.strip(), status))
    return items


def render(items: list[TodoItem]) -> str:
    if not items:
        return "Todo list is empty."
    counts = ", ".join(
        f"{count} {status.replace('_', ' ')}"
        for status in STATUSES
        if (count := sum(item.status == status for item in items))
    )
    lines = [f"Todo list ({len(items)} item{'s' if len(items) > 1 else ''}: {counts})"]
    lines += [f"{_MARKS[item.status]} {item.id}. {item.content}" for item in items]
    return "\n".join(lines)


class TodoWriteTool(Tool):
    description = (
        "Write your task list for this conversation: give the complete list every time (it replaces "
        "the previous one). Statuses: pending, in_progress, completed, canceled. Returns the list."
    )
    parameters = {
        "type": "object",
        "properties": {
            "todos": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "content": {"type": "string"},
                        "status": {"type": "string", "enum": list(STATUSES)},
                    },
                    "required": ["id", "content", "status"],
                },
            }
        },
        "required": ["todos"],
    }

    def __init__(self, name: str) -> None:
        self.name = name
        self._lists: OrderedDict[Key, list[TodoItem]] = OrderedDict()

    def current(self, ctx: ToolContext) -> list[TodoItem]:
        """The list last written in *ctx*'s conversation (empty if none)."""
        return list(self._lists.get((ctx.agent_id, ctx.context_id, ctx.user), []))

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        unknown = sorted(set(arguments) - {"todos"})
        if unknown:
            raise ToolError(f"unknown arguments {unknown}; expected todos")
        items = parse_todos(arguments.get("todos"))
        key = (ctx.agent_id, ctx.context_id, ctx.user)
        self._lists[key] = items
        self._lists.move_to_end(key)
        while len(self._lists) > MAX_LISTS:
            self._lists.popitem(last=False)
        return render(items)


def build(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return TodoWriteTool(name)
