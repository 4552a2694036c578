"""search_replace and apply_patch: changing text files inside the tool's ``working_directory``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from hector.config.schema import ToolConfig
from hector.errors import ToolError
from hector.tools import Tool
from hector.tools.fsops import (
    WorkspaceTool,
    atomic_write,
    check_extension,
    decode_text,
    os_error,
    path_property,
    read_regular,
    remove_regular,
)
from hector.tools.patch import FilePatch, apply_hunks, parse_patch
from hector.tools.registry import ToolEnv

EDIT_LIMIT = 10 * 1024 * 1024
MAX_REPLACEMENTS = 100


class SearchReplace(WorkspaceTool):
    name = "search_replace"
    description = (
        "Replace exact text in a file in the workspace. old_string must match the file exactly "
        "(whitespace and indentation included) and occur once, unless replace_all is true."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": path_property("File path, relative to the workspace"),
            "old_string": {"type": "string", "description": "The exact text to replace"},
            "new_string": {"type": "string", "description": "The text to put in its place"},
            "replace_all": {
                "type": "boolean",
                "default": False,
                "description": f"Replace every occurrence (at most {MAX_REPLACEMENTS}), not exactly one",
            },
        },
        "required": ["path", "old_string", "new_string"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any]) -> str:
        old, new = args["old_string"], args["new_string"]
        if not old:
            raise ToolError("old_string is empty; copy the exact text to replace from read_file's output")
        if old == new:
            raise ToolError("old_string and new_string are the same; there is nothing to change")
        rel = self.locate(args["path"], must_exist=True)
        check_extension(self.cfg, rel)
        data = read_regular(self.root, rel, self.cfg.max_file_size or EDIT_LIMIT)
        text = decode_text(data, rel, strict=True)
        count = text.count(old)
        if not count and "\r\n" in text and "\n" in old and "\r\n" not in old:
            # The model writes \n; the file has Windows line endings. Match and keep those.
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
            count = text.count(old)
        if not count:
            raise ToolError(
                f"old_string not found in {rel}; read the file and copy the text exactly, "
                "whitespace and indentation included"
            )
        if count > 1 and not args["replace_all"]:
            raise ToolError(
                f"old_string occurs {count} times in {rel}; include more surrounding lines to make it "
                "unique, or set replace_all to true"
            )
        if count > MAX_REPLACEMENTS:
            raise ToolError(
                f"old_string occurs {count} times in {rel}, more than max_replacements ({MAX_REPLACEMENTS}); "
                "replace in smaller steps with more specific old_string values"
            )
        atomic_write(self.root, rel, _encode(text.replace(old, new)), backup=self.cfg.backup_on_overwrite)
        return f"replaced {count} occurrence{'s' if count > 1 else ''} in {rel}"


@dataclass
class _Change:
    rel: PurePath
    before: bytes | None
    """None: the patch creates the file."""
    after: bytes | None
    """None: the patch deletes the file."""

    def summary(self) -> str:
        if self.before is None:
            return f"created {self.rel}"
        if self.after is None:
            return f"deleted {self.rel}"
        return f"modified {self.rel}"


class ApplyPatch(WorkspaceTool):
    name = "apply_patch"
    description = (
        "Apply a unified diff to files in the workspace: '--- a/path' and '+++ b/path' headers, then "
        "@@ hunks with ' ' context, '-' removed and '+' added lines. Use '--- /dev/null' to create a "
        "file and '+++ /dev/null' to delete one. Every hunk is checked before any file is written: "
        "the patch applies completely or not at all."
    )
    parameters = {
        "type": "object",
        "properties": {"patch": {"type": "string", "description": "The unified diff"}},
        "required": ["patch"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any]) -> str:
        limit = self.cfg.max_file_size or EDIT_LIMIT
        size = len(args["patch"].encode("utf-8", errors="surrogatepass"))
        if size > limit:
            raise ToolError(f"patch too large: {size} bytes (max: {limit}); split it into smaller patches")
        changes: list[_Change] = []
        for file_patch in parse_patch(args["patch"]):
            change = self._plan(file_patch, limit)
            if any(c.rel == change.rel for c in changes):
                raise ToolError(f"the patch changes {change.rel} twice; put all its hunks under one header")
            changes.append(change)
        self._write_all(changes)
        return "applied patch: " + ", ".join(c.summary() for c in changes)

    def _plan(self, file_patch: FilePatch, limit: int) -> _Change:
        """What *file_patch* would do, checked in full (paths, extensions, hunks), without writing."""
        if file_patch.old_path is None:
            rel = self.locate_entry(file_patch.path)
            if os.path.lexists(self.root / rel):
                raise ToolError(
                    f"{rel} already exists; to change it, use '--- a/{rel}' and '+++ b/{rel}' headers"
                )
            before_text = ""
        else:
            # A deletion removes the entry named, never a symlink's target; an edit may go through
            # a symlink that stays inside the workspace.
            if file_patch.new_path is None:
                rel = self.locate_entry(file_patch.path)
            else:
                rel = self.locate(file_patch.path, must_exist=True)
            before_text = decode_text(read_regular(self.root, rel, limit), rel, strict=True)
        check_extension(self.cfg, rel)
        after_text = apply_hunks(before_text, file_patch, str(rel))
        if file_patch.new_path is None and after_text:
            raise ToolError(
                f"{rel}: a deletion ('+++ /dev/null') must remove every line of the file; "
                "read it again and list all its lines as '-' lines"
            )
        return _Change(
            rel,
            None if file_patch.old_path is None else _encode(before_text),
            None if file_patch.new_path is None else _encode(after_text),
        )

    def _write_all(self, changes: list[_Change]) -> None:
        done: list[_Change] = []
        try:
            for change in changes:
                self._put(change.rel, change.after, created=change.before is None)
                done.append(change)
        except (OSError, ToolError) as exc:
            failed = self._restore(done)
            reason = os_error(exc, self.root) if isinstance(exc, OSError) else exc
            outcome = (
                f"could not restore {failed}: check them" if failed else "no file was changed (restored)"
            )
            raise ToolError(f"writing the patch failed: {reason}; {outcome}") from None

    def _put(self, rel: PurePath, data: bytes | None, *, created: bool) -> None:
        if data is None:
            remove_regular(self.root, rel)
        else:
            atomic_write(self.root, rel, data, create_parents=created, backup=self.cfg.backup_on_overwrite)

    def _restore(self, done: list[_Change]) -> list[str]:
        """Undo the changes already written, newest first; the paths that could not be restored."""
        failed = []
        for change in reversed(done):
            try:
                if change.before is None:
                    remove_regular(self.root, change.rel)
                else:
                    atomic_write(self.root, change.rel, change.before)
            except (OSError, ToolError):
                failed.append(str(change.rel))
        return failed


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \ud800 escape
        raise ToolError("the new text is not valid Unicode (lone surrogate characters)") from None


def build_search_replace(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return SearchReplace(cfg, env)


def build_apply_patch(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return ApplyPatch(cfg, env)
