"""Agent shortcuts (docs_folder, mcp_parser_tool, enable_tools) and inline providers (SPEC §2.6):
each expands into the plain entries it stands for, as validate shows and the server serves."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from a2a.types.a2a_pb2 import TaskState

from hector.cli import main
from hector.cli.zeroconfig import zero_config
from hector.config import BUILTIN_TOOLS, parse_config
from hector.config.schema import Config
from hector.errors import ConfigError
from tests.harness import running_hector
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.server.test_a2a import client_for, final_text, request

MCP_SOURCE = {"type": "mcp", "url": "http://127.0.0.1:9/mcp", "internal": True}


def loaded(data: dict[str, Any], base_dir: Path) -> Config:
    return parse_config(data, "<test>", base_dir=base_dir).config


def store_name(folder: Path) -> str:
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    return f"docs_{folder.name}_{digest}"


def test_docs_folder_declares_a_store_and_the_search_tool(tmp_path: Path) -> None:
    (tmp_path / "manuals").mkdir()
    cfg = loaded({"agents": {"helper": {"docs_folder": "manuals", "tools": ["read_file"]}}}, tmp_path)
    name = store_name(tmp_path / "manuals")
    assert list(cfg.document_stores) == [name]
    store = cfg.document_stores[name]
    assert (store.source, store.source_path) == ("directory", str(tmp_path / "manuals"))
    assert store.max_file_size == 50 * 1024 * 1024
    assert (store.vector_store, store.embedder, store.mcp_parsers) == (None, None, None)
    agent = cfg.agents["helper"]
    assert agent.document_stores == [name] and agent.tools == ["read_file", "search"]
    assert agent.docs_folder is None
    # The same store as `hector serve --docs-folder` makes of the folder.
    assert zero_config(provider="test", docs_folder=tmp_path / "manuals")["document_stores"] == {
        name: {"path": str(tmp_path / "manuals"), "max_file_size": 50 * 1024 * 1024}
    }


def test_mcp_parser_tool_parses_the_folder_through_mcp(tmp_path: Path) -> None:
    data = {
        "tools": {"docling": MCP_SOURCE, "convert": MCP_SOURCE},
        "agents": {"helper": {"docs_folder": str(tmp_path), "mcp_parser_tool": "docling, convert"}},
    }
    parsers = loaded(data, tmp_path).document_stores[store_name(tmp_path)].mcp_parsers
    assert parsers is not None
    assert parsers.tool_names == ["docling", "convert"]
    assert parsers.extensions == [".pdf", ".docx", ".pptx", ".xlsx", ".html"]
    assert (parsers.priority, parsers.prefer_native) == (8, False)
    # A list works as well as a comma string; the parsers are checked like any store's.
    data["agents"]["helper"]["mcp_parser_tool"] = ["nowhere"]
    data["tools"] = {}
    with pytest.raises(ConfigError, match="mcp_parsers tool 'nowhere' is not a declared MCP tool source"):
        loaded(data, tmp_path)


def test_enable_tools_gives_every_builtin_tool(tmp_path: Path) -> None:
    cfg = loaded({"agents": {"helper": {"enable_tools": True}, "plain": {}}}, tmp_path)
    assert cfg.agents["helper"].tools == list(BUILTIN_TOOLS)
    assert cfg.agents["plain"].tools is None
    assert (
        loaded({"agents": {"helper": {"enable_tools": False, "tools": []}}}, tmp_path).agents["helper"].tools
        == []
    )


def test_inline_providers_become_top_level_entries(tmp_path: Path) -> None:
    data = {
        "llms": {"main": {"type": "ollama"}},
        "agents": {
            "writer": {
                "llm_config": {"type": "anthropic", "model": "claude-x", "api_key": "sk-ant-inline"},
                "vector_store_config": {"type": "qdrant", "host": "qdrant.internal"},
                "embedder_config": {"type": "ollama", "model": "nomic-embed-text"},
                "docs_folder": ".",
                "memory": {"long_term": {}},
            },
            "other": {"llm": "main"},
        },
    }
    cfg = loaded(data, tmp_path)
    assert list(cfg.llms) == ["main", "writer-llm-inline"]
    assert (cfg.llms["writer-llm-inline"].type, cfg.llms["writer-llm-inline"].model) == (
        "anthropic",
        "claude-x",
    )
    assert cfg.vector_stores["writer-vector-store-inline"].host == "qdrant.internal"
    assert cfg.embedders["writer-embedder-inline"].model == "nomic-embed-text"
    writer = cfg.agents["writer"]
    assert (writer.llm, writer.vector_store, writer.embedder) == (
        "writer-llm-inline",
        "writer-vector-store-inline",
        "writer-embedder-inline",
    )
    assert (writer.llm_config, writer.vector_store_config, writer.embedder_config) == (None, None, None)
    # The agent's folder is indexed with the agent's own providers.
    store = cfg.document_stores[store_name(tmp_path)]
    assert (store.vector_store, store.embedder) == ("writer-vector-store-inline", "writer-embedder-inline")


def test_print_config_shows_the_expanded_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docs").mkdir()
    path = tmp_path / "hector.yaml"
    path.write_text(
        "agents:\n  helper:\n    docs_folder: docs\n    enable_tools: true\n"
        "    llm_config: {type: openai, api_key: sk-inline-secret}\n"
    )
    assert main(["validate", str(path), "--print-config"]) == 0
    out = capsys.readouterr().out
    dumped = yaml.safe_load(out)
    helper = dumped["agents"]["helper"]
    name = store_name(tmp_path / "docs")
    assert helper["llm"] == "helper-llm-inline" and helper["document_stores"] == [name]
    assert helper["tools"] == list(BUILTIN_TOOLS)
    assert not {"docs_folder", "enable_tools", "llm_config", "mcp_parser_tool"} & set(helper)
    assert dumped["llms"]["helper-llm-inline"]["api_key"] == "**********"
    assert dumped["document_stores"][name]["source_path"] == str(tmp_path / "docs")
    assert "sk-inline-secret" not in out


@pytest.mark.parametrize(
    ("agent", "error"),
    [
        (
            {"docs_folder": ".", "document_stores": ["kb"]},
            "agent 'a': docs_folder and document_stores cannot both be given",
        ),
        ({"mcp_parser_tool": "docling"}, "agent 'a': mcp_parser_tool needs docs_folder"),
        (
            {"enable_tools": True, "tools": ["search"]},
            "agent 'a': enable_tools and tools cannot both be given",
        ),
        ({"enable_tools": True, "tools": []}, "agent 'a': enable_tools and tools cannot both be given"),
        (
            {"llm": "main", "llm_config": {"type": "ollama"}},
            "agent 'a': cannot specify both llm reference and llm_config",
        ),
        (
            {"vector_store": "vs", "vector_store_config": {}},
            "agent 'a': cannot specify both vector_store reference and vector_store_config",
        ),
        (
            {"embedder": "e", "embedder_config": {}},
            "agent 'a': cannot specify both embedder reference and embedder_config",
        ),
        ({"docs_folder": "missing"}, "agent 'a': docs_folder 'missing' is not a folder"),
        (
            {"type": "a2a", "url": "http://127.0.0.1:9", "docs_folder": "."},
            "agent 'a': docs_folder cannot be used with external A2A agents",
        ),
        ({"llm_config": {"modle": "x"}}, "agents.a.llm_config.modle: unknown key (did you mean 'model'?)"),
    ],
)
def test_shortcut_errors(tmp_path: Path, agent: dict[str, Any], error: str) -> None:
    data = {"llms": {"main": {"type": "ollama"}}, "tools": {"docling": MCP_SOURCE}, "agents": {"a": agent}}
    with pytest.raises(ConfigError, match=re.escape(error)):
        loaded(data, tmp_path)


def test_inline_name_taken_and_shared_folders(tmp_path: Path) -> None:
    taken = {
        "llms": {"a-llm-inline": {"type": "ollama"}},
        "agents": {"a": {"llm_config": {"type": "ollama"}}},
    }
    with pytest.raises(ConfigError, match=re.escape("llms entry 'a-llm-inline', which is already declared")):
        loaded(taken, tmp_path)
    # Two agents on one folder share its store, unless they would index it differently.
    shared = {"agents": {"a": {"docs_folder": "."}, "b": {"docs_folder": str(tmp_path)}}}
    cfg = loaded(shared, tmp_path)
    assert list(cfg.document_stores) == [store_name(tmp_path)]
    shared["agents"]["b"]["embedder_config"] = {"type": "ollama"}
    with pytest.raises(ConfigError, match=re.escape("agent 'b': docs_folder store 'docs_")):
        loaded(shared, tmp_path)


def scripted_llm(server: ScriptedLLMServer, model: str) -> dict[str, Any]:
    return {
        "type": "openai",
        "model": model,
        "host": f"{server.url}/v1",
        "api_key": "sk-e2e",
        "max_retries": 0,
    }


async def test_served_shortcuts_search_the_folder_and_answer_inline(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "invoice.md").write_text(
        "# Invoices\n\nError code INV-4042 means the VAT number failed validation."
    )
    (docs / "garden.txt").write_text("Tomatoes need six hours of direct sunlight every day.")
    data = {
        "llms": {"main": scripted_llm(llm_server, "main-model")},
        "agents": {
            "librarian": {"llm": "main", "docs_folder": str(docs), "enable_tools": True},
            "poet": {"llm_config": scripted_llm(llm_server, "inline-model")},
        },
    }
    llm_server.reply(tool_calls=[ScriptedCall("search", {"query": "INV-4042"})])
    llm_server.reply("INV-4042 is a VAT validation error.")
    llm_server.reply("Roses are red.")
    async with running_hector(data, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        librarian = await client_for(
            url, "librarian", binding="JSONRPC", version="1.0", streaming=False, http=http
        )
        events = [e async for e in librarian.send_message(request("What is INV-4042?"))]
        assert final_text(events)[:2] == (
            TaskState.TASK_STATE_COMPLETED,
            "INV-4042 is a VAT validation error.",
        )
        poet = await client_for(url, "poet", binding="JSONRPC", version="1.0", streaming=False, http=http)
        events = [e async for e in poet.send_message(request("A poem, please", "ctx-2"))]
        assert final_text(events)[:2] == (TaskState.TASK_STATE_COMPLETED, "Roses are red.")
        await librarian.close()
        await poet.close()
    first, second, third = (r.body for r in llm_server.requests)
    offered = {t["function"]["name"] for t in first["tools"]}
    assert offered == set(BUILTIN_TOOLS)
    assert first["model"] == "main-model"
    search_result = second["messages"][-1]
    assert search_result["role"] == "tool"
    # The best hit is the file that answers, from the store docs_folder declared.
    first_hit = search_result["content"].split("\n")[0]
    assert re.fullmatch(rf"\[1\] invoice\.md:1-3 \(score [0-9.]+, store {store_name(docs)}\)", first_hit)
    assert third["model"] == "inline-model" and "tools" not in third
