"""Unified diffs for apply_patch: parsing, and applying hunks to text in memory (no file access).

Written here rather than taken from PyPI: the tool must check every path itself before anything
is touched and write atomically, which rules out libraries that apply patches to disk, and the
parse-only ones (unidiff) would still leave the matching below to write. Models' patches are often
slightly wrong, so the parser is forgiving where that is safe: a hunk is its body up to the next
hunk or file header (the @@ line counts, often miscounted by models, are not trusted), a blank
hunk line is an empty context line, and a hunk is found by its content near the line number its
header gives. A hunk's lines must still match the file (exactly, or else up to trailing
whitespace); a hunk that does not is refused, never applied by guesswork.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hector.errors import ToolError

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    line: int
    """Where the hunk starts in the patch (1-based), for messages."""
    old_start: int
    """0-based index where the old lines should start: a hint, the content decides."""
    body: list[tuple[str, str]] = field(default_factory=list)
    """(tag, text): tag ' ' context, '-' removed, '+' added."""
    old_no_eol: bool = False
    new_no_eol: bool = False

    @property
    def old_lines(self) -> list[str]:
        return [text for tag, text in self.body if tag != "+"]


@dataclass
class FilePatch:
    old_path: str | None
    """None for /dev/null: the patch creates the file."""
    new_path: str | None
    """None for /dev/null: the patch deletes the file."""
    hunks: list[Hunk]

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


def parse_patch(text: str) -> list[FilePatch]:
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    files: list[FilePatch] = []
    i = 0
    while i < len(lines):
        if _is_file_header(lines, i):
            old, new = _header_paths(lines[i], lines[i + 1], i + 1)
            i += 2
            hunks: list[Hunk] = []
            while (j := _skip_blank(lines, i)) < len(lines) and lines[j].startswith("@@"):
                hunk, i = _parse_hunk(lines, j)
                hunks.append(hunk)
            if not hunks and old is not None and new is not None:
                raise ToolError(f"patch line {i}: no @@ hunks for {new}; add the changes as hunks")
            files.append(FilePatch(old, new, hunks))
        elif lines[i].startswith("@@"):
            raise ToolError(
                f"patch line {i + 1}: a hunk with no file headers; put '--- path' and '+++ path' before it"
            )
        else:  # diff --git, index, mode lines and prose around the diff carry nothing we need
            i += 1
    if not files:
        raise ToolError(
            "no file headers found; a unified diff needs '--- a/path' and '+++ b/path' lines "
            "before each file's @@ hunks"
        )
    return files


def _is_file_header(lines: list[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _skip_blank(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _header_paths(old_line: str, new_line: str, number: int) -> tuple[str | None, str | None]:
    old, new = _header_path(old_line[4:], number), _header_path(new_line[4:], number + 1)
    if old is None and new is None:
        raise ToolError(f"patch line {number}: both sides are /dev/null")
    # git's a/ and b/ prefixes: stripped only when both sides carry them (or are /dev/null), so a
    # real directory named "a" or "b" in a prefix-less patch keeps its name.
    if (old is None or old.startswith("a/")) and (new is None or new.startswith("b/")):
        old, new = old and old[2:], new and new[2:]
    if old is not None and new is not None and old != new:
        raise ToolError(f"patch line {number}: renaming {old!r} to {new!r} is not supported; patch in place")
    return old, new


def _header_path(raw: str, number: int) -> str | None:
    path = raw.split("\t", 1)[0].strip()  # a tab separates an optional timestamp
    if path.startswith('"'):
        raise ToolError(f"patch line {number}: quoted file names are not supported; use the plain name")
    if not path:
        raise ToolError(f"patch line {number}: the file header names no file")
    return None if path == "/dev/null" else path


def _parse_hunk(lines: list[str], start: int) -> tuple[Hunk, int]:
    header = _HUNK_HEADER.match(lines[start])
    if header is None:
        raise ToolError(
            f"patch line {start + 1}: malformed hunk header {lines[start][:80]!r}; "
            "expected '@@ -start,count +start,count @@'"
        )
    # With a count of zero old lines, the start is the line *after which* the new lines go.
    old_start = int(header[1])
    hunk = Hunk(start + 1, old_start if header[2] == "0" else max(old_start - 1, 0))
    i = start + 1
    while i < len(lines) and not _hunk_ends(lines, i):
        line = lines[i]
        if line.startswith("\\"):  # "\ No newline at end of file", about the line before
            last = hunk.body[-1][0] if hunk.body else " "
            hunk.old_no_eol |= last in " -"
            hunk.new_no_eol |= last in " +"
        else:  # a blank line is a context line whose leading space an editor dropped
            hunk.body.append((line[0], line[1:]) if line else (" ", ""))
        i += 1
    # Blank lines at the end separate the hunk from what follows; were they context, a little
    # less context still applies the same way.
    while i > start + 1 and not lines[i - 1]:
        hunk.body.pop()
        i -= 1
    if not hunk.body:
        raise ToolError(f"patch line {start + 1}: the hunk is empty")
    return hunk, i


def _hunk_ends(lines: list[str], i: int) -> bool:
    line = lines[i]
    return (
        line.startswith(("@@", "diff "))
        or _is_file_header(lines, i)
        or (bool(line) and line[0] not in " -+\\")
    )


def apply_hunks(original: str, patch: FilePatch, shown: str) -> str:
    """*original* with *patch*'s hunks applied, or ``ToolError`` naming the hunk that does not fit.

    Lines the patch does not touch keep their own endings (a file with mixed endings stays so);
    added lines take the file's dominant one.
    """
    eol = "\r\n" if "\r\n" in original else "\n"
    pieces = original.split("\n")
    tail = pieces.pop()  # the text after the last newline: "" when the file ends with one
    entries = [(p.removesuffix("\r"), "\r\n" if p.endswith("\r") else "\n") for p in pieces]
    if tail:
        entries.append((tail, ""))
    lines = [text for text, _ in entries]
    out: list[tuple[str, str]] = []
    final_ending: str | None = None
    pos = 0
    for number, hunk in enumerate(patch.hunks, 1):
        at = _locate(lines, hunk, pos)
        if at is None:
            raise ToolError(_mismatch(lines, hunk, number, shown))
        out.extend(entries[pos:at])
        k = at
        for tag, text in hunk.body:
            if tag == " ":  # the file's own line: it may differ from the patch in trailing blanks
                out.append(entries[k])
            elif tag == "+":
                out.append((text, eol))
            k += tag != "+"
        pos = k
        if pos == len(lines) and (hunk.new_no_eol or hunk.old_no_eol):  # "\ No newline" at the end
            final_ending = "" if hunk.new_no_eol else eol
        elif pos == len(lines) and entries:  # no marker: the file keeps its ending, or lack of one
            final_ending = entries[-1][1]
    out.extend(entries[pos:])
    if not out:
        return ""
    # Only the last line may lack an ending: a line added after it needs one.
    body = "".join(text + (ending or eol) for text, ending in out[:-1])
    text, ending = out[-1]
    return body + text + (ending if final_ending is None else final_ending)


def _locate(lines: list[str], hunk: Hunk, start: int) -> int | None:
    """Where *hunk*'s old lines are, at or after *start*: exact matches first, then ignoring
    trailing whitespace; of several, the one nearest the header's line number."""
    old = hunk.old_lines
    last = len(lines) - len(old)
    if not old:
        return min(max(hunk.old_start, start), len(lines))
    for same in (str.__eq__, lambda a, b: a.rstrip() == b.rstrip()):
        found = [
            i
            for i in range(start, last + 1)
            if same(lines[i], old[0]) and all(same(lines[i + j], old[j]) for j in range(1, len(old)))
        ]
        if found:
            return min(found, key=lambda i: abs(i - hunk.old_start))
    return None


def _mismatch(lines: list[str], hunk: Hunk, number: int, shown: str) -> str:
    where = min(hunk.old_start, max(len(lines) - 1, 0))
    old = hunk.old_lines
    detail = ""
    for j, expected in enumerate(old):
        found = lines[where + j] if where + j < len(lines) else None
        if found != expected:
            seen = "the end of the file" if found is None else repr(found[:80])
            detail = f"; at line {where + j + 1} it expects {expected[:80]!r} but finds {seen}"
            break
    return (
        f"{shown}: hunk {number} (patch line {hunk.line}) does not apply: its context and removed "
        f"lines are not in the file{detail}. Read the file again and rebuild the hunk from its "
        "current text; nothing was changed"
    )
