"""External A2A agents whose card offers gRPC: a plain a2a-sdk gRPC server behind a Hector proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.helpers.proto_helpers import get_text_parts
from a2a.server.routes import create_agent_card_routes
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, StreamResponse, TaskState
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette

import hector.agent.remote_grpc as remote_grpc
from hector.agent.remote import RemoteAgent
from hector.config.schema import AgentConfig
from hector.errors import AgentRunError
from hector.tls import TLSOptions
from tests.a2a_grpc_server import Gate, grpc_agent
from tests.harness import running_hector, serve_app
from tests.server.test_a2a import client_for, final_text, request
from tests.tls.conftest import free_port, serve_proxy

TOKEN = "grpc-token-0123456789"


def proxy_config(url: str, **agent: Any) -> dict[str, Any]:
    return {"llms": {"t": {"type": "test"}}, "agents": {"proxy": {"type": "a2a", "url": url, **agent}}}


async def ask_streaming(url: str, text: str) -> list[StreamResponse]:
    async with httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "proxy", binding="JSONRPC", version="1.0", streaming=True, http=http)
        events = [e async for e in client.send_message(request(text, "c-grpc"))]
        await client.close()
    return events


@pytest.mark.parametrize("version", ["1.0", "0.3"])
async def test_grpc_agent_streams_through_hector(tmp_path: Path, version: str) -> None:
    creds = {"credentials": {"type": "bearer", "token": TOKEN}}
    async with (
        grpc_agent(protocol_version=version) as agent,
        running_hector(proxy_config(agent.card_url, **creds), tmp_path) as url,
    ):
        events = await ask_streaming(url, "hello")
    assert final_text(events)[:2] == (TaskState.TASK_STATE_COMPLETED, "echo: hello (done)")
    # The remote's four chunks stream through in order, before the closing replacement; Hector
    # sends a chunk once the next one comes (ResponseArtifact coalesces deltas), hence pairs.
    chunks = [
        (e.artifact_update.append, "".join(get_text_parts(e.artifact_update.artifact.parts)))
        for e in events
        if e.HasField("artifact_update") and not e.artifact_update.last_chunk
    ]
    assert chunks == [(False, "echo: hello"), (True, " (done)")]
    [call] = agent.executor.calls
    assert call["authorization"] == f"Bearer {TOKEN}"
    assert call["agent-name"] == "proxy"
    assert call["a2a-version"] == version


async def test_api_key_and_target_agent_id_travel_as_metadata() -> None:
    async with grpc_agent() as agent:
        cfg = AgentConfig.model_validate(
            {
                "type": "a2a",
                "url": agent.card_url + "/.well-known/agent-card.json",
                "target_agent_id": "streamer",
                "credentials": {"type": "api_key", "api_key": TOKEN, "api_key_header": "X-Upstream-Key"},
            }
        )
        remote = RemoteAgent("proxy", cfg, TLSOptions(), "A2A agent proxy")
        assert await remote.run("hi", context_id="c") == "echo: hi (done)"
    [call] = agent.executor.calls
    assert call["x-upstream-key"] == TOKEN and "authorization" not in call
    assert call["agent-name"] == "streamer"


async def test_trace_context_reaches_the_grpc_server() -> None:
    tracer = TracerProvider().get_tracer("test")
    async with grpc_agent() as agent:
        remote = RemoteAgent(
            "proxy", AgentConfig(type="a2a", url=agent.card_url), TLSOptions(), "A2A agent proxy"
        )
        with tracer.start_as_current_span("caller") as span:
            await remote.run("traced", context_id="c")
    trace_id = format(span.get_span_context().trace_id, "032x")
    traceparent = agent.executor.calls[0]["traceparent"]
    assert traceparent.split("-")[1] == trace_id


async def test_unreachable_grpc_server_is_a_clear_failure(tmp_path: Path) -> None:
    card = AgentCard(name="gone", description="Not there", version="1", capabilities=AgentCapabilities())
    card.supported_interfaces.append(AgentInterface(url=f"127.0.0.1:{free_port()}", protocol_binding="GRPC"))
    async with (
        serve_app(Starlette(routes=create_agent_card_routes(card))) as card_url,
        running_hector(proxy_config(card_url), tmp_path) as url,
    ):
        state, text, _ = final_text(await ask_streaming(url, "anyone there?"))
    assert state == TaskState.TASK_STATE_FAILED
    assert "external agent 'proxy'" in text and "gRPC UNAVAILABLE" in text, text


async def test_a_grpc_server_that_vanishes_mid_call_fails_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection goes silent with the call open (a host powered off, a network cut: no reset
    ever comes). Keepalive pings notice; without them the call would wait forever. Pinged here
    within a second instead of minutes."""
    quick = {
        "grpc.keepalive_time_ms": 1000,
        "grpc.keepalive_timeout_ms": 300,
        "grpc.http2.ping_timeout_ms": 300,
    }
    options = [(k, quick.get(k, v)) for k, v in remote_grpc._CHANNEL_OPTIONS]
    monkeypatch.setattr(remote_grpc, "_CHANNEL_OPTIONS", options)
    gate, vanished = Gate(), asyncio.Event()

    async def until_vanished(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not vanished.is_set():  # afterwards: swallowed, the connection left open
                writer.write(data)
                await writer.drain()

    async def link(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = upstream.grpc_target.split(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        try:
            await asyncio.gather(until_vanished(reader, up_writer), until_vanished(up_reader, writer))
        finally:
            up_writer.close()

    async with grpc_agent(executor=gate) as upstream, serve_proxy(link) as port:
        card = AgentCard(name="far", description="Far away", version="1", capabilities=AgentCapabilities())
        card.supported_interfaces.append(AgentInterface(url=f"127.0.0.1:{port}", protocol_binding="GRPC"))
        async with serve_app(Starlette(routes=create_agent_card_routes(card))) as card_url:
            remote = RemoteAgent(
                "proxy", AgentConfig(type="a2a", url=card_url), TLSOptions(), "A2A agent proxy"
            )
            call = asyncio.create_task(remote.run("hello", context_id="c"))
            await gate.started.wait()
            vanished.set()
            try:
                async with asyncio.timeout(30):  # only reached without keepalive: the call hangs
                    with pytest.raises(AgentRunError, match="stopped answering"):
                        await call
            finally:
                gate.opened.set()
