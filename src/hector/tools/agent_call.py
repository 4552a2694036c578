"""``agent_call``: an agent hands a task to another agent of the same server, in-process.

The callee runs as the same user, in its own conversation under the caller's
(``<context>/<callee>``), so its history persists across calls. Calls are bounded: a chain of
calls may not revisit an agent (no loops) and may not be deeper than ``MAX_DEPTH``. Private
agents are callable this way, which is what they are for; a tool call that would need approval
inside the callee is refused there, since no person is asked from inside another agent.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hector.errors import ToolError
from hector.tools import Tool, ToolContext

if TYPE_CHECKING:
    from hector.agent import AgentLike

MAX_DEPTH = 3
_chain: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "hector_agent_call_chain", default=()
)


class AgentCallTool(Tool):
    name = "agent_call"

    def __init__(self, caller: str, agents: Mapping[str, AgentLike], allowed: list[str]) -> None:
        self.caller = caller
        self._agents = agents
        """All agents of the runtime, filled once they are built; looked up at call time."""
        self.allowed = allowed
        listing = ", ".join(allowed) or "(none)"
        self.description = f"Give a task to another agent and get its answer. Agents: {listing}."
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": allowed, "description": "Which agent."},
                "task": {"type": "string", "description": "What the agent should do, self-contained."},
            },
            "required": ["agent", "task"],
            "additionalProperties": False,
        }

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        name, task = arguments.get("agent"), arguments.get("task")
        if not isinstance(name, str) or name not in self.allowed:
            raise ToolError(f"unknown agent {name!r}; you may call: {self.allowed}")
        if not isinstance(task, str) or not task.strip():
            raise ToolError("task must be a non-empty string")
        chain = _chain.get() or (self.caller,)
        if name in chain:
            raise ToolError(f"agent call loop refused: {' → '.join((*chain, name))}")
        if len(chain) > MAX_DEPTH:
            raise ToolError(f"agent call depth limit ({MAX_DEPTH}) reached: {' → '.join(chain)}")
        target = self._agents.get(name)
        if target is None:
            raise ToolError(f"agent {name!r} is not available")
        token = _chain.set((*chain, name))
        try:
            return await target.run(task, context_id=f"{ctx.context_id}/{name}", user=ctx.user)
        finally:
            _chain.reset(token)
