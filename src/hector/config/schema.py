"""The configuration schema: YAML → frozen pydantic models.

Seed key names are canonical; the Go original's spellings are accepted as aliases
(SPEC §2.12). Cross-references between sections are checked in ``config.validate``. The
sections live by topic in ``agents``, ``rag`` and ``server``; this module holds the top
level and re-exports them all, so ``from hector.config.schema import X`` works for every model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from hector.config.agents import (
    AgentConfig,
    CredentialsConfig,
    LLMConfig,
    LongTermMemoryConfig,
    MemoryConfig,
    PromptConfig,
    PromptSlots,
    ProviderType,
    ReasoningConfig,
    SkillConfig,
    StructuredOutputConfig,
    ToolConfig,
    Visibility,
)
from hector.config.base import Section, TLSClientOptions
from hector.config.compat import merge_global
from hector.config.rag import (
    DocumentStoreConfig,
    EmbedderConfig,
    HydeConfig,
    MCPParsersConfig,
    MultiQueryConfig,
    RerankConfig,
    SearchConfig,
    SearchModeName,
    VectorStoreConfig,
)
from hector.config.server import (
    AuthConfig,
    CORSConfig,
    EventRelayConfig,
    GrpcServerConfig,
    MetricsConfig,
    ObservabilityConfig,
    RateLimitConfig,
    ServerConfig,
    ServerTLSConfig,
    TaskRecoveryConfig,
    TracingConfig,
)

__all__ = [
    "AgentConfig",
    "AuthConfig",
    "CORSConfig",
    "Config",
    "CredentialsConfig",
    "DefaultsConfig",
    "DocumentStoreConfig",
    "EmbedderConfig",
    "EventRelayConfig",
    "GrpcServerConfig",
    "HydeConfig",
    "LLMConfig",
    "LoggerConfig",
    "LongTermMemoryConfig",
    "MCPParsersConfig",
    "MemoryConfig",
    "MetricsConfig",
    "MultiQueryConfig",
    "ObservabilityConfig",
    "PromptConfig",
    "PromptSlots",
    "ProviderType",
    "QuotaConfig",
    "QuotaLimitConfig",
    "RateLimitConfig",
    "ReasoningConfig",
    "RerankConfig",
    "SearchConfig",
    "SearchModeName",
    "ServerConfig",
    "ServerTLSConfig",
    "SessionStoreConfig",
    "SkillConfig",
    "StructuredOutputConfig",
    "TaskRecoveryConfig",
    "ToolConfig",
    "TracingConfig",
    "VectorStoreConfig",
    "Visibility",
]


class LoggerConfig(Section):
    level: Literal["debug", "info", "warn", "warning", "error"] = "info"
    format: Literal["text", "json", "simple", "verbose"] = "text"
    file: str | None = None


class QuotaLimitConfig(Section):
    type: Literal["token", "count"]
    window: Literal["minute", "hour", "day", "week", "month"]
    limit: int = Field(gt=0)


class QuotaConfig(Section):
    """Usage quotas (the Go original's session-store ``rate_limit``): tokens or requests per window."""

    enabled: bool = False
    scope: Literal["session", "user"] = "session"
    backend: Literal["memory", "sql"] = "memory"
    limits: list[QuotaLimitConfig] = []

    def effective_limits(self) -> list[QuotaLimitConfig]:
        if self.limits:
            return self.limits
        return [
            QuotaLimitConfig(type="token", window="day", limit=100_000),
            QuotaLimitConfig(type="count", window="minute", limit=60),
        ]


class SessionStoreConfig(Section):
    backend: Literal["sql", "memory"] = "sql"
    url: SecretStr | None = None
    """SQLAlchemy async URL, e.g. ``postgresql+asyncpg://user@host/db``; default: SQLite in data_dir."""
    rate_limit: QuotaConfig = QuotaConfig()


class DefaultsConfig(Section):
    llm: str | None = None
    embedder: str | None = None
    vector_store: str | None = None
    session_store: str | None = None


class Config(TLSClientOptions):
    """The whole configuration; its TLS options are the defaults of every outbound component."""

    version: str | None = None
    name: str | None = None
    description: str | None = None
    llms: dict[str, LLMConfig] = {}
    embedders: dict[str, EmbedderConfig] = {}
    vector_stores: dict[str, VectorStoreConfig] = {}
    document_stores: dict[str, DocumentStoreConfig] = {}
    tools: dict[str, ToolConfig] = {}
    agents: dict[str, AgentConfig] = {}
    server: ServerConfig = ServerConfig()
    logger: LoggerConfig = LoggerConfig()
    session_stores: dict[str, SessionStoreConfig] = {}
    defaults: DefaultsConfig = DefaultsConfig()

    @model_validator(mode="before")
    @classmethod
    def _none_sections(cls, data: Any) -> Any:
        # `agents:` with nothing under it is an empty section, not an error.
        if not isinstance(data, dict):
            return data
        # Scalar top-level keys (`name:` left empty) stay None.
        out = {k: ({} if v is None and k not in _SCALAR_KEYS else v) for k, v in data.items()}
        for key in _MAP_SECTIONS:
            section = out.get(key)
            if isinstance(section, dict):
                out[key] = {name: ({} if entry is None else entry) for name, entry in section.items()}
        return merge_global(out)


_SCALAR_KEYS = ("version", "name", "description", *TLSClientOptions.model_fields)
_MAP_SECTIONS = ("llms", "embedders", "vector_stores", "document_stores", "tools", "agents", "session_stores")
