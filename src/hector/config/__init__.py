"""Loading configuration: read YAML, expand ``${VAR}``, validate, check references."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hector.config.checks import BUILTIN_TOOLS, check_config
from hector.config.env import expand_tree, load_env_files
from hector.config.schema import (
    AgentConfig,
    Config,
    LLMConfig,
    ServerConfig,
    SessionStoreConfig,
    ToolConfig,
)
from hector.config.shortcuts import expand_shortcuts
from hector.config.tls import anchor_tls_paths
from hector.errors import ConfigError

__all__ = [
    "BUILTIN_TOOLS",
    "AgentConfig",
    "Config",
    "LLMConfig",
    "LoadedConfig",
    "ServerConfig",
    "SessionStoreConfig",
    "ToolConfig",
    "load_config",
    "load_env_files",
    "parse_config",
]


@dataclass
class LoadedConfig:
    config: Config
    source: str
    warnings: list[str] = field(default_factory=list)
    base_dir: Path = field(default_factory=Path.cwd)
    """Where relative paths in the config (data_dir, working directories) start from."""


def _model_at(path: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the key at *path*, for 'did you mean' suggestions."""
    model: Any = Config
    for part in path[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(str(part))
        if info is None:
            # A map entry (e.g. agents.<name>): stay on the map's value type.
            continue
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        nested = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nested is None:
            nested = next(
                (
                    a
                    for c in args
                    for a in getattr(c, "__args__", ())
                    if isinstance(a, type) and issubclass(a, BaseModel)
                ),
                None,
            )
        model = nested
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _format_error(err: Any) -> str:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "<root>"
    if err["type"] == "extra_forbidden":
        model = _model_at(loc)
        hint = ""
        if model is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        return f"{where}: unknown key{hint}; remove it or check the spelling"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "literal_error":
        return f"{where}: {msg} (got {err.get('input')!r})"
    return f"{where}: {msg}"


def parse_config(
    data: Any, source: str = "<config>", extra_tools: Collection[str] = (), base_dir: Path | None = None
) -> LoadedConfig:
    """Validate already-parsed YAML data (``${VAR}`` still unexpanded).

    *extra_tools* names tools supplied in code that agents may list without declaring them.
    *base_dir* (the configuration file's folder, else the working directory) anchors relative
    TLS file paths and ``docs_folder``s.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    expanded = expand_tree(data)
    try:
        cfg = Config.model_validate(expanded)
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(lines)) from None
    # Shortcuts become plain entries first, so inline providers' TLS paths are anchored too.
    cfg, errors = expand_shortcuts(cfg, base_dir or Path.cwd())
    if errors:
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(errors))
    if base_dir is not None:
        cfg = anchor_tls_paths(cfg, base_dir)
    errors, warnings = check_config(cfg, extra_tools)
    if errors:
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(errors))
    return LoadedConfig(cfg, source, warnings)


def load_config(path: str | Path) -> LoadedConfig:
    """Read, expand and validate a YAML (or JSON) configuration file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found; check the path") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{p}: YAML syntax error{where}: {problem}") from None
    base_dir = p.resolve().parent
    loaded = parse_config(data, str(p), base_dir=base_dir)
    loaded.base_dir = base_dir
    return loaded
