"""External A2A agents over HTTPS: the agent's TLS options, with the seed's error wording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from a2a.types.a2a_pb2 import TaskState

from hector.assembly import build_runtime
from hector.config import parse_config
from hector.server.app import create_app
from tests.harness import running_hector
from tests.server.test_remote_agent import ask
from tests.tls.conftest import Certs, https

UPSTREAM = {"llms": {"t": {"type": "test"}}, "agents": {"echo": {"llm": "t"}}}


def proxy(url: str, **tls: Any) -> dict[str, Any]:
    return {"llms": {"t": {"type": "test"}}, "agents": {"proxy": {"type": "a2a", "url": url, **tls}}}


@pytest.mark.parametrize(
    ("leaf", "options", "expected"),
    [
        ("good", {}, "certificate signed by unknown authority"),
        ("good", {"ca_certificate": "CA"}, None),
        ("self_signed", {"insecure_skip_verify": True}, None),
        ("wrong_host", {"ca_certificate": "CA"}, "not valid for this host"),
    ],
)
async def test_external_agent_over_https(
    tmp_path: Path, certs: Certs, leaf: str, options: dict[str, Any], expected: str | None
) -> None:
    upstream = create_app(build_runtime(parse_config(UPSTREAM).config, tmp_path / "up"))
    resolved = {k: (certs.ca if v == "CA" else v) for k, v in options.items()}
    async with (
        https(upstream, getattr(certs, leaf)) as up,
        running_hector(proxy(f"{up}/agents/echo", **resolved), tmp_path / "local") as url,
    ):
        state, text = await ask(url, "proxy", "secure hello")
    if expected is None:
        assert (state, text) == (TaskState.TASK_STATE_COMPLETED, "[test model] You said: secure hello")
    else:
        assert state == TaskState.TASK_STATE_FAILED and expected in text
