"""Confinement of tool paths to a workspace directory."""

from __future__ import annotations

import os
from pathlib import Path

from hector.errors import ToolError


def workspace_root(configured: str | None, base_dir: Path) -> Path:
    """The tool's workspace: ``working_directory`` (relative to the config file), created if absent."""
    root = Path(configured or ".")
    if not root.is_absolute():
        root = base_dir / root
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve(strict=True)


def confine(root: Path, user_path: str, *, must_exist: bool = False) -> Path:
    """Resolve *user_path* (relative, from the model) inside *root*, or raise ``ToolError``.

    Refused: absolute paths, ``..`` segments, NUL bytes, and anything whose real path (symlinks
    followed) leaves *root* — including prefix siblings such as ``/ws-evil`` next to ``/ws``.
    """
    if not isinstance(user_path, str) or not user_path.strip():
        raise ToolError("a path is required")
    if "\x00" in user_path:
        raise ToolError("invalid path: contains a NUL byte")
    candidate = Path(user_path)
    if (
        candidate.is_absolute()
        or user_path.startswith(("~", "\\"))
        or (len(user_path) > 1 and user_path[1] == ":")
    ):
        raise ToolError("absolute paths not allowed, use relative paths")
    if ".." in candidate.parts or ".." in user_path.replace("\\", "/").split("/"):
        raise ToolError("directory traversal not allowed (..)")
    resolved = Path(os.path.realpath(root / candidate))
    try:
        resolved.relative_to(root)
    except ValueError:
        raise ToolError("path escapes working directory") from None
    if must_exist and not resolved.exists():
        raise ToolError(f"not found: {user_path}")
    return resolved
