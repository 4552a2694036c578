"""Built-in tools by name: which implementation a ``tools.<name>`` entry means, and building it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hector.config.base import TLSClientOptions
from hector.config.checks import handler_of
from hector.config.schema import ToolConfig
from hector.errors import ConfigError
from hector.tools import Tool

if TYPE_CHECKING:
    from hector.rag.documents import DocumentStore
    from hector.rag.retrieval import Searcher


@dataclass(frozen=True)
class ToolEnv:
    """What a tool factory may need beyond its own configuration."""

    base_dir: Path
    """Relative paths in the tool's configuration (e.g. working_directory) start here."""
    tls_defaults: TLSClientOptions | None = None
    """The top-level TLS options, for the keys a tool that connects out does not set itself."""
    document_stores: Mapping[str, Sequence[DocumentStore]] = field(default_factory=dict)
    """Agent id → the document stores it may search."""
    searchers: Mapping[str, Searcher] = field(default_factory=dict)
    """Agent id → search over its stores with its settings (the ``search`` tool reads it per call)."""


ToolFactory = Callable[[str, ToolConfig, ToolEnv], Tool]

# handler name → "module:factory"; modules are imported only when an agent uses the tool.
BUILTINS: dict[str, str] = {
    "execute_command": "hector.tools.command:build",
    "read_file": "hector.tools.files:build_read_file",
    "write_file": "hector.tools.files:build_write_file",
    "search_replace": "hector.tools.edit:build_search_replace",
    "apply_patch": "hector.tools.edit:build_apply_patch",
    "grep_search": "hector.tools.files:build_grep_search",
    "web_request": "hector.tools.web:build",
    "todo_write": "hector.tools.todo:build",
    "search": "hector.tools.search:build",
}

# Tools that change the world ask for approval unless the config says otherwise.
APPROVAL_BY_DEFAULT = {"execute_command", "write_file", "search_replace", "apply_patch", "web_request"}


def build_tool(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    handler = handler_of(name, cfg)
    target = BUILTINS.get(handler)
    if target is None:
        raise ConfigError(
            f"tool {name!r}: unknown handler {handler!r} (built-in handlers: {sorted(BUILTINS)})"
        )
    module, _, factory_name = target.partition(":")
    factory: ToolFactory = getattr(importlib.import_module(module), factory_name)
    tool = factory(name, cfg, env)
    tool.name = name
    if cfg.description:
        tool.description = cfg.description
    tool.require_approval = (
        cfg.require_approval if cfg.require_approval is not None else handler in APPROVAL_BY_DEFAULT
    )
    tool.approval_prompt = cfg.approval_prompt
    tool.approval_timeout = cfg.approval_timeout
    return tool
