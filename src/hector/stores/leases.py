"""Leases on running tasks, so a task whose server died is taken over instead of left 'working'.

A task that has not changed for ``interval`` seconds while it runs gets a lease: a row renewed
every ``interval`` seconds. At start-up (and then periodically) every replica looks for tasks
still marked working that have not changed for three intervals and have no fresh lease. It
claims each one (a conditional write of the lease, so one replica wins) and continues it from
its checkpoint (``hector.stores.checkpoints``) when it can, or else fails it with a message
saying why. Tasks run by another live replica are either recent or leased, and are left alone,
so several replicas can share a database. Most requests finish within one interval and never
write a lease. Tasks waiting for input (approvals) hold no lease: they are paused, not running.

Lease times are the database's clock, so replicas whose clocks disagree still agree on which
lease is stale (the tasks' own last-change times are the writing replica's clock). A renewal
renews only a lease the replica still holds: one that stalled (or could not reach the database)
for three intervals may find its task taken over, and then stops its run without writing
anything more (``LeaseLost``), so a task does not run on two replicas to the end (they overlap
until its next renewal). Failing a task that cannot be continued never overwrites one that ended
(a cancel included) or changed meanwhile, and a server that is stopping leaves the task to
another replica (``TakeoverDeclined``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from a2a.types.a2a_pb2 import Message, Part, Role, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.errors import HectorError
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


class LeaseLost(HectorError):
    """Another replica took this run's task over (its lease had gone stale): the run stops."""

    default_message = "another replica took this task over"


class TakeoverDeclined(HectorError):
    """A resumer cannot start the task here (the server is stopping): another replica will."""

    default_message = "this server is stopping"


@dataclass
class Recovery:
    failed: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)


@dataclass
class _Lease:
    written: bool
    """The row is ours: later writes renew it only if it still is."""
    lost: bool = False


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
        self._running: set[str] = set()
        """Tasks this process runs (``hold``): never taken over here, even when their lease looks
        stale because this process stalled; the run's next renewal says whether it goes on."""
        self._clock = _clock(engine.dialect.name)

    async def _write(self, task_id: str, agent_id: str, renewing: bool) -> bool:
        """Write the lease; False if *renewing* and the row is no longer this replica's."""
        values = {"agent_id": agent_id, "replica_id": self.replica_id, "heartbeat_at": self._clock}
        row = task_leases.c.task_id == task_id
        async with self.engine.begin() as conn:
            if renewing:
                # Another replica that found the lease stale has taken the task over.
                mine = task_leases.c.replica_id == self.replica_id
                return bool(
                    (await conn.execute(task_leases.update().where(row, mine).values(**values))).rowcount
                )
            # The first write takes the row whatever holds it: a replica that claimed the task
            # meanwhile (this one stalled right at the start) finds out at its next renewal.
            updated = await conn.execute(task_leases.update().where(row).values(**values))
            if not updated.rowcount:
                await conn.execute(task_leases.insert().values(task_id=task_id, **values))
        return True

    async def _release(self, task_id: str) -> None:
        mine = task_leases.c.replica_id == self.replica_id
        async with self.engine.begin() as conn:
            await conn.execute(task_leases.delete().where(task_leases.c.task_id == task_id, mine))

    @contextlib.asynccontextmanager
    async def hold(self, task_id: str, agent_id: str, claimed: bool = False) -> AsyncIterator[None]:
        """Hold the task's lease, written after one interval and renewed, for the block.

        *claimed*: the lease row exists already (written by ``claim``); it is removed at the end.
        If another replica has taken the task over, the block is cancelled and ``LeaseLost``
        raised from it: the caller must write nothing more of the task."""
        run = asyncio.current_task()
        assert run is not None
        lease = _Lease(written=claimed)
        self._running.add(task_id)
        renewer = asyncio.create_task(self._keep(task_id, agent_id, lease, run))
        try:
            yield
        except asyncio.CancelledError:
            if not lease.lost:
                raise
            run.uncancel()  # the cancel was the renewer's, not the server's
            raise LeaseLost() from None
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self._running.discard(task_id)
            if lease.written and not lease.lost:
                await self._release(task_id)

    async def _keep(self, task_id: str, agent_id: str, lease: _Lease, run: asyncio.Task[Any]) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if await self._write(task_id, agent_id, renewing=lease.written):
                    lease.written = True
                    continue
            except Exception as exc:  # a missed renewal is retried; the task goes on
                log.warning("lease renewal failed: %s", type(exc).__name__)
                continue
            lease.lost = True
            log.warning(
                "task taken over by another replica: its run here stops",
                extra={"component": "recovery", "task": task_id},
            )
            run.cancel()
            return

    async def claim(self, task_id: str, agent_id: str, stale_after: float) -> bool:
        """Take over *task_id*'s lease if it has none or one not renewed for *stale_after* seconds;
        False if another replica won."""
        values = {"agent_id": agent_id, "replica_id": self.replica_id, "heartbeat_at": self._clock}
        async with self.engine.begin() as conn:
            taken = await conn.execute(
                task_leases.update()
                .where(
                    task_leases.c.task_id == task_id, task_leases.c.heartbeat_at < self._clock - stale_after
                )
                .values(**values)
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
                await conn.execute(task_leases.insert().values(task_id=task_id, **values))
        except sa.exc.IntegrityError:
            return False
        return True

    async def recover(self, stale_after: float | None = None) -> Recovery:
        """Take over working tasks unchanged for *stale_after* seconds and not leased since.

        Each is claimed (so only one replica handles it), then continued from its checkpoint when
        a resumer for its agent is registered and the checkpoint allows it, else failed.
        """
        stale = stale_after if stale_after is not None else 3 * self.interval
        # The SDK's last_updated is a naive UTC datetime, from the clock of the replica that wrote it.
        changed_before = _now() - timedelta(seconds=stale)
        t = self.tasks
        status_text = sa.cast(t.c.status, sa.Text)
        query = (
            sa.select(t.c.id, t.c.status, t.c.owner)
            .select_from(t.outerjoin(task_leases, task_leases.c.task_id == t.c.id))
            .where(sa.or_(status_text.like(f"%{WORKING}%"), status_text.like(f"%{SUBMITTED}%")))
            .where(sa.or_(t.c.last_updated.is_(None), t.c.last_updated < changed_before))
            .where(sa.or_(task_leases.c.task_id.is_(None), task_leases.c.heartbeat_at < self._clock - stale))
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        done = Recovery()
        for row in rows:
            status: Any = row.status or {}
            if status.get("state") not in (WORKING, SUBMITTED) or row.id in self._running:
                continue  # the LIKE matched text inside a message, not the state; or it runs here
            agent_id = str(row.owner or "").split("/", 1)[0]  # owners are "<agent>/<user>"
            if not await self.claim(row.id, agent_id, stale):
                continue
            try:
                reason = await self._resume(row.id)
            except TakeoverDeclined:  # left for another replica (or this one's next start)
                await self._release(row.id)
                continue
            if reason is None:
                done.resumed.append(row.id)
                continue
            if await self._fail(row.id, reason, changed_before):
                done.failed.append(row.id)
                log.warning(
                    "task failed after an interrupted run", extra={"component": "recovery", "task": row.id}
                )
        await self._purge(stale)
        return done

    async def _fail(self, task_id: str, reason: str, changed_before: datetime) -> bool:
        """Mark the task failed, unless it changed since it was found stale (canceled, say)."""
        t = self.tasks
        async with self.engine.begin() as conn:
            failed = await conn.execute(
                t.update()
                .where(
                    t.c.id == task_id,
                    _state(t, self.engine.dialect.name).in_([WORKING, SUBMITTED]),
                    sa.or_(t.c.last_updated.is_(None), t.c.last_updated < changed_before),
                )
                .values(status=_failed_status(reason), last_updated=_now())
            )
            mine = task_leases.c.replica_id == self.replica_id
            await conn.execute(task_leases.delete().where(task_leases.c.task_id == task_id, mine))
        if not failed.rowcount:
            return False  # a checkpoint left behind goes with the next purge, once the task ended
        if self.checkpoints is not None:
            await self.checkpoints.delete(task_id)
        return True

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
        except TakeoverDeclined:
            raise
        except Exception as exc:  # the task is failed instead; the server goes on
            log.error("task resume failed: %s", type(exc).__name__, extra={"task": task_id})
            return INTERRUPTED
        log.warning("interrupted task continued", extra={"component": "recovery", "task": task_id})
        return None

    async def _purge(self, stale: float) -> None:
        """Drop checkpoints of tasks that no longer run (canceled, or ended by a crash mid-write),
        and their stale leases (a task canceled while its replica was dead keeps that one's)."""
        t = self.tasks
        ended = sa.select(t.c.id).where(_state(t, self.engine.dialect.name).not_in([WORKING, SUBMITTED]))
        async with self.engine.begin() as conn:
            await conn.execute(
                task_leases.delete().where(
                    task_leases.c.task_id.in_(ended), task_leases.c.heartbeat_at < self._clock - stale
                )
            )
            if self.checkpoints is not None:
                await conn.execute(task_checkpoints.delete().where(task_checkpoints.c.task_id.in_(ended)))


def _clock(dialect: str) -> sa.ColumnElement[float]:
    """The database's time in seconds since the epoch: one clock for every replica's leases."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    # SQLite is one file on one machine; julianday keeps the milliseconds that unixepoch drops.
    return sa.cast((sa.func.julianday("now") - 2440587.5) * 86400.0, sa.Float)


def _state(tasks: sa.Table, dialect: str) -> sa.ColumnElement[str]:
    """The state in a task row's status JSON ('' without one)."""
    state: sa.ColumnElement[Any]
    # Inline constants: PostgreSQL cannot pick between json's ->> operators for a parameter.
    if dialect == "sqlite":
        state = sa.func.json_extract(tasks.c.status, sa.literal_column("'$.state'"))
    else:
        state = tasks.c.status.op("->>")(sa.literal_column("'state'"))
    return sa.func.coalesce(state, sa.literal_column("''"))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _failed_status(reason: str) -> dict[str, Any]:
    message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_AGENT, parts=[Part(text=reason)])
    status = TaskStatus(state=TaskState.TASK_STATE_FAILED, message=message)
    status.timestamp.FromDatetime(datetime.now(UTC))
    return MessageToDict(status)
