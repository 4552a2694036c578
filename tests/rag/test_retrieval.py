"""Search modes that ask an LLM (multi_query, hyde), LLM re-ranking and include_context, driven
through a running server whose model is the scripted OpenAI-speaking LLM server."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from hector.config import parse_config
from hector.errors import ConfigError
from hector.rag.retrieval import parse_ranking, parse_variants
from tests.harness import running_hector
from tests.llm_server import Recorded, ScriptedCall, ScriptedLLMServer
from tests.rag.corpus import write_labelled
from tests.server.test_a2a import client_for, final_text, request


def llm(server: ScriptedLLMServer, model: str = "m") -> dict[str, Any]:
    return {"type": "openai", "model": model, "host": f"{server.url}/v1", "api_key": "k", "max_retries": 0}


def config(server: ScriptedLLMServer, folder: Path | None, **agent: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "llms": {"main": llm(server)},
        "agents": {"helper": {"llm": "main", "tools": ["search"], **agent}},
    }
    if folder is not None:
        cfg["document_stores"] = {"kb": {"path": str(folder)}}
    return cfg


async def ask(
    url: str, text: str, context_id: str = "c1", agent: str = "helper", key: str | None = None
) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        client = await client_for(url, agent, binding="JSONRPC", version="1.0", streaming=False, http=http)
        _, answer, _ = final_text([e async for e in client.send_message(request(text, context_id))])
        await client.close()
    return answer


def messages(recorded: Recorded) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = recorded.body["messages"]
    return result


def tool_result(recorded: Recorded) -> str:
    """The latest search results the model was given in this request."""
    return str([m["content"] for m in messages(recorded) if m["role"] == "tool"][-1])


def cited(results: str) -> list[str]:
    """The source paths of a search tool result, in order."""
    return re.findall(r"^\[\d+\] (\S+?)[:\s]", results, re.MULTILINE)


def search_call(**arguments: Any) -> list[ScriptedCall]:
    return [ScriptedCall("search", arguments)]


async def test_multi_query_searches_llm_written_variants(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    write_labelled(tmp_path / "kb")
    llm_server.reply(tool_calls=search_call(query="zebra quokka", limit=4))
    llm_server.reply(tool_calls=search_call(query="zebra quokka", type="multi_query", limit=4))
    # Numbered, bulleted, repeated and the query itself again: all cleaned up.
    llm_server.reply("1. INV-4042 VAT number error\n- invoice VAT validation failed\n\nzebra quokka\n")
    llm_server.reply("Found it.")
    search = {"multi_query": {"num_variations": 2}}
    async with running_hector(config(llm_server, tmp_path / "kb", search=search), tmp_path) as url:
        assert await ask(url, "find it") == "Found it."
    _, plain_turn, variants, answer_turn = llm_server.requests
    system, user = messages(variants)
    assert "Write 2 alternative queries" in system["content"] and user["content"] == "zebra quokka"
    assert "tools" not in variants.body, "the variants request offers no tools"
    plain, paths = cited(tool_result(plain_turn)), cited(tool_result(answer_turn))
    # Fused with the query's own ranking, the variants' first result climbs from 4th to 2nd.
    assert plain.index("invoice.md") == 3 and paths.index("invoice.md") == 1, (plain, paths)
    assert len(paths) == len(set(paths)) == 4, "merged results are deduplicated"


async def test_hyde_embeds_a_hypothetical_answer(tmp_path: Path, llm_server: ScriptedLLMServer) -> None:
    write_labelled(tmp_path / "kb")
    question = "what could I look at tonight"
    llm_server.reply(tool_calls=search_call(query=question, type="vector", limit=1, threshold=0.5))
    llm_server.reply(tool_calls=search_call(query=question, type="hyde", limit=1, threshold=0.5))
    llm_server.reply("Saturn's rings show through a small telescope after sunset, low in the southern sky.")
    llm_server.reply("Look at Saturn.")
    async with running_hector(config(llm_server, tmp_path / "kb"), tmp_path) as url:
        assert await ask(url, "what to do tonight?") == "Look at Saturn."
    plain = tool_result(llm_server.requests[1])
    hyde_request = llm_server.requests[2]
    system, user = messages(hyde_request)
    assert "passage" in system["content"] and user["content"] == question
    assert plain == f"No results for {question!r}.", "the question is not similar enough to any notes"
    assert cited(tool_result(llm_server.requests[3])) == ["telescope.txt"]


async def test_store_default_mode_and_its_own_llm(tmp_path: Path, llm_server: ScriptedLLMServer) -> None:
    write_labelled(tmp_path / "kb")
    cfg = config(llm_server, None)
    cfg["llms"]["writer"] = llm(llm_server, model="writer-model")
    cfg["document_stores"] = {
        "kb": {"path": str(tmp_path / "kb"), "search": {"hyde": {"enabled": True, "llm": "writer"}}}
    }
    llm_server.reply(tool_calls=search_call(query="bread"))
    llm_server.reply("Feed the sourdough starter the night before and bake at 240 degrees.")
    llm_server.reply("done")
    async with running_hector(cfg, tmp_path) as url:
        await ask(url, "bake")
    assert [r.body["model"] for r in llm_server.requests] == ["m", "writer-model", "m"]
    assert cited(tool_result(llm_server.requests[2]))[0] == "baking.txt"


async def test_rerank_reorders_the_top_results(tmp_path: Path, llm_server: ScriptedLLMServer) -> None:
    write_labelled(tmp_path / "kb")
    search = {"rerank": {"enabled": True, "max_results": 3}}
    llm_server.reply(tool_calls=search_call(query="refund my money", limit=2))
    llm_server.reply("Most relevant first: [3, 1, 2]")
    llm_server.reply("ok")
    async with running_hector(config(llm_server, tmp_path / "kb", search=search), tmp_path) as url:
        await ask(url, "refunds?")
    rerank = llm_server.requests[1]
    system, user = messages(rerank)
    assert "JSON array of the passage numbers" in system["content"]
    assert user["content"].startswith("Query: refund my money")
    shown = cited(user["content"].split("Passages:", 1)[1])
    assert len(shown) == 3, "the LLM re-ranks max_results candidates"
    results = tool_result(llm_server.requests[2])
    assert cited(results) == [shown[2], shown[0]]
    assert re.findall(r"\(score ([\d.]+),", results) == ["1.000", "0.950"]


@pytest.mark.parametrize(
    "answer",
    ["The second passage is best.", "[4, 1]", "[1, 'two']", "[]", "[" * 100_000],  # the last: too deep
)
async def test_unusable_rerank_answer_keeps_the_search_order(
    tmp_path: Path, llm_server: ScriptedLLMServer, caplog: pytest.LogCaptureFixture, answer: str
) -> None:
    write_labelled(tmp_path / "kb")
    search = {"rerank": {"enabled": True, "max_results": 3}}
    llm_server.reply(tool_calls=search_call(query="refund my money", limit=3))
    llm_server.reply(answer)
    llm_server.reply("ok")
    with caplog.at_level(logging.WARNING, logger="hector.rag"):
        async with running_hector(config(llm_server, tmp_path / "kb", search=search), tmp_path) as url:
            await ask(url, "refunds?")
    shown = cited(messages(llm_server.requests[1])[1]["content"].split("Passages:", 1)[1])
    results = tool_result(llm_server.requests[2])
    assert cited(results) == shown
    scores = re.findall(r"\(score ([\d.]+),", results)
    assert scores != ["1.000", "0.950", "0.900"], "scores stay the search's own"
    assert any("rerank: unusable answer" in r.getMessage() for r in caplog.records)


async def test_stores_over_the_same_files_list_each_passage_once(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    write_labelled(tmp_path / "kb")
    cfg = config(llm_server, tmp_path / "kb")
    # Same folder, another search mode: both stores find the same chunks.
    cfg["document_stores"]["code"] = {"path": str(tmp_path / "kb"), "search": {"search_mode": "vector"}}
    llm_server.reply(tool_calls=search_call(query="refund my money", limit=4))
    llm_server.reply("ok")
    async with running_hector(cfg, tmp_path) as url:
        await ask(url, "refunds?")
    results = tool_result(llm_server.requests[1])
    paths = cited(results)
    assert len(paths) == len(set(paths)) == 4, results
    assert paths[0] == "refunds.md"


async def test_include_context_puts_documents_in_the_prompt(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    write_labelled(tmp_path / "kb")
    prompt = {
        "system_prompt": "You help customers.",
        "include_context": True,
        "include_context_limit": 2,
        "include_context_max_length": 40,
    }
    llm_server.reply("Five business days.")
    async with running_hector(config(llm_server, tmp_path / "kb", tools=[], prompt=prompt), tmp_path) as url:
        assert await ask(url, "how long until my refund is paid") == "Five business days."
    system = messages(llm_server.last)[0]
    assert system["role"] == "system" and system["content"].startswith("You help customers.\n\nDocuments")
    assert "[1] refunds.md:1-3\n# Refunds\nCustomers may return any unuse…\n\n[2] " in system["content"]
    assert "[2] " in system["content"] and "[3] " not in system["content"]
    assert "within 30 days" not in system["content"], "each document is cut to include_context_max_length"
    assert messages(llm_server.last)[-1] == {"role": "user", "content": "how long until my refund is paid"}


def test_search_settings_are_validated(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "llms": {"main": {"type": "test"}},
        "document_stores": {"kb": {"path": str(tmp_path)}},
    }
    bad_llm = base | {"agents": {"a": {"search": {"rerank": {"enabled": True, "llm": "nope"}}}}}
    with pytest.raises(ConfigError, match=r"agent 'a' search\.rerank: llm 'nope' not found"):
        parse_config(bad_llm, "<test>")
    no_stores = base | {"agents": {"a": {"document_stores": [], "prompt": {"include_context": True}}}}
    with pytest.raises(ConfigError, match="include_context is enabled but the agent has no document stores"):
        parse_config(no_stores, "<test>")
    with pytest.raises(ConfigError, match="search_mode"):
        parse_config(base | {"agents": {"a": {"search": {"mode": "fuzzy"}}}}, "<test>")


def test_llm_answers_are_parsed_defensively() -> None:
    assert parse_variants("Query 1: a b\n* 'c d'\n\nA B\nq\ne", "q", 2) == ["a b", "c d"]
    assert parse_ranking("sure: [2, 2, 1] thanks", 3) == [1, 0, 2]
    assert parse_ranking("[true]", 2) is None
    assert parse_ranking("no list", 2) is None
