"""Zero-config mode: a one-agent configuration built from command-line flags."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hector.config.checks import BUILTIN_TOOLS
from hector.config.shortcuts import docs_store as folder_store, with_search
from hector.errors import ConfigError
from hector.providers import API_KEY_ENV

PROVIDER_ORDER = ("openai", "anthropic", "gemini")


def detect_provider() -> str | None:
    """The provider named by HECTOR_PROVIDER, else the first whose API key is in the environment."""
    named = os.environ.get("HECTOR_PROVIDER")
    if named:
        return named
    for provider in PROVIDER_ORDER:
        if os.environ.get(API_KEY_ENV[provider]):
            return provider
    return None


def zero_config(
    *,
    agent: str = "assistant",
    provider: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    instruction: str | None = None,
    tools: list[str] | None = None,
    docs_folder: Path | None = None,
    embedder: str | None = None,
    embedder_model: str | None = None,
    mcp_url: str | None = None,
    mcp_parser_tool: list[str] | None = None,
) -> dict[str, Any]:
    """The configuration (as YAML data, before validation) that the flags describe."""
    provider = provider or detect_provider()
    if provider is None:
        raise ConfigError(
            "no LLM provider is configured: export OPENAI_API_KEY (or ANTHROPIC_API_KEY / "
            "GEMINI_API_KEY), pass --provider and --api-key, or run `hector serve --provider test` "
            "for the offline test model"
        )
    llm: dict[str, Any] = {"type": provider}
    for key, value in (
        ("model", model or os.environ.get("HECTOR_MODEL")),
        ("api_key", api_key),
        ("host", base_url or os.environ.get("HECTOR_BASE_URL")),
    ):
        if value:
            llm[key] = value
    agent_cfg: dict[str, Any] = {"llm": provider}
    if instruction:
        agent_cfg["instruction"] = instruction
    if tools == ["all"]:  # what the enable_tools shortcut gives, as the Go original's --tools
        tools = list(BUILTIN_TOOLS)
    if tools:
        agent_cfg["tools"] = tools
    data: dict[str, Any] = {"version": "2", "llms": {provider: llm}, "agents": {agent: agent_cfg}}
    mcp_url = mcp_url or os.environ.get("MCP_URL")
    if mcp_url:
        # The server's tools go to the agent and, with --mcp-parser-tool, parse the documents.
        data["tools"] = {"mcp": {"type": "mcp", "url": mcp_url}}
        agent_cfg["tools"] = tools = [*(tools or []), "mcp"]
    if mcp_parser_tool and docs_folder is None:
        raise ConfigError("--mcp-parser-tool needs --docs-folder (it says how that folder is parsed)")
    if docs_folder is not None:
        name, store = docs_store(docs_folder, mcp_parser_tool or ())
        data["document_stores"] = {name: store}
        agent_cfg["document_stores"] = [name]
        agent_cfg["tools"] = with_search(tools)
        if embedder or embedder_model:
            # A model alone means Ollama, as `--embedder-model nomic-embed-text` did in the Go original.
            chosen: dict[str, Any] = {"type": embedder or "ollama"}
            if embedder_model:
                chosen["model"] = embedder_model
            data["embedders"] = {"default": chosen}
    elif embedder or embedder_model:
        raise ConfigError("--embedder and --embedder-model need --docs-folder (they set how it is indexed)")
    return data


def docs_store(folder: Path, mcp_parser_tool: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """The document store of ``--docs-folder``, as the ``docs_folder`` key declares it: the local
    embedder and the embedded vector store (the defaults), so it works offline with no other setting."""
    path = folder.expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"--docs-folder {folder}: not a folder")
    return folder_store(path, mcp_parser_tool)
