"""Building a ``Runtime`` from a validated ``Config``: models, stores, tools and agents.

Everything here runs once, before serving; ``hector.runtime.Runtime`` owns what it builds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.a2a.executor import user_of
from hector.agent import Agent, AgentLike
from hector.agent.memory import BufferWindowMemory, SummaryBufferMemory, WorkingMemory
from hector.agent.remote import RemoteAgent
from hector.config.checks import handler_of, outbound
from hector.config.schema import AgentConfig, Config, LLMConfig, SessionStoreConfig, ToolConfig
from hector.config.tls import agent_component, check_tls_files, effective_tls
from hector.errors import ConfigError
from hector.providers import Model, ModelSettings, build_model
from hector.runtime import AgentEntry, Runtime
from hector.stores.approvals import ApprovalStore, MemoryApprovalStore, SQLApprovalStore
from hector.stores.checkpoints import CheckpointStore
from hector.stores.db import create_engine, sqlite_url
from hector.stores.leases import TaskLeases
from hector.stores.quotas import MemoryQuotaStore, Quotas, QuotaStore, SQLQuotaStore
from hector.stores.sessions import MemorySessionStore, SessionStore, SQLSessionStore
from hector.stores.tasks import LeanDatabaseTaskStore
from hector.tls import warn_insecure
from hector.tools import Tool
from hector.tools.agent_call import AgentCallTool
from hector.tools.registry import ToolEnv, build_tool

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from hector.a2a.cancels import CancelWatch
    from hector.agent.longterm import LongTermMemory
    from hector.rag import DocumentStore, Library
    from hector.rag.retrieval import ContextInjector, Searcher
    from hector.tools.mcp import MCPToolSource

DEFAULT_STORE = "default"


def _owner_resolver(agent_id: str) -> Callable[[ServerCallContext], str]:
    def resolve(context: ServerCallContext) -> str:
        # Tasks are scoped to (agent, user): a task id from one agent, or one user, is not found
        # through another.
        return f"{agent_id}/{user_of(context)}"

    return resolve


def _instruction(cfg: AgentConfig) -> str | None:
    if cfg.instruction:
        return cfg.instruction
    if cfg.prompt.system_prompt:
        return cfg.prompt.system_prompt
    slots = cfg.prompt.prompt_slots
    text = "\n\n".join(s for s in (slots.system_role, slots.instructions, slots.user_guidance) if s)
    return text or None


def _llm_name(agent_id: str, cfg: AgentConfig, config: Config) -> str:
    name = cfg.llm or config.defaults.llm
    if name:
        return name
    if len(config.llms) == 1:
        return next(iter(config.llms))
    if not config.llms:
        return DEFAULT_STORE
    raise ConfigError(
        f"agent {agent_id!r} has no llm and several are declared ({sorted(config.llms)}); "
        f"set agents.{agent_id}.llm or defaults.llm"
    )


class _Builder:
    def __init__(self, config: Config, base_dir: Path, tools: dict[str, Tool]) -> None:
        self.config = config
        self.base_dir = base_dir
        self.tools = dict(tools)
        self.engines: dict[str, AsyncEngine] = {}
        self.models: dict[str, Model] = {}
        self.sessions: dict[str, SessionStore] = {}
        self.approvals: dict[str, ApprovalStore] = {}
        self.quota_sets: dict[str, Quotas] = {}
        self.task_stores: list[TaskStore] = []
        self.leases: dict[int, TaskLeases] = {}
        self.redis: Redis | None = None
        self.cancels: CancelWatch | None = None
        self.built_agents: dict[str, AgentLike] = {}
        """Filled once every agent is built; agent_call tools look callees up here."""
        self.library: Library | None = None
        self.agent_stores: dict[str, list[DocumentStore]] = {}
        self.searchers: dict[str, Searcher] = {}
        self.mcp_sources: dict[str, MCPToolSource] = {}
        self.mcp_listed: dict[str, list[str]] = {}

    def model(self, name: str) -> Model:
        if name not in self.models:
            cfg = self.config.llms.get(name, LLMConfig())
            self.models[name] = build_model(name, cfg, tls_defaults=self.config)
        return self.models[name]

    def store_config(self, cfg: AgentConfig) -> tuple[str, SessionStoreConfig]:
        name = cfg.session_store or self.config.defaults.session_store
        if name:
            return name, self.config.session_stores[name]
        if len(self.config.session_stores) == 1:
            return next(iter(self.config.session_stores.items()))
        return DEFAULT_STORE, SessionStoreConfig()

    def engine(self, store: SessionStoreConfig) -> AsyncEngine:
        url = store.url.get_secret_value() if store.url else None
        if not url:
            data_dir = Path(self.config.server.data_dir)
            url = sqlite_url(data_dir if data_dir.is_absolute() else self.base_dir / data_dir)
        if url not in self.engines:
            self.engines[url] = create_engine(url)
        return self.engines[url]

    def quotas(self, cfg: AgentConfig) -> Quotas | None:
        name, store = self.store_config(cfg)
        rules = store.rate_limit
        if not rules.enabled:
            return None
        if name not in self.quota_sets:
            if rules.backend == "sql":
                if store.backend != "sql":
                    raise ConfigError(
                        f"session store {name!r}: rate_limit.backend sql needs backend: sql on the store"
                    )
                backing: QuotaStore = SQLQuotaStore(self.engine(store))
            else:
                backing = MemoryQuotaStore()
            self.quota_sets[name] = Quotas(rules, backing)
        return self.quota_sets[name]

    def stores(self, agent_id: str, cfg: AgentConfig) -> tuple[SessionStore, ApprovalStore, TaskStore]:
        name, store = self.store_config(cfg)
        task_store: TaskStore
        if store.backend == "memory":
            session_store = self.sessions.setdefault(name, MemorySessionStore())
            approval_store = self.approvals.setdefault(name, MemoryApprovalStore())
            task_store = InMemoryTaskStore(owner_resolver=_owner_resolver(agent_id))
        else:
            engine = self.engine(store)
            session_store = self.sessions.setdefault(name, SQLSessionStore(engine))
            approval_store = self.approvals.setdefault(name, SQLApprovalStore(engine))
            task_store = LeanDatabaseTaskStore(engine, owner_resolver=_owner_resolver(agent_id))
        self.task_stores.append(task_store)
        return session_store, approval_store, task_store

    def memory(self, cfg: AgentConfig, model: Model) -> WorkingMemory:
        m = cfg.memory
        if m.strategy == "summary_buffer":
            return SummaryBufferMemory(model, m.budget, m.threshold, m.target)
        return BufferWindowMemory(m.window_size)

    def tool(self, name: str) -> Tool:
        """The tool called *name*: one given to ``build_runtime``, else one built from config."""
        if name not in self.tools:
            cfg = self.config.tools.get(name) or ToolConfig()
            if not cfg.enabled:
                raise ConfigError(f"tool {name!r} is disabled (enabled: false) but an agent lists it")
            env = ToolEnv(
                base_dir=self.base_dir,
                tls_defaults=self.config,
                document_stores=self.agent_stores,
                searchers=self.searchers,
            )
            self.tools[name] = build_tool(name, cfg, env)
        return self.tools[name]

    def mcp_source(self, name: str) -> MCPToolSource | None:
        """The MCP server declared as tool *name*, or None if *name* is another kind of tool."""
        cfg = self.config.tools.get(name)
        if name in self.tools or cfg is None or cfg.type != "mcp":
            return None
        if not cfg.enabled:
            raise ConfigError(f"tool {name!r} is disabled (enabled: false) but an agent lists it")
        if name not in self.mcp_sources:
            from hector.tools.mcp import MCPToolSource  # the MCP SDK loads only when used

            self.mcp_sources[name] = MCPToolSource(name, cfg, self.base_dir, self.config)
        return self.mcp_sources[name]

    def parser_sources(self) -> None:
        """The MCP sources the document stores' ``mcp_parsers`` call, listed by agents or not."""
        if self.library is None:
            return
        from hector.rag.mcp_parsers import sources_needed

        for name in sources_needed(self.config, self.library.stores.values()):
            if name not in self.tools:
                self.mcp_source(name)

    def document_stores(self, cfg: AgentConfig) -> list[DocumentStore]:
        """The stores an agent searches: those it lists, or all when it lists none (SPEC §2.6)."""
        if not self.config.document_stores:
            return []
        if self.library is None:
            from hector.rag import build_library  # NumPy and the embedders load only for RAG configs

            # Vectors and indexing state live in the data dir's database, whatever the sessions use.
            self.library = build_library(self.config, self.base_dir, self.engine(SessionStoreConfig()))
        names = self.config.document_stores if cfg.document_stores is None else cfg.document_stores
        return [self.library.stores[n] for n in names if n in self.library.stores]

    def retrieval(self, agent_id: str, cfg: AgentConfig, model: Model) -> ContextInjector | None:
        """Set up the agent's searcher (for the search tool); its include_context, if enabled."""
        stores = self.agent_stores[agent_id] = self.document_stores(cfg)
        if not stores:
            return None
        from hector.rag.retrieval import ContextInjector, Searcher

        def model_for(name: str | None) -> Model:
            return self.model(name) if name else model

        searcher = self.searchers[agent_id] = Searcher(stores, cfg.search, model_for)
        p = cfg.prompt
        if not p.include_context:
            return None
        return ContextInjector(searcher, p.include_context_limit, p.include_context_max_length)

    def long_term(self, agent_id: str, cfg: AgentConfig) -> LongTermMemory | None:
        if cfg.memory.long_term is None or not cfg.memory.long_term.enabled:
            return None
        from hector.agent.longterm import build_long_term
        from hector.rag import Library

        if self.library is None:  # no document stores: a library for the memory's parts alone
            self.library = Library()
        state = self.engine(SessionStoreConfig())
        return build_long_term(agent_id, cfg, self.config, self.base_dir, self.library, state)

    def agent_tools(self, agent_id: str, cfg: AgentConfig) -> list[Tool]:
        # An agent gets exactly the tools it lists: nothing by default (least privilege). An MCP
        # server's tools are added when the runtime starts and the server says what they are.
        tools: list[Tool] = []
        names = list(cfg.tools or [])
        if cfg.reasoning.engine == "supervisor" and "agent_call" not in names:
            names.append("agent_call")  # a supervisor delegates, whatever else it was given
        for name in names:
            declared = self.config.tools.get(name)
            if declared is not None and declared.internal:
                continue  # internal: for document parsing only, never an agent's (validate warns)
            if name == "agent_call" or (declared is not None and handler_of(name, declared) == "agent_call"):
                tools.append(AgentCallTool(agent_id, self.built_agents, self.callable_agents(agent_id, cfg)))
            elif self.mcp_source(name) is None:
                tools.append(self.tool(name))
            else:
                self.mcp_listed.setdefault(agent_id, []).append(name)
        return tools

    def instruction(self, agent_id: str, cfg: AgentConfig) -> str | None:
        """The agent's instruction; a supervisor's also names the agents it can delegate to."""
        own = _instruction(cfg)
        if cfg.reasoning.engine != "supervisor":
            return own
        team = "\n".join(
            f"- {name}: {self.config.agents[name].description or 'no description'}"
            for name in self.callable_agents(agent_id, cfg)
        )
        guide = (
            "You are a supervisor. Break the task into parts, give each part to the agent best "
            "suited to it with the agent_call tool (agent, task), then combine their answers into "
            f"one reply. The agents you can call:\n{team}"
        )
        return f"{own}\n\n{guide}" if own else guide

    def callable_agents(self, agent_id: str, cfg: AgentConfig) -> list[str]:
        """``sub_agents`` if given; else every other agent (SPEC's assignment rule)."""
        if cfg.sub_agents is not None:
            return list(cfg.sub_agents)
        return [a for a in self.config.agents if a != agent_id]

    def remote_agent(self, agent_id: str, cfg: AgentConfig) -> AgentEntry:
        """An external A2A agent, served and callable here like a native one."""
        _, approvals, task_store = self.stores(agent_id, cfg)
        tls = effective_tls(cfg, self.config)
        remote = RemoteAgent(agent_id, cfg, tls, agent_component(agent_id), approvals)
        return self.entry(remote, cfg, task_store)

    def task_leases(self, task_store: TaskStore) -> TaskLeases | None:
        if not isinstance(task_store, LeanDatabaseTaskStore):
            return None
        key = id(task_store.engine)
        if key not in self.leases:
            server = self.config.server
            recovery = server.task_recovery
            checkpoints = CheckpointStore(task_store.engine) if recovery.resume else None
            self.leases[key] = TaskLeases(
                task_store.engine,
                task_store.table(),
                server.task_lease_interval,
                checkpoints,
                recovery.interrupted_tool_calls,
            )
        return self.leases[key]

    def entry(self, agent: AgentLike, cfg: AgentConfig, task_store: TaskStore) -> AgentEntry:
        """The served agent: its task store, with leases, checkpoints and relay on SQL stores."""
        leases = self.task_leases(task_store)
        if isinstance(agent, Agent) and leases is not None:
            agent.checkpoints = leases.checkpoints
        events = None
        relay = self.config.server.event_relay
        if relay.enabled and isinstance(task_store, LeanDatabaseTaskStore):
            from redis.asyncio import Redis

            from hector.a2a.cancels import CancelWatch
            from hector.a2a.relay import RedisTaskEvents

            if self.redis is None:
                url = relay.redis_url.get_secret_value() if relay.redis_url else "redis://127.0.0.1:6379/0"
                self.redis = Redis.from_url(url)
                self.cancels = CancelWatch(self.redis)
            events = RedisTaskEvents(self.redis, task_store.engine, task_store.table(), self.cancels)
        return AgentEntry(agent, cfg, task_store, leases, events)

    def agent(self, agent_id: str, cfg: AgentConfig) -> AgentEntry:
        if cfg.type == "a2a":
            return self.remote_agent(agent_id, cfg)
        llm_name = _llm_name(agent_id, cfg, self.config)
        model = self.model(llm_name)
        llm_cfg = self.config.llms.get(llm_name, LLMConfig())
        settings = ModelSettings()
        if llm_cfg.temperature is not None:
            settings["temperature"] = llm_cfg.temperature
        if llm_cfg.max_tokens is not None:
            settings["max_tokens"] = llm_cfg.max_tokens
        if cfg.structured_output is not None:
            settings["output_schema"] = cfg.structured_output.schema_
            settings["output_schema_name"] = cfg.structured_output.name
        sessions, approvals, task_store = self.stores(agent_id, cfg)
        context = self.retrieval(agent_id, cfg, model)
        agent = Agent(
            id=agent_id,
            name=cfg.name or agent_id,
            description=cfg.description or "",
            model=model,
            sessions=sessions,
            memory=self.memory(cfg, model),
            instruction=self.instruction(agent_id, cfg),
            tools=self.agent_tools(agent_id, cfg),
            settings=settings,
            max_iterations=cfg.reasoning.max_iterations,
            streaming=cfg.reasoning.enable_streaming,
            visibility=cfg.visibility,
            approvals=approvals,
            quotas=self.quotas(cfg),
            long_term=self.long_term(agent_id, cfg),
            context=context,
        )
        return self.entry(agent, cfg, task_store)


def prepare_tls(config: Config) -> None:
    """Refuse unreadable TLS files and warn about every component that skips verification.

    Done for the whole configuration at start-up, so the problems show before the first request
    and for components that are declared but built later (or not by this version).
    """
    check_tls_files(config)
    for found in outbound(config):
        if found.tls.insecure_skip_verify:
            warn_insecure(found.component)


def build_runtime(
    config: Config, base_dir: Path | None = None, tools: dict[str, Tool] | None = None
) -> Runtime:
    """Build every agent of *config*; relative paths resolve against *base_dir* (default: cwd)."""
    prepare_tls(config)
    builder = _Builder(config, base_dir or Path.cwd(), tools or {})
    agent_configs = dict(config.agents) or {"assistant": AgentConfig()}
    agents = {agent_id: builder.agent(agent_id, cfg) for agent_id, cfg in agent_configs.items()}
    builder.built_agents.update({agent_id: entry.agent for agent_id, entry in agents.items()})
    builder.parser_sources()
    return Runtime(
        config,
        agents,
        builder.engines,
        builder.models,
        builder.task_stores,
        builder.mcp_sources,
        builder.mcp_listed,
        builder.library,
        leases=list(builder.leases.values()),
        redis=builder.redis,
        cancels=builder.cancels,
    )
