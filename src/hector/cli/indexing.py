"""`hector index`: bring document stores up to date, with a progress bar, without serving."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from hector.config import load_config
from hector.config.schema import Config
from hector.errors import ConfigError
from hector.rag import IndexReport, build_library
from hector.rag.mcp_parsers import mcp_parsing
from hector.stores.db import create_engine, migrate, sqlite_url


def _data_dir(config: Config, base_dir: Path) -> Path:
    data_dir = Path(config.server.data_dir)
    return data_dir if data_dir.is_absolute() else base_dir / data_dir


async def index_stores(config_file: Path, names: list[str], console: Console) -> dict[str, IndexReport]:
    loaded = await asyncio.to_thread(load_config, config_file)
    config = loaded.config
    unknown = [n for n in names if n not in config.document_stores]
    if unknown:
        raise ConfigError(
            f"document store {unknown[0]!r} not found (available: {sorted(config.document_stores)})"
        )
    if not config.document_stores:
        raise ConfigError(f"{config_file} declares no document_stores")
    # The same database `hector serve` uses, so the server starts with nothing left to embed.
    engine = create_engine(sqlite_url(_data_dir(config, loaded.base_dir)))
    reports: dict[str, IndexReport] = {}
    try:
        await migrate(engine)
        library = build_library(config, loaded.base_dir, engine, names or None)
        mcp = contextlib.AsyncExitStack()  # MCP sources connected for stores with mcp_parsers
        try:
            await mcp.enter_async_context(mcp_parsing(config, loaded.base_dir, list(library.stores.values())))
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("documents"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            ) as progress:
                for name, store in library.stores.items():
                    task = progress.add_task(name, total=None)

                    def advance(done: int, total: int, task: TaskID = task) -> None:
                        progress.update(task, completed=done, total=total)

                    report = reports[name] = await store.index(advance)
                    # Show the store as finished even when no file needed indexing.
                    files = report.added + report.updated + report.failed
                    progress.update(task, total=files, completed=files)
        finally:
            await mcp.aclose()
            await library.aclose()
    finally:
        await engine.dispose()
    return reports
