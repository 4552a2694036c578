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
from hector.config.secrets import written_secrets
from hector.config.shortcuts import expand_shortcuts
from hector.config.tls import anchor_tls_paths
from hector.errors import ConfigError, ConfigLoadError

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


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside a field's type (``X``, ``X | None``, ``dict[str, X]``, ``list[X]``), and
    whether the field is a map or list, whose next path part is an entry, not a key of ``X``."""
    container = getattr(annotation, "__origin__", None) in (dict, list)
    stack = [annotation]
    while stack:
        current = stack.pop(0)
        if isinstance(current, type) and issubclass(current, BaseModel):
            return current, container
        args = getattr(current, "__args__", ())
        container = container or getattr(current, "__origin__", None) in (dict, list)
        stack.extend(args)
    return None, container


def _model_at(path: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the key at *path*, for 'did you mean' suggestions."""
    model: type[BaseModel] | None = Config
    entry = False
    for part in path[:-1]:
        if entry:
            # A map entry's name (agents.<name>) or a list index: stay on the entry's model.
            entry = False
            continue
        info = model.model_fields.get(str(part)) if model is not None else None
        if info is None:
            return None
        model, entry = _nested_model(info.annotation)
    return model


def _key_names(model: type[BaseModel]) -> list[str]:
    """The keys a section accepts, as written in YAML: field names (or their aliases) and the
    alternative spellings in ``aliases``."""
    names = [info.alias or name for name, info in model.model_fields.items()]
    return names + list(getattr(model, "aliases", {}))


def _kind(value: Any) -> str:
    # The YAML kind only: the value itself may be a secret.
    if value is None:
        return "nothing"
    return {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _format_error(err: Any) -> str:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "<root>"
    if err["type"] == "extra_forbidden":
        model = _model_at(loc)
        hint = ""
        if model is not None:
            close = difflib.get_close_matches(str(loc[-1]), _key_names(model), n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        return f"{where}: unknown key{hint}; remove it or check the spelling"
    if err["type"] == "missing":
        return f"{where}: required key is missing; add it"
    if err["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return f"{where}: expected a mapping of keys, got {_kind(err.get('input'))}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc:
        return msg  # a top-level check names its keys itself
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
    expanded = expand_tree(data, source)
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
        raise ConfigLoadError(f"{p}: file not found; check the path") from None
    except OSError as exc:
        raise ConfigLoadError(f"{p}: cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigLoadError(
            f"{p}: not UTF-8 text (byte {exc.start} cannot be decoded); save the file as UTF-8"
        ) from None
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigLoadError(f"{p}: YAML syntax error{where}: {problem}") from None
    finally:
        loader.dispose()
    base_dir = p.resolve().parent
    loaded = parse_config(data, str(p), base_dir=base_dir)
    loaded.base_dir = base_dir
    loaded.warnings[:0] = loader.duplicates
    written = written_secrets(data)
    if written:
        loaded.warnings.append(
            f"secrets written into the file ({', '.join(written)}): take them from the environment "
            "instead (api_key: ${OPENAI_API_KEY}, with a .env file for development), so the file "
            "can be shared and committed without them"
        )
    return loaded


class _Loader(yaml.SafeLoader):
    """YAML keeps only the last of two equal keys in a mapping; this loader also says so, since
    the first one's settings are then silently lost (two ``llms:`` sections, say)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first:
                self.duplicates.append(
                    f"line {line}: key {key_node.value!r} is given twice in one mapping (first at line "
                    f"{first[key_node.value]}); only this last one counts, so put everything under one "
                    f"{key_node.value!r}"
                )
            else:
                first[key_node.value] = line
        return super().construct_mapping(node, deep)
