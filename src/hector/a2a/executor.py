"""Runs an ``Agent`` for a2a-sdk: agent events in, A2A task events out.

Text deltas stream as appends to one ``response`` artifact; when the answer is complete the
artifact is replaced by a single part holding the whole text (so stored tasks stay compact) and
the task completes with the answer as its status message. Tool calls and results are status
updates carrying a data part, tagged ``event_type: tool_call`` / ``tool_result``.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from a2a.helpers.proto_helpers import get_message_text
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import Message, Part, Task, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from hector.agent import Agent
from hector.errors import AgentRunError, ProviderError
from hector.stores.sessions import SessionAccessError

log = logging.getLogger("hector.a2a")


def owner_of(context: RequestContext) -> str:
    user = context.call_context.user if context.call_context else None
    name = user.user_name if user is not None and user.is_authenticated else ""
    return name or "anonymous"


def message_text(message: Message) -> str:
    """The user's input as text: text parts as they are, data parts as JSON."""
    pieces = [get_message_text(message)] if any(p.HasField("text") for p in message.parts) else []
    for part in message.parts:
        if part.HasField("data"):
            pieces.append(json.dumps(MessageToDict(part.data), ensure_ascii=False))
    return "\n".join(p for p in pieces if p)


def data_part(value: dict[str, Any], event_type: str) -> Part:
    part = Part(data=Value())
    part.data.struct_value.update(value)
    part.metadata.update({"event_type": event_type})
    return part


class HectorAgentExecutor(AgentExecutor):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        if message is None:  # the SDK only calls execute for SendMessage, which carries one
            return
        task_id, context_id = context.task_id or str(uuid.uuid4()), context.context_id or str(uuid.uuid4())
        if context.current_task is None:
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[message],
                )
            )
        updater = TaskUpdater(event_queue, task_id, context_id)
        await updater.start_work()
        text = message_text(message)
        if not text.strip():
            await updater.reject(self._agent_message(updater, "The message has no text or data to answer."))
            return
        artifact_id = f"response-{task_id}"
        streamed = False
        user = owner_of(context)
        log.info(
            "agent request",
            extra={
                "component": "agent",
                "action": "request",
                "agent": self.agent.id,
                "user": user,
                "task": task_id,
                "session": context_id,
            },
        )
        try:
            async for event in self.agent.run_stream(text, context_id=context_id, user=user, task_id=task_id):
                if event.kind == "text_delta":
                    await updater.add_artifact(
                        [Part(text=event.text)],
                        artifact_id,
                        name="response",
                        append=streamed,
                        last_chunk=False,
                    )
                    streamed = True
                elif event.kind == "tool_call":
                    part = data_part(
                        {"id": event.call.id, "name": event.call.name, "arguments": event.call.arguments},
                        "tool_call",
                    )
                    await updater.update_status(
                        TaskState.TASK_STATE_WORKING, updater.new_agent_message([part])
                    )
                elif event.kind == "tool_result":
                    part = data_part(
                        {
                            "tool_call_id": event.call.id,
                            "name": event.call.name,
                            "content": event.content,
                            "is_error": event.is_error,
                        },
                        "tool_result",
                    )
                    await updater.update_status(
                        TaskState.TASK_STATE_WORKING, updater.new_agent_message([part])
                    )
                elif event.kind == "status":
                    await updater.update_status(
                        TaskState.TASK_STATE_WORKING, self._agent_message(updater, event.text)
                    )
                elif event.kind == "final":
                    parts = [Part(text=event.text)]
                    if event.structured is not None:
                        parts.append(
                            Part(data=ParseDict(event.structured, Value()), media_type="application/json")
                        )
                    await updater.add_artifact(
                        parts, artifact_id, name="response", append=False, last_chunk=True
                    )
                    await updater.complete(updater.new_agent_message([Part(text=event.text)]))
        except SessionAccessError:
            await updater.reject(
                self._agent_message(
                    updater, "This contextId belongs to another user; start a new conversation."
                )
            )
        except (ProviderError, AgentRunError) as exc:
            log.warning(
                "agent run failed", extra={"component": "agent", "agent": self.agent.id, "error": str(exc)}
            )
            await updater.failed(self._agent_message(updater, f"Agent failed: {exc}"))

    @staticmethod
    def _agent_message(updater: TaskUpdater, text: str) -> Message:
        return updater.new_agent_message([Part(text=text)])

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            updater = TaskUpdater(event_queue, context.task_id, context.context_id)
            await updater.cancel(self._agent_message(updater, "Canceled by the user."))
