from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.stores.db import create_engine, migrate, sqlite_url
from tests.harness import postgres_or_skip


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated engine per way the SQL stores run: a SQLite file (the dedicated sqlite3
    connection), in-memory SQLite (SQLAlchemy only) and PostgreSQL (SQLAlchemy, asyncpg)."""
    if request.param == "postgres":
        async with postgres_or_skip() as url:
            engine = create_engine(url)
            await migrate(engine)
            yield engine
            await engine.dispose()
        return
    url = sqlite_url(tmp_path) if request.param == "sqlite-file" else "sqlite+aiosqlite://"
    engine = create_engine(url)
    await migrate(engine)
    yield engine
    await engine.dispose()
