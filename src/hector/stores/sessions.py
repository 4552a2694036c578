"""Conversation history per (agent, contextId), in memory or in SQL."""

from __future__ import annotations

import asyncio
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.errors import HectorError
from hector.messages import ChatMessage
from hector.stores.db import session_messages, sessions
from hector.stores.sqlite import bind_processors, result_processors, runner_for, statement


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
    """SQLite or PostgreSQL; tables from ``hector.stores.db``.

    An append is two statements: an UPSERT of the session row that checks the owner and adds
    to ``message_count`` (returning the new count, which gives the messages their seq numbers),
    then one batched INSERT of the messages. The row lock the UPSERT takes keeps concurrent
    appends to one conversation in order. On a SQLite file the statements run on the dedicated
    connection of ``hector.stores.sqlite`` (one thread hand-off per call); on PostgreSQL they go
    through SQLAlchemy, built once and executed with parameters.
    """

    _UPSERT_SQL = (
        "INSERT INTO hector_sessions (agent_id, context_id, owner, summarized_upto, created_at,"
        " updated_at, message_count) VALUES (?, ?, ?, 0, ?, ?, ?)"
        " ON CONFLICT (agent_id, context_id) DO UPDATE SET updated_at = excluded.updated_at,"
        " message_count = hector_sessions.message_count + excluded.message_count"
        " WHERE hector_sessions.owner = excluded.owner RETURNING message_count"
    )
    _INSERT_SQL = (
        "INSERT INTO hector_session_messages (agent_id, context_id, seq, task_id, message, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)"
    )
    _HEAD_SQL = (
        "SELECT owner, summary, summarized_upto FROM hector_sessions WHERE agent_id = ? AND context_id = ?"
    )
    _MESSAGES_SQL = (
        "SELECT message FROM hector_session_messages WHERE agent_id = ? AND context_id = ? ORDER BY seq"
    )
    _SUMMARY_SQL = (
        "UPDATE hector_sessions SET summary = ?, summarized_upto = ? WHERE agent_id = ? AND context_id = ?"
    )

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.runner = runner_for(engine)
        # Reads need no transaction (BEGIN/ROLLBACK are two more round trips on PostgreSQL).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        dialect = engine.dialect
        self._time, self._to_db = bind_processors(
            [sessions.c.created_at, session_messages.c.message], dialect
        )
        (self._from_db,) = result_processors([session_messages.c.message], dialect)
        insert: Any = postgresql.insert if dialect.name == "postgresql" else sqlite_dialect.insert
        new = insert(sessions).values(
            agent_id=sa.bindparam("p_agent"),
            context_id=sa.bindparam("p_context"),
            owner=sa.bindparam("p_owner"),
            summarized_upto=0,
            created_at=sa.bindparam("p_now"),
            updated_at=sa.bindparam("p_now"),
            message_count=sa.bindparam("p_n"),
        )
        self._upsert = new.on_conflict_do_update(
            index_elements=[sessions.c.agent_id, sessions.c.context_id],
            set_={
                "updated_at": new.excluded.updated_at,
                "message_count": sessions.c.message_count + new.excluded.message_count,
            },
            where=sessions.c.owner == new.excluded.owner,
        ).returning(sessions.c.message_count)
        # Parameter names differ from column names: SQLAlchemy reserves those in INSERT/UPDATE.
        key = (sessions.c.agent_id == sa.bindparam("p_agent")) & (
            sessions.c.context_id == sa.bindparam("p_context")
        )
        self._head = sa.select(sessions.c.owner, sessions.c.summary, sessions.c.summarized_upto).where(key)
        self._messages = (
            sa.select(session_messages.c.message)
            .where(
                session_messages.c.agent_id == sa.bindparam("p_agent"),
                session_messages.c.context_id == sa.bindparam("p_context"),
            )
            .order_by(session_messages.c.seq)
        )
        self._summary = (
            sessions.update()
            .where(key)
            .values(summary=sa.bindparam("p_summary"), summarized_upto=sa.bindparam("p_upto"))
        )

    async def load(self, agent_id: str, context_id: str, owner: str) -> Session:
        key = (agent_id, context_id)
        if self.runner is not None:

            def read(conn: sqlite3.Connection) -> tuple[Any, list[Any]]:
                head = conn.execute(self._HEAD_SQL, key).fetchone()
                if head is None or head[0] != owner:
                    return head, []
                return head, [self._from_db(m) for (m,) in conn.execute(self._MESSAGES_SQL, key)]

            head, stored = await self.runner.run(read, write=False)
        else:
            params = {"p_agent": agent_id, "p_context": context_id}
            async with self._autocommit.connect() as conn:
                head = (await conn.execute(self._head, params)).first()
                ok = head is not None and head[0] == owner
                stored = list((await conn.execute(self._messages, params)).scalars()) if ok else []
        if head is None:
            return Session()
        if head[0] != owner:
            raise SessionAccessError()
        return Session([ChatMessage.from_json(m) for m in stored], head[1], head[2] or 0)

    async def append(
        self, agent_id: str, context_id: str, owner: str, messages: Sequence[ChatMessage], task_id: str | None
    ) -> None:
        now, n = datetime.now(UTC), len(messages)
        if self.runner is not None:
            stamp = self._time(now)
            payloads = [self._to_db(m.to_json()) for m in messages]

            def write(conn: sqlite3.Connection) -> bool:
                row = conn.execute(
                    self._UPSERT_SQL, (agent_id, context_id, owner, stamp, stamp, n)
                ).fetchone()
                if row is None:  # the row exists and the WHERE on its owner kept it unchanged
                    return False
                start = row[0] - n
                conn.executemany(
                    self._INSERT_SQL,
                    [(agent_id, context_id, start + i, task_id, p, stamp) for i, p in enumerate(payloads)],
                )
                return True

            if not await self.runner.run(write, write=True):
                raise SessionAccessError()
            return
        params = {"p_agent": agent_id, "p_context": context_id, "p_owner": owner, "p_now": now, "p_n": n}
        async with self.engine.begin() as conn:
            count = (await conn.execute(self._upsert, params)).scalar()
            if count is None:
                raise SessionAccessError()
            if messages:
                rows = [
                    {
                        "agent_id": agent_id,
                        "context_id": context_id,
                        "seq": count - n + i,
                        "task_id": task_id,
                        "message": m.to_json(),
                        "created_at": now,
                    }
                    for i, m in enumerate(messages)
                ]
                await conn.execute(session_messages.insert(), rows)

    async def set_summary(self, agent_id: str, context_id: str, summary: str, upto: int) -> None:
        if self.runner is not None:
            args = (summary, upto, agent_id, context_id)
            await self.runner.run(statement(self._SUMMARY_SQL, args), write=True)
            return
        params = {"p_agent": agent_id, "p_context": context_id, "p_summary": summary, "p_upto": upto}
        async with self.engine.begin() as conn:
            await conn.execute(self._summary, params)
