"""Checkpoints of running tasks, so a task whose server died is continued rather than failed.

While a task's agent loop runs, its state (``hector.agent.loop.LoopState``) is written here
before each tool call and after each step: the messages the model sees next, the loop round,
and, while a step's tools run, which calls have finished (with their results) and which one is
under way. A run that never calls a tool writes nothing.

When a replica takes over a task whose lease went stale (``hector.stores.leases``), it reads the
checkpoint and continues the loop from it: finished calls are not run again, the model is asked
again only for the step that was in flight. The call that was running at the crash may or may
not have taken effect; ``interrupted_tool_calls`` says what to do with it (see ``resume_step``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.agent.loop import LoopState, ResumedStep
from hector.messages import ChatMessage
from hector.stores.db import task_checkpoints

InterruptedCalls = Literal["fail", "retry", "report"]

INTERRUPTED_RESULT = (
    "TOOL_INTERRUPTED: the server stopped while this call was running, so it may or may not have "
    "taken effect; it was not run again. Check before repeating it."
)


@dataclass(frozen=True, repr=False)
class Checkpoint:
    task_id: str
    agent_id: str
    context_id: str
    owner: str
    """The user who started the task; the continued run acts for them."""
    state: LoopState
    updated_at: float

    def __repr__(self) -> str:
        # The SDK logs the call context carrying it at DEBUG: no conversation content there.
        return f"Checkpoint(task_id={self.task_id!r}, iteration={self.state.iteration})"

    def interrupted_call(self) -> str | None:
        """The name of the tool whose call was running at the crash, if any."""
        step, running = self.state.step, self.state.running
        if step is None or running is None or running in {r.tool_call_id for r in self.state.results}:
            return None
        return next((c.name for c in step.tool_calls if c.id == running), running)

    def resume_step(self, interrupted: InterruptedCalls) -> ResumedStep | None:
        """The step to finish first when continuing, with the calls that must not run again.

        ``retry`` runs the interrupted call again; ``report`` gives the model an error result
        saying it was interrupted. (``fail`` never gets here: such a task is failed instead.)
        """
        state = self.state
        if state.step is None:
            return None
        done = {r.tool_call_id: r for r in state.results if r.tool_call_id}
        if interrupted == "report" and state.running and state.running not in done:
            call = next(c for c in state.step.tool_calls if c.id == state.running)
            done[call.id] = ChatMessage(
                "tool", INTERRUPTED_RESULT, tool_call_id=call.id, name=call.name, is_error=True
            )
        # The step's first call (and the step's text with it) went out right after the
        # checkpoint that holds the step: saying the text again would repeat it.
        return ResumedStep(state.step, done=done, narrated=True)


def _dump(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    return [m.to_json() for m in messages]


def _load(data: Sequence[dict[str, Any]]) -> list[ChatMessage]:
    return [ChatMessage.from_json(m) for m in data]


class CheckpointStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def recorder(self, task_id: str, agent_id: str, context_id: str, owner: str) -> Recorder:
        return Recorder(self, task_id, {"agent_id": agent_id, "context_id": context_id, "owner": owner})

    async def load(self, task_id: str) -> Checkpoint | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(task_checkpoints).where(task_checkpoints.c.task_id == task_id))
            ).first()
        if row is None:
            return None
        state = LoopState(
            iteration=row.iteration,
            messages=_load(row.messages),
            step=ChatMessage.from_json(row.step) if row.step else None,
            results=_load(row.results),
            running=row.running,
        )
        return Checkpoint(row.task_id, row.agent_id, row.context_id, row.owner, state, row.updated_at)

    async def delete(self, task_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(task_checkpoints.delete().where(task_checkpoints.c.task_id == task_id))


class Recorder:
    """Writes one run's checkpoints; the message list only when it has grown since the last write
    (the per-call writes while a step's tools run carry just the step's progress)."""

    def __init__(self, store: CheckpointStore, task_id: str, identity: dict[str, str]) -> None:
        self.store = store
        self.task_id = task_id
        self.identity = identity
        self.written: int | None = None
        """How many messages the stored row holds; None before the first write."""
        self.continued = False
        """The run continues a stored checkpoint: there is a row to remove at the end."""

    async def __call__(self, state: LoopState) -> None:
        values: dict[str, Any] = {
            "iteration": state.iteration,
            "step": state.step.to_json() if state.step else None,
            "results": _dump(state.results),
            "running": state.running,
            "updated_at": time.time(),
        }
        if self.written != len(state.messages):
            values["messages"] = _dump(state.messages)
        table = task_checkpoints
        async with self.store.engine.begin() as conn:
            if self.written is None:
                # A run continued from a checkpoint writes over the row it started from.
                await conn.execute(table.delete().where(table.c.task_id == self.task_id))
                await conn.execute(table.insert().values(task_id=self.task_id, **self.identity, **values))
            else:
                await conn.execute(table.update().where(table.c.task_id == self.task_id).values(**values))
        self.written = len(state.messages)

    async def finish(self) -> None:
        """The run ended (answered, paused for approval, failed): nothing is left to continue."""
        if self.written is not None or self.continued:
            await self.store.delete(self.task_id)
