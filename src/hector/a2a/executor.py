"""Runs an ``Agent`` for a2a-sdk: agent events in, A2A task events out.

Text deltas stream as appends to one ``response`` artifact; when the answer is complete the
artifact is replaced by a single part holding the whole text (so stored tasks stay compact) and
the task completes with the answer as its status message. Tool calls and results are status
updates carrying a data part, tagged ``event_type: tool_call`` / ``tool_result``; the first call
of a step carries the text the model said in that step before it as a text part, so the stored
task's history keeps it after the artifact is replaced.

A tool call that needs approval pauses the task in ``input-required`` with the prompt and a
``tool_approval`` data part; the next message on that task (a data part ``{"decision": ...}`` or
the text ``approve`` / ``deny``) resumes it. An external agent's free-form question pauses the
task the same way, with the question alone; the next message on the task is the answer, sent on
to the external agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from a2a.auth.user import User
from a2a.helpers.proto_helpers import get_message_text
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import Message, Part, Task, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from hector import observability
from hector.a2a.cancels import CancelWatch
from hector.agent import Agent, AgentLike
from hector.agent.approval import ApprovalError, parse_decision
from hector.agent.remote import RemoteAgent
from hector.errors import AgentRunError, ProviderError
from hector.messages import AgentEvent, ApprovalRequiredEvent, FinalEvent
from hector.stores.checkpoints import Checkpoint, InterruptedCalls
from hector.stores.leases import LeaseLost, TaskLeases
from hector.stores.quotas import QuotaExceeded
from hector.stores.sessions import SessionAccessError

log = logging.getLogger("hector.a2a")


class SubjectUser(User):
    """An authenticated subject as a2a-sdk's call context (and so the task store) sees it: the
    caller of a gRPC call, or the owner a taken-over task goes on acting as."""

    def __init__(self, subject: str) -> None:
        self.subject = subject

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.subject


def user_of(call_context: ServerCallContext | None) -> str:
    """Who is calling: the authenticated subject, or ``anonymous``."""
    user = call_context.user if call_context is not None else None
    name = user.user_name if user is not None and user.is_authenticated else ""
    return name or "anonymous"


def data_parts(message: Message) -> list[dict[str, Any]]:
    return [MessageToDict(p.data) for p in message.parts if p.HasField("data")]


def message_text(message: Message) -> str:
    """The user's input as text: text parts as they are, data parts as JSON."""
    pieces = [get_message_text(message)] if any(p.HasField("text") for p in message.parts) else []
    pieces += [json.dumps(d, ensure_ascii=False) for d in data_parts(message)]
    return "\n".join(p for p in pieces if p)


def data_part(value: dict[str, Any], event_type: str) -> Part:
    part = Part(data=ParseDict(value, Value()))
    part.metadata.update({"event_type": event_type})
    return part


TAKEOVER = "hector.takeover"
"""``ServerCallContext.state`` key of the checkpoint of a task taken over from a dead replica
(``hector.a2a.takeover``); only the server sets it, never a request."""


class HectorAgentExecutor(AgentExecutor):
    def __init__(
        self,
        agent: AgentLike,
        leases: TaskLeases | None = None,
        interrupted: InterruptedCalls = "fail",
        cancels: CancelWatch | None = None,
    ) -> None:
        self.agent = agent
        self.leases = leases
        """Running tasks hold a lease, so a replica that dies leaves them recoverable."""
        self.interrupted: InterruptedCalls = interrupted
        """What a continued task does with the tool call its dead server was running."""
        self.cancels = cancels
        """Stops a run here when its task is canceled on another replica (``server.event_relay``)."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        takeover = context.call_context.state.get(TAKEOVER) if context.call_context else None
        if isinstance(takeover, Checkpoint) and isinstance(self.agent, Agent):
            await self._continue(context, event_queue, takeover)
            return
        message = context.message
        if message is None:  # the SDK only calls execute for SendMessage, which carries one
            return
        task_id, context_id = context.task_id or str(uuid.uuid4()), context.context_id or str(uuid.uuid4())
        task = context.current_task
        if task is None:
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[message],
                )
            )
        updater = TaskUpdater(event_queue, task_id, context_id)
        user = user_of(context.call_context)
        if task is not None and task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            if isinstance(self.agent, RemoteAgent) and await self.agent.pending_question(task_id):
                await self._answer(self.agent, updater, message, task_id, user)
            else:
                await self._resume(updater, message, task_id, user)
            return
        await updater.start_work()
        text = message_text(message)
        if not text.strip():
            await updater.reject(_text(updater, "The message has no text or data to answer."))
            return
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
        events = self.agent.run_stream(text, context_id=context_id, user=user, task_id=task_id)
        await self._publish(events, updater, task_id)

    async def _resume(self, updater: TaskUpdater, message: Message, task_id: str, user: str) -> None:
        decision = parse_decision(data_parts(message), get_message_text(message))
        if decision is None:
            # Not an answer to the question: ask again (with the question) rather than guess.
            pending = await self.agent.pending_approval(task_id)
            if pending is None:
                await updater.failed(_text(updater, "Cannot resume: no tool call is waiting for approval"))
                return
            event = ApprovalRequiredEvent(pending.id, pending.calls, pending.prompt)
            await updater.requires_input(
                _approval_message(updater, event, "Please answer with: approve or deny")
            )
            return
        await updater.start_work()
        log.info(
            "approval decided",
            extra={
                "component": "tool",
                "action": "approval",
                "agent": self.agent.id,
                "user": user,
                "task": task_id,
                "decision": decision,
            },
        )
        try:
            await self._publish(
                self.agent.resume_stream(task_id=task_id, user=user, decision=decision), updater, task_id
            )
        except ApprovalError as exc:
            await updater.failed(_text(updater, f"Cannot resume: {exc.message}"))

    async def _answer(
        self, agent: RemoteAgent, updater: TaskUpdater, message: Message, task_id: str, user: str
    ) -> None:
        """The user's answer to the external agent's question goes on to the external task."""
        text = message_text(message)
        if not text.strip():
            question = await agent.pending_question(task_id)
            assert question is not None  # checked by the caller
            await updater.requires_input(_text(updater, question.prompt))
            return
        await updater.start_work()
        try:
            await self._publish(agent.answer_stream(task_id=task_id, user=user, text=text), updater, task_id)
        except ApprovalError as exc:
            await updater.failed(_text(updater, f"Cannot resume: {exc.message}"))

    async def _continue(
        self, context: RequestContext, event_queue: EventQueue, checkpoint: Checkpoint
    ) -> None:
        """Go on with a task whose server died, from its checkpoint (the lease is ours already)."""
        assert isinstance(self.agent, Agent)
        task_id = checkpoint.task_id
        updater = TaskUpdater(event_queue, task_id, checkpoint.context_id)
        note = "Resumed after an interruption: the server running this task stopped."
        tool = checkpoint.interrupted_call()
        if tool is not None:
            verb = "runs again" if self.interrupted == "retry" else "was not run again"
            note += f" The call of {tool!r} that was running then {verb}."
        await updater.update_status(TaskState.TASK_STATE_WORKING, _text(updater, note))
        # Text streamed before the interruption stays: later chunks are appended to it.
        task = context.current_task
        streamed = task is not None and any(a.artifact_id == f"response-{task_id}" for a in task.artifacts)
        events = self.agent.continue_stream(checkpoint, self.interrupted)
        await self._publish(events, updater, task_id, claimed=True, streamed=streamed)

    async def _publish(
        self,
        events: AsyncIterator[AgentEvent],
        updater: TaskUpdater,
        task_id: str,
        claimed: bool = False,
        streamed: bool = False,
    ) -> None:
        lease = self.leases.hold(task_id, self.agent.id, claimed) if self.leases else contextlib.nullcontext()
        watched = self.cancels.track(task_id) if self.cancels else contextlib.nullcontext()
        try:
            async with lease, watched:
                await self._publish_events(events, updater, task_id, streamed)
        except LeaseLost:
            return  # another replica took the task over and runs it: nothing more is written here
        except asyncio.CancelledError:
            if self.cancels is None or not self.cancels.stopped(task_id):
                raise
            # Canceled on another replica: the run (tool call included) is stopped; this stream
            # ends as a local cancel's would. Only that cancel is absorbed, not the task's own.
            current = asyncio.current_task()
            assert current is not None
            current.uncancel()
            await updater.cancel(_text(updater, "Canceled by the user."))

    async def _publish_events(
        self, events: AsyncIterator[AgentEvent], updater: TaskUpdater, task_id: str, streamed: bool = False
    ) -> None:
        response = ResponseArtifact(updater, f"response-{task_id}")
        response.chunks = int(streamed)
        # The event that ends the run (answer or pause) is published once the run's generator
        # is done, so its span, metrics and stores are complete before the client sees the end.
        ending: Callable[[], Awaitable[None]] | None = None
        try:
            async for event in observability.current().agent_run(
                self.agent.id, self.agent.telemetry_labels(), events
            ):
                if event.kind == "text_delta":
                    await response.delta(event.text)
                    continue
                if event.kind != "final":  # the final answer replaces the text anyway
                    # Text streamed so far goes out before anything else happens.
                    await response.flush()
                if event.kind == "tool_call":
                    call = {"id": event.call.id, "name": event.call.name, "arguments": event.call.arguments}
                    # The step's text goes with its first call, so the stored task keeps it:
                    # the final answer replaces what the artifact streamed.
                    said = [Part(text=event.narration)] if event.narration.strip() else []
                    await updater.update_status(
                        TaskState.TASK_STATE_WORKING,
                        updater.new_agent_message([*said, data_part(call, "tool_call")]),
                    )
                elif event.kind == "tool_result":
                    result = {
                        "tool_call_id": event.call.id,
                        "name": event.call.name,
                        "content": event.content,
                        "is_error": event.is_error,
                    }
                    await updater.update_status(
                        TaskState.TASK_STATE_WORKING,
                        updater.new_agent_message([data_part(result, "tool_result")]),
                    )
                elif event.kind == "status":
                    await updater.update_status(TaskState.TASK_STATE_WORKING, _text(updater, event.text))
                elif event.kind == "approval_required":
                    ending = functools.partial(updater.requires_input, _approval_message(updater, event))
                elif event.kind == "input_required":
                    ending = functools.partial(updater.requires_input, _text(updater, event.prompt))
                elif event.kind == "final":
                    ending = functools.partial(_finish, response, updater, event)
            if ending is not None:
                await ending()
        except QuotaExceeded as exc:
            retry = int(exc.retry_after) + 1
            log.info(
                "quota exceeded",
                extra={
                    "component": "ratelimit",
                    "action": "quota",
                    "agent": self.agent.id,
                    "task": task_id,
                    "reason": exc.message,
                },
            )
            await updater.update_status(
                TaskState.TASK_STATE_REJECTED,
                _text(updater, f"Rate limit: {exc.message}"),
                metadata={"error": "rate_limit_exceeded", "retry_after_seconds": retry, "usage": exc.usage},
            )
        except SessionAccessError:
            await updater.reject(
                _text(updater, "This contextId belongs to another user; start a new conversation.")
            )
        except (ProviderError, AgentRunError) as exc:
            log.warning(
                "agent run failed", extra={"component": "agent", "agent": self.agent.id, "error": str(exc)}
            )
            await updater.failed(_text(updater, f"Agent failed: {exc}"))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and self.cancels is not None:
            self.cancels.release(context.task_id)  # a2a-sdk stops the run itself
        if context.task_id and context.context_id:
            updater = TaskUpdater(event_queue, context.task_id, context.context_id)
            await updater.cancel(_text(updater, "Canceled by the user."))


async def _finish(response: ResponseArtifact, updater: TaskUpdater, event: FinalEvent) -> None:
    parts = [Part(text=event.text)]
    if event.structured is not None:
        parts.append(Part(data=ParseDict(event.structured, Value()), media_type="application/json"))
    await response.finish(parts)
    await updater.complete(_text(updater, event.text))


class ResponseArtifact:
    """The ``response`` artifact: text deltas coalesced into chunks, then one final replacement.

    Every chunk is an event the task store saves, so deltas are sent at most every
    ``interval`` seconds; an answer that is ready within one interval costs a single event. The
    final event replaces the chunks with the whole answer in one part, so a stored task holds a
    compact artifact whatever the model's chunking was.
    """

    interval = 0.05

    def __init__(self, updater: TaskUpdater, artifact_id: str) -> None:
        self.updater = updater
        self.artifact_id = artifact_id
        self.pending = ""
        self.chunks = 0
        self.last: float | None = None
        """When the current interval started: at the first delta after a flush, not before, so
        time spent before the model speaks (loading history, tools) never splits the text."""

    async def delta(self, text: str) -> None:
        self.pending += text
        now = time.monotonic()
        if self.last is None:
            self.last = now
        elif now - self.last >= self.interval:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            await self.updater.add_artifact(
                [Part(text=self.pending)],
                self.artifact_id,
                name="response",
                append=self.chunks > 0,
                last_chunk=False,
            )
            self.chunks += 1
            self.pending = ""
        self.last = None

    async def finish(self, parts: list[Part]) -> None:
        self.pending = ""
        await self.updater.add_artifact(
            parts, self.artifact_id, name="response", append=False, last_chunk=True
        )


def _text(updater: TaskUpdater, text: str) -> Message:
    return updater.new_agent_message([Part(text=text)])


def _approval_message(updater: TaskUpdater, event: ApprovalRequiredEvent, preface: str = "") -> Message:
    first = event.calls[0]
    request = {
        "interaction_type": "tool_approval",
        "approval_id": event.approval_id,
        "tool_name": first.name,
        "tool_input": first.arguments,
        "calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in event.calls],
        "options": ["approve", "deny"],
    }
    text = f"{preface}\n\n{event.prompt}" if preface else event.prompt
    return updater.new_agent_message([Part(text=text), data_part(request, "approval_request")])
