from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.stores.db import create_engine, migrate, sqlite_url
from tests.harness import fresh_postgres_database


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated engine per way the SQL stores run: a SQLite file (the dedicated sqlite3
    connection), in-memory SQLite (SQLAlchemy only) and PostgreSQL (SQLAlchemy, asyncpg)."""
    if request.param == "postgres":
        try:
            async with fresh_postgres_database() as url:
                engine = create_engine(url)
                await migrate(engine)
                yield engine
                await engine.dispose()
        except OSError as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
        return
    url = sqlite_url(tmp_path) if request.param == "sqlite-file" else "sqlite+aiosqlite://"
    engine = create_engine(url)
    await migrate(engine)
    yield engine
    await engine.dispose()
