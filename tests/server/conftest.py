from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.harness import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """The session_stores entry for each SQL backend: SQLite in the data dir, and PostgreSQL."""
    if request.param == "sqlite":
        yield {"backend": "sql"}
        return
    try:
        async with fresh_postgres_database() as url:
            yield {"backend": "sql", "url": url}
    except OSError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
