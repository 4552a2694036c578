"""Agent shortcuts (SPEC §2.6), expanded into the plain entries they stand for.

``parse_config`` runs :func:`expand_shortcuts` right after the schema check, so everything after
it (cross-reference checks, the runtime, ``hector validate --print-config``) sees ordinary
``llms``, ``document_stores`` and ``tools`` entries and never the shortcut keys:

- ``llm_config`` / ``vector_store_config`` / ``embedder_config``: an inline provider, declared at
  the top level as ``<agent>-llm-inline`` (``-vector-store-inline``, ``-embedder-inline``);
- ``docs_folder``: a directory document store over that folder, plus the search tool;
- ``mcp_parser_tool``: MCP tools that parse that folder's PDF, Office and HTML files;
- ``enable_tools``: every built-in tool.

``hector serve --docs-folder/--mcp-parser-tool`` builds its store with the same helpers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hector.config.agents import AgentConfig
from hector.config.checks import BUILTIN_TOOLS
from hector.config.rag import MCP_PARSER_EXTENSIONS, MCP_PARSER_PRIORITY, DocumentStoreConfig
from hector.config.schema import Config

DOCS_MAX_FILE_SIZE = 50 * 1024 * 1024
"""A docs folder holds manuals and reports, so its files may be larger than a store's default."""

# agent key → (top-level section, suffix of the entry an inline provider becomes)
INLINE_PROVIDERS = {
    "llm": ("llms", "llm-inline"),
    "vector_store": ("vector_stores", "vector-store-inline"),
    "embedder": ("embedders", "embedder-inline"),
}
SHORTCUT_KEYS = (
    "llm_config",
    "vector_store_config",
    "embedder_config",
    "docs_folder",
    "mcp_parser_tool",
    "enable_tools",
)


def docs_store(path: Path, mcp_parser_tool: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """The name and entry (YAML data) of the document store over the folder at absolute *path*.

    Named after the folder and its absolute path, as the Go original does: two folders of the
    same name keep separate collections in one data dir. No vector store or embedder is named,
    so the defaults apply (with none declared: the embedded store and the local embedder).
    """
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    store: dict[str, Any] = {"path": str(path), "max_file_size": DOCS_MAX_FILE_SIZE}
    if mcp_parser_tool:
        store["mcp_parsers"] = {
            "tool_names": list(mcp_parser_tool),
            "extensions": list(MCP_PARSER_EXTENSIONS),
            "priority": MCP_PARSER_PRIORITY,
        }
    return f"docs_{path.name or 'root'}_{digest}", store


def with_search(tools: Sequence[str] | None) -> list[str]:
    """*tools* plus the search tool: a docs folder is there to be searched."""
    listed = list(tools or [])
    return listed if "search" in listed else [*listed, "search"]


class _Expansion:
    """The top-level sections as the agents' shortcuts add to them."""

    def __init__(self, cfg: Config, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.sections: dict[str, dict[str, Any]] = {
            "llms": dict(cfg.llms),
            "vector_stores": dict(cfg.vector_stores),
            "embedders": dict(cfg.embedders),
            "document_stores": dict(cfg.document_stores),
        }
        self.errors: list[str] = []

    def agent(self, agent_id: str, agent: AgentConfig) -> AgentConfig:
        owner = f"agent {agent_id!r}"
        given = [k for k in SHORTCUT_KEYS if getattr(agent, k) not in (None, False)]
        if not given:
            return agent
        if agent.type == "a2a":
            self.errors.append(
                f"{owner}: {', '.join(given)} cannot be used with external A2A agents (type=a2a); "
                "they configure native agents"
            )
            return agent
        update: dict[str, Any] = {k: None for k in SHORTCUT_KEYS} | {"enable_tools": False}
        for key, (section, suffix) in INLINE_PROVIDERS.items():
            inline = getattr(agent, f"{key}_config")
            if inline is None:
                continue
            name = f"{agent_id}-{suffix}"
            if getattr(agent, key) is not None:
                self.errors.append(
                    f"{owner}: cannot specify both {key} reference and {key}_config; give one of them"
                )
            elif name in self.sections[section]:
                self.errors.append(
                    f"{owner}: {key}_config becomes {section} entry {name!r}, which is already "
                    f"declared; rename that entry or set {key}: {name}"
                )
            else:
                self.sections[section][name] = inline
                update[key] = name
        tools = agent.tools
        if agent.enable_tools:
            if agent.tools is not None:
                self.errors.append(
                    f"{owner}: enable_tools and tools cannot both be given; enable_tools gives every "
                    "built-in tool, tools lists exactly the agent's (remove one)"
                )
            else:
                tools = update["tools"] = list(BUILTIN_TOOLS)
        if agent.mcp_parser_tool and not agent.docs_folder:
            self.errors.append(
                f"{owner}: mcp_parser_tool needs docs_folder (it says how that folder's files are parsed)"
            )
        if agent.docs_folder:
            store = self.docs_folder(owner, agent, update)
            if store is not None:
                update["document_stores"] = [store]
                update["tools"] = with_search(tools)
        return agent.model_copy(update=update)

    def docs_folder(self, owner: str, agent: AgentConfig, update: dict[str, Any]) -> str | None:
        """Declare the agent's docs_folder store; its name, or None after an error."""
        folder = agent.docs_folder or ""
        if agent.document_stores is not None:
            self.errors.append(
                f"{owner}: docs_folder and document_stores cannot both be given; docs_folder declares "
                "the agent's only store (declare the folder under document_stores to combine them)"
            )
            return None
        path = (self.base_dir / Path(folder).expanduser()).resolve()
        if not path.is_dir():
            self.errors.append(f"{owner}: docs_folder {folder!r} is not a folder ({path})")
            return None
        name, entry = docs_store(path, agent.mcp_parser_tool or ())
        # The agent's own providers, inline or named, index its folder too.
        for key in ("vector_store", "embedder"):
            chosen = update.get(key) or getattr(agent, key)
            if chosen is not None:
                entry[key] = chosen
        store = DocumentStoreConfig.model_validate(entry)
        existing = self.sections["document_stores"].get(name)
        if existing is not None and existing != store:
            # Two agents sharing a folder share its store, unless they index it differently.
            self.errors.append(
                f"{owner}: docs_folder store {name!r} is already declared with other settings "
                "(another agent's docs_folder with other providers or parsers, or a document_stores "
                "entry); declare the store once under document_stores and list it instead"
            )
            return None
        self.sections["document_stores"][name] = store
        return name


def expand_shortcuts(cfg: Config, base_dir: Path) -> tuple[Config, list[str]]:
    """*cfg* with every agent's shortcuts expanded, and the errors found doing it.

    Relative ``docs_folder`` paths start at *base_dir* (the configuration file's folder).
    """
    expansion = _Expansion(cfg, base_dir)
    agents = {agent_id: expansion.agent(agent_id, agent) for agent_id, agent in cfg.agents.items()}
    if expansion.errors:
        return cfg, expansion.errors
    return cfg.model_copy(update={**expansion.sections, "agents": agents}), []
