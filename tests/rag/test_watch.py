"""Folder watching while serving: edits, new files and deletions reach the index on their own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hector.assembly import build_runtime
from hector.config import parse_config
from hector.rag.documents import DocumentStore

SETTLE = 20.0
"""Seconds a change may take to reach the index (debounce + re-index on a loaded machine)."""


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLE
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the change never reached the index"
        await asyncio.sleep(0.2)


async def documents(store: DocumentStore) -> set[str]:
    return {chunk.document for chunk in await store.vectors.chunks(store.collection)}


def reindexings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "re-indexed after a change" in r.getMessage()]


async def test_changes_to_the_folder_are_indexed_while_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hector.rag")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "cats.md").write_text("# Cats\n\nCats purr and sleep all day.\n")
    raw = {
        "llms": {"t": {"type": "test"}},
        "document_stores": {
            "docs": {"path": str(folder)},
            "frozen": {"path": str(folder), "enable_watch_changes": False},
        },
    }
    runtime = build_runtime(parse_config(raw, "<test>").config, tmp_path)
    async with runtime:
        assert runtime.library is not None
        docs, frozen = runtime.library.stores["docs"], runtime.library.stores["frozen"]
        await asyncio.wait_for(runtime.watching.wait(), SETTLE)
        assert await documents(docs) == {"cats.md"}

        (folder / "ships.md").write_text("# Ships\n\nA schooner has two masts and fore-and-aft sails.\n")
        await eventually(lambda: _has(docs, "ships.md"))
        hits = await docs.search("how many masts does a schooner have", top_k=1)
        assert hits[0].chunk.document == "ships.md"

        (folder / "cats.md").write_text("# Cats\n\nCats chase laser pointers.\n")
        await eventually(lambda: _says(docs, "laser pointers"))

        (folder / "ships.md").unlink()
        await eventually(lambda: _lacks(docs, "ships.md"))

        # Files the store does not index (here, a log file) cause no re-indexing.
        reindexed = len(reindexings(caplog))
        (folder / "debug.log").write_text("noise\n")
        await asyncio.sleep(1.5)
        assert len(reindexings(caplog)) == reindexed
        # A store with watching turned off keeps what it indexed at start-up.
        assert await documents(frozen) == {"cats.md"}
    assert runtime._watcher is not None and runtime._watcher.done()


async def _has(store: DocumentStore, document: str) -> bool:
    return document in await documents(store)


async def _lacks(store: DocumentStore, document: str) -> bool:
    return document not in await documents(store)


async def _says(store: DocumentStore, text: str) -> bool:
    return any(text in chunk.text for chunk in await store.vectors.chunks(store.collection))
