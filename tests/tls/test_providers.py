"""Every LLM provider over HTTPS: failures in the seed's troubleshooting words, and top-level defaults."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from hector.config import LLMConfig, parse_config
from hector.errors import ProviderError
from hector.messages import ChatMessage
from hector.providers import build_model
from tests.llm_server import ScriptedLLMServer
from tests.providers.support import scripted_llm
from tests.tls.conftest import Certs, insecure_records

PROVIDERS = ["openai", "anthropic", "gemini", "ollama"]
LEAVES = ("good", "self_signed", "wrong_host", "expired")


@pytest.fixture(scope="module")
def servers(certs: Certs) -> Iterator[dict[str, ScriptedLLMServer]]:
    """One scripted LLM server per server certificate."""
    running = {leaf: ScriptedLLMServer(certfile=getattr(certs, leaf)) for leaf in LEAVES}
    for server in running.values():
        server.start()
    yield running
    for server in running.values():
        server.stop()


async def ask(cfg: LLMConfig, top_level: dict[str, object] | None = None) -> str:
    defaults = parse_config(top_level or {}).config
    model = build_model("secure", cfg, tls_defaults=defaults)
    try:
        return (await model.request([ChatMessage("user", "over TLS")], [], {})).text
    finally:
        await model.aclose()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("leaf", "trust_ca", "expected"),
    [
        ("good", False, r"x509: certificate signed by unknown authority .*add it with ca_certificate"),
        ("self_signed", False, r"x509: certificate is not trusted .*self-signed.*insecure_skip_verify: true"),
        ("wrong_host", True, r"x509: certificate is not valid for this host: the name does not match"),
        ("expired", True, r"x509: certificate is out of date \(certificate has expired\)"),
    ],
)
async def test_tls_failures_name_the_host_the_reason_and_the_fix(
    provider: str,
    leaf: str,
    trust_ca: bool,
    expected: str,
    servers: dict[str, ScriptedLLMServer],
    certs: Certs,
) -> None:
    server = servers[leaf]
    cfg = scripted_llm(provider, server, **({"ca_certificate": certs.ca} if trust_ca else {}))
    with pytest.raises(ProviderError, match=expected) as caught:
        await ask(cfg)
    message = caught.value.message
    assert message.startswith(f"{provider} (secure): TLS connection to {server.url}")
    assert message.endswith("(TLS options go in llms.secure or at the top level)")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_top_level_ca_certificate_is_the_default(
    provider: str, servers: dict[str, ScriptedLLMServer], certs: Certs
) -> None:
    server = servers["good"]
    assert await ask(scripted_llm(provider, server), {"ca_certificate": certs.ca}) == "over TLS"
    # The component's own setting wins over the default.
    with pytest.raises(ProviderError, match="unknown authority"):
        await ask(scripted_llm(provider, server, ca_certificate=None), {"ca_certificate": certs.ca})


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_top_level_insecure_default_warns_for_the_provider_once(
    provider: str, servers: dict[str, ScriptedLLMServer], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hector.tls"):
        for _ in range(2):
            assert (
                await ask(scripted_llm(provider, servers["expired"]), {"insecure_skip_verify": True})
                == "over TLS"
            )
    assert len(insecure_records(caplog, f"LLM provider {provider} (secure)")) == 1
