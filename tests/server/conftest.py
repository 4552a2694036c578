from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.harness import postgres_or_skip


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """The session_stores entry for each SQL backend: SQLite in the data dir, and PostgreSQL."""
    if request.param == "sqlite":
        yield {"backend": "sql"}
        return
    async with postgres_or_skip() as url:
        yield {"backend": "sql", "url": url}
