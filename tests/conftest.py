"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.harness import postgres_or_skip
from tests.llm_server import ScriptedLLMServer

_PROVIDER_KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's real API keys out of tests, so no test can reach a real provider."""
    for name in _PROVIDER_KEY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _llm_server_process() -> Iterator[ScriptedLLMServer]:
    server = ScriptedLLMServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def llm_server(_llm_server_process: ScriptedLLMServer) -> ScriptedLLMServer:
    """The scripted LLM server (see tests/llm_server.py), with an empty script and log."""
    _llm_server_process.reset()
    return _llm_server_process


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database (see ``tests.harness.postgres_or_skip``)."""
    async with postgres_or_skip() as url:
        yield url
