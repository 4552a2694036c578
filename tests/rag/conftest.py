"""Fixtures shared by the RAG tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.config.schema import EmbedderConfig
from hector.rag.embedders import Embedder, build_embedder
from hector.stores.db import create_engine, migrate, sqlite_url


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """Hector's own state database (SQLite): what was indexed, and the embedded vectors."""
    state = create_engine(sqlite_url(tmp_path / "data"))
    await migrate(state)
    yield state
    await state.dispose()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The offline local embedder, loaded once per module."""
    return build_embedder("local", EmbedderConfig(), tmp_path_factory.mktemp("embedder"))
