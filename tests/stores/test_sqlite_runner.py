"""The dedicated SQLite connection: transactions, errors, sharing the file with the engine."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from hector.stores.db import create_engine, sqlite_url
from hector.stores.sqlite import SQLiteRunner, runner_for


def _runner(path: Path) -> SQLiteRunner:
    return SQLiteRunner(str(path))


async def _setup(runner: SQLiteRunner) -> None:
    await runner.run(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"), write=True)


async def test_a_failed_transaction_is_rolled_back_and_the_runner_goes_on(tmp_path: Path) -> None:
    runner = _runner(tmp_path / "a.db")
    await _setup(runner)

    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1, 'lost')")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await runner.run(insert_then_fail, write=True)
    with pytest.raises(sqlite3.IntegrityError):  # a constraint error reaches the caller as is
        await runner.run(
            lambda c: c.executemany("INSERT INTO t VALUES (?, ?)", [(2, "a"), (2, "b")]), write=True
        )
    await runner.run(lambda c: c.execute("INSERT INTO t VALUES (3, 'kept')"), write=True)
    rows = await runner.run(lambda c: c.execute("SELECT k, v FROM t").fetchall(), write=False)
    assert rows == [(3, "kept")]
    runner.close()


async def test_concurrent_read_modify_write_transactions_do_not_interleave(tmp_path: Path) -> None:
    runner = _runner(tmp_path / "b.db")
    await _setup(runner)
    await runner.run(lambda c: c.execute("INSERT INTO t VALUES (1, '0')"), write=True)

    def increment(conn: sqlite3.Connection) -> int:
        (value,) = conn.execute("SELECT v FROM t WHERE k = 1").fetchone()
        conn.execute("UPDATE t SET v = ? WHERE k = 1", (str(int(value) + 1),))
        return int(value) + 1

    results = await asyncio.gather(*(runner.run(increment, write=True) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    runner.close()


async def test_commits_are_visible_to_the_engine_and_the_settings_match(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path))
    runner = runner_for(engine)
    assert runner is not None and runner_for(engine) is runner
    await runner.run(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"), write=True)
    await runner.run(lambda c: c.execute("INSERT INTO t VALUES (1, 'x')"), write=True)
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT v FROM t"))).scalar() == "x"
    pragmas = await runner.run(
        lambda c: [
            c.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous", "busy_timeout")
        ],
        write=False,
    )
    assert pragmas == ["wal", 1, 5000]  # synchronous 1 = NORMAL
    await engine.dispose()  # closes the runner's connection too; it reopens on demand
    assert await runner.run(lambda c: c.execute("SELECT v FROM t").fetchone(), write=False) == ("x",)
    await engine.dispose()


async def test_a_database_that_cannot_be_opened_fails_the_call(tmp_path: Path) -> None:
    runner = _runner(tmp_path / "missing-dir" / "c.db")
    with pytest.raises(sqlite3.OperationalError):
        await asyncio.wait_for(runner.run(lambda c: c.execute("SELECT 1"), write=False), 5)
    runner.close()


def test_no_runner_for_memory_databases_or_postgresql() -> None:
    assert runner_for(create_engine("sqlite+aiosqlite://")) is None
    assert runner_for(create_engine("sqlite+aiosqlite:///:memory:")) is None
    assert runner_for(create_engine("postgresql+asyncpg://u@127.0.0.1/db")) is None
