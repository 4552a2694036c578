"""Tools an agent can call: the contract, and a wrapper for plain Python functions."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from hector.messages import ToolSpec


@dataclass(frozen=True)
class ToolContext:
    """Who is calling, from which agent, in which conversation."""

    agent_id: str
    context_id: str
    task_id: str | None
    user: str


class Tool(ABC):
    """A capability granted to an agent.

    ``call`` returns the text the model will see. It may raise ``ToolError`` (or any exception):
    the agent loop turns the failure into an error result for the model and the task goes on.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    require_approval: bool = False
    approval_prompt: str | None = None
    """Shown to the approver; ``{arg}`` placeholders are filled from the call's arguments."""
    approval_timeout: float = 600.0

    @abstractmethod
    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        """Run the tool with arguments already parsed from the model's JSON."""

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


ToolFunction = Callable[..., Awaitable[Any] | Any]


class FunctionTool(Tool):
    """A Python function as a tool; the JSON schema comes from its signature's type hints."""

    def __init__(self, fn: ToolFunction, name: str | None = None, description: str | None = None) -> None:
        self._fn = fn
        self.name = name or fn.__name__
        self.description = description or inspect.getdoc(fn) or self.name
        self.parameters = _schema_for(fn)

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        result = self._fn(**arguments)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, str) else TypeAdapter(Any).dump_json(result).decode()


def _schema_for(fn: ToolFunction) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    hints = inspect.get_annotations(fn, eval_str=True)
    for pname, param in inspect.signature(fn).parameters.items():
        properties[pname] = TypeAdapter(hints.get(pname, Any)).json_schema()
        if param.default is inspect.Parameter.empty:
            required.append(pname)
    return {"type": "object", "properties": properties, "required": required}
