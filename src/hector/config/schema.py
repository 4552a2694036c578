"""The configuration schema: YAML → frozen pydantic models.

Seed key names are canonical; the Go original's spellings are accepted as aliases
(SPEC §2.12). Cross-references between sections are checked in ``config.validate``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from hector.config.base import Section, TLSClientOptions
from hector.config.types import Duration, PlaceholderStr, Size, StrList

ProviderType = Literal["openai", "anthropic", "gemini", "ollama", "test"]
Visibility = Literal["public", "internal", "private"]


class LLMConfig(TLSClientOptions):
    aliases: ClassVar[dict[str, str]] = {"provider": "type", "base_url": "host"}

    type: ProviderType = "openai"
    model: str | None = None
    api_key: SecretStr | None = None
    host: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    timeout: Duration = 600.0
    max_retries: int = Field(default=5, ge=0, le=20)
    retry_delay: Duration = 2.0


class EmbedderConfig(TLSClientOptions):
    aliases: ClassVar[dict[str, str]] = {"provider": "type", "base_url": "host"}

    type: str = "local"
    model: str | None = None
    host: str | None = None
    api_key: SecretStr | None = None
    dimension: int | None = Field(default=None, gt=0)
    timeout: Duration = 30.0
    max_retries: int = Field(default=3, ge=0)
    batch_size: int = Field(default=32, gt=0)


class VectorStoreConfig(TLSClientOptions):
    aliases: ClassVar[dict[str, str]] = {"use_tls": "enable_tls"}

    type: str = "embedded"
    host: str | None = None
    port: int | None = Field(default=None, gt=0, le=65535)
    api_key: SecretStr | None = None
    enable_tls: bool = False
    collection: str | None = None
    url: str | None = None
    path: str | None = None


class DocumentStoreConfig(Section):
    aliases: ClassVar[dict[str, str]] = {"path": "source_path"}

    source: str = "directory"
    source_path: str | None = None
    collection: str | None = None
    vector_store: str | None = None
    embedder: str | None = None
    include_patterns: StrList = []
    exclude_patterns: StrList | None = None
    additional_exclude_patterns: StrList = []
    chunk_size: int = Field(default=800, gt=0)
    chunk_overlap: int = Field(default=0, ge=0)
    chunk_strategy: Literal["simple", "overlapping", "semantic"] = "simple"
    enable_watch_changes: bool = True
    enable_incremental_indexing: bool = True
    max_file_size: Size = 10 * 1024 * 1024


class ToolConfig(TLSClientOptions):
    """A tool declaration. The keys of all tool kinds live here; each kind reads its own."""

    aliases: ClassVar[dict[str, str]] = {
        "requires_approval": "require_approval",
        "enable_approval": "require_approval",
    }

    type: str = "function"
    handler: str | None = None
    enabled: bool = True
    description: str | None = None
    internal: bool = False
    require_approval: bool | None = None
    """Default: on for tools that change things (command, write, patch, web), off for readers."""
    approval_prompt: str | None = None
    approval_timeout: Duration = 600.0
    """A pending approval expires after this long; the call is then denied."""
    # command
    working_directory: str | None = None
    max_execution_time: Duration = 30.0
    allowed_commands: StrList | None = None
    denied_commands: StrList | None = None
    deny_by_default: bool = False
    enable_sandboxing: bool = True
    max_output_size: Size = 1024 * 1024
    # file tools
    max_file_size: Size | None = None
    allowed_extensions: StrList | None = None
    denied_extensions: StrList | None = None
    backup_on_overwrite: bool = False
    # web_request
    allowed_domains: StrList | None = None
    denied_domains: StrList | None = None
    allowed_methods: StrList | None = None
    timeout: Duration | None = None
    max_response_size: Size = 10 * 1024 * 1024
    max_redirects: int = Field(default=5, ge=0, le=20)
    allow_private_networks: bool = False
    """web_request: allow loopback, private and link-local addresses (off: SSRF protection)."""
    # mcp
    server_url: str | None = None
    url: str | None = None
    transport: Literal["sse", "stdio", "streamable-http"] | None = None
    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    headers: dict[str, SecretStr] = {}
    filter: StrList | None = None


class MemoryConfig(Section):
    strategy: Literal["buffer_window", "summary_buffer"] = "buffer_window"
    window_size: int = Field(default=20, gt=0)
    budget: int = Field(default=8000, gt=0)
    threshold: float = Field(default=0.85, gt=0, le=1)
    target: float = Field(default=0.7, gt=0, le=1)


class PromptSlots(Section):
    system_role: str | None = None
    instructions: str | None = None
    user_guidance: str | None = None


class PromptConfig(Section):
    system_prompt: str | None = None
    prompt_slots: PromptSlots = PromptSlots()


class ReasoningConfig(Section):
    engine: Literal["chain-of-thought", "supervisor", "default"] = "default"
    max_iterations: int = Field(default=100, gt=0, le=10_000)
    enable_streaming: bool = True


class StructuredOutputConfig(Section):
    format: Literal["json"] = "json"
    schema_: dict[str, Any] = Field(alias="schema")
    name: str = "response"


class CredentialsConfig(Section):
    type: Literal["bearer", "api_key", "basic"] = "bearer"
    token: SecretStr | None = None
    api_key: SecretStr | None = None
    api_key_header: str = "X-API-Key"
    username: str | None = None
    password: SecretStr | None = None


class SkillConfig(Section):
    id: str
    name: str
    description: str = ""
    tags: list[str] = []
    examples: list[str] = []


class AgentConfig(TLSClientOptions):
    aliases: ClassVar[dict[str, str]] = {"system_prompt": "instruction"}

    type: Literal["native", "a2a"] = "native"
    name: str | None = None
    description: str | None = None
    visibility: Visibility = "public"
    llm: str | None = None
    instruction: str | None = None
    prompt: PromptConfig = PromptConfig()
    tools: list[str] | None = None
    document_stores: list[str] | None = None
    sub_agents: list[str] | None = None
    session_store: str | None = None
    memory: MemoryConfig = MemoryConfig()
    reasoning: ReasoningConfig = ReasoningConfig()
    structured_output: StructuredOutputConfig | None = None
    skills: list[SkillConfig] = []
    # external agents (type: a2a)
    url: str | None = None
    target_agent_id: str | None = None
    credentials: CredentialsConfig | None = None

    @field_validator("visibility", mode="before")
    @classmethod
    def _visibility(cls, value: Any) -> Any:
        if value not in ("public", "internal", "private"):
            raise ValueError(f"invalid visibility {value!r} (must be 'public', 'internal', or 'private')")
        return value


class AuthConfig(TLSClientOptions):
    """Inbound authentication; the TLS options apply to fetching ``jwks_url``."""

    enabled: bool = False
    jwks_url: PlaceholderStr | None = None
    issuer: PlaceholderStr | None = None
    audience: PlaceholderStr | None = None
    require_auth: bool = True
    excluded_paths: list[str] = ["/health", "/.well-known/agent-card.json"]
    refresh_interval: Duration = 900.0
    api_keys: list[SecretStr] = []

    @field_validator("api_keys", mode="before")
    @classmethod
    def _drop_empty_keys(cls, value: Any) -> Any:
        # An unset ${VAR:-} expands to "", which must never become a valid key.
        if isinstance(value, list):
            return [v for v in value if not (isinstance(v, str) and not v.strip())]
        return value


class CORSConfig(Section):
    allowed_origins: list[str] = ["*"]
    allowed_methods: list[str] = ["GET", "POST", "OPTIONS"]
    allowed_headers: list[str] = ["Content-Type", "Authorization", "A2A-Version"]
    allow_credentials: bool = False
    max_age: int | None = Field(default=None, ge=0)


class RateLimitConfig(Section):
    enabled: bool = False
    requests_per_minute: int = Field(default=60, gt=0)
    burst: int | None = Field(default=None, gt=0)
    per_user: bool = False
    backend: Literal["memory", "redis"] = "memory"
    redis_url: SecretStr | None = None
    """Default: redis://127.0.0.1:6379/0."""


class MetricsConfig(Section):
    enabled: bool = False
    endpoint: str = "/metrics"


class TracingConfig(Section):
    aliases: ClassVar[dict[str, str]] = {"endpoint_url": "endpoint"}

    enabled: bool = False
    endpoint: str | None = None
    exporter: Literal["otlp", "otlp-http"] = "otlp"
    sampling_rate: float = Field(default=1.0, ge=0, le=1)
    service_name: str = "hector"
    insecure: bool = True
    headers: dict[str, SecretStr] = {}


class ObservabilityConfig(Section):
    metrics: MetricsConfig = MetricsConfig()
    tracing: TracingConfig = TracingConfig()


class ServerTLSConfig(Section):
    enabled: bool = True
    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, gt=0, le=65535)
    base_url: str | None = None
    data_dir: str = ".hector"
    max_body_size: Size = 10 * 1024 * 1024
    auth: AuthConfig = AuthConfig()
    cors: CORSConfig | None = None
    rate_limiting: RateLimitConfig = RateLimitConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    tls: ServerTLSConfig | None = None
    trusted_proxies: list[str] = []
    task_lease_interval: Duration = Field(default=10.0, gt=0)
    """A running task's lease is renewed this often; a working task whose lease is three
    intervals old (its server died) is failed by any replica."""


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
        return out


_SCALAR_KEYS = ("version", "name", "description", *TLSClientOptions.model_fields)
_MAP_SECTIONS = ("llms", "embedders", "vector_stores", "document_stores", "tools", "agents", "session_stores")
