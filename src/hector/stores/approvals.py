"""Pending tool approvals, kept where the task is kept so they survive a restart."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.agent.approval import PendingApproval
from hector.messages import ChatMessage, ToolCall
from hector.stores.db import approvals

Outcome = str  # "approved" | "denied" | "expired"


class ApprovalStore(ABC):
    """Contract: ``decide`` succeeds once per approval (atomically), so a decision cannot be replayed."""

    @abstractmethod
    async def save(self, pending: PendingApproval) -> None: ...

    @abstractmethod
    async def pending_for_task(self, agent_id: str, task_id: str) -> PendingApproval | None:
        """The undecided approval of the task, if any."""

    @abstractmethod
    async def decide(self, approval_id: str, outcome: Outcome, by: str) -> bool:
        """Mark it decided; False if it was already decided."""


class MemoryApprovalStore(ApprovalStore):
    def __init__(self) -> None:
        self._pending: dict[str, PendingApproval] = {}
        self._lock = asyncio.Lock()

    async def save(self, pending: PendingApproval) -> None:
        self._pending[pending.id] = pending

    async def pending_for_task(self, agent_id: str, task_id: str) -> PendingApproval | None:
        return next(
            (p for p in self._pending.values() if p.agent_id == agent_id and p.task_id == task_id), None
        )

    async def decide(self, approval_id: str, outcome: Outcome, by: str) -> bool:
        async with self._lock:
            return self._pending.pop(approval_id, None) is not None


def _calls_json(calls: tuple[ToolCall, ...]) -> list[dict[str, object]]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


class SQLApprovalStore(ApprovalStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(self, pending: PendingApproval) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                approvals.insert().values(
                    id=pending.id,
                    agent_id=pending.agent_id,
                    task_id=pending.task_id,
                    context_id=pending.context_id,
                    owner=pending.owner,
                    step=pending.step.to_json(),
                    calls=_calls_json(pending.calls),
                    prompt=pending.prompt,
                    status="pending",
                    created_at=datetime.fromtimestamp(pending.created_at, UTC),
                    expires_at=datetime.fromtimestamp(pending.expires_at, UTC),
                )
            )

    async def pending_for_task(self, agent_id: str, task_id: str) -> PendingApproval | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(approvals).where(
                        approvals.c.agent_id == agent_id,
                        approvals.c.task_id == task_id,
                        approvals.c.status == "pending",
                    )
                )
            ).first()
        if row is None:
            return None
        return PendingApproval(
            id=row.id,
            agent_id=row.agent_id,
            task_id=row.task_id,
            context_id=row.context_id,
            owner=row.owner,
            step=ChatMessage.from_json(row.step),
            calls=tuple(ToolCall(c["id"], c["name"], dict(c["arguments"])) for c in row.calls),
            prompt=row.prompt,
            created_at=_epoch(row.created_at),
            expires_at=_epoch(row.expires_at),
        )

    async def decide(self, approval_id: str, outcome: Outcome, by: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                approvals.update()
                .where(approvals.c.id == approval_id, approvals.c.status == "pending")
                .values(status=outcome, decided_by=by, decided_at=datetime.now(UTC))
            )
            return result.rowcount == 1


def _epoch(value: datetime) -> float:
    # SQLite hands back naive datetimes for timezone-aware columns; they were written in UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
