"""web_request over HTTPS: the system store by default, the tool's or the top-level TLS options."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from hector.config import ToolConfig, parse_config
from hector.errors import ToolError
from hector.tools import ToolContext
from hector.tools.registry import ToolEnv
from hector.tools.web import WebRequestTool, build
from tests.tls.conftest import GREETING, Certs, hello_app, https, insecure_records

CTX = ToolContext(agent_id="agent", context_id="ctx", task_id=None, user="alice")


def web_tool(top_level: dict[str, Any] | None = None, **options: Any) -> WebRequestTool:
    defaults = parse_config(top_level or {}).config
    cfg = ToolConfig.model_validate({"allow_private_networks": True, **options})
    tool = build("web_request", cfg, ToolEnv(base_dir=Path("."), tls_defaults=defaults))
    assert isinstance(tool, WebRequestTool)
    return tool


async def get(tool: WebRequestTool, url: str) -> str:
    return await tool.call({"url": f"{url}/"}, CTX)


@pytest.mark.parametrize(
    ("leaf", "trust_ca", "expected"),
    [
        ("good", False, r"x509: certificate signed by unknown authority .*ca_certificate"),
        ("self_signed", False, r"x509: certificate is not trusted .*self-signed"),
        ("wrong_host", True, r"x509: certificate is not valid for this host: the name does not match"),
        ("expired", True, r"x509: certificate is out of date \(certificate has expired\)"),
    ],
)
async def test_tls_failures_are_explained(certs: Certs, leaf: str, trust_ca: bool, expected: str) -> None:
    tool = web_tool(**({"ca_certificate": certs.ca} if trust_ca else {}))
    async with https(hello_app(), getattr(certs, leaf)) as url:
        with pytest.raises(ToolError, match=expected) as caught:
            await get(tool, url)
    assert caught.value.message.startswith("TLS connection to 127.0.0.1 failed: x509: ")
    assert caught.value.message.endswith("(TLS options of tool web_request)")


async def test_ca_certificate_from_the_tool_or_the_top_level(certs: Certs) -> None:
    async with https(hello_app(), certs.good) as url:
        assert (await get(web_tool(ca_certificate=certs.ca), url)).endswith(GREETING)
        assert (await get(web_tool({"ca_certificate": certs.ca}), url)).endswith(GREETING)


async def test_insecure_skip_verify_warns_once_at_build(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hector.tls"):
        tool = web_tool(insecure_skip_verify=True)
        # Warned when the tool is built (start-up), not at its first request.
        assert len(insecure_records(caplog, "tool web_request")) == 1
        async with https(hello_app(), certs.wrong_host) as url:
            assert (await get(tool, url)).endswith(GREETING)
            assert (await get(tool, url)).endswith(GREETING)
    assert len(insecure_records(caplog, "tool web_request")) == 1
