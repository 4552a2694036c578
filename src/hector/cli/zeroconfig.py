"""Zero-config mode: a one-agent configuration built from command-line flags."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

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
    if tools:
        agent_cfg["tools"] = tools
    data: dict[str, Any] = {"version": "2", "llms": {provider: llm}, "agents": {agent: agent_cfg}}
    if docs_folder is not None:
        name, store = docs_store(docs_folder)
        data["document_stores"] = {name: store}
        agent_cfg["document_stores"] = [name]
        agent_cfg["tools"] = [*(tools or []), *([] if "search" in (tools or []) else ["search"])]
    return data


def docs_store(folder: Path) -> tuple[str, dict[str, Any]]:
    """The document store of ``--docs-folder``: the local embedder and the embedded vector store
    (the defaults), so it works offline with no other setting."""
    path = folder.expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"--docs-folder {folder}: not a folder")
    # Named after the folder and its absolute path, as the Go original does: two folders of the
    # same name keep separate collections in one data dir.
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return f"docs_{path.name or 'root'}_{digest}", {"path": str(path), "max_file_size": 50 * 1024 * 1024}
