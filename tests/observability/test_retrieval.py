"""Metrics and spans of what an agent run does besides its model and tool calls: summary_buffer
memory's summaries, document indexing and search, embedders and vector stores, long-term recall.

Each test serves an agent on the scripted LLM server and the scripted Ollama embedding server,
scrapes ``/metrics`` after real A2A calls, and reads the spans the in-process OTLP collector
received once the server stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import running_hector, until_ready
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.observability.collectors import CollectedSpan, GRPCCollector
from tests.observability.test_metrics import scrape
from tests.rag.corpus import LABELLED_DOCS, write_labelled
from tests.rag.embed_server import EmbedServer
from tests.rag.test_retrieval import ask
from tests.server.test_llm_e2e import llm_config

MODEL = {"provider": "openai", "model": "scripted"}
EMBEDDER = {"embedder_type": "ollama", "model": "word-bag"}


def observed(collector: GRPCCollector, traced: bool = True) -> dict[str, Any]:
    return {
        "observability": {
            "metrics": {"enabled": True},
            "tracing": {"enabled": traced, "endpoint": collector.endpoint},
        }
    }


def config(
    llm: ScriptedLLMServer, embed: EmbedServer, collector: GRPCCollector, traced: bool = True, **agent: Any
) -> dict[str, Any]:
    return {
        "llms": {"main": llm_config(llm)},
        # One batch per call: the embed server's requests are then the embedder's calls.
        "embedders": {"e": {"type": "ollama", "host": embed.url, "model": "word-bag", "batch_size": 256}},
        "agents": {"pal": {"llm": "main", **agent}},
        "server": observed(collector, traced),
    }


def parent_of(traceparent: str) -> str:
    version, _, parent, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1, "sampled"
    return parent


def children(spans: list[CollectedSpan], parent: CollectedSpan, name: str) -> list[CollectedSpan]:
    return sorted(
        (s for s in spans if s.name == name and s.parent_id == parent.span_id), key=lambda s: s.start
    )


@pytest.mark.parametrize("traced", [True, False], ids=["metrics+tracing", "metrics-only"])
async def test_summary_request_is_an_llm_request_of_the_agent(
    traced: bool,
    tmp_path: Path,
    llm_server: ScriptedLLMServer,
    embed_server: EmbedServer,
    grpc_collector: GRPCCollector,
) -> None:
    long = "x" * 100  # one turn stays under the threshold below; the second turn passes it
    llm_server.reply(f"first answer {long}", usage=(100, 10))
    llm_server.reply("The user said x a lot.", usage=(40, 6))  # the summary
    llm_server.reply("second answer", usage=(60, 8))
    memory = {"strategy": "summary_buffer", "budget": 100, "threshold": 0.5, "target": 0.7}
    cfg = config(llm_server, embed_server, grpc_collector, traced, memory=memory)
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        assert await ask(url, f"first {long}", "c-sum", agent="pal") == f"first answer {long}"
        assert await ask(url, f"second {long}", "c-sum", agent="pal") == "second answer"
        m = await scrape(http, url)
    summary_request = llm_server.requests[1]
    assert summary_request.body["messages"][0]["content"].startswith("Summarize the conversation")
    assert m.value("hector_memory_summaries_total", agent="pal", outcome="ok") == 1
    assert m.value("hector_llm_requests_total", **MODEL, outcome="ok") == 3
    assert m.value("hector_llm_tokens_input_total", **MODEL) == 200
    # The summary's tokens are the agent's: it spent them.
    assert m.value("hector_agent_tokens_used_total", agent="pal", type="input") == 200
    assert m.value("hector_agent_tokens_used_total", agent="pal", type="output") == 24
    if not traced:
        assert not grpc_collector.spans and "traceparent" not in summary_request.headers
        return
    second_call = max(grpc_collector.named("agent.call"), key=lambda s: s.start)
    summary, step = children(grpc_collector.spans, second_call, "agent.llm_request")
    assert summary.attributes["llm.purpose"] == "summary"
    assert summary.attributes["agent.name"] == "pal"
    assert (summary.attributes["llm.tokens.input"], summary.attributes["llm.tokens.output"]) == (40, 6)
    assert "llm.purpose" not in step.attributes
    assert parent_of(summary_request.headers["traceparent"]) == summary.span_id
    assert summary.trace_id == second_call.trace_id


async def test_document_indexing_and_search(
    tmp_path: Path, llm_server: ScriptedLLMServer, embed_server: EmbedServer, grpc_collector: GRPCCollector
) -> None:
    write_labelled(tmp_path / "kb")
    llm_server.reply(tool_calls=[ScriptedCall("search", {"query": "reset a forgotten password", "limit": 3})])
    llm_server.reply("Click reset.")
    cfg = config(llm_server, embed_server, grpc_collector, tools=["search"])
    cfg["document_stores"] = {"kb": {"path": str(tmp_path / "kb"), "embedder": "e"}}
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        await until_ready(url)  # the store is indexed in the background
        indexed_requests = len(embed_server.requests)
        assert await ask(url, "how do I reset my password?", "c-docs", agent="pal") == "Click reset."
        m = await scrape(http, url)
    files = len(LABELLED_DOCS)
    # Indexing, at start-up: outside any request, yet counted.
    assert m.value("hector_rag_index_runs_total", store="kb", outcome="ok") == 1
    assert m.value("hector_rag_documents_indexed_total", store="kb", change="added") == files
    assert m.value("hector_rag_documents_indexed_total", store="kb", change="updated") == 0
    chunks = m.value("hector_rag_chunks_indexed_total", store="kb")
    assert chunks >= files
    assert (
        m.value("hector_vector_store_operations_total", backend="embedded", operation="upsert", outcome="ok")
        == 1
    )
    # The search: one hybrid search of the store, one query embedded, one vector query.
    assert m.value("hector_rag_searches_total", store="kb", mode="hybrid", outcome="ok") == 1
    assert m.value("hector_rag_search_duration_seconds_count", store="kb", mode="hybrid") == 1
    assert (
        m.value("hector_vector_store_operations_total", backend="embedded", operation="query", outcome="ok")
        == 1
    )
    assert (
        m.value("hector_vector_store_operation_duration_seconds_count", backend="embedded", operation="query")
        == 1
    )
    # What the embedder metrics say is what the embedding server saw.
    sent = sum(len(r.body["input"]) for r in embed_server.requests)
    assert m.value("hector_embedding_requests_total", **EMBEDDER, outcome="ok") == len(embed_server.requests)
    assert m.value("hector_embedding_texts_total", **EMBEDDER) == sent
    assert m.value("hector_embedding_duration_seconds_count", **EMBEDDER) == len(embed_server.requests)
    assert len(embed_server.requests) == indexed_requests + 1

    spans = grpc_collector.spans
    index = grpc_collector.one("rag.index")
    assert index.parent_id == "", "indexing is a trace of its own"
    assert index.attributes["rag.documents.added"] == files and index.attributes["rag.chunks"] == chunks
    assert children(spans, index, "vector_store.upsert")[0].attributes["vector_store.backend"] == "embedded"
    assert len(children(spans, index, "rag.embed")) == indexed_requests
    tool = grpc_collector.one("agent.tool_execution")
    [search] = children(spans, tool, "rag.search")
    assert search.attributes == {"rag.store": "kb", "rag.mode": "hybrid", "rag.top_k": 3, "rag.hits": 3}
    [embed] = children(spans, search, "rag.embed")
    assert embed.attributes["embedder.type"] == "ollama" and embed.attributes["embedder.texts"] == 1
    [query] = children(spans, search, "vector_store.query")
    assert query.attributes["vector_store.collection"] == "kb"
    # The embedding request itself continued the trace, as the embed span's child.
    assert parent_of(embed_server.requests[-1].headers["traceparent"]) == embed.span_id
    assert embed.trace_id == tool.trace_id


async def test_long_term_recall(
    tmp_path: Path, llm_server: ScriptedLLMServer, embed_server: EmbedServer, grpc_collector: GRPCCollector
) -> None:
    llm_server.reply("Noted: Miso.")
    llm_server.reply("Your cat is Miso.")
    # A window of two: by the second turn the first one is out of sight, so it is recalled.
    memory = {"window_size": 2, "long_term": {"enable_auto_recall": True}}
    cfg = config(llm_server, embed_server, grpc_collector, memory=memory)
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        await ask(url, "My cat is called Miso.", "c-mem", agent="pal")
        assert await ask(url, "What is my cat called?", "c-mem", agent="pal") == "Your cat is Miso."
        m = await scrape(http, url)
    assert "My cat is called Miso." in llm_server.last.body["messages"][0]["content"]
    assert m.value("hector_memory_lookups_total", agent="pal", outcome="ok") == 2
    assert m.value("hector_memory_lookup_duration_seconds_count", agent="pal") == 2
    assert (
        m.value("hector_vector_store_operations_total", backend="embedded", operation="query", outcome="ok")
        == 2
    )
    # Written one message at a time (batch_size 1): two turns, two messages each.
    assert (
        m.value("hector_vector_store_operations_total", backend="embedded", operation="upsert", outcome="ok")
        == 4
    )

    spans = grpc_collector.spans
    calls = sorted(grpc_collector.named("agent.call"), key=lambda s: s.start)
    lookups = [children(spans, call, "agent.memory_lookup") for call in calls]
    assert [len(found) for found in lookups] == [1, 1]
    first, second = lookups[0][0], lookups[1][0]
    assert first.attributes["memory.hits"] == 0
    assert second.attributes["memory.hits"] == 2, "the first turn's question and answer"
    assert second.attributes["agent.name"] == "pal"
    assert second.attributes["memory.recall_scope"] == "session" and second.attributes["memory.limit"] == 5
    under = sorted((s for s in spans if s.parent_id == second.span_id), key=lambda s: s.start)
    assert [s.name for s in under] == ["rag.embed", "vector_store.query"]


async def test_hyde_search_model_request_is_the_searchs_child(
    tmp_path: Path, llm_server: ScriptedLLMServer, embed_server: EmbedServer, grpc_collector: GRPCCollector
) -> None:
    write_labelled(tmp_path / "kb")
    llm_server.reply(tool_calls=[ScriptedCall("search", {"query": "forgot password", "type": "hyde"})])
    llm_server.reply("Open the login page and click reset.", usage=(20, 9))  # the hypothetical passage
    llm_server.reply("Click reset.")
    cfg = config(llm_server, embed_server, grpc_collector, tools=["search"])
    cfg["document_stores"] = {"kb": {"path": str(tmp_path / "kb"), "embedder": "e"}}
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        assert await ask(url, "how do I reset my password?", "c-hyde", agent="pal") == "Click reset."
        m = await scrape(http, url)
    assert m.value("hector_rag_searches_total", store="kb", mode="hyde", outcome="ok") == 1
    assert m.value("hector_llm_requests_total", **MODEL, outcome="ok") == 3
    assert m.value("hector_agent_tokens_used_total", agent="pal", type="output") == 5 + 9 + 5

    [search] = grpc_collector.named("rag.search")
    assert search.attributes["rag.mode"] == "hyde"
    [hyde] = children(grpc_collector.spans, search, "agent.llm_request")
    assert hyde.attributes["llm.purpose"] == "hyde" and hyde.attributes["agent.name"] == "pal"
    assert parent_of(llm_server.requests[1].headers["traceparent"]) == hyde.span_id
    # The passage, not the question, is what gets embedded.
    assert embed_server.requests[-1].body["input"] == ["Open the login page and click reset."]
