"""pgvector: vectors in a PostgreSQL database with the ``vector`` extension (SQLAlchemy + asyncpg).

One table per collection (``hector_vec_<name>``): an HNSW index needs a fixed dimension, and
collections of one database may hold vectors of different embedders. ``hector_vector_collections``
records, for each collection, its table and the embedder and dimension that filled it. Chunk ids
are the primary key as they are (PostgreSQL takes any text); ``meta`` is JSONB.

The HNSW index (``vector_cosine_ops``) answers ``ORDER BY embedding <=> q``; its candidate list
(``hnsw.ef_search``, 40 by default) caps how many rows one index scan returns, so a query raises
it to ``top_k`` for its own transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hector.config.schema import VectorStoreConfig
from hector.config.tls import effective_tls, vector_store_component
from hector.errors import ConfigError, HectorError, VectorStoreError
from hector.rag.backends.common import OneCollection, failure_reason, server_host, wrong_dimension
from hector.rag.vectors import Chunk, Hit, VectorStore
from hector.tls import create_ssl_context

DEFAULT_PORT = 5432
CONNECT_TIMEOUT = 10.0
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
REGISTRY = "hector_vector_collections"
_BATCH = 500
_LOCK = 0x4865_6374_6F72  # pg_advisory_xact_lock key: one collection change at a time

registry = sa.Table(
    REGISTRY,
    sa.MetaData(),
    sa.Column("collection", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, nullable=False),
    sa.Column("embedder", sa.Text, nullable=False),
    sa.Column("dimension", sa.Integer, nullable=False),
)


def table_name(collection: str) -> str:
    """The table of *collection*: readable, within PostgreSQL's 63 bytes, distinct per name."""
    clean = re.sub(r"[^a-z0-9_]", "_", collection.lower())[:32]
    return f"hector_vec_{clean}_{hashlib.sha256(collection.encode()).hexdigest()[:12]}"


def chunk_table(name: str, dimension: int | None = None) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("document", sa.Text, nullable=False, index=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("meta", JSONB, nullable=False),
        sa.Column("embedding", Vector(dimension), nullable=False),
    )


class PgvectorStore(VectorStore):
    def __init__(self, name: str, engine: AsyncEngine, where: str, collection: str | None) -> None:
        self.name = name
        self.engine = engine
        self._where = where
        self._one = OneCollection(f"vector store {name!r} (pgvector)", collection)
        self._tables: dict[str, tuple[sa.Table, int]] = {}

    def _name(self, collection: str) -> str:
        # `collection` in the vector store's settings names the one collection it keeps.
        return self._one.name(collection)

    def _fail(self, text: str) -> VectorStoreError:
        return VectorStoreError(f"vector store {self.name!r} (pgvector at {self._where}): {text}")

    @contextlib.asynccontextmanager
    async def _begin(self, action: str) -> AsyncIterator[AsyncConnection]:
        """A transaction; any failure becomes a VectorStoreError naming the store and the fix."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except HectorError:
            raise
        except DBAPIError as exc:
            cause = exc.orig.__cause__ if exc.orig is not None else None
            detail = str(cause or exc.orig).strip().splitlines()[0]
            if "extension" in detail and "vector" in detail:
                detail += (
                    "; install pgvector on the server and run CREATE EXTENSION vector as a superuser "
                    "(Hector tries to create it, which needs that privilege)"
                )
            raise self._fail(f"{action} failed: {detail}") from None
        except (OSError, TimeoutError) as exc:
            raise self._fail(f"cannot connect: {failure_reason(exc)}") from None

    async def _table(self, conn: AsyncConnection, collection: str) -> tuple[sa.Table, int]:
        known = self._tables.get(collection)
        if known is not None:
            return known
        row = (await conn.execute(sa.select(registry).where(registry.c.collection == collection))).first()
        if row is None:
            raise self._fail(f"collection {collection!r} does not exist (no document store indexed it yet)")
        known = self._tables[collection] = (chunk_table(row.table_name, row.dimension), row.dimension)
        return known

    async def open_collection(self, collection: str, embedder: str, dimension: int) -> bool:
        name = self._name(collection)
        async with self._begin(f"opening collection {name!r}") as conn:
            await conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK)))
            await conn.run_sync(registry.metadata.create_all)
            row = (await conn.execute(sa.select(registry).where(registry.c.collection == name))).first()
            if row is not None and row.embedder == embedder and row.dimension == dimension:
                self._tables[name] = (chunk_table(row.table_name, dimension), dimension)
                return False
            # New, or filled by another embedder: (re)create it empty. A new collection is
            # "reset" too: nothing indexed before is here, so the caller indexes everything.
            table = chunk_table(table_name(name), dimension)
            await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table.name}"'))
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(
                sa.text(
                    f'CREATE INDEX "{table.name}_hnsw" ON "{table.name}" '
                    "USING hnsw (embedding vector_cosine_ops)"
                )
            )
            values = {"table_name": table.name, "embedder": embedder, "dimension": dimension}
            await conn.execute(
                insert(registry)
                .values(collection=name, **values)
                .on_conflict_do_update(index_elements=[registry.c.collection], set_=values)
            )
            self._tables[name] = (table, dimension)
            return True

    def _check(self, name: str, dimension: int, vectors: list[list[float]]) -> None:
        if problem := wrong_dimension(name, dimension, vectors):
            raise self._fail(problem)

    async def upsert(self, collection: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        if not chunks:
            return
        name = self._name(collection)
        async with self._begin(f"writing to collection {name!r}") as conn:
            table, dimension = await self._table(conn, name)
            self._check(name, dimension, vectors)
            rows = [
                {"id": c.id, "document": c.document, "text": c.text, "meta": c.meta, "embedding": v}
                for c, v in zip(chunks, vectors, strict=True)
            ]
            statement = insert(table)
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.id],
                set_={key: statement.excluded[key] for key in ("document", "text", "meta", "embedding")},
            )
            for start in range(0, len(rows), _BATCH):
                await conn.execute(statement, rows[start : start + _BATCH])

    async def delete_documents(self, collection: str, documents: list[str]) -> None:
        if not documents:
            return
        name = self._name(collection)
        async with self._begin(f"deleting from collection {name!r}") as conn:
            table, _ = await self._table(conn, name)
            await conn.execute(table.delete().where(table.c.document == sa.any_(sa.literal(documents))))

    async def query(self, collection: str, vector: list[float], top_k: int) -> list[Hit]:
        name = self._name(collection)
        async with self._begin(f"searching collection {name!r}") as conn:
            table, dimension = await self._table(conn, name)
            self._check(name, dimension, [vector])
            ef_search = str(min(max(top_k, 40), MAX_EF_SEARCH))
            await conn.execute(sa.select(sa.func.set_config("hnsw.ef_search", ef_search, True)))
            distance = table.c.embedding.cosine_distance(vector)
            rows = await conn.execute(
                sa.select(
                    table.c.id, table.c.document, table.c.text, table.c.meta, distance.label("distance")
                )
                .order_by(distance)
                .limit(top_k)
            )
            # Cosine distance is 1 - cosine similarity.
            return [Hit(Chunk(r.id, r.document, r.text, r.meta), 1.0 - float(r.distance)) for r in rows]

    async def chunks(self, collection: str) -> list[Chunk]:
        name = self._name(collection)
        async with self._begin(f"reading collection {name!r}") as conn:
            table, _ = await self._table(conn, name)
            rows = await conn.execute(
                sa.select(table.c.id, table.c.document, table.c.text, table.c.meta).order_by(table.c.id)
            )
            return [Chunk(r.id, r.document, r.text, r.meta) for r in rows]

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # closing must not hide the error that ended a run
            await self.engine.dispose()


def _url(name: str, cfg: VectorStoreConfig) -> URL:
    if cfg.url:
        try:
            url = make_url(cfg.url)
        except ArgumentError:
            raise ConfigError(f"vector store {name!r}: url is not a database URL") from None
        if url.get_backend_name() not in ("postgresql", "postgres"):
            raise ConfigError(
                f"vector store {name!r}: url must start with postgresql:// ({url.drivername}://...)"
            )
        url = url.set(drivername="postgresql+asyncpg")
        if "sslmode" in url.query:  # libpq's name; asyncpg takes the same modes as ``ssl``
            url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": url.query["sslmode"]})
        if cfg.enable_tls:  # Hector's verified context replaces any mode the URL names
            url = url.difference_update_query(["ssl"])
        return url.set(port=cfg.port) if cfg.port and url.port is None else url
    return URL.create(
        "postgresql+asyncpg",
        host=server_host(name, cfg),
        port=cfg.port or DEFAULT_PORT,
        database=cfg.database,
    )


def create(name: str, cfg: VectorStoreConfig, base_dir: Path) -> VectorStore:
    if cfg.path:
        raise ConfigError(f"vector store {name!r}: pgvector needs a server (url or host), not path")
    url = _url(name, cfg)
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT}
    if cfg.enable_tls:
        # asyncpg asks the server for TLS (SSLRequest) and verifies it with Hector's context:
        # the CA (system store plus ca_certificate) and the host name, like sslmode=verify-full.
        connect_args["ssl"] = create_ssl_context(effective_tls(cfg), vector_store_component("pgvector", name))
    engine = create_async_engine(url, connect_args=connect_args, pool_size=5, pool_pre_ping=True)
    where = url.set(drivername="postgresql").render_as_string(hide_password=True)
    return PgvectorStore(name, engine, where, cfg.collection)
