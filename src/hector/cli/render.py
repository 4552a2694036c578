"""Printing what an agent says, as it arrives, for `hector call` and `hector chat`."""

from __future__ import annotations

import json

from a2a.helpers.proto_helpers import get_text_parts
from a2a.types.a2a_pb2 import Message, StreamResponse, Task, TaskState
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from hector.messages import AgentEvent

FAILED = {TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_REJECTED, TaskState.TASK_STATE_CANCELED}
STATE_NAMES = {
    v: TaskState.Name(v).removeprefix("TASK_STATE_").lower().replace("_", "-") for v in TaskState.values()
}


def _short(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


class Printer:
    """Writes answer text to stdout and progress (tool calls, errors) to stderr."""

    def __init__(self, show_tools: bool = True) -> None:
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.show_tools = show_tools
        self.printed = False
        self.state: int | None = None
        self.task_id: str | None = None

    def _text(self, text: str) -> None:
        if text:
            self.out.print(text, end="", markup=False)
            self.printed = True

    def _tool(self, kind: str, data: dict[str, object]) -> None:
        if not self.show_tools:
            return
        if kind == "tool_call":
            self.err.print(f"[dim]⚙ {data.get('name')}({_short(data.get('arguments', {}))})[/dim]")
        elif kind == "tool_result":
            style = "red" if data.get("is_error") else "dim"
            self.err.print(f"[{style}]↳ {_short(data.get('content', ''))}[/{style}]")

    def _status_message(self, message: Message) -> None:
        for part in message.parts:
            kind = MessageToDict(part.metadata).get("event_type") if part.HasField("metadata") else None
            if part.HasField("data") and kind in ("tool_call", "tool_result"):
                self._tool(kind, MessageToDict(part.data))

    def _finish(self, state: int, message: Message | None, task: Task | None) -> None:
        self.state = state
        text = "\n".join(get_text_parts(message.parts)) if message is not None else ""
        if state in FAILED:
            self.err.print(f"[red]Task {STATE_NAMES[state]}[/red]: {text}", markup=True)
            return
        if state == TaskState.TASK_STATE_COMPLETED and not self.printed:
            if not text and task is not None:
                text = "\n".join(t for a in task.artifacts for t in get_text_parts(a.parts))
            self._text(text)
        elif state == TaskState.TASK_STATE_INPUT_REQUIRED:
            self._text(text)

    def remote(self, event: StreamResponse) -> None:
        if event.HasField("artifact_update"):
            update = event.artifact_update
            self.task_id = update.task_id
            # The closing non-append chunk repeats the whole answer: print it only if no delta came.
            if update.append or not update.last_chunk or not self.printed:
                self._text("".join(get_text_parts(update.artifact.parts)))
        elif event.HasField("status_update"):
            status = event.status_update.status
            self.task_id = event.status_update.task_id
            if status.state == TaskState.TASK_STATE_WORKING:
                self._status_message(status.message)
            else:
                self._finish(status.state, status.message, None)
        elif event.HasField("task"):
            task = event.task
            self.task_id = task.id
            if task.status.state not in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING):
                for message in task.history:
                    self._status_message(message)
                self._finish(task.status.state, task.status.message, task)
        elif event.HasField("message"):
            self._text("\n".join(get_text_parts(event.message.parts)))
            self.state = TaskState.TASK_STATE_COMPLETED

    def local(self, event: AgentEvent) -> None:
        if event.kind == "text_delta":
            self._text(event.text)
        elif event.kind == "tool_call":
            self._tool("tool_call", {"name": event.call.name, "arguments": event.call.arguments})
        elif event.kind == "tool_result":
            self._tool("tool_result", {"content": event.content, "is_error": event.is_error})
        elif event.kind == "status":
            self.err.print(f"[dim]{event.text}[/dim]")
        elif event.kind == "final":
            if not self.printed:
                self._text(event.text)
            self.state = TaskState.TASK_STATE_COMPLETED

    def end(self) -> None:
        if self.printed:
            self.out.print()
        self.printed = False

    @property
    def waiting(self) -> bool:
        """The task paused for the user's answer (e.g. a tool approval)."""
        return self.state == TaskState.TASK_STATE_INPUT_REQUIRED

    @property
    def ok(self) -> bool:
        return self.state not in FAILED and self.state is not None
