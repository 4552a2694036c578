"""Domain types shared by providers, tools and the agent loop.

Frozen dataclasses with a ``kind`` tag. Only the transport layer (``hector.a2a``) knows A2A's
wire types; everything below it speaks these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    """One entry of a conversation as providers see it."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    """For ``role='tool'``: the call this message answers."""
    name: str | None = None
    """For ``role='tool'``: the tool's name (Gemini needs it)."""
    is_error: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            data["name"] = self.name
        if self.is_error:
            data["is_error"] = True
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChatMessage:
        return cls(
            role=data["role"],
            content=data.get("content", ""),
            tool_calls=tuple(
                ToolCall(c["id"], c["name"], dict(c.get("arguments") or {}))
                for c in data.get("tool_calls", [])
            ),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            is_error=bool(data.get("is_error", False)),
        )


@dataclass(frozen=True)
class ToolSpec:
    """What a model is told about a tool."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass(frozen=True)
class ModelResponse:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    finish_reason: str | None = None


# ---- what a model stream yields -------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str
    kind: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True)
class ResponseDone:
    response: ModelResponse
    kind: Literal["response_done"] = "response_done"


ModelStreamEvent = TextDelta | ResponseDone


# ---- what the agent loop yields -------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallEvent:
    call: ToolCall
    narration: str = ""
    """What the model said in the step before its calls (``Let me look that up.``), on the step's
    first call only; kept with the call because the final answer replaces the streamed text."""
    kind: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True)
class ToolResultEvent:
    call: ToolCall
    content: str
    is_error: bool = False
    kind: Literal["tool_result"] = "tool_result"


@dataclass(frozen=True)
class StatusEvent:
    """A progress note for the user (e.g. 'Summarizing conversation history...')."""

    text: str
    kind: Literal["status"] = "status"


@dataclass(frozen=True)
class FinalEvent:
    text: str
    usage: Usage = Usage()
    structured: Any = None
    """The parsed JSON value when the agent has a structured-output schema."""
    kind: Literal["final"] = "final"


@dataclass(frozen=True)
class ApprovalRequiredEvent:
    """The run paused: the step's calls in ``calls`` wait for a person to approve or deny them."""

    approval_id: str
    calls: tuple[ToolCall, ...]
    prompt: str
    kind: Literal["approval_required"] = "approval_required"


@dataclass(frozen=True)
class InputRequiredEvent:
    """The run paused on a question for the user (an external agent asked one); the user's next
    message on the task is the answer."""

    prompt: str
    kind: Literal["input_required"] = "input_required"


AgentEvent = (
    TextDelta
    | ToolCallEvent
    | ToolResultEvent
    | StatusEvent
    | FinalEvent
    | ApprovalRequiredEvent
    | InputRequiredEvent
)
