"""Database engines and Hector's own schema migrations.

The A2A task table is created by a2a-sdk's ``DatabaseTaskStore``; Hector's tables (sessions and
their messages) are created by the numbered migrations below, recorded in ``hector_schema``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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


# Numbered, applied once each, in order. A later schema change is a new entry (ALTER, backfill),
# never an edit of an applied one.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _create(sessions, session_messages)),
    (2, _create(approvals)),
    (3, _create(quota_usage)),
    (4, _create(rag_collections, rag_chunks, rag_documents)),
    (5, _create(task_leases)),
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


def sqlite_url(data_dir: str | Path) -> str:
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path / 'hector.db'}"


def create_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]  # DBAPI callback
            cursor = dbapi_conn.cursor()
            # WAL lets readers work while a task is being written; busy_timeout rides out the
            # short write locks of concurrent requests instead of failing them.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine
