"""Cross-reference checks that a single section cannot make on its own."""

from __future__ import annotations

from collections.abc import Collection

from hector.config.base import TLSClientOptions
from hector.config.schema import Config, ToolConfig
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
    vector_store_component,
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
        if store.enable_tls or (store.url or "").startswith("https:"):
            add(vector_store_component(store.type, name), store)
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


def _missing(kind: str, owner: str, name: str, available: list[str]) -> str:
    return f"{owner}: {kind} {name!r} not found (available: {sorted(available)})"


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
        for sub in agent.sub_agents or []:
            if sub not in cfg.agents:
                errors.append(_missing("sub-agent", owner, sub, list(cfg.agents)))
            elif sub == agent_id:
                errors.append(f"{owner}: an agent cannot be its own sub-agent")
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

    for doc_id, doc in cfg.document_stores.items():
        owner = f"document store {doc_id!r}"
        if doc.vector_store is not None and doc.vector_store not in cfg.vector_stores:
            errors.append(_missing("vector_store", owner, doc.vector_store, list(cfg.vector_stores)))
        if doc.embedder is not None and doc.embedder not in cfg.embedders:
            errors.append(_missing("embedder", owner, doc.embedder, list(cfg.embedders)))

    auth = cfg.server.auth
    internal = [a for a, c in cfg.agents.items() if c.visibility == "internal"]
    if internal and not auth.enabled:
        warnings.append(
            f"agents {internal} are internal, which requires authentication, but server.auth is not "
            "enabled: they cannot be reached over HTTP until it is"
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
    errors += server_tls_errors(cfg.server.tls)
    return errors, warnings
