"""Conversation history per (agent, contextId), in memory or in SQL."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.errors import HectorError
from hector.messages import ChatMessage
from hector.stores.db import session_messages, sessions


class SessionAccessError(HectorError):
    default_message = "this conversation belongs to another user"


@dataclass
class Session:
    messages: list[ChatMessage] = field(default_factory=list)
    summary: str | None = None
    summarized_upto: int = 0


class SessionStore(ABC):
    """Stores each conversation's messages in order.

    A conversation belongs to the user who started it: ``load`` and ``append`` by anyone else
    raise ``SessionAccessError``, so a guessed contextId reveals nothing.
    """

    @abstractmethod
    async def load(self, agent_id: str, context_id: str, owner: str) -> Session:
        """The whole stored conversation (empty for a new one)."""

    @abstractmethod
    async def append(
        self, agent_id: str, context_id: str, owner: str, messages: Sequence[ChatMessage], task_id: str | None
    ) -> None:
        """Add messages at the end, atomically."""

    @abstractmethod
    async def set_summary(self, agent_id: str, context_id: str, summary: str, upto: int) -> None:
        """Record that the first *upto* messages are summarised by *summary*."""


class MemorySessionStore(SessionStore):
    def __init__(self) -> None:
        self._data: dict[tuple[str, str], tuple[str, Session]] = {}
        self._lock = asyncio.Lock()

    def _get(self, agent_id: str, context_id: str, owner: str) -> Session:
        entry = self._data.get((agent_id, context_id))
        if entry is None:
            return Session()
        if entry[0] != owner:
            raise SessionAccessError()
        return entry[1]

    async def load(self, agent_id: str, context_id: str, owner: str) -> Session:
        s = self._get(agent_id, context_id, owner)
        return Session(list(s.messages), s.summary, s.summarized_upto)

    async def append(
        self, agent_id: str, context_id: str, owner: str, messages: Sequence[ChatMessage], task_id: str | None
    ) -> None:
        async with self._lock:
            self._get(agent_id, context_id, owner)
            entry = self._data.setdefault((agent_id, context_id), (owner, Session()))
            entry[1].messages.extend(messages)

    async def set_summary(self, agent_id: str, context_id: str, summary: str, upto: int) -> None:
        entry = self._data.get((agent_id, context_id))
        if entry is not None:
            entry[1].summary, entry[1].summarized_upto = summary, upto


class SQLSessionStore(SessionStore):
    """SQLite or PostgreSQL through SQLAlchemy; tables from ``hector.stores.db``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def load(self, agent_id: str, context_id: str, owner: str) -> Session:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(sessions.c.owner, sessions.c.summary, sessions.c.summarized_upto).where(
                        sessions.c.agent_id == agent_id, sessions.c.context_id == context_id
                    )
                )
            ).first()
            if row is None:
                return Session()
            if row.owner != owner:
                raise SessionAccessError()
            result = await conn.execute(
                sa.select(session_messages.c.message)
                .where(session_messages.c.agent_id == agent_id, session_messages.c.context_id == context_id)
                .order_by(session_messages.c.seq)
            )
            return Session(
                [ChatMessage.from_json(m) for m in result.scalars()], row.summary, row.summarized_upto or 0
            )

    async def append(
        self, agent_id: str, context_id: str, owner: str, messages: Sequence[ChatMessage], task_id: str | None
    ) -> None:
        now = datetime.now(UTC)
        key = (sessions.c.agent_id == agent_id) & (sessions.c.context_id == context_id)
        async with self.engine.begin() as conn:
            query = sa.select(sessions.c.owner).where(key)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            found = (await conn.execute(query)).scalar()
            if found is None:
                await conn.execute(
                    sessions.insert().values(
                        agent_id=agent_id,
                        context_id=context_id,
                        owner=owner,
                        summarized_upto=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
            elif found != owner:
                raise SessionAccessError()
            else:
                await conn.execute(sessions.update().where(key).values(updated_at=now))
            last = (
                await conn.execute(
                    sa.select(sa.func.max(session_messages.c.seq)).where(
                        session_messages.c.agent_id == agent_id, session_messages.c.context_id == context_id
                    )
                )
            ).scalar()
            start = 0 if last is None else last + 1
            if messages:
                await conn.execute(
                    session_messages.insert(),
                    [
                        {
                            "agent_id": agent_id,
                            "context_id": context_id,
                            "seq": start + i,
                            "task_id": task_id,
                            "message": m.to_json(),
                            "created_at": now,
                        }
                        for i, m in enumerate(messages)
                    ],
                )

    async def set_summary(self, agent_id: str, context_id: str, summary: str, upto: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sessions.update()
                .where(sessions.c.agent_id == agent_id, sessions.c.context_id == context_id)
                .values(summary=summary, summarized_upto=upto)
            )
