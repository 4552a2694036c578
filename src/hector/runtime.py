"""The live objects of a configuration: agents, models, stores, tool servers, documents.

``Runtime`` owns every connection pool; ``async with`` opens (and migrates) the databases, takes
over (continues or fails) tasks that a dead server left running, connects MCP servers, starts
indexing documents in the background, and closes everything on the way out.
``hector.assembly.build_runtime`` builds one from a ``Config``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from a2a.server.cluster import TaskEventStream
from a2a.server.tasks import DatabaseTaskStore, TaskStore
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from hector import observability
from hector.agent import Agent, AgentLike
from hector.config.schema import AgentConfig, Config
from hector.errors import IndexingError
from hector.providers import Model
from hector.stores.db import migrate, schema_lock
from hector.stores.leases import TaskLeases

if TYPE_CHECKING:
    from hector.a2a.cancels import CancelWatch
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
    events: TaskEventStream | None = None
    """Relays the agent's task events to the other replicas (``server.event_relay``)."""


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
    """The document stores, indexed in the background from entry on; searches of a store wait for
    its first indexing (``hector.rag.readiness``)."""
    leases: list[TaskLeases] = field(default_factory=list)
    redis: Redis | None = None
    """The event relay's Redis client, if enabled."""
    cancels: CancelWatch | None = None
    """With the relay: stops this replica's runs of tasks canceled on another one."""
    _sweeper: asyncio.Task[None] | None = None
    _watcher: asyncio.Task[None] | None = None
    """Indexes the document stores, then keeps them up to date (``hector.rag.watch.keep_indexed``)."""
    watching: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the document stores' folders are watched for changes."""
    telemetry: observability.Telemetry = observability.NO_TELEMETRY
    """The app's (set by ``create_app``): start-up indexing, task takeovers and the background
    tasks started here (watcher, sweeper) are measured with it; they belong to no request."""

    async def __aenter__(self) -> Runtime:
        try:
            with observability.activate(self.telemetry):  # tasks created in here inherit it
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
                async with schema_lock(store.engine):
                    await store.initialize()
        if self.leases:
            # Tasks left 'working' by a server that died are taken over now, then periodically
            # for other replicas that die while this one runs.
            await self._recover()
            self._sweeper = asyncio.create_task(self._sweep())
        # MCP first: a document store with mcp_parsers indexes through MCP tools.
        if self.mcp_sources:
            await self._start_mcp()
        if self.library is not None:
            self._index_documents(self.library)

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

    def _index_documents(self, library: Library) -> None:
        from hector.rag.watch import keep_indexed

        stores = list(library.stores.values())
        for store in stores:
            store.check()  # what the configuration alone says is wrong still stops start-up
        for store in stores:
            store.readiness.expect()
        # In the background: indexing a large folder takes minutes, and agents that do not search
        # (and /health) must answer meanwhile; /ready says when it is done.
        log.info("indexing document stores %s in the background", ", ".join(library.stores))
        self._watcher = asyncio.create_task(keep_indexed(stores, self.watching))

    async def documents_indexed(self) -> None:
        """Wait until each document store has been indexed once; IndexingError names one that
        could not be."""
        from hector.rag.readiness import describe

        for store in self.library.stores.values() if self.library is not None else ():
            error = await store.readiness.outcome()
            if error is not None:
                raise IndexingError(f"document store {store.name!r}: indexing failed: {describe(error)}")

    async def _start_mcp(self) -> None:
        from hector.tools.mcp import MCPTool, agent_tools, start_sources

        found = await start_sources(self.mcp_sources)
        if self.library is not None:
            from hector.rag.mcp_parsers import attach

            attach(self.library.stores.values(), self.mcp_sources, found)
        for agent_id, listed in self.mcp_listed.items():
            agent = self.agents[agent_id].agent
            assert isinstance(agent, Agent)  # only native agents list tools
            own = [t for t in agent.tools if not isinstance(t, MCPTool)]
            sources = {name: (self.mcp_sources[name], found[name]) for name in listed}
            agent.tools = [*own, *agent_tools({t.name for t in own}, sources)]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in (self._sweeper, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for source in self.mcp_sources.values():
            await source.aclose()
        for entry in self.agents.values():
            # Long-term memories still waiting for a full batch are written before closing.
            memory = entry.agent.long_term if isinstance(entry.agent, Agent) else None
            if memory is not None:
                try:
                    await memory.flush()
                except Exception as exc:
                    log.error("long-term memory of agent %s: final write failed: %s", entry.agent.id, exc)
        for model in self.models.values():
            await model.aclose()
        if self.library is not None:
            await self.library.aclose()
        if self.cancels is not None:
            await self.cancels.aclose()
        if self.redis is not None:
            await self.redis.aclose()
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
        stores = self.library.stores.values() if self.library is not None else ()
        indexing = [s.name for s in stores if s.readiness.state == "indexing"]
        if indexing:
            problems.append(f"documents: indexing {', '.join(indexing)}")
        # The error's type only, as for databases: its text may name internal hosts.
        failed = [f"{s.name} ({type(s.readiness.error).__name__})" for s in stores if s.readiness.error]
        if failed:
            problems.append(f"documents: indexing failed for {', '.join(failed)}; see the server log")
        return problems
