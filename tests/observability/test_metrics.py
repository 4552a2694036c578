"""``/metrics`` of a running server, scraped after real A2A calls, auth failures and 429s."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from a2a.types.a2a_pb2 import TaskState
from prometheus_client.parser import text_string_to_metric_families

from hector.tools import FunctionTool, Tool
from tests.harness import running_hector
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.security.conftest import V1, bearer, completed_text, send_body
from tests.server.test_a2a import client_for, final_text, request
from tests.server.test_approval import Deployments, answer, paused
from tests.server.test_llm_e2e import llm_config

METRICS_ON = {"observability": {"metrics": {"enabled": True}}}


def config(tools: list[str] | None = None, **server: Any) -> dict[str, Any]:
    return {
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t", "tools": tools or []}},
        "server": {**METRICS_ON, **server},
    }


class Scrape:
    """One scrape, parsed by prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the series does not exist (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def labels(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for (n, labels) in self.samples if n == name]


async def scrape(http: httpx.AsyncClient, url: str, path: str = "/metrics") -> Scrape:
    response = await http.get(url + path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)


def lookup(city: str) -> str:
    """Population of a city."""
    return {"Oslo": "709000"}[city]


TOOLS: dict[str, Tool] = {"lookup": FunctionTool(lookup)}


async def test_a2a_call_with_a_tool_is_counted(tmp_path: Path) -> None:
    async with (
        running_hector(config(["lookup"]), tmp_path, TOOLS) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        for city in ("Oslo", "Rome"):  # Rome is not in the table: the tool fails
            body = send_body(f'use lookup {{"city": "{city}"}}')
            answered = completed_text(await http.post(f"{url}/agents/echo", json=body, headers=V1))
            assert answered.startswith("Tool lookup returned: " + ("709000" if city == "Oslo" else "ERROR:"))
        assert (await http.get(f"{url}/no/such/page")).status_code == 404
        assert (await http.get(f"{url}/agents/ghost/tasks/123")).status_code == 404
        m = await scrape(http, url)
    assert m.value("hector_http_requests_total", method="POST", route="/agents/echo", status="200") == 2
    assert m.value("hector_http_request_duration_seconds_count", method="POST", route="/agents/echo") == 2
    # Raw paths never become labels: unknown routes share one series, unknown agents the catch-all.
    assert m.value("hector_http_requests_total", method="GET", route="other", status="404") == 1
    assert m.value("hector_http_requests_total", method="GET", route="/agents/{name:path}", status="404") == 1
    routes = {labels["route"] for labels in m.labels("hector_http_requests_total")}
    assert routes == {"/agents/echo", "other", "/agents/{name:path}"}
    assert m.value("hector_agent_calls_total", agent="echo") == 2
    assert m.value("hector_agent_call_duration_seconds_count", agent="echo") == 2
    assert m.value("hector_agent_errors_total", agent="echo", error_type="KeyError") == 0
    # Each call: one request that calls the tool, one that reports its result.
    assert m.value("hector_llm_requests_total", provider="test", model="test", outcome="ok") == 4
    assert m.value("hector_llm_request_duration_seconds_count", provider="test", model="test") == 4
    assert m.value("hector_llm_tokens_input_total", provider="test", model="test") > 0
    assert m.value("hector_tool_calls_total", tool="lookup", outcome="ok") == 1
    assert m.value("hector_tool_calls_total", tool="lookup", outcome="error") == 1
    assert m.value("hector_tool_errors_total", tool="lookup") == 1
    assert m.value("hector_tool_execution_duration_seconds_count", tool="lookup") == 2
    assert m.value("hector_http_active_streams") == 0


async def test_llm_metrics_by_provider_and_model(tmp_path: Path, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply(tool_calls=[ScriptedCall("lookup", {"city": "Oslo"})], usage=(120, 7))
    llm_server.reply("Oslo has 709000 people.", usage=(150, 9))
    llm_server.fail(500, times=1)
    cfg = {
        "llms": {"main": llm_config(llm_server, model="gpt-scripted")},
        "agents": {"helper": {"llm": "main", "tools": ["lookup"]}},
        "server": METRICS_ON,
    }
    async with running_hector(cfg, tmp_path, TOOLS) as url, httpx.AsyncClient(timeout=30) as http:
        answered = await http.post(f"{url}/agents/helper", json=send_body("Oslo?"), headers=V1)
        assert completed_text(answered) == "Oslo has 709000 people."
        failed = await http.post(f"{url}/agents/helper", json=send_body("again"), headers=V1)
        assert failed.json()["result"]["task"]["status"]["state"] == "TASK_STATE_FAILED"
        m = await scrape(http, url)
    model = {"provider": "openai", "model": "gpt-scripted"}
    assert m.value("hector_llm_requests_total", **model, outcome="ok") == 2
    assert m.value("hector_llm_requests_total", **model, outcome="error") == 1
    assert m.value("hector_llm_request_duration_seconds_count", **model) == 3
    assert m.value("hector_llm_tokens_input_total", **model) == 270
    assert m.value("hector_llm_tokens_output_total", **model) == 16
    assert m.value("hector_agent_tokens_used_total", agent="helper", type="input") == 270
    assert m.value("hector_agent_tokens_used_total", agent="helper", type="output") == 16
    [llm_error] = m.labels("hector_llm_errors_total")
    assert llm_error["provider"] == "openai" and llm_error["error_type"].startswith("Provider")
    assert m.value("hector_llm_errors_total", **llm_error) == 1
    assert m.value("hector_agent_errors_total", agent="helper", error_type=llm_error["error_type"]) == 1
    assert m.value("hector_agent_calls_total", agent="helper") == 2


async def test_denied_tool_call_is_counted_but_not_timed(tmp_path: Path) -> None:
    cfg = {
        "llms": {"t": {"type": "test"}},
        "agents": {"ops": {"llm": "t", "tools": ["deploy"]}},
        "server": METRICS_ON,
    }
    async with (
        running_hector(cfg, tmp_path, {"deploy": Deployments().tool()}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "ops", binding="JSONRPC", version="1.0", streaming=False, http=http)
        asked = [e async for e in client.send_message(request('use deploy {"env": "prod"}', "c"))]
        task_id, _, _ = paused(asked)
        denied = [e async for e in client.send_message(answer(task_id, "c", decision="deny"))]
        assert final_text(denied)[0] == TaskState.TASK_STATE_COMPLETED
        await client.close()
        m = await scrape(http, url)
    assert m.value("hector_tool_calls_total", tool="deploy", outcome="denied") == 1
    assert m.value("hector_tool_calls_total", tool="deploy", outcome="ok") == 0
    assert m.value("hector_tool_execution_duration_seconds_count", tool="deploy") == 0
    # The paused run and the resumed one are both agent runs.
    assert m.value("hector_agent_calls_total", agent="ops") == 2


async def test_active_streams_gauge_follows_an_sse_response(tmp_path: Path) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def wait() -> str:
        """Waits for the test."""
        entered.set()
        await release.wait()
        return "released"

    async with (
        running_hector(config(["wait"]), tmp_path, {"wait": FunctionTool(wait)}) as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "echo", binding="JSONRPC", version="1.0", streaming=True, http=http)
        stream = client.send_message(request("use wait", "c-stream"))
        events = [await anext(stream)]  # the response has started
        await asyncio.wait_for(entered.wait(), 10)
        during = await scrape(http, url)
        release.set()
        events += [e async for e in stream]
        assert final_text(events)[1] == "Tool wait returned: released"
        await client.close()
        after = await scrape(http, url)
    assert during.value("hector_http_active_streams") == 1
    assert after.value("hector_http_active_streams") == 0


async def test_auth_failures_and_rate_limits_are_counted_and_metrics_stay_open(tmp_path: Path) -> None:
    key = "metrics-key-0123456789"
    server = {
        "auth": {"enabled": True, "api_keys": [key]},
        "rate_limiting": {"enabled": True, "requests_per_minute": 2},
    }
    async with running_hector(config(**server), tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        bad = bearer("not-a-key")
        wrong = [await http.post(f"{url}/agents/echo", json=send_body(), headers=bad) for _ in range(3)]
        # Failed credentials are throttled per address: the third is rejected with a 429.
        assert [r.status_code for r in wrong] == [401, 401, 429]
        assert (await http.get(f"{url}/agents/echo")).status_code == 401
        listed = [await http.get(f"{url}/agents", headers=bearer(key)) for _ in range(3)]
        assert [r.status_code for r in listed] == [200, 200, 429]
        # Open like /health, and never throttled: more scrapes than the limit allows requests.
        scrapes = [await scrape(http, url) for _ in range(4)]
    m = scrapes[-1]
    assert m.value("hector_auth_failures_total", reason="invalid") == 3
    assert m.value("hector_auth_failures_total", reason="missing") == 1
    assert m.value("hector_rate_limit_rejections_total", limiter="auth_failures") == 1
    assert m.value("hector_rate_limit_rejections_total", limiter="requests") == 1
    # Requests answered by middleware still get their route template.
    assert m.value("hector_http_requests_total", method="POST", route="/agents/echo", status="401") == 2
    assert m.value("hector_http_requests_total", method="GET", route="/agents", status="429") == 1


async def test_metrics_off_by_default_and_path_configurable(tmp_path: Path) -> None:
    off = {"llms": {"t": {"type": "test"}}, "agents": {"echo": {"llm": "t"}}}
    async with running_hector(off, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{url}/metrics")).status_code == 404
    custom = config(observability={"metrics": {"enabled": True, "endpoint": "/internal/metrics"}})
    async with running_hector(custom, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{url}/metrics")).status_code == 404
        m = await scrape(http, url, "/internal/metrics")
        assert m.value("hector_http_requests_total", method="GET", route="other", status="404") == 1
        head = await http.head(f"{url}/internal/metrics")
        assert head.status_code == 200 and head.content == b""
