"""Every provider's SDK gets Hector's TLS settings: checked against the scripted server over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from hector.config.schema import LLMConfig
from hector.errors import ConfigError, ProviderError
from hector.messages import ChatMessage
from hector.providers import build_model
from tests.llm_server import ScriptedLLMServer
from tests.providers.support import scripted_llm

PROVIDERS = ["openai", "anthropic", "gemini", "ollama"]


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScriptedLLMServer, Path]]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(folder / "server.pem")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    server = ScriptedLLMServer(certfile=str(folder / "server.pem"))
    server.start()
    yield server, folder / "ca.pem"
    server.stop()


async def ask(cfg: LLMConfig) -> str:
    model = build_model("secure", cfg)
    try:
        return (await model.request([ChatMessage("user", "over TLS")], [], {})).text
    finally:
        await model.aclose()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unknown_ca_is_refused(provider: str, https_server: tuple[ScriptedLLMServer, Path]) -> None:
    server, _ = https_server
    with pytest.raises(ProviderError, match="x509: certificate signed by unknown authority"):
        await ask(scripted_llm(provider, server))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_configured_ca_is_trusted(provider: str, https_server: tuple[ScriptedLLMServer, Path]) -> None:
    server, ca = https_server
    assert await ask(scripted_llm(provider, server, ca_certificate=str(ca))) == "over TLS"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_insecure_skip_verify(provider: str, https_server: tuple[ScriptedLLMServer, Path]) -> None:
    server, _ = https_server
    assert await ask(scripted_llm(provider, server, insecure_skip_verify=True)) == "over TLS"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unreadable_ca_is_a_config_error(provider: str, tmp_path: Path) -> None:
    cfg = LLMConfig.model_validate(
        {"type": provider, "api_key": "k", "ca_certificate": str(tmp_path / "missing.pem")}
    )
    with pytest.raises(ConfigError, match=rf"LLM provider {provider} \(secure\).*missing.pem"):
        build_model("secure", cfg)
