"""read_file, write_file and grep_search: text files inside the tool's ``working_directory``."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
import time
from collections.abc import Generator
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
    open_dir,
    path_property,
    read_at,
    read_regular,
    text_lines,
)
from hector.tools.registry import ToolEnv

READ_LIMIT = 10 * 1024 * 1024
WRITE_LIMIT = 1024 * 1024
OUTPUT_BUDGET = 40_000
"""Characters of file text per read_file answer: under the agent loop's own cut-off, so the hint
telling the model where to continue is not cut away."""
SHOWN_LINE = 500
MAX_RESULTS = 1000
SCANNED_LINE = 4000
"""grep_search matches only this many leading characters of a line: backtracking cost grows with
the length of the text, and a minified file's one huge line would otherwise dominate."""
SEARCH_BUDGET = 10.0
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn"})


def _clip(line: str) -> str:
    return line if len(line) <= SHOWN_LINE else f"{line[:SHOWN_LINE]}… [{len(line)} characters]"


class ReadFile(WorkspaceTool):
    name = "read_file"
    description = (
        "Read a text file in the workspace; lines come numbered ('   12| text'). "
        "For a long file, read a range with start_line/end_line."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": path_property("File path, relative to the workspace"),
            "start_line": {"type": "integer", "minimum": 1, "description": "First line to show (from 1)"},
            "end_line": {"type": "integer", "minimum": 1, "description": "Last line to show (inclusive)"},
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any]) -> str:
        rel = self.locate(args["path"], must_exist=True)
        data = read_regular(self.root, rel, self.cfg.max_file_size or READ_LIMIT)
        lines = text_lines(decode_text(data, rel, strict=False))
        if not lines:
            return f"{rel} is empty"
        start, end = args["start_line"] or 1, args["end_line"] or len(lines)
        if start > len(lines):
            raise ToolError(f"start_line {start} is past the end of {rel}, which has {len(lines)} lines")
        if end < start:
            raise ToolError(f"end_line {end} is before start_line {start}; give a range in file order")
        out: list[str] = []
        size = 0
        for number in range(start, min(end, len(lines)) + 1):
            line = f"{number:>5}| {_clip(lines[number - 1])}"
            size += len(line) + 1
            if size > OUTPUT_BUDGET and out:
                out.append(f"[cut at line {number - 1} of {len(lines)}; read on with start_line={number}]")
                break
            out.append(line)
        return "\n".join(out)


class WriteFile(WorkspaceTool):
    name = "write_file"
    description = (
        "Create or overwrite a text file in the workspace with the given content; "
        "missing parent directories are created."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": path_property("File path, relative to the workspace"),
            "content": {"type": "string", "description": "The complete new content of the file"},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any]) -> str:
        rel = self.locate_entry(args["path"])
        check_extension(self.cfg, rel)
        try:
            data = args["content"].encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a JSON \ud800 escape
            raise ToolError("content is not valid Unicode text (lone surrogate characters)") from None
        limit = self.cfg.max_file_size or WRITE_LIMIT
        if len(data) > limit:
            raise ToolError(f"content too large: {len(data)} bytes (max: {limit}); write a smaller file")
        atomic_write(self.root, rel, data, create_parents=True, backup=self.cfg.backup_on_overwrite)
        return f"wrote {len(data)} bytes to {rel}"


class GrepSearch(WorkspaceTool):
    name = "grep_search"
    description = (
        "Search text files in the workspace for a regular expression (Python syntax); answers "
        "'path:line: text' per matching line. Symlinks, binary files and .git are skipped."
    )
    parameters = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "maxLength": 1000, "description": "Regular expression to find"},
            "path": path_property("File or directory to search, relative to the workspace")
            | {"default": "."},
            "include": {"type": "string", "description": "Only file names matching this glob, e.g. '*.py'"},
            "max_results": {
                "type": "integer",
                "minimum": 1,
                "default": MAX_RESULTS,
                "description": f"Stop after this many matching lines (at most {MAX_RESULTS})",
            },
            "ignore_case": {"type": "boolean", "default": False, "description": "Case-insensitive match"},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any]) -> str:
        regex = compile_pattern(args["pattern"], ignore_case=args["ignore_case"])
        rel = self.locate(args["path"], must_exist=True)
        limit = min(args["max_results"], MAX_RESULTS)
        deadline = time.monotonic() + SEARCH_BUDGET
        results: list[str] = []
        skipped = 0
        note = None
        # closing: an early stop must release the walk's directory descriptors at once
        with contextlib.closing(self._files(rel, args["include"])) as files:
            for shown, dfd, name in files:
                try:
                    text = decode_text(read_at(dfd, name, self._file_limit, shown), shown, strict=False)
                except (ToolError, OSError):  # binary, too large, a symlink or unreadable: not searched
                    skipped += 1
                    continue
                note = _scan(text, shown, regex, results, limit, deadline)
                if note:
                    break
        lines = results or ["no matches"]
        if skipped:
            too_large = f"larger than {self._file_limit} bytes"
            lines.append(f"[{skipped} file(s) skipped: binary, {too_large}, or symlinks]")
        if note:
            lines.append(note)
        return "\n".join(lines)

    @property
    def _file_limit(self) -> int:
        return self.cfg.max_file_size or READ_LIMIT

    def _files(self, rel: PurePath, include: str | None) -> Generator[tuple[PurePath, int, str]]:
        """(shown path, directory fd, name) of each file to search, in a stable order."""
        if not stat.S_ISDIR(os.stat(self.root / rel).st_mode):
            with open_dir(self.root, rel.parent) as dfd:
                yield rel, dfd, rel.name
            return
        with open_dir(self.root, rel) as top:
            # fwalk with follow_symlinks=False never enters a symlinked directory, even one swapped
            # in mid-walk; symlinked files are refused by read_at's O_NOFOLLOW.
            for dirpath, dirnames, filenames, dfd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
                for name in sorted(filenames):
                    if include is None or fnmatch.fnmatchcase(name, include):
                        yield rel / dirpath / name, dfd, name


def _scan(
    text: str, shown: PurePath, regex: re.Pattern[str], results: list[str], limit: int, deadline: float
) -> str | None:
    """Add *text*'s matching lines to *results*; a note when the search has to stop."""
    for number, line in enumerate(text_lines(text), 1):
        if regex.search(line, 0, SCANNED_LINE):
            results.append(f"{shown}:{number}: {_clip(line)}")
            if len(results) >= limit:
                return f"[stopped at {limit} results; narrow the pattern, path or include]"
        if time.monotonic() > deadline:
            return (
                f"[search stopped after {SEARCH_BUDGET:.0f} s; "
                "narrow the path or include, or simplify the pattern]"
            )
    return None


_QUANTIFIER = re.compile(r"[*+]|\{(\d*)(,?)(\d*)\}")


def compile_pattern(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    if _nested_repeat(pattern):
        raise ToolError(
            "pattern repeats a group that itself repeats (like (a+)+), which can take forever "
            "to fail; drop the outer or the inner quantifier"
        )
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ToolError(
            f"invalid regular expression: {exc}; escape characters such as ( [ . * + ? with a "
            "backslash to match them literally"
        ) from None


def _nested_repeat(pattern: str) -> bool:
    """Whether a repeated group contains a variable repeat: the shape behind catastrophic
    backtracking in Python's ``re``, which has no timeout. Overlapping alternatives such as
    ``(a|a)+`` are not caught; the line-length cap and the time budget bound those."""
    has_repeat: list[bool] = []  # per open group
    closed_with_repeat = False
    i = 0
    while i < len(pattern):
        char, follows_group = pattern[i], closed_with_repeat
        closed_with_repeat = False
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            continue
        if char == "(":
            has_repeat.append(False)
        elif char == ")" and has_repeat:
            closed_with_repeat = has_repeat.pop()
            if closed_with_repeat and has_repeat:
                has_repeat[-1] = True
        elif quantifier := _QUANTIFIER.match(pattern, i):
            low, comma, high = quantifier.groups(default="")
            variable = quantifier[0] in "*+" or (bool(comma) and (not high or high != low))
            if follows_group and variable:
                return True
            if variable and has_repeat:
                has_repeat[-1] = True
            i = quantifier.end()
            continue
        i += 1
    return False


def _class_end(pattern: str, start: int) -> int:
    """The index after the character class opening at *start* (``]`` first in a class is literal)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def build_read_file(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return ReadFile(cfg, env)


def build_write_file(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return WriteFile(cfg, env)


def build_grep_search(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return GrepSearch(cfg, env)
