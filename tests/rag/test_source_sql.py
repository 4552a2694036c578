"""Document stores fed by database tables (``source: sql``), on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hector.assembly import build_runtime
from hector.cli.indexing import index_stores
from hector.config import parse_config
from hector.config.schema import DocumentStoreConfig
from hector.errors import ConfigError, DocumentSourceError
from hector.rag.documents import DocumentStore
from hector.rag.embedders import Embedder
from hector.rag.retrieval import cite
from hector.rag.sources_sql import SQLSource, connect_args
from hector.rag.vectors import EmbeddedVectorStore
from tests.harness import fresh_postgres_database
from tests.rag.test_indexing import Counting

ROWS = [
    (1, "Espresso machine care", "Descale the espresso machine every month with citric acid.", "coffee", 3),
    (2, "Kayak rental", "Kayaks are rented by the hour at the north pier, life vests included.", "sport", 1),
    (3, "Aurora season", "The northern lights are best seen in Norway from September to March.", "travel", 2),
    (4, "Draft: pricing", "Unpublished pricing notes for the sales team.", "internal", 4),
]


@dataclass
class Database:
    conn: str
    """The URL as an operator writes it in the configuration (no async driver named)."""
    admin: AsyncEngine

    async def run(self, sql: str, **params: Any) -> None:
        async with self.admin.begin() as c:
            await c.execute(sa.text(sql), params)


async def _fill(db: Database) -> None:
    # "order" is a reserved word: it only works if Hector quotes identifiers properly.
    await db.run(
        "CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT, category TEXT,"
        ' "order" INTEGER, status TEXT, updated_at TEXT)'
    )
    for id_, title, body, category, order in ROWS:
        status = "draft" if title.startswith("Draft") else "published"
        await db.run(
            "INSERT INTO articles VALUES (:id, :title, :body, :category, :o, :status, :u)",
            id=id_,
            title=title,
            body=body,
            category=category,
            o=order,
            status=status,
            u="2024-01-01",
        )


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        admin = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
        db = Database("sqlite:///shop.db", admin)  # relative: from the configuration's folder
        await _fill(db)
        yield db
        await admin.dispose()
        return
    async with fresh_postgres_database() as url:
        admin = create_async_engine(url)
        db = Database(url.replace("postgresql+asyncpg://", "postgresql://"), admin)
        await _fill(db)
        yield db
        await admin.dispose()


def sql_store(conn: str, base: Path, state: AsyncEngine, embedder: Any, **table: Any) -> DocumentStore:
    cfg = DocumentStoreConfig.model_validate(
        {
            "source": "sql",
            "sql": {"conn": conn},
            "sql_max_rows": table.pop("max_rows", 10_000),
            "sql_tables": [
                {
                    "table": "articles",
                    "columns": "title,body",
                    "id_column": "id",
                    "updated_column": "updated_at",
                    "metadata_columns": ["category", "order"],
                    "where_clause": "status = 'published' AND title <> 'x:y'",
                    **table,
                }
            ],
        }
    )
    return DocumentStore("kb", cfg, base, embedder, EmbeddedVectorStore(state), state)


async def documents(store: DocumentStore) -> set[str]:
    return {c.document for c in await store.vectors.chunks(store.collection)}


async def test_rows_are_indexed_incrementally_and_searchable(
    database: Database, tmp_path: Path, engine: AsyncEngine, local: Embedder
) -> None:
    embedder = Counting(local)
    store = sql_store(database.conn, tmp_path, engine, embedder)
    try:
        report = await store.index()
        assert (report.added, report.failed) == (3, 0)  # the draft is outside the where_clause
        assert await documents(store) == {"articles/1", "articles/2", "articles/3"}
        hit = (await store.search("where can I rent a kayak", top_k=1))[0]
        assert hit.chunk.document == "articles/2"
        assert hit.chunk.text.startswith("title: Kayak rental\nbody: Kayaks are rented")
        assert hit.chunk.meta == {
            "path": "articles/2",
            "chunk": 0,
            "source": "sql",
            "category": "sport",
            "order": 1,
            "updated_at": "2024-01-01",
        }
        assert cite(hit) == "articles/2"

        embedder.texts.clear()
        assert (await store.index()).unchanged == 3 and embedder.texts == []
        await database.run("UPDATE articles SET body = 'Kayaks and canoes by the day.' WHERE id = 2")
        report = await store.index()
        assert (report.updated, report.unchanged) == (1, 2)
        assert embedder.texts == ["title: Kayak rental\nbody: Kayaks and canoes by the day."]
        embedder.texts.clear()
        await database.run("UPDATE articles SET updated_at = '2024-02-02' WHERE id = 3")
        report = await store.index()
        assert (report.updated, report.unchanged, len(embedder.texts)) == (1, 2, 1)
        await database.run("DELETE FROM articles WHERE id = 1")
        report = await store.index()
        assert report.removed == 1
        assert await documents(store) == {"articles/2", "articles/3"}
    finally:
        await store.aclose()


async def test_hector_never_writes_to_the_database(
    database: Database, tmp_path: Path, engine: AsyncEngine
) -> None:
    source = sql_store(database.conn, tmp_path, engine, None).source
    assert isinstance(source, SQLSource)
    try:
        with pytest.raises(sa.exc.DBAPIError, match=r"(?i)read-only|readonly"):
            async with source.engine.begin() as conn:
                await conn.execute(sa.text("DELETE FROM articles"))
    finally:
        await source.aclose()


async def test_row_cap_warns_and_indexes_the_first_rows(
    tmp_path: Path, engine: AsyncEngine, local: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    admin = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    await _fill(Database("", admin))
    await admin.dispose()
    store = sql_store("sqlite:///shop.db", tmp_path, engine, local, max_rows=2, where_clause=None)
    try:
        assert (await store.index()).added == 2
        assert await documents(store) == {"articles/1", "articles/2"}
        assert "table articles has more than 2 matching rows; only the first 2 by id" in caplog.text
    finally:
        await store.aclose()


async def test_errors_name_the_table_and_never_the_password(
    tmp_path: Path, engine: AsyncEngine, local: Embedder
) -> None:
    secret = "hunter2-secret"
    missing_db = f"postgresql://root:{secret}@127.0.0.1:5432/hector_no_such_db"
    store = sql_store(missing_db, tmp_path, engine, local)
    with pytest.raises(DocumentSourceError) as failure:
        await store.index()
    await store.aclose()
    message = str(failure.value)
    assert (
        "document store 'kb': reading table articles from postgresql+asyncpg://root:***@127.0.0.1" in message
    )
    assert "hector_no_such_db" in message and secret not in message
    source = sql_store("sqlite:///absent.db", tmp_path, engine, None).source
    assert source is not None
    with pytest.raises(DocumentSourceError, match=r"database file .*absent\.db does not exist"):
        await source.records()
    await source.aclose()
    with pytest.raises(ConfigError, match="unsupported database 'oracle'"):
        sql_store(f"oracle://u:{secret}@h/db", tmp_path, engine, None)


def test_validate_reports_missing_and_unsafe_sql_settings() -> None:
    def errors(store: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as failure:
            parse_config({"document_stores": {"kb": store}}, "<test>")
        return str(failure.value)

    text = errors({"source": "sql", "sql_database": "main", "sql_tables": [{"table": "a"}]})
    assert "document store 'kb': source sql needs sql.conn" in text and "databases" in text
    assert "document store 'kb': sql_tables[0] needs id_column, columns" in text
    assert "source sql needs sql_tables" in errors({"source": "sql", "sql": {"conn": "sqlite:///x.db"}})
    text = errors(
        {
            "source": "sql",
            "sql": {"conn": "sqlite:///x.db"},
            "sql_tables": [{"table": "a; DROP TABLE b", "id_column": "id", "columns": ['ti"tle']}],
        }
    )
    assert "table 'a; DROP TABLE b' is not a plain name or schema.name" in text
    assert "column 'ti\"tle' is not a plain name" in text
    assert "unknown source 'ftp' (expected one of: directory, sql, api)" in errors({"source": "ftp"})


async def test_hector_index_and_refreshing_while_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hector.rag")
    admin = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    db = Database("sqlite:///shop.db", admin)
    await _fill(db)
    kb = {
        "source": "sql",
        "sql": {"conn": db.conn},
        "sql_tables": [{"table": "articles", "columns": ["title", "body"], "id_column": "id"}],
        "refresh_interval": "200ms",
    }
    (tmp_path / "hector.yaml").write_text(f"document_stores:\n  kb: {kb}\n")
    reports = await index_stores(tmp_path / "hector.yaml", [], Console(file=io.StringIO()))
    assert reports["kb"].added == 4

    config = parse_config({"llms": {"t": {"type": "test"}}, "document_stores": {"kb": kb}}, "<test>").config
    async with build_runtime(config, tmp_path) as runtime:
        assert runtime.library is not None
        store = runtime.library.stores["kb"]
        await runtime.documents_indexed()  # started in the background: the change below is a refresh's
        assert await documents(store) == {f"articles/{i}" for i in range(1, 5)}  # the CLI's index, reused
        await db.run(
            "INSERT INTO articles (id, title, body) VALUES (9, 'Sourdough', 'Feed the starter daily.')"
        )
        await db.run("DELETE FROM articles WHERE id = 4")
        deadline = asyncio.get_running_loop().time() + 20
        while await documents(store) != {"articles/1", "articles/2", "articles/3", "articles/9"}:
            assert asyncio.get_running_loop().time() < deadline, "the refresh never reached the index"
            await asyncio.sleep(0.1)
    await admin.dispose()
    assert "document store kb refreshed: 1 added, 0 updated, 1 removed" in caplog.text


async def test_a_password_in_the_url_query_never_reaches_a_message(
    tmp_path: Path, engine: AsyncEngine, local: Embedder
) -> None:
    secret = "hunter3-in-query"  # libpq URLs may carry it as ?password=
    store = sql_store(
        f"postgresql://root@127.0.0.1:5432/hector_no_such_db?password={secret}&sslmode=disable",
        tmp_path,
        engine,
        local,
    )
    with pytest.raises(DocumentSourceError) as failure:
        await store.index()
    await store.aclose()
    message = str(failure.value)
    assert "reading table articles from postgresql+asyncpg://root@127.0.0.1:5432/hector_no_such_db" in message
    assert secret not in message


def test_names_ending_in_a_newline_are_not_plain_names() -> None:
    tables = [{"table": "articles\n", "id_column": "id\n", "columns": ["title"]}]
    store = {"source": "sql", "sql": {"conn": "sqlite:///x.db"}, "sql_tables": tables}
    with pytest.raises(ConfigError) as failure:
        parse_config({"document_stores": {"kb": store}}, "<test>")
    assert "table 'articles\\n' is not a plain name" in str(failure.value)
    assert "column 'id\\n' is not a plain name" in str(failure.value)


def test_each_driver_gets_its_own_connect_timeout_and_a_read_only_session() -> None:
    # aiomysql (not installed here) takes connect_timeout, not timeout: asyncpg's and aiosqlite's
    # name would make every MySQL read fail; and the session must be read-only like the others.
    assert connect_args("mysql", 7.0) == {
        "connect_timeout": 7.0,
        "init_command": "SET SESSION TRANSACTION READ ONLY",
    }
    assert connect_args("postgresql", 7.0) == {
        "timeout": 7.0,
        "server_settings": {"default_transaction_read_only": "on"},
    }
    assert connect_args("sqlite", 7.0) == {"timeout": 7.0}
