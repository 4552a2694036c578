"""Keeping the document stores of a server indexed: first at start-up, in the background,
then whenever their folders change.

A server indexes its stores one after the other once it has started (``keep_indexed``): requests
are answered meanwhile, searches of a store wait for its first indexing
(``hector.rag.readiness``). A store whose first indexing fails is tried again after
``RETRY_FIRST`` seconds, then twice as long each time up to ``RETRY_MAX``, until it succeeds;
a configuration error is not retried.

Folder watching: a document store is re-indexed when files it indexes change on disk.

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
from hector.rag.readiness import describe, retried

log = logging.getLogger("hector.rag")

DEBOUNCE_MS = 500
"""Changes within this window are handled together (an editor saving, a `git pull`)."""
RETRY_FIRST = 5.0
RETRY_MAX = 300.0
"""Seconds between tries of a failed first indexing: the first wait, and the longest."""


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


async def keep_indexed(stores: Sequence[DocumentStore], watching: asyncio.Event | None = None) -> None:
    """Index *stores* one after the other, then keep them up to date until cancelled: watch
    those that ask for it (*watching* is set once their folders are watched), and try again
    those whose first indexing failed."""
    for store in stores:
        await _first_indexing(store)
    watched = [s for s in stores if s.cfg.enable_watch_changes]
    failed = [s for s in stores if s.readiness.error is not None and retried(s.readiness.error)]
    async with asyncio.TaskGroup() as group:
        if watched:
            group.create_task(watch(watched, watching))
        for store in failed:
            group.create_task(_retry(store))


async def _first_indexing(store: DocumentStore) -> None:
    try:
        report = await store.index()
    except Exception as exc:
        then = "and is retried in the background" if retried(exc) else "(fix the configuration and restart)"
        # Once: the retries log at debug level; /ready and searches of the store say it too.
        log.error(
            "document store %s: indexing failed %s; searching it answers an error until then: %s",
            store.name, then, describe(exc), exc_info=not isinstance(exc, HectorError | OSError),
        )  # fmt: skip
        return
    log_report(store.name, report)


async def _retry(store: DocumentStore) -> None:
    delay = RETRY_FIRST
    while store.readiness.state == "failed":
        await asyncio.sleep(delay)
        if store.readiness.state != "failed":
            return  # indexed by the watcher meanwhile
        try:
            report = await store.index()
        except Exception as exc:
            delay = min(delay * 2, RETRY_MAX)
            log.debug("document store %s: indexing failed again: %s; next try in %gs", store.name, exc, delay)
            continue
        log_report(store.name, report, "indexed after failing at start-up")


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
