"""External A2A agents over gRPC with TLS: the agent's TLS options on a grpcio channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from a2a.types.a2a_pb2 import TaskState

import hector.agent.remote_grpc as remote_grpc
from tests.a2a_grpc_server import grpc_agent
from tests.harness import running_hector
from tests.server.test_remote_agent import ask
from tests.tls.conftest import Certs

ANSWER = "echo: secure hello (done)"


@pytest.fixture(autouse=True)
def _fresh_grpc_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_grpc, "_warned", set())


def proxy(url: str, **options: Any) -> dict[str, Any]:
    return {"llms": {"t": {"type": "test"}}, "agents": {"proxy": {"type": "a2a", "url": url, **options}}}


def resolved(options: dict[str, Any], certs: Certs) -> dict[str, Any]:
    names = {"CA": certs.ca, "CLIENT_CERT": certs.client_cert, "CLIENT_KEY": certs.client_key}
    return {k: names.get(v, v) if isinstance(v, str) else v for k, v in options.items()}


@pytest.mark.parametrize(
    ("leaf", "scheme", "options", "expected"),
    [
        ("good", "grpcs://", {}, "certificate signed by unknown authority"),
        ("good", "grpcs://", {"ca_certificate": "CA"}, None),
        ("good", "", {"ca_certificate": "CA"}, None),  # a CA means TLS for a bare host:port
        ("wrong_host", "grpcs://", {"ca_certificate": "CA"}, "not valid for this host"),
        ("good", "", {}, "may expect TLS"),  # bare address, http agent URL, no CA: plaintext
        # grpcio cannot skip verification: the option does not make a TLS channel trust anything.
        (
            "self_signed",
            "grpcs://",
            {"insecure_skip_verify": True},
            "certificate signed by unknown authority",
        ),
    ],
)
async def test_external_agent_over_grpc_tls(
    tmp_path: Path, certs: Certs, leaf: str, scheme: str, options: dict[str, Any], expected: str | None
) -> None:
    async with (
        grpc_agent(certfile=getattr(certs, leaf), scheme=scheme) as agent,
        running_hector(proxy(agent.card_url, **resolved(options, certs)), tmp_path) as url,
    ):
        state, text = await ask(url, "proxy", "secure hello")
    if expected is None:
        assert (state, text) == (TaskState.TASK_STATE_COMPLETED, ANSWER)
    else:
        assert state == TaskState.TASK_STATE_FAILED and expected in text, text
        assert agent.executor.calls == []


async def test_insecure_skip_verify_on_tls_warns_that_it_still_verifies(
    tmp_path: Path, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"insecure_skip_verify": True, "ca_certificate": certs.ca}
    async with (
        grpc_agent(certfile=certs.good, scheme="grpcs://") as agent,
        running_hector(proxy(agent.card_url, **options), tmp_path) as url,
    ):
        assert await ask(url, "proxy", "secure hello") == (TaskState.TASK_STATE_COMPLETED, ANSWER)
    assert remote_grpc.unverifiable_warning("proxy") in caplog.messages


async def test_insecure_skip_verify_on_plaintext_warns_as_the_spec_says(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        grpc_agent() as agent,
        running_hector(proxy(agent.card_url, insecure_skip_verify=True), tmp_path) as url,
    ):
        assert await ask(url, "proxy", "secure hello") == (TaskState.TASK_STATE_COMPLETED, ANSWER)
        assert await ask(url, "proxy", "secure hello") == (TaskState.TASK_STATE_COMPLETED, ANSWER)
    assert caplog.messages.count("Using insecure gRPC connection for A2A agent proxy") == 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"ca_certificate": "CA", "client_certificate": "CLIENT_CERT", "client_key": "CLIENT_KEY"}, None),
        ({"ca_certificate": "CA"}, "client certificate"),
    ],
)
async def test_mutual_tls_over_grpc(
    tmp_path: Path, certs: Certs, options: dict[str, Any], expected: str | None
) -> None:
    async with (
        grpc_agent(certfile=certs.good, client_ca=certs.ca, scheme="grpcs://") as agent,
        running_hector(proxy(agent.card_url, **resolved(options, certs)), tmp_path) as url,
    ):
        state, text = await ask(url, "proxy", "secure hello")
    if expected is None:
        assert (state, text) == (TaskState.TASK_STATE_COMPLETED, ANSWER)
    else:
        assert state == TaskState.TASK_STATE_FAILED and expected in text, text
