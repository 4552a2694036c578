"""Leases on running tasks, so a task whose server died is failed instead of left 'working'.

A task that has not changed for ``interval`` seconds while it runs gets a lease: a row renewed
every ``interval`` seconds. At start-up (and then periodically) every replica looks for tasks
still marked working that have not changed for three intervals and have no fresh lease, and
fails them with a message saying why. Tasks run by another live replica are either recent or
leased, and are left alone, so several replicas can share a database. Most requests finish
within one interval and never write a lease. Tasks waiting for input (approvals) hold no lease:
they are paused, not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from a2a.types.a2a_pb2 import Message, Part, Role, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.stores.db import task_leases

log = logging.getLogger("hector.recovery")

INTERRUPTED = (
    "Interrupted: the server running this task stopped (crash or restart) before it finished. "
    "Everything produced until then is kept; send the request again to continue."
)
WORKING = TaskState.Name(TaskState.TASK_STATE_WORKING)
SUBMITTED = TaskState.Name(TaskState.TASK_STATE_SUBMITTED)


class TaskLeases:
    def __init__(self, engine: AsyncEngine, tasks_table: sa.Table, interval: float = 10.0) -> None:
        self.engine = engine
        self.tasks = tasks_table
        self.interval = interval
        self.replica_id = uuid.uuid4().hex[:16]

    async def _write(self, task_id: str, agent_id: str) -> None:
        values = {"agent_id": agent_id, "replica_id": self.replica_id, "heartbeat_at": time.time()}
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                task_leases.update().where(task_leases.c.task_id == task_id).values(**values)
            )
            if not updated.rowcount:
                await conn.execute(task_leases.insert().values(task_id=task_id, **values))

    @contextlib.asynccontextmanager
    async def hold(self, task_id: str, agent_id: str) -> AsyncIterator[None]:
        """Hold the task's lease, written after one interval and renewed, for the block."""
        written = False

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

    async def recover(self, stale_after: float | None = None) -> list[str]:
        """Fail working tasks unchanged for *stale_after* seconds and not leased since; return ids."""
        stale = stale_after if stale_after is not None else 3 * self.interval
        cutoff = time.time() - stale
        # The SDK's last_updated is a naive UTC datetime.
        changed_before = _now() - timedelta(seconds=stale)
        t = self.tasks
        status_text = sa.cast(t.c.status, sa.Text)
        query = (
            sa.select(t.c.id, t.c.status)
            .select_from(t.outerjoin(task_leases, task_leases.c.task_id == t.c.id))
            .where(sa.or_(status_text.like(f"%{WORKING}%"), status_text.like(f"%{SUBMITTED}%")))
            .where(sa.or_(t.c.last_updated.is_(None), t.c.last_updated < changed_before))
            .where(sa.or_(task_leases.c.task_id.is_(None), task_leases.c.heartbeat_at < cutoff))
        )
        failed: list[str] = []
        async with self.engine.begin() as conn:
            for row in (await conn.execute(query)).all():
                status: Any = row.status or {}
                if status.get("state") not in (WORKING, SUBMITTED):
                    continue  # the LIKE matched text inside a message, not the state
                await conn.execute(
                    t.update().where(t.c.id == row.id).values(status=_failed_status(), last_updated=_now())
                )
                await conn.execute(task_leases.delete().where(task_leases.c.task_id == row.id))
                failed.append(row.id)
        for task_id in failed:
            log.warning(
                "task failed after an interrupted run", extra={"component": "recovery", "task": task_id}
            )
        return failed


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _failed_status() -> dict[str, Any]:
    message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_AGENT, parts=[Part(text=INTERRUPTED)])
    status = TaskStatus(state=TaskState.TASK_STATE_FAILED, message=message)
    status.timestamp.FromDatetime(datetime.now(UTC))
    return MessageToDict(status)
