"""Hector serving A2A over gRPC (``server.grpc``): a2a-sdk clients, another Hector, the security rules.

"Up" is a Hector serving gRPC beside HTTP; "local" is a second Hector whose ``type: a2a`` agent
points at an agent of Up: it finds Up's card over HTTP and, the card listing gRPC first, talks
to Up over gRPC (Up's ``hector_grpc_requests_total`` says so, and its HTTP metrics show no A2A
call). The direct calls use a2a-sdk's generated gRPC stubs, so they check the wire: status codes,
tenant and ``agent-name`` routing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import get_text_parts
from a2a.types import a2a_pb2_grpc
from a2a.types.a2a_pb2 import GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState

from hector.config import parse_config
from hector.errors import ConfigError
from tests.a2a_grpc_server import QUESTION, Asker, grpc_agent
from tests.harness import running_hector
from tests.server.test_a2a import client_for, final_text, request
from tests.server.test_approval import Deployments, answer, paused
from tests.tls.conftest import free_port

UP_KEY = "up-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"
DEPLOY = 'use deploy {"env": "prod"}'


def up_config(port: int, **server: Any) -> dict[str, Any]:
    return {
        "llms": {"t": {"type": "test"}},
        "agents": {
            "echo": {"llm": "t"},
            "staff": {"llm": "t", "visibility": "internal"},
            "secret": {"llm": "t", "visibility": "private"},
        },
        "server": {
            "grpc": {"enabled": True, "port": port},
            "preferred_transport": "grpc",
            "auth": {"enabled": True, "require_auth": False, "api_keys": [UP_KEY, OTHER_KEY]},
            "observability": {"metrics": {"enabled": True}},
            **server,
        },
    }


def proxy_config(url: str, key: str | None = UP_KEY) -> dict[str, Any]:
    proxy: dict[str, Any] = {"type": "a2a", "url": url}
    if key is not None:
        proxy["credentials"] = {"type": "bearer", "token": key}
    return {"llms": {"t": {"type": "test"}}, "agents": {"proxy": proxy}}


@contextlib.asynccontextmanager
async def stub(port: int) -> AsyncIterator[a2a_pb2_grpc.A2AServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield a2a_pb2_grpc.A2AServiceStub(channel)  # type: ignore[no-untyped-call]


def send(text: str, tenant: str = "", context_id: str = "c-grpc") -> SendMessageRequest:
    message = Message(
        role=Role.ROLE_USER, message_id=f"m-{text}", context_id=context_id, parts=[Part(text=text)]
    )
    return SendMessageRequest(message=message, tenant=tenant)


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def grpc_calls(url: str) -> dict[tuple[str, str, str], float]:
    """Up's ``hector_grpc_requests_total`` by (method, agent, code)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    pattern = r'hector_grpc_requests_total\{agent="(\w+)",code="(\w+)",method="(\w+)"\} ([\d.]+)'
    return {(m[2], m[0], m[1]): float(m[3]) for m in re.findall(pattern, text)}


async def http_a2a_calls(url: str, agent: str) -> list[str]:
    """Up's HTTP metric lines for POSTs to *agent*'s A2A routes."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    return [
        line
        for line in text.splitlines()
        if line.startswith("hector_http_requests_total")
        and 'method="POST"' in line
        and f"/agents/{agent}" in line
    ]


async def test_card_lists_grpc_with_the_agent_as_tenant(tmp_path: Path) -> None:
    port = free_port()
    async with running_hector(up_config(port), tmp_path) as url, httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, f"{url}/agents/echo").get_agent_card()
        raw = (await http.get(f"{url}/agents/echo/.well-known/agent-card.json")).json()
        plain = up_config(port)
        plain["server"]["preferred_transport"] = "json-rpc"
    first = card.supported_interfaces[0]
    assert (first.protocol_binding, first.protocol_version) == ("GRPC", "1.0")
    assert (first.url, first.tenant) == (f"127.0.0.1:{port}", "echo")
    bindings = [(i.protocol_binding, i.protocol_version) for i in card.supported_interfaces]
    assert ("GRPC", "0.3") in bindings and ("JSONRPC", "1.0") in bindings
    # A 0.3 client reads `url` and `preferredTransport`: the gRPC address.
    assert (raw["preferredTransport"], raw["url"]) == ("GRPC", f"127.0.0.1:{port}")
    async with running_hector(plain, tmp_path / "plain") as url, httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, f"{url}/agents/echo").get_agent_card()
    assert card.supported_interfaces[0].protocol_binding == "JSONRPC"
    assert [i.protocol_binding for i in card.supported_interfaces[:3]] == ["JSONRPC", "HTTP+JSON", "GRPC"]


@pytest.mark.parametrize("version", ["1.0", "0.3"])
@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "blocking"])
async def test_sdk_client_over_grpc_and_task_ownership(tmp_path: Path, streaming: bool, version: str) -> None:
    port = free_port()
    async with running_hector(up_config(port), tmp_path) as url, httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, f"{url}/agents/echo").get_agent_card()
        wanted = [i for i in card.supported_interfaces if i.protocol_version == version]
        del card.supported_interfaces[:]
        card.supported_interfaces.extend(wanted)
        config = ClientConfig(
            streaming=streaming,
            supported_protocol_bindings=["GRPC"],
            grpc_channel_factory=lambda target: grpc.aio.insecure_channel(target),
        )
        client = ClientFactory(config).create(card)
        # Protocol 0.3 requests have no tenant: the agent-name metadata routes them.
        routing = {"agent-name": "echo"} if version == "0.3" else {}
        mine = ClientCallContext(service_parameters={"authorization": f"Bearer {UP_KEY}", **routing})
        events = [e async for e in client.send_message(request("over grpc", "c-sdk"), context=mine)]
        state, text, task_id = final_text(events)
        assert (state, text) == (TaskState.TASK_STATE_COMPLETED, "[test model] You said: over grpc")
        # The task is the caller's: the same key reads it over gRPC (and HTTP), another does not.
        task = await client.get_task(GetTaskRequest(id=task_id), context=mine)
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        theirs = ClientCallContext(service_parameters={"authorization": f"Bearer {OTHER_KEY}", **routing})
        with pytest.raises(Exception, match=r"(?i)not found"):
            await client.get_task(GetTaskRequest(id=task_id), context=theirs)
        over_http = await http.get(
            f"{url}/agents/echo/tasks/{task_id}",
            headers={"Authorization": f"Bearer {UP_KEY}", "A2A-Version": "1.0"},
        )
        assert over_http.status_code == 200, over_http.text
        await client.close()
        method = "SendStreamingMessage" if streaming else "SendMessage"
        assert (await grpc_calls(url))[(method, "echo", "OK")] == 1


async def test_routing_and_access_rules(tmp_path: Path) -> None:
    port = free_port()
    async with running_hector(up_config(port, max_body_size=65536), tmp_path) as url, stub(port) as a2a:

        async def code(request: SendMessageRequest, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
            try:
                await a2a.SendMessage(request, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                return exc.code(), exc.details()
            return grpc.StatusCode.OK, ""

        # Tenant or agent-name picks the agent; anonymous callers may use public agents.
        assert (await code(send("hi", tenant="echo")))[0] == grpc.StatusCode.OK
        assert (await code(send("hi"), (("agent-name", "echo"),)))[0] == grpc.StatusCode.OK
        status, details = await code(send("hi"))
        assert status == grpc.StatusCode.INVALID_ARGUMENT and "agent-name" in details
        # Private agents do not exist here; unknown ones neither.
        for name in ("secret", "nobody"):
            status, details = await code(send("hi", tenant=name), bearer(UP_KEY))
            assert status == grpc.StatusCode.NOT_FOUND and f"agent {name!r} not found" in details
            assert "secret" not in details.split("available")[1]
        # Internal agents need credentials; a wrong key is refused whatever the agent.
        status, details = await code(send("hi", tenant="staff"))
        assert (status, details) == (grpc.StatusCode.UNAUTHENTICATED, "unauthorized: agent is internal")
        assert (await code(send("hi", tenant="staff"), bearer(UP_KEY)))[0] == grpc.StatusCode.OK
        status, details = await code(send("hi", tenant="echo"), bearer("wrong-key-0123456789"))
        assert (status, details) == (grpc.StatusCode.UNAUTHENTICATED, "unauthorized: Invalid token")
        status, _ = await code(send("hi", tenant="echo"), (("authorization", UP_KEY),))
        assert status == grpc.StatusCode.UNAUTHENTICATED
        # A request over max_body_size is refused before anything reads it.
        status, details = await code(send("x" * 70000, tenant="echo"), bearer(UP_KEY))
        assert status == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details
        calls = await grpc_calls(url)
    assert calls[("SendMessage", "echo", "OK")] == 2
    # Refused before an agent was chosen: the internal agent and both bad credentials.
    assert calls[("SendMessage", "unknown", "UNAUTHENTICATED")] == 3
    assert calls[("SendMessage", "unknown", "NOT_FOUND")] == 2


async def test_require_auth_and_rate_limits(tmp_path: Path) -> None:
    port = free_port()
    limits = {"enabled": True, "requests_per_minute": 60, "burst": 2, "per_user": True}
    cfg = up_config(port, rate_limiting=limits)
    cfg["server"]["auth"]["require_auth"] = True
    async with running_hector(cfg, tmp_path), stub(port) as a2a:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await a2a.SendMessage(send("hi", tenant="echo"))
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert missing.value.details() == "missing authorization metadata"
        await a2a.SendMessage(send("one", tenant="echo"), metadata=bearer(UP_KEY))
        await a2a.SendMessage(send("two", tenant="echo"), metadata=bearer(UP_KEY))
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await a2a.SendMessage(send("three", tenant="echo"), metadata=bearer(UP_KEY))
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert ("retry-after", "1") in list(limited.value.trailing_metadata() or ())
        # Per user: another key has a bucket of its own. Calls for agents that are not there
        # count as well (guessing names is throttled).
        await a2a.SendMessage(send("four", tenant="echo"), metadata=bearer(OTHER_KEY))
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await a2a.SendMessage(send("five", tenant="nobody"), metadata=bearer(OTHER_KEY))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await a2a.SendMessage(send("six", tenant="echo"), metadata=bearer(OTHER_KEY))
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_hector_to_hector_over_grpc_streams(tmp_path: Path) -> None:
    """Local → (gRPC) → Up's relay agent → (gRPC) → a streaming a2a-sdk agent."""
    port = free_port()
    async with grpc_agent() as streamer:
        cfg = up_config(port)
        cfg["agents"]["relay"] = {"type": "a2a", "url": streamer.card_url}
        async with (
            running_hector(cfg, tmp_path / "up") as up,
            running_hector(proxy_config(f"{up}/agents/relay"), tmp_path / "local") as url,
            httpx.AsyncClient(timeout=30) as http,
        ):
            client = await client_for(
                url, "proxy", binding="JSONRPC", version="1.0", streaming=True, http=http
            )
            events = [e async for e in client.send_message(request("hello", "c-relay"))]
            await client.close()
            calls, over_http = await grpc_calls(up), await http_a2a_calls(up, "relay")
    assert final_text(events)[:2] == (TaskState.TASK_STATE_COMPLETED, "echo: hello (done)")
    chunks = [
        "".join(get_text_parts(e.artifact_update.artifact.parts))
        for e in events
        if e.HasField("artifact_update") and not e.artifact_update.last_chunk
    ]
    assert chunks and chunks[0].startswith("echo: "), chunks  # text arrived before the answer
    assert calls == {("SendStreamingMessage", "relay", "OK"): 1}
    assert over_http == []
    # Up's own call to the streamer carried its agent-name; Local's reached Up by tenant.
    assert [c["agent-name"] for c in streamer.executor.calls] == ["relay"]


async def test_remote_approval_over_grpc(tmp_path: Path) -> None:
    port = free_port()
    deploys = Deployments()
    cfg = up_config(port)
    cfg["agents"]["ops"] = {"llm": "t", "tools": ["deploy"]}
    async with (
        running_hector(cfg, tmp_path / "up", {"deploy": deploys.tool()}) as up,
        running_hector(proxy_config(f"{up}/agents/ops"), tmp_path / "local") as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "proxy", binding="JSONRPC", version="1.0", streaming=True, http=http)
        task_id, prompt, data = paused([e async for e in client.send_message(request(DEPLOY, "c-ok"))])
        assert prompt == "Deploy to prod?" and data["tool_name"] == "deploy"
        assert deploys.done == []
        resumed = [e async for e in client.send_message(answer(task_id, "c-ok", decision="approve"))]
        await client.close()
        calls = await grpc_calls(up)
    assert final_text(resumed)[:2] == (TaskState.TASK_STATE_COMPLETED, "Tool deploy returned: deployed prod")
    assert deploys.done == ["prod"]
    assert calls == {("SendStreamingMessage", "ops", "OK"): 2}


@pytest.mark.parametrize(
    ("key", "reason"), [(None, "missing authorization metadata"), ("wrong-key-0123456789", "Invalid token")]
)
async def test_bad_credentials_through_a_proxy(tmp_path: Path, key: str | None, reason: str) -> None:
    port = free_port()
    up_cfg = up_config(port)
    # The card is public (so the proxy finds the gRPC interface); every call needs a key.
    up_cfg["server"]["auth"] |= {
        "require_auth": True,
        "excluded_paths": ["/agents/echo/.well-known/agent-card.json"],
    }
    async with (
        running_hector(up_cfg, tmp_path / "up") as up,
        running_hector(proxy_config(f"{up}/agents/echo", key), tmp_path / "local") as url,
        httpx.AsyncClient(timeout=30) as http,
    ):
        client = await client_for(url, "proxy", binding="JSONRPC", version="1.0", streaming=True, http=http)
        state, text, _ = final_text([e async for e in client.send_message(request("hi", "c-bad"))])
        await client.close()
    assert state == TaskState.TASK_STATE_FAILED
    assert "gRPC UNAUTHENTICATED" in text and reason in text, text


@pytest.mark.parametrize("backend", ["memory", "sql"])
async def test_remote_question_pauses_the_local_task(tmp_path: Path, backend: str) -> None:
    asker = Asker()
    async with grpc_agent(executor=asker) as agent:
        cfg = proxy_config(agent.card_url, key=None) | {"session_stores": {"main": {"backend": backend}}}
        async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
            client = await client_for(
                url, "proxy", binding="JSONRPC", version="1.0", streaming=True, http=http
            )
            first = [e async for e in client.send_message(request("the app", "c-ask"))]
            state, text, task_id = final_text(first)
            assert (state, text) == (TaskState.TASK_STATE_INPUT_REQUIRED, QUESTION)
            second = [e async for e in client.send_message(answer(task_id, "c-ask", text="staging"))]
            assert final_text(second) == (
                TaskState.TASK_STATE_COMPLETED,
                "deploying the app to staging",
                task_id,
            )
            await client.close()
    # One remote task, asked and answered: the reply went to the task that asked.
    assert list(asker.requests.values()) == ["the app"] and len(asker.calls) == 2


def test_config_keys() -> None:
    loaded = parse_config({"server": {"grpc_port": 6001, "transport": "grpc"}}, "<test>")
    assert (loaded.config.server.grpc.enabled, loaded.config.server.grpc.port) == (True, 6001)
    with pytest.raises(ConfigError, match=r"preferred_transport: grpc needs server\.grpc\.enabled"):
        parse_config({"server": {"preferred_transport": "grpc"}}, "<test>")
    with pytest.raises(ConfigError, match="give gRPC a port of its own"):
        parse_config({"server": {"port": 7000, "grpc": {"enabled": True, "port": 7000}}}, "<test>")
