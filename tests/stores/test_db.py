"""Engine setup: pooled PostgreSQL connections left idle are checked before use."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.stores import db


async def _pool_a_connection_then_kill_it(engine: AsyncEngine, url: str) -> None:
    async with engine.connect() as conn:
        pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar()
    admin = db.create_engine(url)  # the database restarting, or a firewall cutting it, alike
    async with admin.connect() as conn:
        assert (await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar()
    await admin.dispose()


async def test_a_dead_idle_connection_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.create_engine(postgres_url)
    await _pool_a_connection_then_kill_it(engine, postgres_url)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # it has been idle "long enough"
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1
    await engine.dispose()


async def test_a_connection_just_used_is_not_checked(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the trade: no ping round trips for busy connections, so one that died
    within the idle window fails its next use (and the pool is then renewed)."""
    engine = db.create_engine(postgres_url)
    await _pool_a_connection_then_kill_it(engine, postgres_url)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
    with pytest.raises(sa.exc.DBAPIError):
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1
    await engine.dispose()
