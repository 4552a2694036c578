"""Search quality on a labelled set, and the `search` tool through a running server, the
`hector index` command and `hector serve --docs-folder`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState

from hector.assembly import build_runtime
from hector.cli import main
from hector.cli.zeroconfig import zero_config
from hector.config import parse_config
from hector.config.checks import BUILTIN_TOOLS
from hector.rag.documents import SearchMode
from tests.harness import running_hector
from tests.rag.corpus import QUERIES, write_labelled
from tests.server.test_a2a import client_for, final_text, request


def rag_config(folder: Path, **agent: Any) -> dict[str, Any]:
    return {
        "version": "2",
        "llms": {"t": {"type": "test"}},
        "document_stores": {"kb": {"path": str(folder)}},
        "agents": {"helper": {"llm": "t", "tools": ["search"], **agent}},
    }


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
async def test_recall_at_3_on_the_labelled_set(tmp_path: Path, mode: SearchMode) -> None:
    write_labelled(tmp_path / "kb")
    config = parse_config(rag_config(tmp_path / "kb"), "<test>").config
    async with build_runtime(config, tmp_path) as runtime:
        assert runtime.library is not None
        docs = runtime.library.stores["kb"]
        found = 0
        for query, expected in QUERIES:
            hits = await docs.search(query, top_k=3, mode=mode)
            found += expected in [h.chunk.document for h in hits]
        scores = [h.score for h in await docs.search("refund", top_k=5, mode=mode)]
        assert scores == sorted(scores, reverse=True)
        strict = await docs.search("sourdough starter", top_k=5, mode=mode, threshold=0.45)
    assert found / len(QUERIES) >= 11 / 12
    assert [h.chunk.document for h in strict] == ["baking.txt"]


async def test_keyword_mode_weighs_exact_words(tmp_path: Path) -> None:
    write_labelled(tmp_path / "kb")
    config = parse_config(rag_config(tmp_path / "kb"), "<test>").config
    async with build_runtime(config, tmp_path) as runtime:
        assert runtime.library is not None
        docs = runtime.library.stores["kb"]
        keyword = await docs.search("sourdough", top_k=4, mode="keyword")
        hybrid = await docs.search("sourdough", top_k=4, mode="hybrid")
        vector_heavy = await docs.search("sourdough", top_k=4, mode="hybrid", alpha=0.9)
    assert keyword[0].chunk.document == hybrid[0].chunk.document == "baking.txt"
    # Found by meaning only, without the word: worth at most alpha (0.1) of a full score.
    assert all(h.score <= 0.1 for h in keyword[1:]) and all(0.1 < h.score <= 0.5 for h in hybrid[1:])
    assert all(0.5 < h.score <= 0.9 for h in vector_heavy[1:])


async def test_search_tool_through_a_running_server(tmp_path: Path) -> None:
    write_labelled(tmp_path / "kb")
    async with (
        running_hector(rag_config(tmp_path / "kb"), tmp_path) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "helper", binding="JSONRPC", version="1.0", streaming=False, http=http)
        message = 'use search {"query": "how long until my refund is paid", "top_k": 2}'
        state, text, _ = final_text([e async for e in client.send_message(request(message, "ctx-s"))])
        assert state == TaskState.TASK_STATE_COMPLETED
        assert text.startswith("Tool search returned: [1] refunds.md:1-3 (score ")
        assert "Refunds are paid to the original card" in text
        assert "[2] " in text and "[3] " not in text
        state, text, _ = final_text(
            [e async for e in client.send_message(request('use search {"query": " "}', "c2"))]
        )
        assert "query must not be empty" in text
        await client.close()


async def test_search_tool_settings_cap_and_default_mode(tmp_path: Path) -> None:
    write_labelled(tmp_path / "kb")
    cfg = rag_config(tmp_path / "kb")
    cfg["tools"] = {"search": {"max_limit": 2, "search": {"search_mode": "vector"}}}
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "helper", binding="JSONRPC", version="1.0", streaming=False, http=http)
        _, text, _ = final_text(
            [e async for e in client.send_message(request('use search {"query": "refund", "limit": 9}'))]
        )
        assert "[2] " in text and "[3] " not in text, "limit is capped at max_limit"
        assert "(score 1.000" not in text, "vector mode: cosine scores, not fused ranks"
        _, text, _ = final_text(
            [
                e
                async for e in client.send_message(
                    request('use search {"query": "refund", "type": "fuzzy"}', "c2")
                )
            ]
        )
        assert "unknown search type 'fuzzy'" in text
        await client.close()


async def test_agent_with_no_document_stores_searches_nothing(tmp_path: Path) -> None:
    write_labelled(tmp_path / "kb")
    cfg = rag_config(tmp_path / "kb", document_stores=[])
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "helper", binding="JSONRPC", version="1.0", streaming=False, http=http)
        _, text, _ = final_text(
            [e async for e in client.send_message(request('use search {"query": "refund"}'))]
        )
        assert text == "Tool search returned: No document stores are available to search."
        await client.close()


def test_index_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_labelled(tmp_path / "kb")
    config_file = tmp_path / "hector.yaml"
    config_file.write_text(
        "llms: {t: {type: test}}\n"
        "document_stores: {kb: {path: ./kb, chunk_size: 400}}\n"
        "agents: {helper: {llm: t, tools: [search]}}\n"
    )
    assert main(["index", "--config", str(config_file)]) == 0
    assert "kb: 12 added, 0 updated, 0 removed, 0 unchanged, 12 chunks embedded" in capsys.readouterr().out
    (tmp_path / "kb" / "pricing.md").unlink()
    assert main(["index", "--config", str(config_file), "--store", "kb"]) == 0
    assert "kb: 0 added, 0 updated, 1 removed, 11 unchanged" in capsys.readouterr().out
    assert main(["index", "--config", str(config_file), "--store", "nope"]) == 1
    assert "document store 'nope' not found" in capsys.readouterr().err
    assert (tmp_path / ".hector" / "hector.db").exists()


async def test_docs_folder_zero_config(tmp_path: Path) -> None:
    write_labelled(tmp_path / "my docs")
    data = zero_config(provider="test", docs_folder=tmp_path / "my docs")
    [(name, store)] = data["document_stores"].items()
    assert name.startswith("docs_my docs_") and store["path"] == str(tmp_path / "my docs")
    assert data["agents"]["assistant"]["tools"] == ["search"]
    async with running_hector(data, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(
            url, "assistant", binding="JSONRPC", version="1.0", streaming=False, http=http
        )
        _, text, _ = final_text(
            [e async for e in client.send_message(request('use search {"query": "INV-4042"}'))]
        )
        assert text.startswith("Tool search returned: [1] invoice.md:1-3")
        await client.close()


async def test_tools_all_gives_every_builtin_tool(tmp_path: Path) -> None:
    """`--tools all`: the enable_tools shortcut's tools, with --docs-folder's search among them once."""
    write_labelled(tmp_path / "docs")
    data = zero_config(provider="test", tools=["all"], docs_folder=tmp_path / "docs")
    assert data["agents"]["assistant"]["tools"] == list(BUILTIN_TOOLS)
    async with running_hector(data, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(
            url, "assistant", binding="JSONRPC", version="1.0", streaming=False, http=http
        )
        todos = {"todos": [{"id": "1", "content": "Find the invoice", "status": "in_progress"}]}
        for message, answer in (
            (f"use todo_write {json.dumps(todos)}", "Tool todo_write returned: Todo list (1 item"),
            ('use search {"query": "INV-4042"}', "Tool search returned: [1] invoice.md:1-3"),
        ):
            _, text, _ = final_text([e async for e in client.send_message(request(message))])
            assert text.startswith(answer), text
        await client.close()


def test_docs_folder_must_exist_and_excludes_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--provider", "test", "--docs-folder", str(tmp_path / "missing")]) == 1
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "c.yaml").write_text("llms: {t: {type: test}}\n")
    assert main(["serve", "--config", str(tmp_path / "c.yaml"), "--docs-folder", str(tmp_path)]) == 1
    assert "--docs-folder" in capsys.readouterr().err
