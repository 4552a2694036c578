"""``source: sql``: the rows of database tables as documents, through SQLAlchemy's async engines.

Each configured table is read with one SELECT of its id, updated, content and metadata columns;
each row becomes the document ``<table>/<id>``. Table and column names are configuration checked
to be plain identifiers (``hector.config.sources``) and are quoted by SQLAlchemy's compiler for the
database at hand; ``where_clause`` is the operator's own SQL and is used as written.

Hector only reads: SQLite files are opened read-only, PostgreSQL sessions start with
``default_transaction_read_only``, MySQL sessions are made read-only, and every transaction is
rolled back. The connection URL may hold a password (also as ``?password=``): messages show the
URL without its query and with the password masked, and driver errors are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from hector.config.schema import DocumentStoreConfig
from hector.config.sources import SQLTableConfig
from hector.errors import ConfigError, DocumentSourceError
from hector.rag.sources_base import Record, plain, record_text, scrub

log = logging.getLogger("hector.rag")

# Plain URLs (what operators copy from their database's console) get the async driver Hector uses.
ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite", "mysql": "mysql+aiomysql"}


def engine_url(raw: str, base_dir: Path, owner: str) -> URL:
    """The async, read-only form of the URL *raw*; a relative SQLite path starts at *base_dir*."""
    try:
        url = make_url(raw)
    except ArgumentError:
        # Not even a masked echo: a malformed URL may have its password anywhere.
        raise ConfigError(
            f"{owner}: sql.conn is not a database URL (e.g. postgresql://user@host/db, sqlite:///docs.db)"
        ) from None
    backend = url.get_backend_name()
    backend = "postgresql" if backend == "postgres" else backend
    if backend not in ASYNC_DRIVERS:
        raise ConfigError(
            f"{owner}: sql.conn: unsupported database {backend!r} (expected one of: "
            f"{', '.join(ASYNC_DRIVERS)})"
        )
    url = url.set(drivername=ASYNC_DRIVERS[backend])
    if backend == "postgresql" and "sslmode" in url.query:  # libpq's name; asyncpg calls it ssl
        url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": url.query["sslmode"]})
    if backend == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise ConfigError(f"{owner}: sql.conn: give a SQLite file, e.g. sqlite:///data/docs.db")
        path = Path(url.database).expanduser()
        path = path if path.is_absolute() else (base_dir / path).resolve()
        # SQLite's URI form opens the file read-only, and never creates a missing one.
        url = url.set(database=f"file:{path}", query={"mode": "ro", "uri": "true"})
    return url


SECRET_PARAMS = ("password", "secret", "token")
"""Query parameters of a database URL whose values are secrets (``?password=``, ``sslpassword``)."""


def _secrets(url: URL) -> list[str]:
    """The password, wherever the URL holds it, each as written and URL-encoded."""
    texts = [str(url.password)] if url.password else []
    for key, value in url.query.items():
        if any(word in key.lower() for word in SECRET_PARAMS):
            texts += [value] if isinstance(value, str) else list(value)
    return [form for text in texts if text for form in (text, quote(text, safe=""), quote_plus(text))]


def where(url: URL) -> str:
    """*url* for messages: the password masked, the query left out (it may hold one too)."""
    return url.set(query={}).render_as_string(hide_password=True)


def connect_args(backend: str, timeout: float) -> dict[str, Any]:
    """The driver's connection arguments: its connect timeout, and a read-only session where the
    server has one (SQLite is opened read-only by its URL)."""
    if backend == "postgresql":  # asyncpg
        return {"timeout": timeout, "server_settings": {"default_transaction_read_only": "on"}}
    if backend == "mysql":  # aiomysql takes no `timeout`
        return {"connect_timeout": timeout, "init_command": "SET SESSION TRANSACTION READ ONLY"}
    return {"timeout": timeout}  # aiosqlite: how long to wait for a lock


class SQLSource:
    kind = "sql"

    def __init__(self, name: str, cfg: DocumentStoreConfig, base_dir: Path) -> None:
        self.owner = f"document store {name!r}"
        if cfg.sql is None or cfg.sql.conn is None or not cfg.sql.conn.get_secret_value():
            raise ConfigError(f"{self.owner}: source sql needs sql.conn (a database URL)")
        url = engine_url(cfg.sql.conn.get_secret_value(), base_dir, self.owner)
        self._secrets = _secrets(url)
        self.where = where(url)
        self.tables = cfg.sql_tables
        self.max_rows = cfg.sql_max_rows
        self.timeout = cfg.sql.timeout
        sqlite = url.get_backend_name() == "sqlite"
        self._sqlite_file = Path((url.database or "").removeprefix("file:")) if sqlite else None
        args = connect_args(url.get_backend_name(), self.timeout)
        try:
            # No pool: a read every few minutes does not justify holding a connection open in
            # someone else's database between reads.
            self.engine: AsyncEngine = create_async_engine(url, poolclass=NullPool, connect_args=args)
        except (NoSuchModuleError, ImportError) as exc:
            missing = getattr(exc, "name", None) or exc
            raise ConfigError(
                f"{self.owner}: sql.conn: its database driver is not installed ({missing})"
            ) from None

    async def records(self) -> list[Record]:
        if self._sqlite_file is not None and not self._sqlite_file.is_file():
            raise DocumentSourceError(f"{self.owner}: database file {self._sqlite_file} does not exist")
        found: dict[str, Record] = {}
        for table in self.tables:
            for record in await self._read(table):
                found[record.id] = record
        return list(found.values())

    async def _read(self, table: SQLTableConfig) -> list[Record]:
        assert table.table is not None and table.id_column is not None  # hector validate checks
        query = select_rows(table, self.max_rows)
        try:
            async with asyncio.timeout(self.timeout), self.engine.connect() as conn:
                rows = [row._mapping for row in await conn.execute(query)]
        except TimeoutError:
            raise DocumentSourceError(
                f"{self.owner}: reading table {table.table} from {self.where} took longer than "
                f"{self.timeout:g}s (sql.timeout)"
            ) from None
        except Exception as exc:  # the driver's own errors: connection, permissions, bad column
            cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
            while cause.__cause__ is not None:  # the driver's own error, under SQLAlchemy's adapters
                cause = cause.__cause__
            detail = scrub(str(cause).strip().splitlines()[0] if str(cause).strip() else "", self._secrets)
            raise DocumentSourceError(
                f"{self.owner}: reading table {table.table} from {self.where} failed: "
                f"{type(cause).__name__}: {detail}"
            ) from None
        if len(rows) > self.max_rows:
            log.warning(
                "%s: table %s has more than %d matching rows; only the first %d by %s are indexed "
                "(raise sql_max_rows to index more)",
                self.owner, table.table, self.max_rows, self.max_rows, table.id_column,
            )  # fmt: skip
            rows = rows[: self.max_rows]
        return _records(self.owner, table, rows)

    async def aclose(self) -> None:
        await self.engine.dispose()


def select_rows(table: SQLTableConfig, max_rows: int) -> sa.Select[Any]:
    """SELECT id, updated, content and metadata columns, ordered by id, one row past the cap (to
    tell a table at the cap from one over it)."""
    assert table.table is not None and table.id_column is not None
    schema, _, name = table.table.rpartition(".")
    wanted = [table.id_column, table.updated_column, *table.columns, *table.metadata_columns]
    names = list(dict.fromkeys(c for c in wanted if c))
    source = sa.table(name, *(sa.column(c) for c in names), schema=schema or None)
    query = sa.select(*(source.c[c] for c in names))
    if table.where_clause:
        # Trusted SQL from the configuration; colons are escaped so that text() reads ':x' in
        # it as the characters the operator wrote, not as a bind parameter.
        query = query.where(sa.text("(" + table.where_clause.replace(":", "\\:") + ")"))
    return query.order_by(source.c[table.id_column]).limit(max_rows + 1)


def _records(owner: str, table: SQLTableConfig, rows: list[Any]) -> list[Record]:
    assert table.table is not None and table.id_column is not None
    records: dict[str, Record] = {}
    missing_id = duplicates = 0
    for row in rows:
        key = row[table.id_column]
        if key is None:
            missing_id += 1
            continue
        doc_id = f"{table.table}/{plain(key)}"
        duplicates += doc_id in records
        meta = {c: plain(row[c]) for c in table.metadata_columns}
        if table.updated_column:
            meta[table.updated_column] = plain(row[table.updated_column])
        records[doc_id] = Record(doc_id, record_text((c, row[c]) for c in table.columns), meta)
    if missing_id or duplicates:
        log.warning(
            "%s: table %s: %d rows without %s skipped, %d rows with an id seen before (the last wins)",
            owner, table.table, missing_id, table.id_column, duplicates,
        )  # fmt: skip
    return list(records.values())
