"""LLM providers: one module per vendor, each SDK imported only when that provider is used."""

from __future__ import annotations

import os

from hector.config.base import TLSClientOptions
from hector.config.schema import LLMConfig
from hector.config.tls import effective_tls
from hector.errors import ConfigError
from hector.providers.base import Model, ModelSettings
from hector.providers.test import FunctionModel, TestModel

__all__ = ["FunctionModel", "Model", "ModelSettings", "TestModel", "build_model"]

DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.0-flash",
    "ollama": "qwen3",
    "test": "test",
}
API_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}


def resolve_api_key(name: str, cfg: LLMConfig) -> str | None:
    """The configured key, else the provider's usual environment variable."""
    if cfg.api_key is not None and cfg.api_key.get_secret_value():
        return cfg.api_key.get_secret_value()
    env = API_KEY_ENV.get(cfg.type)
    value = os.environ.get(env) if env else None
    if not value and cfg.type == "gemini":
        value = os.environ.get("GOOGLE_API_KEY")
    # A self-hosted OpenAI-compatible server (vLLM, LM Studio, ...) usually needs no key.
    keyless_ok = cfg.type == "openai" and bool(cfg.host)
    if not value and env and not keyless_ok:
        raise ConfigError(
            f"llm {name!r} ({cfg.type}) has no API key: set api_key: ${{{env}}} in the config and "
            f"export {env}, or use `type: test` to run without a provider"
        )
    return value


def build_model(name: str, cfg: LLMConfig, tls_defaults: TLSClientOptions | None = None) -> Model:
    """Create the model for ``llms.<name>``; raises ``ConfigError`` with the fix on a bad setup.

    *tls_defaults* (the configuration's top level) fills the TLS keys *cfg* does not set.
    """
    model = cfg.model or DEFAULT_MODELS[cfg.type]
    tls = effective_tls(cfg, tls_defaults)
    if cfg.type == "test":
        return TestModel(model)
    if cfg.type == "openai":
        from hector.providers.openai import OpenAIModel

        return OpenAIModel(name, cfg, model, resolve_api_key(name, cfg), tls)
    if cfg.type == "anthropic":
        from hector.providers.anthropic import AnthropicModel

        return AnthropicModel(name, cfg, model, resolve_api_key(name, cfg), tls)
    if cfg.type == "gemini":
        from hector.providers.gemini import GeminiModel

        return GeminiModel(name, cfg, model, resolve_api_key(name, cfg), tls)
    from hector.providers.ollama import OllamaModel

    return OllamaModel(name, cfg, model, tls)
