"""Database engines and Hector's own schema migrations.

The A2A task table is created by a2a-sdk's ``DatabaseTaskStore``; Hector's tables (sessions and
their messages) are created by the numbered migrations below, recorded in ``hector_schema``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = sa.MetaData()

sessions = sa.Table(
    "hector_sessions",
    metadata,
    sa.Column("agent_id", sa.String(200), primary_key=True),
    sa.Column("context_id", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("summarized_upto", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # How many messages the conversation holds (= the next message's seq), so an append claims
    # its seq numbers in the same statement that checks the owner (migration 7).
    sa.Column("message_count", sa.Integer, nullable=False, server_default="0"),
)

session_messages = sa.Table(
    "hector_session_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent_id", sa.String(200), nullable=False),
    sa.Column("context_id", sa.String(200), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("task_id", sa.String(200), nullable=True),
    sa.Column("message", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("agent_id", "context_id", "seq", name="uq_session_message_seq"),
)

approvals = sa.Table(
    "hector_approvals",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("agent_id", sa.String(200), nullable=False),
    sa.Column("task_id", sa.String(200), nullable=False, index=True),
    sa.Column("context_id", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("step", sa.JSON, nullable=False),
    sa.Column("calls", sa.JSON, nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_by", sa.String(300), nullable=True),
)

quota_usage = sa.Table(
    "hector_quota_usage",
    metadata,
    sa.Column("scope", sa.String(20), primary_key=True),
    sa.Column("identifier", sa.String(500), primary_key=True),
    sa.Column("limit_type", sa.String(20), primary_key=True),
    sa.Column("window", sa.String(20), primary_key=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("window_end", sa.Float, nullable=False),
)

rag_collections = sa.Table(
    "hector_rag_collections",
    metadata,
    sa.Column("collection", sa.String(200), primary_key=True),
    sa.Column("embedder", sa.String(300), nullable=False),
    sa.Column("dimension", sa.Integer, nullable=False),
)

rag_chunks = sa.Table(
    "hector_rag_chunks",
    metadata,
    sa.Column("collection", sa.String(200), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("document", sa.String(1000), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.Index("ix_rag_chunks_document", "collection", "document"),
)

rag_documents = sa.Table(
    "hector_rag_documents",
    metadata,
    sa.Column("collection", sa.String(200), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
)

task_leases = sa.Table(
    "hector_task_leases",
    metadata,
    sa.Column("task_id", sa.String(200), primary_key=True),
    sa.Column("agent_id", sa.String(200), nullable=False),
    sa.Column("replica_id", sa.String(100), nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

task_checkpoints = sa.Table(
    "hector_task_checkpoints",
    metadata,
    sa.Column("task_id", sa.String(200), primary_key=True),
    sa.Column("agent_id", sa.String(200), nullable=False),
    sa.Column("context_id", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("iteration", sa.Integer, nullable=False),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("step", sa.JSON, nullable=True),
    sa.Column("results", sa.JSON, nullable=False),
    sa.Column("running", sa.String(200), nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

schema_version = sa.Table(
    "hector_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


def _create(*tables: sa.Table) -> Callable[[Connection], None]:
    def step(conn: Connection) -> None:
        metadata.create_all(conn, tables=list(tables))

    return step


def _count_messages(conn: Connection) -> None:
    """Add ``hector_sessions.message_count``, filled from the messages already stored.

    The tables above describe the current schema, so on a new database migration 1 has created
    the column already; only databases made before this migration need the ALTER.
    """
    if "message_count" not in {c["name"] for c in sa.inspect(conn).get_columns("hector_sessions")}:
        conn.execute(
            sa.text("ALTER TABLE hector_sessions ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0")
        )
    conn.execute(
        sa.text(
            "UPDATE hector_sessions SET message_count = COALESCE((SELECT MAX(m.seq) + 1"
            " FROM hector_session_messages m WHERE m.agent_id = hector_sessions.agent_id"
            " AND m.context_id = hector_sessions.context_id), 0)"
        )
    )


# Numbered, applied once each, in order. A later schema change is a new entry (ALTER, backfill),
# never an edit of an applied one.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _create(sessions, session_messages)),
    (2, _create(approvals)),
    (3, _create(quota_usage)),
    (4, _create(rag_collections, rag_chunks, rag_documents)),
    (5, _create(task_leases)),
    (6, _create(task_checkpoints)),
    (7, _count_messages),
]


def _migrate(conn: Connection) -> None:
    schema_version.create(conn, checkfirst=True)
    done = set(conn.execute(sa.select(schema_version.c.version)).scalars())
    for version, step in MIGRATIONS:
        if version not in done:
            step(conn)
            conn.execute(schema_version.insert().values(version=version, applied_at=sa.func.now()))


async def migrate(engine: AsyncEngine) -> None:
    """Apply pending migrations in one transaction."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two replicas starting together must not both run the same migration.
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(724210391)"))
        await conn.run_sync(_migrate)


@contextlib.asynccontextmanager
async def schema_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the migration lock (PostgreSQL) for a block that creates tables outside ``migrate``,
    e.g. the SDK's task table: two replicas creating it at once would make one of them fail."""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT pg_advisory_lock(724210391)"))
        try:
            yield
        finally:
            await conn.execute(sa.text("SELECT pg_advisory_unlock(724210391)"))


def sqlite_url(data_dir: str | Path) -> str:
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path / 'hector.db'}"


# A pooled PostgreSQL connection idle for longer than this is checked before use (see below).
IDLE_PING_SECONDS = 5.0


def create_engine(url: str) -> AsyncEngine:
    # PostgreSQL pool: a request holds up to two connections at once (its task being saved while
    # the agent appends to the conversation), and connections beyond pool_size are closed on
    # return, so a small pool reconnects all the time under load. 20 kept + 10 overflow.
    sizes = {} if url.startswith("sqlite") else {"pool_size": 20, "max_overflow": 10}
    engine = create_async_engine(url, **sizes)
    if engine.dialect.name == "postgresql":
        _ping_idle_connections(engine)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]  # DBAPI callback
            cursor = dbapi_conn.cursor()
            apply_pragmas(cursor)
            cursor.close()

    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only when it has been idle a while.

    SQLAlchemy's ``pool_pre_ping`` checks every checkout, which on asyncpg is three round trips
    (BEGIN, ``;``, ROLLBACK), several times per request. Connections that were just used are
    alive; the ones that go stale (database restarted, idle connection cut by the network) are
    those left idle, and those are still checked here and replaced when dead. A connection that
    fails in use anyway (the database restarted under load) fails that one call, and SQLAlchemy
    then replaces every connection of the pool.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_conn, record):  # type: ignore[no-untyped-def]  # pool callback
        record.info["hector_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]  # pool callback
        idle_since = record.info.get("hector_idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another one.
            raise sa.exc.DisconnectionError("stale pooled connection") from exc


def apply_pragmas(cursor: Any) -> None:
    """Settings of every SQLite connection Hector opens (the engine's and ``hector.stores.sqlite``'s).

    WAL lets readers work while a task is being written; busy_timeout rides out the short write
    locks of concurrent requests instead of failing them. synchronous=NORMAL in WAL mode syncs at
    checkpoints, not at every commit: a committed transaction survives the process crashing
    (it is in the WAL file, which the OS holds), and only a power loss or OS crash can take back
    the last commits before the next checkpoint. The database is never corrupted either way.
    """
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
