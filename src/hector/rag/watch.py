"""Folder watching: a document store is re-indexed when files it indexes change on disk.

Re-indexing is incremental (only files whose content changed are re-embedded, deleted files are
removed), so a burst of edits costs one scan plus the changed files. Only changes to files the
store would index count: the data dir, ``.git`` or an editor's swap files inside a watched folder
never trigger work (and the data dir's own writes cannot cause an endless loop).

Database and API stores cannot be watched: they are read again every ``refresh_interval``
instead, and the same incremental indexing re-embeds only the rows and items that changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import watchfiles

from hector.errors import HectorError
from hector.rag.documents import DocumentStore, IndexReport

log = logging.getLogger("hector.rag")

DEBOUNCE_MS = 500
"""Changes within this window are handled together (an editor saving, a `git pull`)."""


def _concerns(store: DocumentStore, path: Path) -> bool:
    try:
        rel = PurePosixPath(path.relative_to(store.root).as_posix())
    except ValueError:
        return False
    if any(store.filter.excluded_dir(parent) for parent in rel.parents if parent != PurePosixPath(".")):
        return False
    return store.filter.wanted(rel)


def log_report(name: str, report: IndexReport, how: str = "indexed") -> None:
    log.info(
        "document store %s %s: %d added, %d updated, %d removed, %d unchanged, %d chunks",
        name, how, report.added, report.updated, report.removed, report.unchanged, report.chunks,
    )  # fmt: skip


async def watch(stores: Sequence[DocumentStore], ready: asyncio.Event | None = None) -> None:
    """Re-index each of *stores* when its folder changes (or, for a database or API, every
    ``refresh_interval``), until cancelled. *ready* is set once the folders are watched (changes
    made before that are not seen)."""
    polled = [s for s in stores if s.source is not None and s.cfg.refresh_interval > 0]
    async with asyncio.TaskGroup() as group:
        for store in polled:
            group.create_task(refresh(store))
        group.create_task(_watch_folders([s for s in stores if s.source is None], ready))


async def refresh(store: DocumentStore) -> None:
    """Read a database or API store again every ``refresh_interval``, until cancelled."""
    interval = store.cfg.refresh_interval
    log.info("document store %s: reading its %s source every %gs", store.name, store.cfg.source, interval)
    while True:
        await asyncio.sleep(interval)
        try:
            report = await store.index()
        except Exception as exc:  # a source or embedder that is down now may be back next time
            log.error("document store %s: refreshing failed: %s", store.name, exc)
            continue
        if report.added or report.updated or report.removed or report.failed:
            log_report(store.name, report, "refreshed")


async def _watch_folders(stores: Sequence[DocumentStore], ready: asyncio.Event | None) -> None:
    roots = sorted({store.root for store in stores})
    if not roots:
        if ready is not None:
            ready.set()
        return
    log.info("watching %s for document changes", ", ".join(str(r) for r in roots))
    # A timeout yields an empty set: the first one says the watcher is in place.
    ticks = watchfiles.awatch(*roots, debounce=DEBOUNCE_MS, step=50, rust_timeout=1000, yield_on_timeout=True)
    async for changes in ticks:
        if ready is not None:
            ready.set()
        paths = [Path(p) for _, p in changes]
        for store in stores:
            if not any(_concerns(store, p) for p in paths):
                continue
            try:
                report = await store.index()
            except (HectorError, OSError) as exc:  # the embedder may be down: try again next change
                log.error("document store %s: re-indexing after a change failed: %s", store.name, exc)
                continue
            log_report(store.name, report, "re-indexed after a change")
