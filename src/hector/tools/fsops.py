"""What the file and edit tools share: argument checking, and race-safe I/O inside a workspace.

``confine`` checks a path when a call starts. The I/O here then reaches the file through directory
descriptors opened with ``O_NOFOLLOW`` from the workspace root, one component at a time, so a
symlink swapped in between the check and the I/O (by a command tool, say) makes the operation
fail instead of leading it out of the workspace. Names passed to the OS are relative to those
descriptors, so OS error messages never show the host's absolute paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import stat
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

from hector.config.schema import ToolConfig
from hector.errors import ToolError
from hector.tools import Tool, ToolContext
from hector.tools.registry import ToolEnv
from hector.tools.workspace import confine, workspace_root

MAX_PATH_LENGTH = 1024
BINARY_SNIFF = 8192
"""A NUL byte in this many leading bytes marks a file as binary (the heuristic git uses)."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PY_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool}
_OS_REASONS = {
    errno.ENOENT: "not found (paths are relative to the workspace)",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.EISDIR: "is a directory, not a file",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ELOOP: "a symlink is in the way (it may have changed during the call); use the real path",
    errno.ENAMETOOLONG: "name too long",
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "read-only file system",
}


def path_property(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description, "maxLength": MAX_PATH_LENGTH}


def check_arguments(schema: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """*arguments* checked against a tool's flat JSON schema, with defaults filled in.

    Models send wrong types and extra keys often enough that each gets a message naming the fix.
    """
    if not isinstance(arguments, dict):
        raise ToolError("arguments must be a JSON object")
    props: dict[str, dict[str, Any]] = schema["properties"]
    unknown = sorted(set(arguments) - set(props))
    if unknown:
        raise ToolError(f"unknown argument(s) {unknown}; this tool takes {sorted(props)}")
    required = schema.get("required", [])
    out: dict[str, Any] = {}
    for name, spec in props.items():
        value: Any = arguments.get(name)
        if value is None:  # models send null for an optional argument they mean to leave out
            if name in required:
                raise ToolError(f"missing required argument {name!r}: {spec['description']}")
            out[name] = spec.get("default")
            continue
        kind = spec["type"]
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _has_type(value, kind):
            raise ToolError(f"argument {name!r} must be of type {kind}, got {type(value).__name__}")
        if "minimum" in spec and value < spec["minimum"]:
            raise ToolError(f"argument {name!r} must be at least {spec['minimum']}, got {value}")
        if "maxLength" in spec and len(value) > (most := spec["maxLength"]):
            raise ToolError(f"argument {name!r} is too long: {len(value)} characters (max: {most})")
        out[name] = value
    return out


def _has_type(value: Any, kind: str) -> bool:
    # bool is an int in Python, but true is not an integer in JSON
    return isinstance(value, _PY_TYPES[kind]) and not (kind == "integer" and isinstance(value, bool))


class WorkspaceTool(Tool):
    """A tool confined to ``working_directory``: checks arguments, runs off the event loop."""

    def __init__(self, cfg: ToolConfig, env: ToolEnv) -> None:
        self.cfg = cfg
        self.root = workspace_root(cfg.working_directory, env.base_dir)

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        args = check_arguments(self.parameters, arguments)
        try:
            return await asyncio.to_thread(self.run, args)
        except OSError as exc:
            raise os_error(exc, self.root) from None

    @abstractmethod
    def run(self, args: dict[str, Any]) -> str:
        """The tool's work, on a worker thread; *args* are checked against ``parameters``."""

    def locate(self, user_path: str, *, must_exist: bool = False) -> PurePath:
        """*user_path* confined, as a path relative to the root with symlinks resolved."""
        _check_length(user_path)
        return confine(self.root, user_path, must_exist=must_exist).relative_to(self.root)

    def locate_entry(self, user_path: str) -> PurePath:
        """Like ``locate``, but the last component is kept as named, even if it is a symlink:
        the entry a write replaces, rather than the file a symlink would lead to."""
        _check_length(user_path)
        confine(self.root, user_path)  # the whole path, symlinks followed, must stay inside
        named = PurePath(user_path)
        parent = confine(self.root, str(named.parent)).relative_to(self.root)
        return parent / named.name


def _check_length(user_path: str) -> None:
    # Paths in a patch bypass the schema's maxLength; a huge one would only create deep trees.
    if len(user_path) > MAX_PATH_LENGTH:
        raise ToolError(f"path too long: {len(user_path)} characters (max: {MAX_PATH_LENGTH})")


def os_error(exc: OSError, root: Path) -> ToolError:
    """*exc* as a message for the model, naming the file without the host's absolute path."""
    reason = _OS_REASONS.get(exc.errno or 0, exc.strerror or "I/O error")
    name = exc.filename
    if not isinstance(name, str) or not name:
        return ToolError(reason)
    if os.path.isabs(name):  # from a check outside the descriptor-relative I/O (e.g. confine)
        shown = Path(name)
        name = str(shown.relative_to(root) if shown.is_relative_to(root) else shown.name)
    return ToolError(f"{name}: {reason}")


def check_extension(cfg: ToolConfig, rel: PurePath) -> None:
    """``denied_extensions`` first, then ``allowed_extensions`` (where ``""`` means none)."""
    name = rel.name.lower()

    def matches(ext: str) -> bool:
        ext = ext.lower()
        if not ext:
            return PurePath(name).suffix == ""
        return name.endswith(ext if ext.startswith(".") else f".{ext}")

    for ext in cfg.denied_extensions or []:
        if ext and matches(ext):
            raise ToolError(f"{rel}: extension {ext!r} is denied (denied: {cfg.denied_extensions})")
    allowed = cfg.allowed_extensions
    if allowed is not None and not any(matches(ext) for ext in allowed):
        what = "files without an extension are" if not PurePath(name).suffix else "this extension is"
        raise ToolError(f"{rel}: {what} not allowed; use one of allowed_extensions {allowed}")


def text_lines(text: str) -> list[str]:
    """Lines as editors and grep number them: split on ``\\n``, a trailing ``\\r`` dropped."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def decode_text(data: bytes, rel: PurePath, *, strict: bool) -> str:
    """*data* as text; binary files are refused, and so is bad UTF-8 when *strict* (editing)."""
    if b"\x00" in data[:BINARY_SNIFF]:
        raise ToolError(f"{rel} looks like a binary file (it has NUL bytes); only text files are supported")
    try:
        return data.decode("utf-8", errors="strict" if strict else "replace")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{rel} is not valid UTF-8 (byte {exc.start}); it cannot be edited as text") from None


@contextlib.contextmanager
def open_dir(root: Path, rel: PurePath, *, create: bool = False) -> Iterator[int]:
    """A descriptor for directory *rel* under *root*, reached without following any symlink."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in rel.parts:
            if create:
                with contextlib.suppress(FileExistsError):  # a symlink here fails the open below
                    os.mkdir(part, 0o777, dir_fd=fd)
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def read_regular(root: Path, rel: PurePath, limit: int) -> bytes:
    """The bytes of regular file *rel*, refusing anything larger than *limit*."""
    if not rel.parts:
        raise ToolError("the workspace root is a directory; name a file inside it")
    with open_dir(root, rel.parent) as dfd:
        return read_at(dfd, rel.name, limit, rel)


def read_at(dfd: int, name: str, limit: int, shown: PurePath) -> bytes:
    """Regular file *name* in directory *dfd* (not through a symlink), at most *limit* bytes."""
    # O_NONBLOCK: opening a FIFO someone left in the workspace must not hang the call.
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{shown} is a directory; name a file inside it")
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{shown} is not a regular file")
        _check_size(st.st_size, limit)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            _check_size(total, limit)  # the file may have grown since the fstat
    finally:
        os.close(fd)
    return b"".join(chunks)


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise ToolError(f"file too large: {size} bytes (max: {limit}); the limit is the tool's max_file_size")


def atomic_write(
    root: Path, rel: PurePath, data: bytes, *, create_parents: bool = False, backup: bool = False
) -> None:
    """Replace file *rel* with *data* in one step: readers see the old or the new file, never a mix.

    The final component must not be a symlink (whatever it points to): a write replaces the entry
    itself. With *backup*, an existing file is first copied to ``<name>.bak``.
    """
    if not rel.parts:
        raise ToolError("the workspace root is a directory; name a file inside it")
    with open_dir(root, rel.parent, create=create_parents) as dfd:
        existing = _lstat(rel.name, dfd)
        mode = None
        if existing is not None:
            if stat.S_ISLNK(existing.st_mode):
                raise ToolError(
                    f"refusing to write through a symlink: {rel}; write to the path it points to instead"
                )
            if not stat.S_ISREG(existing.st_mode):
                raise ToolError(f"{rel} exists and is not a regular file; choose another path")
            mode = stat.S_IMODE(existing.st_mode)
            if backup:
                backup_name = f"{rel.name}.bak"
                if (bak := _lstat(backup_name, dfd)) is not None and not stat.S_ISREG(bak.st_mode):
                    raise ToolError(f"{rel.parent / backup_name} is in the way of the backup; remove it")
                _replace(dfd, backup_name, _read_at(dfd, rel.name), mode)
        _replace(dfd, rel.name, data, mode)


def remove_regular(root: Path, rel: PurePath) -> None:
    with open_dir(root, rel.parent) as dfd:
        existing = _lstat(rel.name, dfd)
        if existing is None or not stat.S_ISREG(existing.st_mode):
            raise ToolError(f"{rel} is not a regular file; only regular files can be deleted")
        os.unlink(rel.name, dir_fd=dfd)
        os.fsync(dfd)


def _lstat(name: str, dfd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _read_at(dfd: int, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _replace(dfd: int, name: str, data: bytes, mode: int | None) -> None:
    # The temporary name is short and fixed-length, so a long target name cannot make it too long.
    tmp = f".{secrets.token_hex(8)}.hector-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=dfd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if mode is not None:  # an overwrite keeps the file's permissions
                os.fchmod(f.fileno(), mode)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        raise
    os.fsync(dfd)  # make the rename itself durable
