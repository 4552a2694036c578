"""Which files of a folder a document store indexes, their text, and its chunks.

Markdown, plain text and source code are read as text; PDF (pypdf), DOCX (python-docx) and
XLSX (openpyxl) have their own parsers. Other binary files are skipped, unless a store hands them
to an MCP parser (``hector.rag.mcp_parsers``). Text is cut into chunks of about
``chunk_size`` characters on paragraph and line boundaries, and every chunk remembers its line
range, so a search result can cite where it came from.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import io
import os
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Excluded unless exclude_patterns replaces the list (additional_exclude_patterns extends it).
# A pattern without "/" matches any one path component; one with "/" the whole relative path.
DEFAULT_EXCLUDES = (
    # version control, dependencies, virtual environments, caches, build output
    ".git", ".hg", ".svn", ".bzr", "node_modules", "bower_components", "vendor", ".venv", "venv",
    "env", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
    ".gradle", ".idea", ".vscode", ".cache", ".next", ".nuxt", "dist", "build", "target", "out",
    "coverage", ".coverage", "htmlcov", ".terraform", ".hector", "*.egg-info", ".DS_Store",
    # lock files and logs
    "*.lock", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "*.log",
    # compiled, binary, media, archives, fonts, databases
    "*.pyc", "*.pyo", "*.class", "*.o", "*.a", "*.so", "*.dylib", "*.dll", "*.exe", "*.bin",
    "*.wasm", "*.jar", "*.war", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.bmp", "*.ico", "*.webp",
    "*.svg", "*.tiff", "*.psd", "*.mp3", "*.mp4", "*.wav", "*.flac", "*.ogg", "*.avi", "*.mov",
    "*.mkv", "*.webm", "*.zip", "*.tar", "*.gz", "*.tgz", "*.bz2", "*.xz", "*.7z", "*.rar",
    "*.woff", "*.woff2", "*.ttf", "*.otf", "*.eot", "*.db", "*.sqlite", "*.sqlite3",
    "*.db-wal", "*.db-shm", "*.parquet", "*.pkl", "*.npy", "*.safetensors", "*.min.js",
    "*.map", "*.pptx", "*.xls", "*.doc", "*.ppt",
)  # fmt: skip

# The language recorded with each chunk (``meta["language"]``), which the search tool filters on.
LANGUAGES = {
    ".py": "python", ".pyi": "python", ".go": "go", ".ts": "typescript", ".tsx": "typescript",
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala", ".rs": "rust",
    ".rb": "ruby", ".php": "php", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp",
    ".hpp": "cpp", ".cs": "csharp", ".swift": "swift", ".m": "objective-c", ".dart": "dart",
    ".lua": "lua", ".r": "r", ".jl": "julia", ".ex": "elixir", ".exs": "elixir", ".erl": "erlang",
    ".hs": "haskell", ".clj": "clojure", ".sh": "shell", ".bash": "shell", ".zsh": "shell",
    ".ps1": "powershell", ".sql": "sql", ".proto": "protobuf", ".tf": "terraform",
    ".html": "html", ".htm": "html", ".css": "css", ".scss": "scss", ".vue": "vue",
    ".svelte": "svelte", ".md": "markdown", ".markdown": "markdown", ".rst": "restructuredtext",
    ".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".xml": "xml",
}  # fmt: skip

# A spreadsheet is cut off past these, with a note: a log dumped into Excel is not a document.
XLSX_MAX_ROWS = 10_000
"""Rows read per sheet."""
XLSX_MAX_COLUMNS = 100
XLSX_MAX_CELLS = 500_000
"""Cells read per workbook."""


def extension(path: str) -> str:
    """The lower-case suffix of *path*, with its dot (``""`` when it has none)."""
    return PurePosixPath(path).suffix.lower()


def language_of(path: str) -> str | None:
    """The language of a file, from its extension: ``python``, ``go``, ``markdown``, …"""
    return LANGUAGES.get(extension(path))


def default_excludes(parsed: Collection[str] = ()) -> list[str]:
    """The default exclusions, less the ``*.ext`` entries of extensions an MCP parser reads."""
    wanted = {f"*{e}" for e in parsed}
    return [p for p in DEFAULT_EXCLUDES if p not in wanted]


@dataclass(frozen=True)
class Section:
    """Text of one part of a file: the whole of a text file, a page of a PDF, a sheet of a
    workbook (*name*: the sheet's)."""

    text: str
    page: int | None = None
    name: str | None = None


def _matches(rel: PurePosixPath, pattern: str) -> bool:
    pattern = pattern.strip().removeprefix("./").removeprefix("**/").rstrip("/")
    if not pattern:
        return False
    if "/" in pattern:
        return fnmatch.fnmatchcase(rel.as_posix(), pattern) or fnmatch.fnmatchcase(
            rel.as_posix(), f"{pattern}/*"
        )
    return any(fnmatch.fnmatchcase(part, pattern) for part in rel.parts)


class FileFilter:
    def __init__(self, include: list[str], exclude: list[str], max_file_size: int) -> None:
        self.include = include
        self.exclude = exclude
        self.max_file_size = max_file_size

    def excluded_dir(self, rel: PurePosixPath) -> bool:
        return any(_matches(rel, p) for p in self.exclude)

    def wanted(self, rel: PurePosixPath) -> bool:
        if any(_matches(rel, p) for p in self.exclude):
            return False
        return not self.include or any(_matches(rel, p) for p in self.include)


def walk(root: Path, file_filter: FileFilter) -> Iterator[tuple[str, Path]]:
    """(relative posix path, absolute path) of each wanted file, in a stable order."""
    for top, dirs, files in os.walk(root):
        folder = Path(top)
        rel_dir = PurePosixPath(folder.relative_to(root).as_posix())
        # Pruning here keeps os.walk out of node_modules and .git entirely.
        dirs[:] = sorted(d for d in dirs if not file_filter.excluded_dir(rel_dir / d))
        for name in sorted(files):
            rel = rel_dir / name
            path = folder / name
            if not file_filter.wanted(rel) or path.is_symlink():
                continue
            try:
                if path.stat().st_size > file_filter.max_file_size:
                    continue
            except OSError:
                continue
            yield rel.as_posix(), path


def _pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return [Section(page.extract_text() or "", number) for number, page in enumerate(reader.pages, 1)]


def _docx(data: bytes) -> list[Section]:
    import docx

    document = docx.Document(io.BytesIO(data))
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        blocks += [" | ".join(cell.text for cell in row.cells) for row in table.rows]
    # Blank lines between paragraphs let the chunker cut on paragraph boundaries.
    return [Section("\n\n".join(b for b in blocks if b.strip()))]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores every number as a float: 3, not 3.0
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).replace("\n", " ")


def _xlsx(data: bytes) -> list[Section]:
    from openpyxl import load_workbook

    # Read-only mode streams rows instead of building every cell object; data_only gives the
    # values formulas last computed, not the formulas.
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sections: list[Section] = []
    budget = XLSX_MAX_CELLS
    try:
        for sheet in workbook.worksheets:
            # One line per row, so a chunk's line range is (almost) its row range: line 1 is the
            # sheet's name, row n is line n + 1; an empty row stays an empty line.
            lines = [f"Sheet: {sheet.title}"]
            # Rows come padded to max_col: the sheet's own width, when its header declares one.
            width = min(sheet.max_column or XLSX_MAX_COLUMNS, XLSX_MAX_COLUMNS)
            for number, row in enumerate(sheet.iter_rows(max_col=width, values_only=True), 1):
                if number > XLSX_MAX_ROWS or budget <= 0:
                    lines.append(f"[rows after {number - 1} not indexed]")
                    break
                budget -= len(row)
                lines.append(" | ".join(_cell(v) for v in row).rstrip(" |"))
            sections.append(Section("\n".join(lines).rstrip(), name=sheet.title))
    finally:
        workbook.close()
    return sections


NATIVE = {".pdf": _pdf, ".docx": _docx, ".xlsx": _xlsx}


def parse(path: str, data: bytes) -> list[Section]:
    """The text of a file; no sections for a binary file. Blocking: run it off the event loop."""
    native = NATIVE.get(extension(path))
    if native is not None:
        return native(data)
    if b"\x00" in data[:8192]:
        return []
    return [Section(data.decode("utf-8", errors="replace"))]


FileParser = Callable[[str, Path], Awaitable[list[Section]]]
"""(relative path, absolute path) → the file's sections."""


async def parse_file(rel: str, path: Path) -> list[Section]:
    """Native parsing of the file at *path*, off the event loop."""
    return await asyncio.to_thread(lambda: parse(rel, path.read_bytes()))


@dataclass(frozen=True)
class Piece:
    text: str
    start_line: int
    end_line: int


def _blocks(lines: list[str]) -> list[list[tuple[int, str]]]:
    """Paragraphs: runs of non-blank lines, each line with its 1-based number."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            current.append((number, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _units(lines: list[str], size: int) -> list[list[tuple[int, str]]]:
    """Units no longer than *size*: whole paragraphs where they fit, else single lines, else
    pieces of a line (a minified file has no better place to cut)."""
    units: list[list[tuple[int, str]]] = []
    for block in _blocks(lines):
        if sum(len(text) + 1 for _, text in block) <= size:
            units.append(block)
            continue
        for number, text in block:
            if len(text) <= size:
                units.append([(number, text)])
            else:
                units += [[(number, text[i : i + size])] for i in range(0, len(text), size)]
    return units


def chunk_text(text: str, size: int, overlap: int = 0) -> list[Piece]:
    """Greedy packing of paragraphs into chunks of at most *size* characters; with *overlap*,
    each chunk starts with the last lines (up to *overlap* characters) of the one before."""
    pieces: list[Piece] = []
    current: list[tuple[int, str]] = []
    length = 0

    def flush() -> list[tuple[int, str]]:
        pieces.append(Piece("\n".join(t for _, t in current), current[0][0], current[-1][0]))
        carried: list[tuple[int, str]] = []
        budget = overlap
        for line in reversed(current):
            if len(line[1]) + 1 > budget:
                break
            carried.insert(0, line)
            budget -= len(line[1]) + 1
        return carried

    for unit in _units(text.splitlines(), size):
        unit_length = sum(len(t) + 1 for _, t in unit)
        if current and length + unit_length > size:
            carried = flush()
            # Overlap never pushes a chunk past the size: drop carried lines that would.
            while carried and sum(len(t) + 1 for _, t in carried) + unit_length > size:
                carried.pop(0)
            current = carried
            length = sum(len(t) + 1 for _, t in current)
        current += unit
        length += unit_length
    if current and any(t.strip() for _, t in current):
        flush()
    return pieces
