"""Document parsing by MCP tools (a real MCP server over stdio: tests/rag/mcp_parser_server.py),
``internal`` tools, zero-config ``--mcp-parser-tool``, and the search tool's ``language`` filter."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp_types import Tool as MCPToolInfo

from hector.assembly import build_runtime
from hector.cli import main
from hector.cli.zeroconfig import zero_config
from hector.config import parse_config
from hector.config.schema import ToolConfig
from hector.errors import ConfigError
from hector.rag.mcp_parsers import arguments_for, attach
from hector.rag.sources import parse_file
from hector.runtime import Runtime
from hector.tools.mcp import MCPToolSource
from tests.harness import running_hector
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.rag import mcp_parser_server
from tests.rag.mcp_parser_server import MARK, hdoc
from tests.rag.test_retrieval import ask, llm, tool_result

PARSER = {"type": "mcp", "command": sys.executable, "args": [str(Path(mcp_parser_server.__file__))]}
HTML = "<html><body><h1>Lighthouse tours</h1><p>Tours leave the pier at noon.</p></body></html>"
MINUTES = "The harbour committee approved the new ferry timetable."


def write_folder(folder: Path, *broken: str) -> Path:
    folder.mkdir()
    (folder / "minutes.hdoc").write_bytes(hdoc(MINUTES))
    (folder / "page.html").write_text(HTML)
    (folder / "notes.md").write_text("# Notes\n\nBring a raincoat.\n")
    for name in broken:
        data = hdoc(MINUTES) if name.endswith(".hdoc") else HTML.encode()
        (folder / name).write_bytes(data)
    return folder


def config(folder: Path, parsers: dict[str, Any], **source: Any) -> dict[str, Any]:
    return {
        "llms": {"t": {"type": "test"}},
        "tools": {"docling": {**PARSER, "internal": True, **source}},
        "document_stores": {"kb": {"path": str(folder), "mcp_parsers": parsers}},
        "agents": {"a": {"llm": "t", "tools": ["search"]}},
    }


def runtime(data: dict[str, Any], base: Path) -> Runtime:
    return build_runtime(parse_config(data, "<test>").config, base)


async def texts(rt: Runtime, store: str = "kb") -> dict[str, str]:
    assert rt.library is not None
    await rt.documents_indexed()  # started in the background
    return {c.document: c.text for c in await rt.library.stores[store].vectors.chunks(store)}


# Chunks join a document's paragraphs with single newlines.
MCP_HTML = f"Lighthouse tours\nTours leave the pier at noon.\n{MARK}"
MCP_MINUTES = f"{MINUTES}\n{MARK}"


async def test_priority_decides_who_parses_and_mcp_reads_what_native_cannot(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "kb")
    parsers = {"tool_names": ["convert_document"], "extensions": "hdoc, .HTML"}
    data = config(folder, parsers)
    # Three stores on one folder (and one MCP server), each deciding differently.
    stores = data["document_stores"]
    stores["native"] = {"path": str(folder), "mcp_parsers": {**parsers, "prefer_native": True}}
    stores["tie"] = {"path": str(folder), "mcp_parsers": {**parsers, "priority": 5}}
    async with runtime(data, tmp_path) as rt:
        found = {name: await texts(rt, name) for name in ("kb", "native", "tie")}
    # Native parsing finds no text in .hdoc: the MCP tool is asked whatever the priority.
    notes = "# Notes\nBring a raincoat."
    assert found["kb"] == {"minutes.hdoc": MCP_MINUTES, "page.html": MCP_HTML, "notes.md": notes}  # 8 > 5
    assert (
        found["native"] == found["tie"] == {"minutes.hdoc": MCP_MINUTES, "page.html": HTML, "notes.md": notes}
    )


async def test_mcp_failure_falls_back_to_native_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_folder(tmp_path / "kb", "broken.html", "broken.hdoc")
    parsers = {"tool_names": ["convert_document"], "extensions": [".hdoc", ".html"]}
    caplog.set_level(logging.WARNING, "hector.rag")
    async with runtime(config(folder, parsers), tmp_path) as rt:
        found = await texts(rt)
        assert found["broken.html"] == HTML and found["page.html"] == MCP_HTML
        assert "broken.hdoc" not in found
        assert re.search(
            r"document store kb: MCP parsing of broken.html failed \(MCP tool convert_document of docling "
            r"failed: .*cannot convert broken.html: damaged file\); using the native parser",
            caplog.text,
        )
        assert "cannot parse broken.hdoc: MCP parsing failed" in caplog.text
        # Not recorded as indexed: the next run asks the MCP server again.
        assert rt.library is not None
        report = await rt.library.stores["kb"].index()
        assert (report.failed, report.unchanged) == (1, 4)


async def test_tool_gets_the_file_as_its_schema_asks(tmp_path: Path) -> None:
    path = tmp_path / "a b.hdoc"
    path.write_bytes(b"xyz")
    assert arguments_for({"properties": {"path": {}}}, path) == {"path": str(path)}
    assert arguments_for({"properties": {"source": {}, "other": {}}}, path) == {"source": str(path)}
    assert arguments_for({"properties": {"uri": {}}}, path) == {"uri": path.as_uri()}
    assert arguments_for({"properties": {"filename": {}, "content_base64": {}}}, path) == {
        "filename": "a b.hdoc",
        "content_base64": "eHl6",
    }
    assert arguments_for({"type": "object"}, path) == {"path": str(path)}
    # Over MCP: the base64 tool; the source named by its key, narrowed to that one tool by filter.
    folder = write_folder(tmp_path / "kb")
    data = config(folder, {"tool_names": ["docling"], "extensions": ["hdoc"]}, filter=["convert_upload"])
    async with runtime(data, tmp_path) as rt:
        assert (await texts(rt))["minutes.hdoc"] == MCP_MINUTES


async def test_start_up_fails_on_a_tool_no_source_offers(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "kb")
    with pytest.raises(
        ConfigError, match=r"'kb': no MCP source offers the parser tool 'ocr' \(MCP tools: conv"
    ):
        async with runtime(config(folder, {"tool_names": ["ocr"]}), tmp_path):
            pass
    # A source's name stands for its only tool.
    source = MCPToolSource("docling", ToolConfig.model_validate(PARSER), tmp_path, None)
    offered = [MCPToolInfo(name=n, input_schema={"type": "object"}) for n in ("convert", "count")]
    store = runtime(config(folder, {"tool_names": ["docling"]}), tmp_path).library
    assert store is not None
    with pytest.raises(
        ConfigError, match=r"MCP source 'docling', which offers 2 tools \(convert, count\); name"
    ):
        attach(store.stores.values(), {"docling": source}, {"docling": offered})
    attach(store.stores.values(), {"docling": source}, {"docling": offered[:1]})
    assert store.stores["kb"].parse_file is not parse_file


@pytest.mark.parametrize(
    ("tools", "parsers", "error"),
    [
        ({}, {"tool_names": ["convert"]}, "mcp_parsers tool 'convert' is not a declared MCP tool source"),
        (
            {"grep": {"handler": "grep_search"}},
            {"tool_names": "grep"},
            "'grep' is a function tool, not an MCP",
        ),
        ({"docling": {**PARSER, "enabled": False}}, {"tool_names": ["docling"]}, "'docling' is disabled"),
        ({"docling": PARSER}, {}, "mcp_parsers.tool_names is empty"),
    ],
)
def test_validation(tools: dict[str, Any], parsers: dict[str, Any], error: str) -> None:
    data = {"tools": tools, "document_stores": {"kb": {"path": ".", "mcp_parsers": parsers}}}
    with pytest.raises(ConfigError, match=re.escape(error)):
        parse_config(data, "<test>")


def test_zero_config_mcp_parser_tool(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--mcp-parser-tool needs --docs-folder"):
        zero_config(provider="test", mcp_parser_tool=["convert_document"])
    data = zero_config(
        provider="test", docs_folder=tmp_path, mcp_url="http://127.0.0.1:9/mcp", mcp_parser_tool=["a", "b"]
    )
    [store] = data["document_stores"].values()
    assert store["mcp_parsers"] == {
        "tool_names": ["a", "b"],
        "extensions": [".pdf", ".docx", ".pptx", ".xlsx", ".html"],
        "priority": 8,
    }
    assert data["tools"] == {"mcp": {"type": "mcp", "url": "http://127.0.0.1:9/mcp"}}
    assert data["agents"]["assistant"]["tools"] == ["mcp", "search"]
    assert parse_config(data, "<zero-config>").warnings == []
    without_source = zero_config(provider="test", docs_folder=tmp_path, mcp_parser_tool=["a"])
    with pytest.raises(ConfigError, match="mcp_parsers tool 'a' is not a declared MCP tool source"):
        parse_config(without_source, "<zero-config>")


def test_index_command_parses_through_mcp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_folder(tmp_path / "kb")
    data = config(tmp_path / "kb", {"tool_names": ["convert_document"], "extensions": [".hdoc"]})
    (tmp_path / "hector.json").write_text(json.dumps(data))  # JSON is YAML
    assert main(["index", "--config", str(tmp_path / "hector.json")]) == 0
    assert "kb: 3 added, 0 updated, 0 removed, 0 unchanged" in capsys.readouterr().out

    async def served() -> tuple[int, str]:
        async with runtime(data, tmp_path) as rt:
            assert rt.library is not None
            return (await rt.library.stores["kb"].index()).unchanged, (await texts(rt))["minutes.hdoc"]

    assert asyncio.run(served()) == (3, MCP_MINUTES)


def searched(recorded: Any) -> list[str]:
    """The sources cited in the latest search result of a request."""
    return re.findall(r"^\[\d+\] (\S+?)[:\s]", tool_result(recorded), re.MULTILINE)


async def test_internal_tool_is_hidden_and_search_filters_by_language(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    folder = write_folder(tmp_path / "kb")
    (folder / "ferry.py").write_text("def ferry_timetable():\n    return ['08:00', '12:00']\n")
    (folder / "ferry.go").write_text("func FerryTimetable() []string { return nil }\n")
    data = config(folder, {"tool_names": ["convert_document"], "extensions": [".hdoc"]})
    data["llms"] = {"t": llm(llm_server)}
    data["agents"]["a"]["tools"] = ["docling", "search"]
    assert parse_config(data, "<test>").warnings == [
        "agent 'a': tool 'docling' is internal (document parsing only); the agent won't get it"
    ]
    for arguments in ({"query": "ferry timetable"}, {"query": "ferry timetable", "language": "python"}):
        llm_server.reply(tool_calls=[ScriptedCall("search", arguments)])
    llm_server.reply(tool_calls=[ScriptedCall("search", {"query": "ferry timetable", "language": "rb"})])
    llm_server.reply("Done.")
    async with running_hector(data, tmp_path) as url:
        assert await ask(url, "when do ferries leave?", agent="a") == "Done."
    first, everything, python, ruby = llm_server.requests
    assert [t["function"]["name"] for t in first.body["tools"]] == ["search"]
    # The MCP-parsed document is searchable; the language filter keeps python files only.
    assert {"minutes.hdoc", "ferry.py", "ferry.go"} <= set(searched(everything))
    assert MARK in tool_result(everything)
    assert searched(python) == ["ferry.py"]
    assert tool_result(ruby) == "No results for 'ferry timetable' in ruby files."
