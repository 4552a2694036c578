"""Zero-config mode: a one-agent configuration built from command-line flags."""

from __future__ import annotations

import os
from typing import Any

from hector.errors import ConfigError
from hector.providers import API_KEY_ENV

PROVIDER_ORDER = ("openai", "anthropic", "gemini")


def detect_provider() -> str | None:
    """The provider named by HECTOR_PROVIDER, else the first whose API key is in the environment."""
    named = os.environ.get("HECTOR_PROVIDER")
    if named:
        return named
    for provider in PROVIDER_ORDER:
        if os.environ.get(API_KEY_ENV[provider]):
            return provider
    return None


def zero_config(
    *,
    agent: str = "assistant",
    provider: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    instruction: str | None = None,
    tools: list[str] | None = None,
) -> dict[str, Any]:
    """The configuration (as YAML data, before validation) that the flags describe."""
    provider = provider or detect_provider()
    if provider is None:
        raise ConfigError(
            "no LLM provider is configured: export OPENAI_API_KEY (or ANTHROPIC_API_KEY / "
            "GEMINI_API_KEY), pass --provider and --api-key, or run `hector serve --provider test` "
            "for the offline test model"
        )
    llm: dict[str, Any] = {"type": provider}
    for key, value in (
        ("model", model or os.environ.get("HECTOR_MODEL")),
        ("api_key", api_key),
        ("host", base_url or os.environ.get("HECTOR_BASE_URL")),
    ):
        if value:
            llm[key] = value
    agent_cfg: dict[str, Any] = {"llm": provider}
    if instruction:
        agent_cfg["instruction"] = instruction
    if tools:
        agent_cfg["tools"] = tools
    return {"version": "2", "llms": {provider: llm}, "agents": {agent: agent_cfg}}
