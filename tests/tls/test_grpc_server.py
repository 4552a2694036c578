"""Hector's gRPC server with ``server.tls``: TLS and mutual TLS, in-process and under ``hector serve``."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from a2a.types import a2a_pb2_grpc
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, TaskState

from hector.assembly import build_runtime
from hector.config import parse_config
from hector.server.app import create_app
from tests.harness import serve_app
from tests.server.test_remote_agent import ask
from tests.tls.conftest import HECTOR, Certs, free_port, hector_serve

KEY = "tls-key-0123456789abcdef"


def up_config(certs: Certs, port: int, client_ca: bool = False) -> dict[str, Any]:
    tls = {"cert_file": certs.good_cert, "key_file": certs.good_key}
    if client_ca:
        tls["client_ca_file"] = certs.ca
    return {
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t"}},
        "server": {
            "tls": tls,
            "grpc": {"enabled": True, "port": port},
            "preferred_transport": "grpc",
            "auth": {"enabled": True, "api_keys": [KEY]},
        },
    }


@contextlib.asynccontextmanager
async def https_hector(cfg: dict[str, Any], base_dir: Path, certs: Certs) -> AsyncIterator[str]:
    """Hector in-process with HTTPS as ``hector serve`` would set it up from ``server.tls``."""
    loaded = parse_config(cfg, "<test>")
    tls = loaded.config.server.tls
    assert tls is not None
    options: dict[str, Any] = {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file}
    if tls.client_ca_file:
        options |= {"ssl_ca_certs": tls.client_ca_file, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    async with serve_app(create_app(build_runtime(loaded.config, base_dir)), **options) as url:
        yield url


@contextlib.asynccontextmanager
async def plain_hector(cfg: dict[str, Any], base_dir: Path) -> AsyncIterator[str]:
    """A plain-HTTP Hector (the proxying side)."""
    loaded = parse_config(cfg, "<test>")
    async with serve_app(create_app(build_runtime(loaded.config, base_dir))) as url:
        yield url


def credentials(certs: Certs, client: bool) -> grpc.ChannelCredentials:
    chain = key = None
    if client:
        chain, key = Path(certs.client_cert).read_bytes(), Path(certs.client_key).read_bytes()
    return grpc.ssl_channel_credentials(Path(certs.ca).read_bytes(), key, chain)


async def call(channel: grpc.aio.Channel) -> str:
    """One message to echo; the answer text."""
    stub = a2a_pb2_grpc.A2AServiceStub(channel)  # type: ignore[no-untyped-call]
    message = Message(role=Role.ROLE_USER, message_id="m-tls", parts=[Part(text="secure")])
    response = await stub.SendMessage(
        SendMessageRequest(message=message, tenant="echo"),
        metadata=(("authorization", f"Bearer {KEY}"),),
        timeout=10,
    )
    return "".join(p.text for p in response.task.status.message.parts)


def proxy(url: str, **tls: str) -> dict[str, Any]:
    agent = {"type": "a2a", "url": url, "credentials": {"type": "bearer", "token": KEY}, **tls}
    return {"llms": {"t": {"type": "test"}}, "agents": {"proxy": agent}}


async def test_grpc_uses_server_tls(tmp_path: Path, certs: Certs) -> None:
    port = free_port()
    async with https_hector(up_config(certs, port), tmp_path / "up", certs) as up:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials(certs, False)) as channel:
            assert await call(channel) == "[test model] You said: secure"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as plain:
                await call(channel)
        assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
        # Another Hector: the card over HTTPS, then gRPC over TLS to the address it lists.
        local = proxy(f"{up}/agents/echo", ca_certificate=certs.ca)
        async with plain_hector(local, tmp_path / "local") as url:
            assert await ask(url, "proxy", "through tls") == (
                TaskState.TASK_STATE_COMPLETED,
                "[test model] You said: through tls",
            )
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=certs.ca)) as http:
            card_url = f"{up}/agents/echo/.well-known/agent-card.json"
            card = (await http.get(card_url, headers={"Authorization": f"Bearer {KEY}"})).json()
    assert card["supportedInterfaces"][0] == {
        "url": f"127.0.0.1:{port}",
        "protocolBinding": "GRPC",
        "protocolVersion": "1.0",
        "tenant": "echo",
    }


async def test_grpc_mutual_tls(tmp_path: Path, certs: Certs) -> None:
    port = free_port()
    async with https_hector(up_config(certs, port, client_ca=True), tmp_path / "up", certs) as up:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials(certs, True)) as channel:
            assert await call(channel) == "[test model] You said: secure"
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials(certs, False)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        tls = {
            "ca_certificate": certs.ca,
            "client_certificate": certs.client_cert,
            "client_key": certs.client_key,
        }
        async with plain_hector(proxy(f"{up}/agents/echo", **tls), tmp_path / "local") as url:
            assert (await ask(url, "proxy", "mutual"))[0] == TaskState.TASK_STATE_COMPLETED


async def test_hector_serve_runs_grpc_with_tls(tmp_path: Path, certs: Certs) -> None:
    port = free_port()
    verify = ssl.create_default_context(cafile=certs.ca)
    with hector_serve(up_config(certs, port), tmp_path, verify) as running:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials(certs, False)) as channel:
            assert await call(channel) == "[test model] You said: secure"
        assert f"A2A over gRPC: grpcs://127.0.0.1:{port}" in running.log
    assert "Application shutdown complete" in running.log
    with socket.socket() as probe:  # the gRPC port was released at shutdown
        probe.bind(("127.0.0.1", port))


def test_hector_serve_refuses_a_grpc_port_in_use(tmp_path: Path, certs: Certs) -> None:
    cfg = up_config(certs, free_port())
    cfg["server"]["data_dir"] = str(tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg["server"]["grpc"]["port"] = taken.getsockname()[1]
        path = tmp_path / "hector.yaml"
        path.write_text(yaml.safe_dump(cfg))
        done = subprocess.run(
            [str(HECTOR), "serve", "--config", str(path), "--port", str(free_port())],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert f"server.grpc: cannot listen on 127.0.0.1:{cfg['server']['grpc']['port']}" in done.stderr
    assert "Traceback" not in done.stderr
