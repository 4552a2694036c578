"""Leases on running tasks, so a task whose server died is taken over instead of left 'working'.

A task that has not changed for ``interval`` seconds while it runs gets a lease: a row renewed
every ``interval`` seconds. At start-up (and then periodically) every replica looks for tasks
still marked working that have not changed for three intervals and have no fresh lease. It
claims each one (a conditional write of the lease, so one replica wins) and continues it from
its checkpoint (``hector.stores.checkpoints``) when it can, or else fails it with a message
saying why. Tasks run by another live replica are either recent or leased, and are left alone,
so several replicas can share a database. Most requests finish within one interval and never
write a lease. Tasks waiting for input (approvals) hold no lease: they are paused, not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from a2a.types.a2a_pb2 import Message, Part, Role, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.stores.checkpoints import Checkpoint, CheckpointStore, InterruptedCalls
from hector.stores.db import task_checkpoints, task_leases

log = logging.getLogger("hector.recovery")

INTERRUPTED = (
    "Interrupted: the server running this task stopped (crash or restart) before it finished. "
    "Everything produced until then is kept; send the request again to continue."
)
INTERRUPTED_TOOL = (
    "Interrupted: the server running this task stopped while the tool {tool!r} was running, so it "
    "may or may not have taken effect. It was not run again; everything produced until then is "
    "kept. Check, then send the request again to continue."
)
WORKING = TaskState.Name(TaskState.TASK_STATE_WORKING)
SUBMITTED = TaskState.Name(TaskState.TASK_STATE_SUBMITTED)


Resumer = Callable[[Checkpoint], Awaitable[None]]


@dataclass
class Recovery:
    failed: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)


class TaskLeases:
    def __init__(
        self,
        engine: AsyncEngine,
        tasks_table: sa.Table,
        interval: float = 10.0,
        checkpoints: CheckpointStore | None = None,
        interrupted_calls: InterruptedCalls = "fail",
    ) -> None:
        self.engine = engine
        self.tasks = tasks_table
        self.interval = interval
        self.replica_id = uuid.uuid4().hex[:16]
        self.checkpoints = checkpoints
        """Set when interrupted tasks are continued; without it they are failed."""
        self.interrupted_calls: InterruptedCalls = interrupted_calls
        self.resumers: dict[str, Resumer] = {}
        """agent id → what starts a checkpointed task again (registered by the server)."""

    async def _write(self, task_id: str, agent_id: str) -> None:
        values = {"agent_id": agent_id, "replica_id": self.replica_id, "heartbeat_at": time.time()}
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                task_leases.update().where(task_leases.c.task_id == task_id).values(**values)
            )
            if not updated.rowcount:
                await conn.execute(task_leases.insert().values(task_id=task_id, **values))

    @contextlib.asynccontextmanager
    async def hold(self, task_id: str, agent_id: str, claimed: bool = False) -> AsyncIterator[None]:
        """Hold the task's lease, written after one interval and renewed, for the block.

        *claimed*: the lease row exists already (written by ``claim``); it is removed at the end."""
        written = claimed

        async def renew() -> None:
            nonlocal written
            while True:
                await asyncio.sleep(self.interval)
                try:
                    await self._write(task_id, agent_id)
                    written = True
                except Exception as exc:  # a missed renewal is retried; the task goes on
                    log.warning("lease renewal failed: %s", type(exc).__name__)

        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            if written:
                async with self.engine.begin() as conn:
                    await conn.execute(task_leases.delete().where(task_leases.c.task_id == task_id))

    async def claim(self, task_id: str, agent_id: str, stale_before: float) -> bool:
        """Take over *task_id*'s lease if it has none or a stale one; False if another replica won."""
        now = time.time()
        async with self.engine.begin() as conn:
            taken = await conn.execute(
                task_leases.update()
                .where(task_leases.c.task_id == task_id, task_leases.c.heartbeat_at < stale_before)
                .values(agent_id=agent_id, replica_id=self.replica_id, heartbeat_at=now)
            )
            if taken.rowcount:
                return True
            held = await conn.execute(
                sa.select(task_leases.c.task_id).where(task_leases.c.task_id == task_id)
            )
            if held.first() is not None:
                return False
        try:  # two replicas inserting at once: the primary key lets one win
            async with self.engine.begin() as conn:
                await conn.execute(
                    task_leases.insert().values(
                        task_id=task_id, agent_id=agent_id, replica_id=self.replica_id, heartbeat_at=now
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    async def recover(self, stale_after: float | None = None) -> Recovery:
        """Take over working tasks unchanged for *stale_after* seconds and not leased since.

        Each is claimed (so only one replica handles it), then continued from its checkpoint when
        a resumer for its agent is registered and the checkpoint allows it, else failed.
        """
        stale = stale_after if stale_after is not None else 3 * self.interval
        cutoff = time.time() - stale
        # The SDK's last_updated is a naive UTC datetime.
        changed_before = _now() - timedelta(seconds=stale)
        t = self.tasks
        status_text = sa.cast(t.c.status, sa.Text)
        query = (
            sa.select(t.c.id, t.c.status, t.c.owner)
            .select_from(t.outerjoin(task_leases, task_leases.c.task_id == t.c.id))
            .where(sa.or_(status_text.like(f"%{WORKING}%"), status_text.like(f"%{SUBMITTED}%")))
            .where(sa.or_(t.c.last_updated.is_(None), t.c.last_updated < changed_before))
            .where(sa.or_(task_leases.c.task_id.is_(None), task_leases.c.heartbeat_at < cutoff))
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        done = Recovery()
        for row in rows:
            status: Any = row.status or {}
            if status.get("state") not in (WORKING, SUBMITTED):
                continue  # the LIKE matched text inside a message, not the state
            agent_id = str(row.owner or "").split("/", 1)[0]  # owners are "<agent>/<user>"
            if not await self.claim(row.id, agent_id, cutoff):
                continue
            reason = await self._resume(row.id)
            if reason is None:
                done.resumed.append(row.id)
                continue
            async with self.engine.begin() as conn:
                await conn.execute(
                    t.update()
                    .where(t.c.id == row.id)
                    .values(status=_failed_status(reason), last_updated=_now())
                )
                await conn.execute(task_leases.delete().where(task_leases.c.task_id == row.id))
            if self.checkpoints is not None:
                await self.checkpoints.delete(row.id)
            done.failed.append(row.id)
            log.warning(
                "task failed after an interrupted run", extra={"component": "recovery", "task": row.id}
            )
        await self._purge()
        return done

    async def _resume(self, task_id: str) -> str | None:
        """Hand the task to its agent's resumer; None if it goes on, else why it is failed."""
        if self.checkpoints is None:
            return INTERRUPTED
        checkpoint = await self.checkpoints.load(task_id)
        resumer = self.resumers.get(checkpoint.agent_id) if checkpoint is not None else None
        if checkpoint is None or resumer is None:
            return INTERRUPTED
        tool = checkpoint.interrupted_call()
        if tool is not None and self.interrupted_calls == "fail":
            return INTERRUPTED_TOOL.format(tool=tool)
        try:
            await resumer(checkpoint)
        except Exception as exc:  # the task is failed instead; the server goes on
            log.error("task resume failed: %s", type(exc).__name__, extra={"task": task_id})
            return INTERRUPTED
        log.warning("interrupted task continued", extra={"component": "recovery", "task": task_id})
        return None

    async def _purge(self) -> None:
        """Drop checkpoints of tasks that no longer run (canceled, or ended by a crash mid-write)."""
        if self.checkpoints is None:
            return
        t = self.tasks
        status_text = sa.cast(t.c.status, sa.Text)
        ended = sa.select(t.c.id).where(
            sa.not_(status_text.like(f"%{WORKING}%")), sa.not_(status_text.like(f"%{SUBMITTED}%"))
        )
        async with self.engine.begin() as conn:
            await conn.execute(task_checkpoints.delete().where(task_checkpoints.c.task_id.in_(ended)))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _failed_status(reason: str) -> dict[str, Any]:
    message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_AGENT, parts=[Part(text=reason)])
    status = TaskStatus(state=TaskState.TASK_STATE_FAILED, message=message)
    status.timestamp.FromDatetime(datetime.now(UTC))
    return MessageToDict(status)
