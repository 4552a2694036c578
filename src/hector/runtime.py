"""The live objects of a configuration: agents, models, stores, tool servers, documents.

``Runtime`` owns every connection pool; ``async with`` opens (and migrates) the databases, fails
tasks that a dead server left running, connects MCP servers, indexes documents, and closes
everything on the way out. ``hector.assembly.build_runtime`` builds one from a ``Config``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from a2a.server.tasks import DatabaseTaskStore, TaskStore
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.agent import Agent, AgentLike
from hector.config.schema import AgentConfig, Config
from hector.providers import Model
from hector.stores.db import migrate
from hector.stores.leases import TaskLeases

if TYPE_CHECKING:
    from hector.rag import Library
    from hector.tools.mcp import MCPToolSource

log = logging.getLogger("hector.runtime")


@dataclass
class AgentEntry:
    agent: AgentLike
    config: AgentConfig
    task_store: TaskStore
    leases: TaskLeases | None = None
    """Leases on the agent's running tasks (SQL stores only)."""


@dataclass
class Runtime:
    config: Config
    agents: dict[str, AgentEntry]
    engines: dict[str, AsyncEngine] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    task_stores: list[TaskStore] = field(default_factory=list)
    mcp_sources: dict[str, MCPToolSource] = field(default_factory=dict)
    mcp_listed: dict[str, list[str]] = field(default_factory=dict)
    """agent id → the MCP sources it lists; their tools are known only once connected."""
    library: Library | None = None
    """The document stores, indexed on entry so agents search up-to-date folders."""
    leases: list[TaskLeases] = field(default_factory=list)
    _sweeper: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Runtime:
        try:
            await self._start()
        except BaseException:
            # `async with` runs no __aexit__ when entering fails: close what is open already.
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        for engine in self.engines.values():
            await migrate(engine)
        for store in self.task_stores:
            if isinstance(store, DatabaseTaskStore):
                await store.initialize()
        if self.leases:
            # Tasks left 'working' by a server that died are failed now, then periodically for
            # other replicas that die while this one runs.
            await self._recover()
            self._sweeper = asyncio.create_task(self._sweep())
        if self.mcp_sources:
            await self._start_mcp()
        if self.library is not None:
            await self._index_documents(self.library)

    async def _recover(self) -> None:
        for leases in self.leases:
            try:
                await leases.recover()
            except Exception as exc:  # recovery must never stop the server from serving
                log.error("task recovery failed: %s", type(exc).__name__)

    async def _sweep(self) -> None:
        interval = 3 * min(lease.interval for lease in self.leases)
        while True:
            await asyncio.sleep(interval)
            await self._recover()

    async def _index_documents(self, library: Library) -> None:
        for name, docs in library.stores.items():
            report = await docs.index()
            log.info(
                "document store %s indexed: %d added, %d updated, %d removed, %d unchanged, %d chunks",
                name, report.added, report.updated, report.removed, report.unchanged, report.chunks,
            )  # fmt: skip

    async def _start_mcp(self) -> None:
        from hector.tools.mcp import MCPTool, agent_tools, start_sources

        found = await start_sources(self.mcp_sources)
        for agent_id, listed in self.mcp_listed.items():
            agent = self.agents[agent_id].agent
            assert isinstance(agent, Agent)  # only native agents list tools
            own = [t for t in agent.tools if not isinstance(t, MCPTool)]
            sources = {name: (self.mcp_sources[name], found[name]) for name in listed}
            agent.tools = [*own, *agent_tools({t.name for t in own}, sources)]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for source in self.mcp_sources.values():
            await source.aclose()
        for model in self.models.values():
            await model.aclose()
        if self.library is not None:
            await self.library.aclose()
        for engine in self.engines.values():
            await engine.dispose()

    async def check_ready(self) -> list[str]:
        """Problems that make the server unable to serve (empty when ready)."""
        problems = []
        for engine in self.engines.values():
            try:
                async with engine.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")
            except Exception as exc:
                # The dialect only: a database URL may carry a password and internal host names.
                problems.append(f"database ({engine.dialect.name}): {type(exc).__name__}")
        return problems
