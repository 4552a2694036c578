"""Cross-reference checks that a single section cannot make on its own."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from hector.config.base import TLSClientOptions
from hector.config.schema import AgentConfig, Config, MCPParsersConfig, SearchConfig, ToolConfig
from hector.config.sources import api_component, source_problems
from hector.config.tls import (
    JWKS_COMPONENT,
    Outbound,
    agent_component,
    effective_tls,
    embedder_component,
    insecure_warnings,
    llm_component,
    mcp_component,
    server_tls_errors,
    tls_file_errors,
    tool_component,
    unused_tls_warnings,
    vector_store_component,
    vector_store_uses_tls,
)

BUILTIN_TOOLS = (
    "execute_command",
    "read_file",
    "write_file",
    "search_replace",
    "apply_patch",
    "grep_search",
    "web_request",
    "todo_write",
    "search",
    "agent_call",
)

# The vector-store types and the keys each cannot do without (back ends edit their own line).
VECTOR_STORE_NEEDS: dict[str, tuple[str, ...]] = {
    "embedded": (),
    "chroma": (),
    "milvus": (),
    "pgvector": ("host|url",),
    "pinecone": ("api_key", "host|url|index_name"),
    "qdrant": (),
    "weaviate": (),  # host defaults to localhost, as SPEC §vector store says
}

EMBEDDER_TYPES = ("local", "openai", "ollama", "cohere")


def handler_of(name: str, cfg: ToolConfig) -> str:
    """The built-in a declaration means: ``type: command``, ``type: function, handler: X``,
    the Go original's ``type: X``, or just the built-in's own name as the key."""
    if cfg.type == "command":
        return "execute_command"
    if cfg.type == "function":
        return cfg.handler or name
    return cfg.type


def outbound(cfg: Config) -> list[Outbound]:
    """Every configured component that opens TLS connections, with the options it uses."""
    found: list[Outbound] = []

    def add(component: str, section: TLSClientOptions) -> None:
        found.append(Outbound(component, effective_tls(section, cfg)))

    for name, llm in cfg.llms.items():
        if llm.type != "test":
            add(llm_component(llm.type, name), llm)
    for name, embedder in cfg.embedders.items():
        if embedder.type != "local":
            add(embedder_component(embedder.type, name), embedder)
    for name, store in cfg.vector_stores.items():
        if vector_store_uses_tls(store):
            add(vector_store_component(store.type, name), store)
    for name, doc in cfg.document_stores.items():
        if doc.source == "api" and doc.api is not None and (doc.api.base_url or "").startswith("https:"):
            add(api_component(name), doc.api)
    for name, tool in cfg.tools.items():
        if not tool.enabled:
            continue
        if tool.type == "mcp" and (tool.server_url or tool.url):
            add(mcp_component(name), tool)
        elif tool.type != "mcp" and handler_of(name, tool) == "web_request":
            add(tool_component(name), tool)
    if "web_request" not in cfg.tools and any("web_request" in (a.tools or []) for a in cfg.agents.values()):
        add(tool_component("web_request"), ToolConfig())  # the built-in, undeclared: defaults only
    for name, agent in cfg.agents.items():
        if agent.type == "a2a":
            add(agent_component(name), agent)
    auth = cfg.server.auth
    if auth.enabled and auth.jwks_url:
        add(JWKS_COMPONENT, auth)
    return found


def mcp_errors(name: str, cfg: ToolConfig) -> list[str]:
    """An MCP server is reached at one URL (server_url, or url) or started as one command."""
    owner = f"tool {name!r} (type: mcp)"
    given = [key for key in ("server_url", "url", "command") if getattr(cfg, key)]
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else "got none"
        return [f"{owner}: give exactly one of server_url (or url) or command ({found})"]
    if cfg.transport == "stdio" and not cfg.command:
        return [f"{owner}: transport stdio starts a local command; set command (and args, env)"]
    if cfg.transport not in (None, "stdio") and cfg.command:
        return [f"{owner}: transport {cfg.transport} connects to a URL; set server_url, or use stdio"]
    return []


def mcp_parser_errors(owner: str, parsers: MCPParsersConfig, tools: Mapping[str, ToolConfig]) -> list[str]:
    """``mcp_parsers`` name tools of declared, enabled MCP sources (a source's key stands for its
    only tool; other names are asked of the sources' servers at start-up)."""
    sources = [n for n, t in tools.items() if t.type == "mcp" and t.enabled]
    if not parsers.tool_names:
        return [f"{owner}: mcp_parsers.tool_names is empty; name the MCP tools that parse documents"]
    errors = []
    for name in parsers.tool_names:
        declared = tools.get(name)
        if declared is not None and declared.type != "mcp":
            errors.append(
                f"{owner}: mcp_parsers tool {name!r} is a {declared.type} tool, not an MCP tool source"
            )
        elif declared is not None and not declared.enabled:
            errors.append(f"{owner}: mcp_parsers tool {name!r} is disabled (enabled: false)")
        elif declared is None and not sources:
            errors.append(
                f"{owner}: mcp_parsers tool {name!r} is not a declared MCP tool source; declare the "
                "MCP server under tools with type: mcp (internal: true keeps it from agents)"
            )
    return errors


def _missing(kind: str, owner: str, name: str, available: list[str]) -> str:
    return f"{owner}: {kind} {name!r} not found (available: {sorted(available)})"


def _search_llms(owner: str, search: SearchConfig, llms: Collection[str]) -> list[str]:
    blocks = {"rerank": search.rerank, "multi_query": search.multi_query, "hyde": search.hyde}
    return [
        _missing("llm", f"{owner} search.{key}", block.llm, list(llms))
        for key, block in blocks.items()
        if block is not None and block.llm is not None and block.llm not in llms
    ]


def retrieval_problems(agent_id: str, agent: AgentConfig, cfg: Config) -> tuple[list[str], list[str]]:
    """Search, include_context and long-term memory settings of a native agent."""
    owner = f"agent {agent_id!r}"
    errors = _search_llms(owner, agent.search, cfg.llms)
    warnings: list[str] = []
    for kind, name, pool in (
        ("vector_store", agent.vector_store, cfg.vector_stores),
        ("embedder", agent.embedder, cfg.embedders),
    ):
        if name is not None and name not in pool:
            errors.append(_missing(kind, owner, name, list(pool)))
    stores = cfg.document_stores if agent.document_stores is None else agent.document_stores
    if agent.prompt.include_context and not [s for s in stores if s in cfg.document_stores]:
        errors.append(f"{owner}: include_context is enabled but the agent has no document stores to search")
    long_term = agent.memory.long_term
    if long_term is None or not long_term.enabled:
        return errors, warnings
    for kind, own, default, pool in (
        ("vector_store", agent.vector_store, cfg.defaults.vector_store, cfg.vector_stores),
        ("embedder", agent.embedder, cfg.defaults.embedder, cfg.embedders),
    ):
        if own is None and default is None and len(pool) > 1:
            errors.append(
                f"{owner}: {kind} is required when long-term memory is enabled and several are "
                f"declared ({sorted(pool)}); set agents.{agent_id}.{kind} or defaults.{kind}"
            )
    pool = cfg.vector_stores
    name = agent.vector_store or cfg.defaults.vector_store or (next(iter(pool)) if len(pool) == 1 else None)
    shared = pool.get(name) if name else None
    if shared is not None and shared.type != "embedded" and shared.collection:
        # Memories are kept apart by collection (one per scope key): one collection for all of
        # them would recall one user's or conversation's memories in another's.
        errors.append(
            f"{owner}: long-term memory cannot use vector store {name!r}: its collection setting "
            f"({shared.collection!r}) keeps everything in one collection, while each conversation "
            "(or user) needs its own; give the agent a vector store without collection"
        )
    if long_term.recall_scope == "user" and not cfg.server.auth.enabled:
        warnings.append(
            f"{owner}: memory.long_term.recall_scope is user, but without server.auth every caller "
            "is 'anonymous' and recalls the others' memories"
        )
    return errors, warnings


def _shared_collections(cfg: Config) -> list[str]:
    """A vector store's ``collection`` setting makes it keep one collection, which only one document
    store may fill: two would overwrite and delete each other's chunks (the back end refuses the
    second at run time; this says so before start-up)."""
    pool = cfg.vector_stores
    users: dict[str, list[str]] = {}
    for doc_id, doc in cfg.document_stores.items():
        name = doc.vector_store or cfg.defaults.vector_store or (next(iter(pool)) if len(pool) == 1 else None)
        vectors = pool.get(name) if name else None
        if name and vectors is not None and vectors.type != "embedded" and vectors.collection:
            users.setdefault(name, []).append(doc_id)
    return [
        f"vector store {name!r}: its collection setting ({pool[name].collection!r}) keeps one "
        f"collection, and document stores {sorted(stores)} would mix their chunks in it; remove "
        "collection (each store gets its own) or give each document store its own vector store"
        for name, stores in users.items()
        if len(stores) > 1
    ]


def check_config(cfg: Config, extra_tools: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """Return ``(errors, warnings)`` for references and combinations across sections.

    *extra_tools* are tools supplied in code (``build_runtime(tools=...)``) that agents may list.
    """
    errors: list[str] = []
    warnings: list[str] = []
    llms = list(cfg.llms)
    d = cfg.defaults
    for kind, name, pool in (
        ("llm", d.llm, cfg.llms),
        ("embedder", d.embedder, cfg.embedders),
        ("vector_store", d.vector_store, cfg.vector_stores),
        ("session_store", d.session_store, cfg.session_stores),
    ):
        if name is not None and name not in pool:
            errors.append(_missing(kind, "defaults", name, list(pool)))

    for agent_id, agent in cfg.agents.items():
        owner = f"agent {agent_id!r}"
        if agent.type == "a2a":
            if not agent.url:
                errors.append(f"{owner}: url is required for external A2A agents (type=a2a)")
            if agent.llm:
                errors.append(f"{owner}: llm should not be specified for external A2A agents (type=a2a)")
            continue
        if agent.llm is not None and agent.llm not in cfg.llms:
            errors.append(_missing("llm", owner, agent.llm, llms))
        elif agent.llm is None and d.llm is None and len(llms) > 1:
            errors.append(
                f"{owner}: no llm given and several are declared ({sorted(llms)}); "
                f"set agents.{agent_id}.llm or defaults.llm"
            )
        if agent.session_store is not None and agent.session_store not in cfg.session_stores:
            errors.append(_missing("session_store", owner, agent.session_store, list(cfg.session_stores)))
        for tool in agent.tools or []:
            if tool not in cfg.tools and tool not in BUILTIN_TOOLS and tool not in extra_tools:
                errors.append(_missing("tool", owner, tool, [*cfg.tools, *BUILTIN_TOOLS, *extra_tools]))
            elif tool in cfg.tools and cfg.tools[tool].internal:
                warnings.append(
                    f"{owner}: tool {tool!r} is internal (document parsing only); the agent won't get it"
                )
        for sub in agent.sub_agents or []:
            if sub not in cfg.agents:
                errors.append(_missing("sub-agent", owner, sub, list(cfg.agents)))
            elif sub == agent_id:
                errors.append(f"{owner}: an agent cannot be its own sub-agent")
        found_errors, found_warnings = retrieval_problems(agent_id, agent, cfg)
        errors += found_errors
        warnings += found_warnings
        for store in agent.document_stores or []:
            if store not in cfg.document_stores:
                warnings.append(
                    f"{owner}: document store {store!r} is not declared under document_stores; "
                    "the agent will search nothing from it until it is"
                )

    for tool_id, tool_cfg in cfg.tools.items():
        if tool_cfg.type == "mcp":
            errors += mcp_errors(tool_id, tool_cfg) if tool_cfg.enabled else []
            continue
        handler = handler_of(tool_id, tool_cfg)
        errors += _search_llms(f"tool {tool_id!r}", tool_cfg.search, cfg.llms)
        if handler not in BUILTIN_TOOLS:
            errors.append(
                f"tool {tool_id!r}: unknown handler {handler!r}; use type: command, type: mcp, or "
                f"type: function with handler one of {sorted(BUILTIN_TOOLS)}"
            )

    for store_id, session_store in cfg.session_stores.items():
        quota = session_store.rate_limit
        if quota.enabled and quota.backend == "sql" and session_store.backend != "sql":
            errors.append(
                f"session store {store_id!r}: rate_limit.backend sql keeps counters in the store's "
                "database; set backend: sql on the store or rate_limit.backend: memory"
            )

    for embedder_id, embedder in cfg.embedders.items():
        if embedder.type not in EMBEDDER_TYPES:
            errors.append(
                f"embedder {embedder_id!r}: unknown type {embedder.type!r} "
                f"(expected one of: {', '.join(EMBEDDER_TYPES)})"
            )

    for vectors_id, vectors in cfg.vector_stores.items():
        needs = VECTOR_STORE_NEEDS.get(vectors.type)
        if needs is None:
            errors.append(
                f"vector store {vectors_id!r}: unknown type {vectors.type!r} "
                f"(expected one of: {', '.join(VECTOR_STORE_NEEDS)})"
            )
        # "a|b" in a need: either key will do.
        elif missing := [k for k in needs if not any(getattr(vectors, a) for a in k.split("|"))]:
            wanted = ", ".join(k.replace("|", " or ") for k in missing)
            errors.append(f"vector store {vectors_id!r}: type {vectors.type} needs {wanted}")

    for doc_id, doc in cfg.document_stores.items():
        owner = f"document store {doc_id!r}"
        errors += _search_llms(owner, doc.search, cfg.llms)
        if doc.vector_store is not None and doc.vector_store not in cfg.vector_stores:
            errors.append(_missing("vector_store", owner, doc.vector_store, list(cfg.vector_stores)))
        if doc.embedder is not None and doc.embedder not in cfg.embedders:
            errors.append(_missing("embedder", owner, doc.embedder, list(cfg.embedders)))
        if doc.mcp_parsers is not None:
            errors += mcp_parser_errors(owner, doc.mcp_parsers, cfg.tools)
        found_errors, found_warnings = source_problems(owner, doc)
        errors += found_errors
        warnings += found_warnings
        if doc.chunk_strategy != "simple":
            warnings.append(
                f"{owner}: chunk_strategy {doc.chunk_strategy} is accepted for compatibility only: chunks "
                "always end on paragraph or line boundaries; set chunk_overlap for overlapping chunks"
            )

    errors += _shared_collections(cfg)

    cors = cfg.server.cors
    if cors is not None and "*" in cors.allowed_origins:
        warnings.append(
            'server.cors.allowed_origins is "*": any web page a visitor opens may call this server '
            "from their browser (development only); list the origins of your front ends"
            + ("; allow_credentials is ignored with it" if cors.allow_credentials else "")
        )

    auth = cfg.server.auth
    internal = [a for a, c in cfg.agents.items() if c.visibility == "internal"]
    if internal and not auth.enabled:
        warnings.append(
            f"agents {internal} are internal, which requires authentication, but server.auth is not "
            "enabled: they cannot be reached over HTTP until it is"
        )
    credentials = [k for k in ("jwks_url", "issuer", "audience", "api_keys") if getattr(auth, k)]
    if credentials and "enabled" not in auth.model_fields_set:
        # Easy to miss, and it leaves every agent open to anyone.
        warnings.append(
            f"server.auth: {', '.join(credentials)} set but enabled is not, so authentication is OFF "
            "and every agent is open to anyone; add enabled: true (or enabled: false to keep it off)"
        )
    if auth.enabled:
        jwt = {"jwks_url": auth.jwks_url, "issuer": auth.issuer, "audience": auth.audience}
        given = [k for k, v in jwt.items() if v]
        missing = [k for k, v in jwt.items() if not v]
        if given and missing:
            if auth.api_keys:
                warnings.append(
                    f"server.auth: JWT settings are incomplete (missing {', '.join(missing)}); "
                    "JWTs are checked for signature and expiry only. Set all of jwks_url, issuer "
                    "and audience to verify who issued a token and for whom"
                )
            else:
                errors.append(
                    f"server.auth: incomplete JWT configuration, missing {', '.join(missing)} "
                    "(jwks_url, issuer and audience are all required when auth is enabled)"
                )
        if not given and not auth.api_keys:
            warnings.append(
                "server.auth: enabled, but neither jwks_url/issuer/audience nor api_keys are set; "
                "every request to a protected path will be refused with 401"
            )
    warnings += tls_file_errors(cfg)
    warnings += insecure_warnings(outbound(cfg), cfg)
    warnings += unused_tls_warnings(cfg)
    errors += server_tls_errors(cfg.server.tls)
    grpc = cfg.server.grpc
    if cfg.server.preferred_transport == "grpc" and not grpc.enabled:
        errors.append("server.preferred_transport: grpc needs server.grpc.enabled: true")
    if grpc.enabled and grpc.port == cfg.server.port and (grpc.host or cfg.server.host) == cfg.server.host:
        errors.append(f"server.grpc.port {grpc.port} is server.port too: give gRPC a port of its own")
    return errors, warnings
