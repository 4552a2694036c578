"""Spans of real A2A calls, received by in-process OTLP collectors (gRPC and HTTP)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from hector.logsetup import JSONFormatter
from hector.observability.tracing import otlp_http_url
from tests.a2a_grpc_server import grpc_agent
from tests.harness import running_hector, serve_app
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.observability.collectors import CollectedSpan, GRPCCollector, SpanStore, http_collector_app
from tests.observability.test_metrics import TOOLS
from tests.security.conftest import V1, completed_text, send_body
from tests.server.test_a2a import client_for, final_text, request
from tests.server.test_llm_e2e import llm_config

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_PARENT = "00f067aa0ba902b7"


@pytest.fixture
async def http_collector() -> AsyncIterator[tuple[SpanStore, str]]:
    store = SpanStore()
    async with serve_app(http_collector_app(store)) as url:
        yield store, url


class JSONLines(logging.Handler):
    """Hector's log records, formatted by the JSON formatter and parsed back."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JSONFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_logs(caplog: pytest.LogCaptureFixture) -> Iterator[JSONLines]:
    caplog.set_level(logging.INFO, logger="hector")
    handler = JSONLines()
    logging.getLogger("hector").addHandler(handler)
    yield handler
    logging.getLogger("hector").removeHandler(handler)


def tracing(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {"observability": {"tracing": {"enabled": True, "endpoint": endpoint, **extra}}}


def assert_run_tree(spans: SpanStore, agent: str) -> tuple[CollectedSpan, CollectedSpan, list[CollectedSpan]]:
    """http.request → agent.call → (agent.llm_request…, agent.tool_execution); returns
    (server span, agent span, model spans in start order)."""
    server = spans.one("http.request")
    call = spans.one("agent.call")
    tool = spans.one("agent.tool_execution")
    models = sorted(spans.named("agent.llm_request"), key=lambda s: s.start)
    assert server.kind == Span.SPAN_KIND_SERVER
    assert call.parent_id == server.span_id
    assert call.attributes["agent.name"] == agent
    assert len(models) == 2
    assert all(m.parent_id == call.span_id for m in models)
    assert tool.parent_id == call.span_id
    assert models[0].start < tool.start < models[1].start
    assert tool.attributes["tool.name"] == "lookup"
    assert {s.trace_id for s in spans.spans} == {server.trace_id}
    return server, call, models


async def test_grpc_export_continues_the_callers_trace_into_the_llm_and_the_logs(
    tmp_path: Path, llm_server: ScriptedLLMServer, grpc_collector: GRPCCollector, json_logs: JSONLines
) -> None:
    llm_server.reply(tool_calls=[ScriptedCall("lookup", {"city": "Oslo"})], usage=(120, 7))
    llm_server.reply("Oslo has 709000 people.", usage=(150, 9))
    cfg = {
        "llms": {"main": llm_config(llm_server)},
        "agents": {"helper": {"llm": "main", "tools": ["lookup"]}},
        "server": tracing(grpc_collector.endpoint, service_name="hector-under-test"),
    }
    incoming = {**V1, "traceparent": f"00-{TRACE_ID}-{REMOTE_PARENT}-01"}
    async with running_hector(cfg, tmp_path, TOOLS) as url, httpx.AsyncClient(timeout=30) as http:
        answered = await http.post(f"{url}/agents/helper", json=send_body("Oslo?"), headers=incoming)
        assert completed_text(answered) == "Oslo has 709000 people."
    # Leaving the server ran its lifespan shutdown, which flushed the batch exporter.
    server, call, models = assert_run_tree(grpc_collector, "helper")
    assert server.trace_id == TRACE_ID and server.parent_id == REMOTE_PARENT
    assert server.service == "hector-under-test"
    assert server.attributes == {
        "http.method": "POST",
        "http.path": "/agents/helper",
        "http.route": "/agents/helper",
        "http.status_code": 200,
    }
    assert call.attributes["agent.llm"] == "scripted"
    assert call.attributes["llm.tokens.input"] == 270 and call.attributes["llm.tokens.output"] == 16
    for model, tokens in zip(models, [(120, 7), (150, 9)], strict=True):
        a = model.attributes
        assert (a["llm.provider"], a["llm.model"]) == ("openai", "scripted")
        assert (a["llm.tokens.input"], a["llm.tokens.output"]) == tokens
    # Each outbound model request carried its own span as the W3C parent.
    sent = [r.headers["traceparent"] for r in llm_server.requests]
    assert sent == [f"00-{TRACE_ID}-{m.span_id}-01" for m in models]
    # JSON log lines written during the call name the trace (and the span that logged them).
    tool_line = next(line for line in json_logs.lines if line["message"] == "tool executed")
    assert tool_line["trace_id"] == TRACE_ID
    assert tool_line["span_id"] == grpc_collector.one("agent.tool_execution").span_id
    request_line = next(line for line in json_logs.lines if line["message"] == "agent request")
    assert request_line["trace_id"] == TRACE_ID and request_line["span_id"] == server.span_id


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "ollama"])
async def test_every_provider_propagates_the_trace(
    kind: str, tmp_path: Path, llm_server: ScriptedLLMServer, grpc_collector: GRPCCollector
) -> None:
    llm_server.reply("hello")
    cfg = {
        "llms": {"main": llm_config(llm_server, kind)},
        "agents": {"helper": {"llm": "main"}},
        "server": tracing(grpc_collector.endpoint),
    }
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        assert (
            completed_text(await http.post(f"{url}/agents/helper", json=send_body("hi"), headers=V1))
            == "hello"
        )
    model = grpc_collector.one("agent.llm_request")
    assert model.attributes["llm.provider"] == kind
    version, trace_id, parent_id, flags = llm_server.last.headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", model.trace_id, model.span_id)
    assert int(flags, 16) & 1, "sampled"


async def test_http_export_of_a_streamed_call(tmp_path: Path, http_collector: tuple[SpanStore, str]) -> None:
    store, collector_url = http_collector
    cfg = {
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t", "tools": ["lookup"]}},
        # A bare collector address: the exporter is given the full /v1/traces URL.
        "server": tracing(collector_url, exporter="otlp-http"),
    }
    async with running_hector(cfg, tmp_path, TOOLS) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "echo", binding="HTTP+JSON", version="1.0", streaming=True, http=http)
        events = [e async for e in client.send_message(request('use lookup {"city": "Oslo"}', "c-http"))]
        assert final_text(events)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool lookup returned: 709000")
        await client.close()
    assert store.requests >= 1
    # The card fetch is a trace of its own; the streamed call is the other one.
    card = next(s for s in store.named("http.request") if s.attributes["http.method"] == "GET")
    streamed = SpanStore()
    streamed.spans = [s for s in store.spans if s.trace_id != card.trace_id]
    server, _, models = assert_run_tree(streamed, "echo")
    assert server.parent_id == "" and server.attributes["http.route"] == "/agents/echo/message:stream"
    assert server.service == "hector"
    assert {m.attributes["llm.provider"] for m in models} == {"test"}


async def test_failures_mark_spans_as_errors(
    tmp_path: Path, llm_server: ScriptedLLMServer, grpc_collector: GRPCCollector
) -> None:
    llm_server.fail(500)
    cfg = {
        "llms": {"main": llm_config(llm_server)},
        "agents": {"helper": {"llm": "main"}},
        "server": tracing(grpc_collector.endpoint),
    }
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        failed = await http.post(f"{url}/agents/helper", json=send_body("hi"), headers=V1)
        assert failed.json()["result"]["task"]["status"]["state"] == "TASK_STATE_FAILED"
    model = grpc_collector.one("agent.llm_request")
    call = grpc_collector.one("agent.call")
    assert model.status == call.status == Status.STATUS_CODE_ERROR
    assert model.attributes["error.type"] == call.attributes["error.type"]
    assert model.attributes["error.type"].startswith("Provider")


async def test_sampling_rate_yields_to_a_sampled_caller(
    tmp_path: Path, grpc_collector: GRPCCollector
) -> None:
    cfg = {
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t"}},
        "server": tracing(grpc_collector.endpoint, sampling_rate=0.0),
    }
    traced = {**V1, "traceparent": f"00-{TRACE_ID}-{REMOTE_PARENT}-01"}
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        completed_text(await http.post(f"{url}/agents/echo", json=send_body("untraced"), headers=V1))
        completed_text(await http.post(f"{url}/agents/echo", json=send_body("traced"), headers=traced))
    assert grpc_collector.spans, "the sampled caller's trace is exported"
    assert {s.trace_id for s in grpc_collector.spans} == {TRACE_ID}


@pytest.mark.parametrize(
    ("endpoint", "insecure", "url"),
    [
        ("collector:4318", True, "http://collector:4318/v1/traces"),
        ("collector:4318", False, "https://collector:4318/v1/traces"),
        ("http://collector:4318/", True, "http://collector:4318/v1/traces"),
        ("https://otlp.example.com/custom/traces", True, "https://otlp.example.com/custom/traces"),
        (None, True, None),
    ],
)
def test_otlp_http_url(endpoint: str | None, insecure: bool, url: str | None) -> None:
    assert otlp_http_url(endpoint, insecure) == url


async def test_grpc_call_to_an_external_agent_carries_the_agent_span_as_parent(
    tmp_path: Path, grpc_collector: GRPCCollector
) -> None:
    cfg = {
        "llms": {"t": {"type": "test"}},
        "agents": {"proxy": {"type": "a2a", "url": ""}},
        "server": tracing(grpc_collector.endpoint),
    }
    incoming = {**V1, "traceparent": f"00-{TRACE_ID}-{REMOTE_PARENT}-01"}
    async with grpc_agent() as agent:
        cfg["agents"]["proxy"]["url"] = agent.card_url
        async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
            answered = await http.post(f"{url}/agents/proxy", json=send_body("traced"), headers=incoming)
            assert completed_text(answered) == "echo: traced (done)"
    call = grpc_collector.one("agent.call")
    assert call.trace_id == TRACE_ID and call.attributes["llm.provider"] == "a2a"
    # The gRPC metadata names the agent run's span: the remote's spans join this trace under it.
    [sent] = agent.executor.calls
    version, trace_id, parent_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", TRACE_ID, call.span_id)
    assert int(flags, 16) & 1, "sampled"
