"""Native parsing: XLSX workbooks (openpyxl), languages recorded per chunk, default exclusions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path, PurePosixPath

import pytest
from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.config.schema import DocumentStoreConfig, EmbedderConfig
from hector.rag import sources
from hector.rag.documents import DocumentStore
from hector.rag.embedders import build_embedder
from hector.rag.sources import DEFAULT_EXCLUDES, FileFilter, default_excludes, language_of, parse
from hector.rag.vectors import EmbeddedVectorStore


def workbook(path: Path) -> Path:
    book = Workbook()
    sales = book.active
    assert sales is not None
    sales.title = "Sales"
    sales.append(["Region", "Units", "Closed"])
    sales.append(["Fjordland", 120, dt.date(2024, 3, 1)])
    sales.append(["Glacier Bay", 75.0, None])
    sales.append([])
    sales.append(["Total", "=SUM(B2:B3)"])
    staff = book.create_sheet("Staff")
    staff.append(["Name", "Role"])
    staff.append(["Ingrid", "kayak guide"])
    book.save(path)
    return path


def test_xlsx_sheets_become_sections_with_one_line_per_row(tmp_path: Path) -> None:
    data = workbook(tmp_path / "report.xlsx").read_bytes()
    sales, staff = parse("report.xlsx", data)
    assert (sales.name, staff.name) == ("Sales", "Staff")
    # Row n is line n + 1; the empty row stays empty; whole floats lose their ".0". A formula
    # shows the value Excel last computed: a file openpyxl wrote has none, so the cell is empty.
    assert sales.text.splitlines() == [
        "Sheet: Sales",
        "Region | Units | Closed",
        "Fjordland | 120 | 2024-03-01T00:00:00",
        "Glacier Bay | 75",
        "",
        "Total",
    ]
    assert staff.text == "Sheet: Staff\nName | Role\nIngrid | kayak guide"


def test_xlsx_caps_rows_and_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for i in range(50):
        sheet.append([f"row {i}", i])
    book.save(tmp_path / "big.xlsx")
    data = (tmp_path / "big.xlsx").read_bytes()
    monkeypatch.setattr(sources, "XLSX_MAX_ROWS", 10)
    lines = parse("big.xlsx", data)[0].text.splitlines()
    assert lines[1:3] == ["row 0 | 0", "row 1 | 1"] and len(lines) == 12
    assert lines[-1] == "[rows after 10 not indexed]"
    monkeypatch.setattr(sources, "XLSX_MAX_CELLS", 6)  # three rows of two cells
    assert parse("big.xlsx", data)[0].text.splitlines()[-2:] == ["row 2 | 2", "[rows after 3 not indexed]"]


def test_languages_and_default_exclusions() -> None:
    assert [language_of(p) for p in ("a/b.py", "x.GO", "c.ts", "d.md", "e.txt", "Makefile")] == [
        "python",
        "go",
        "typescript",
        "markdown",
        None,
        None,
    ]
    # XLSX is parsed natively now; a format left to an MCP parser is no longer excluded.
    assert "*.xlsx" not in DEFAULT_EXCLUDES and "*.pptx" in DEFAULT_EXCLUDES
    assert FileFilter([], default_excludes(), 10).wanted(PurePosixPath("q1.xlsx"))
    assert not FileFilter([], default_excludes(), 10).wanted(PurePosixPath("deck.pptx"))
    assert FileFilter([], default_excludes([".pptx"]), 10).wanted(PurePosixPath("deck.pptx"))


async def test_indexed_chunks_carry_sheet_and_language(tmp_path: Path, engine: AsyncEngine) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    workbook(folder / "report.xlsx")
    (folder / "tool.py").write_text("def paddle():\n    return 'kayak'\n")
    (folder / "notes.txt").write_text("Plain notes.\n")
    cfg = DocumentStoreConfig.model_validate({"path": str(folder)})
    embedder = build_embedder("local", EmbedderConfig(), tmp_path)
    docs = DocumentStore("docs", cfg, folder, embedder, EmbeddedVectorStore(engine), engine)
    report = await docs.index()
    assert (report.added, report.failed) == (3, 0)
    meta = {(c.document, c.meta.get("section")): c.meta for c in await docs.vectors.chunks("docs")}
    assert set(meta) == {
        ("report.xlsx", "Sales"),
        ("report.xlsx", "Staff"),
        ("tool.py", None),
        ("notes.txt", None),
    }
    assert meta[("tool.py", None)]["language"] == "python"
    assert "language" not in meta[("notes.txt", None)] and "language" not in meta[("report.xlsx", "Staff")]
    hit = (await docs.search("Ingrid kayak guide role", top_k=1))[0]
    assert (hit.chunk.document, hit.chunk.meta["section"]) == ("report.xlsx", "Staff")
