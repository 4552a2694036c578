"""SQL conversation store: order, ownership, concurrency, and the message-count migration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.messages import ChatMessage, ToolCall
from hector.stores.db import migrate, schema_version, session_messages, sessions
from hector.stores.sessions import SessionAccessError, SQLSessionStore


def _turn(i: int) -> list[ChatMessage]:
    call = ToolCall(f"c{i}", "lookup", {"q": f"ü-{i}"})
    return [
        ChatMessage("user", f"question {i}"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", f"result {i}", tool_call_id=f"c{i}", name="lookup", is_error=i % 2 == 1),
    ]


async def test_messages_come_back_in_order_with_every_field(engine: AsyncEngine) -> None:
    store = SQLSessionStore(engine)
    assert (await store.load("a", "c1", "alice")).messages == []
    await store.append("a", "c1", "alice", _turn(0), "t0")
    await store.append("a", "c1", "alice", [], "t1")  # nothing to add: nothing changes
    await store.append("a", "c1", "alice", _turn(1), "t1")
    await store.append("a", "c2", "alice", _turn(9), None)  # another conversation
    session = await store.load("a", "c1", "alice")
    assert session.messages == _turn(0) + _turn(1)
    assert session.summary is None and session.summarized_upto == 0
    await store.set_summary("a", "c1", "asked twice", 4)
    again = await store.load("a", "c1", "alice")
    assert (again.summary, again.summarized_upto) == ("asked twice", 4)
    assert (await store.load("b", "c1", "alice")).messages == []  # another agent


async def test_another_user_can_neither_read_nor_add(engine: AsyncEngine) -> None:
    store = SQLSessionStore(engine)
    await store.append("a", "c1", "alice", _turn(0), None)
    with pytest.raises(SessionAccessError):
        await store.load("a", "c1", "mallory")
    with pytest.raises(SessionAccessError):
        await store.append("a", "c1", "mallory", [ChatMessage("user", "injected")], None)
    assert (await store.load("a", "c1", "alice")).messages == _turn(0)


async def test_concurrent_appends_keep_each_batch_whole_and_numbered(engine: AsyncEngine) -> None:
    if engine.url.database in (None, "", ":memory:"):
        pytest.skip("in-memory SQLite has one connection for everyone: no isolation to test")
    store = SQLSessionStore(engine)
    await asyncio.gather(*(store.append("a", "c1", "alice", _turn(i), f"t{i}") for i in range(12)))
    messages = (await store.load("a", "c1", "alice")).messages
    assert len(messages) == 36
    batches = [messages[i : i + 3] for i in range(0, 36, 3)]
    assert sorted(batches, key=lambda b: b[0].content) == sorted(
        (_turn(i) for i in range(12)), key=lambda b: b[0].content
    )
    async with engine.connect() as conn:
        seqs = (await conn.execute(sa.select(session_messages.c.seq).order_by("seq"))).scalars().all()
        count = (await conn.execute(sa.select(sessions.c.message_count))).scalar()
    assert seqs == list(range(36)) and count == 36


async def test_the_migration_counts_messages_of_existing_conversations(engine: AsyncEngine) -> None:
    """A database from before migration 7: its sessions get their message counts, and the next
    append numbers its messages after the stored ones."""
    async with engine.begin() as conn:  # back to the schema before migration 7
        await conn.execute(sa.text("ALTER TABLE hector_sessions DROP COLUMN message_count"))
        await conn.execute(schema_version.delete().where(schema_version.c.version == 7))
        for context_id in ("c1", "empty"):
            await conn.execute(
                sa.text(
                    "INSERT INTO hector_sessions (agent_id, context_id, owner, summarized_upto,"
                    " created_at, updated_at) VALUES ('a', :c, 'alice', 0, :t, :t)"
                ),
                {"c": context_id, "t": datetime.now(UTC)},
            )
        for seq, text in enumerate(["hi", "hello"]):
            await conn.execute(
                session_messages.insert().values(
                    agent_id="a",
                    context_id="c1",
                    seq=seq,
                    message={"role": "user", "content": text},
                    created_at=datetime.now(UTC),
                )
            )
    await migrate(engine)
    async with engine.connect() as conn:
        counts = dict((await conn.execute(sa.select(sessions.c.context_id, sessions.c.message_count))).all())
    assert counts == {"c1": 2, "empty": 0}
    store = SQLSessionStore(engine)
    await store.append("a", "c1", "alice", [ChatMessage("user", "third")], None)
    assert [m.content for m in (await store.load("a", "c1", "alice")).messages] == ["hi", "hello", "third"]
    await migrate(engine)  # applied once only
