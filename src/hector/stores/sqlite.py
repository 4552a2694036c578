"""A dedicated SQLite connection for the hot request path: one thread, one hop per transaction.

Through SQLAlchemy + aiosqlite every DBAPI call (cursor, execute, fetch, commit, the pool's
rollback on return) is a separate hand-off to aiosqlite's thread and back to the event loop,
and every statement goes through SQLAlchemy's compile cache. A request saves its task several
times and appends to its conversation twice, so those hand-offs and compiles were most of its
cost. Here a store passes a plain function that runs its whole transaction on one sqlite3
connection owned by one worker thread: a single hand-off per transaction, plain SQL text.

The connection uses the same pragmas as the engine's (``hector.stores.db.apply_pragmas``), so
durability is unchanged. Other stores keep using the engine; WAL lets their connections and
this one share the file, and ``busy_timeout`` rides out each other's short write locks. Write
transactions start with ``BEGIN IMMEDIATE``: they take the write lock before reading, so a read
followed by a write never fails on a snapshot another connection made stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.stores.db import apply_pragmas

T = TypeVar("T")
Processor = Callable[[Any], Any]

_runners: weakref.WeakKeyDictionary[Engine, SQLiteRunner] = weakref.WeakKeyDictionary()
_runners_lock = threading.Lock()


class SQLiteRunner:
    """Runs transactions on one sqlite3 connection in one worker thread, in submission order.

    Lighter than ``run_in_executor``: a job is a queue entry and an asyncio future, and the
    worker hands back every result it has ready with a single ``call_soon_threadsafe``, so a
    burst of concurrent requests wakes the event loop once rather than once per transaction.
    """

    def __init__(self, path: str, pragmas: Callable[[Any], None] = apply_pragmas) -> None:
        self.path = path
        self._pragmas = pragmas
        self._jobs: queue.SimpleQueue[_Job | None] | None = None
        self._lock = threading.Lock()

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run ``fn(connection)`` as one transaction on the worker thread; its result or error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                threading.Thread(
                    target=self._work, args=(self._jobs,), name="hector-sqlite", daemon=True
                ).start()
            self._jobs.put((loop, future, fn, write))
        return await future

    def close(self) -> None:
        """Close the connection once queued work is done; a later ``run`` opens a new one."""
        with self._lock:
            jobs, self._jobs = self._jobs, None
        if jobs is not None:
            jobs.put(None)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: BEGIN/COMMIT are issued here (sqlite3's implicit transactions
        # would neither cover a SELECT nor take the write lock up front).
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        cursor = conn.cursor()
        self._pragmas(cursor)
        cursor.close()
        return conn

    def _work(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                job = jobs.get()
                done: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
                while job is not None:
                    loop, future, fn, write = job
                    try:
                        conn = conn or self._connect()
                        done.setdefault(loop, []).append((future, _transaction(conn, fn, write), None))
                    except BaseException as exc:  # the caller gets it; the worker carries on
                        done.setdefault(loop, []).append((future, None, exc))
                    try:
                        job = jobs.get_nowait()
                    except queue.Empty:
                        break
                for loop, results in done.items():
                    with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                        loop.call_soon_threadsafe(_settle, results)
                if job is None:
                    return
        finally:
            if conn is not None:
                conn.close()


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[sqlite3.Connection], Any], bool]
_Done = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], write: bool) -> T:
    # BEGIN IMMEDIATE takes the write lock before the first read (see the module docstring).
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _settle(results: list[_Done]) -> None:
    for future, result, exc in results:
        if future.cancelled():  # the awaiting request went away; the transaction stands
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)


def runner_for(engine: AsyncEngine) -> SQLiteRunner | None:
    """The runner sharing *engine*'s SQLite file, or None (PostgreSQL, in-memory SQLite)."""
    sync_engine = engine.sync_engine
    if sync_engine.dialect.name != "sqlite":
        return None
    found = _runners.get(sync_engine)
    if found is not None:
        return found
    path = sync_engine.url.database
    if not path or path == ":memory:" or path.startswith("file:") or "mode=memory" in str(sync_engine.url):
        return None  # a separate connection would see another database
    with _runners_lock:
        found = _runners.get(sync_engine)
        if found is None:
            found = _runners[sync_engine] = SQLiteRunner(path, apply_pragmas)
            # engine.dispose() (server shutdown, tests) closes this connection too, and so does
            # the engine being garbage-collected undisposed.
            event.listen(sync_engine, "engine_disposed", lambda _engine: found.close())
            weakref.finalize(sync_engine, found.close)
    return found


def statement(sql: str, params: tuple[Any, ...]) -> Callable[[sqlite3.Connection], int]:
    """A transaction of one statement, for ``SQLiteRunner.run``: the number of rows it changed."""

    def execute(conn: sqlite3.Connection) -> int:
        return conn.execute(sql, params).rowcount

    return execute


def bind_processors(columns: list[Any], dialect: Dialect) -> list[Processor]:
    """Per column, SQLAlchemy's Python → DBAPI conversion (JSON text, datetime text, ...), so rows
    written here read back through SQLAlchemy exactly as if it had written them."""
    return [column.type.bind_processor(dialect) or _same for column in columns]


def result_processors(columns: list[Any], dialect: Dialect) -> list[Processor]:
    """Per column, SQLAlchemy's DBAPI → Python conversion."""
    return [column.type.result_processor(dialect, None) or _same for column in columns]


def _same(value: Any) -> Any:
    return value
