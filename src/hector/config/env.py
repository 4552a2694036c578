"""``${VAR}`` / ``${VAR:-default}`` expansion and ``.env`` loading.

Expansion runs on the string leaves of the parsed YAML, so a value can never inject YAML
structure, and it is applied to configuration only: request data is never expanded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from hector.errors import EnvVarError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_env_files(directory: Path | None = None) -> list[Path]:
    """Load ``.env.local`` then ``.env`` from *directory* (default: the working directory).

    Variables already set in the environment win, so a deployment can always override a file.
    """
    base = directory or Path.cwd()
    loaded = []
    for name in (".env.local", ".env"):
        path = base / name
        if path.is_file():
            load_dotenv(path, override=False)
            loaded.append(path)
    return loaded


def _expand_string(value: str, where: str, env: Mapping[str, str], missing: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found:
            return found
        if default is not None:
            return default
        missing.append(
            f"{where}: environment variable {name!r} is not set; "
            f"export it (or add it to .env), or write ${{{name}:-default}} to give a default"
        )
        return ""

    return _VAR.sub(replace, value)


def _expand(node: Any, where: str, env: Mapping[str, str], missing: list[str]) -> Any:
    if isinstance(node, str):
        return _expand_string(node, where or "<root>", env, missing)
    if isinstance(node, dict):
        return {k: _expand(v, f"{where}.{k}" if where else str(k), env, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, f"{where}[{i}]", env, missing) for i, v in enumerate(node)]
    return node


def expand_tree(node: Any, source: str = "<config>", environ: Mapping[str, str] | None = None) -> Any:
    """Return a copy of *node* with every string leaf expanded.

    A ``${VAR}`` without a value or default is an error; all of them are reported at once, each
    with its key path, under the name of the configuration *source*.
    """
    missing: list[str] = []
    expanded = _expand(node, "", os.environ if environ is None else environ, missing)
    if missing:
        raise EnvVarError(f"{source}: invalid configuration:\n  " + "\n  ".join(missing))
    return expanded
