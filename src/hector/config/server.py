"""Configuration of the server: listening, inbound auth, TLS, CORS, rate limits, observability."""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from hector.config.base import Section, TLSClientOptions
from hector.config.types import Duration, PlaceholderStr, Size

MIN_JWKS_REFRESH = 60.0


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

    @field_validator("refresh_interval")
    @classmethod
    def _not_too_often(cls, value: float) -> float:
        # Each refresh is a request to the issuer; more often than this would hammer it.
        if value < MIN_JWKS_REFRESH:
            raise ValueError(f"must be at least 1m (got {value:g}s): the key set is fetched that often")
        return value

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


class TaskRecoveryConfig(Section):
    """What happens to a task whose server died (its lease went stale): see README "Crash recovery"."""

    resume: bool = True
    """Continue it from its last checkpoint on a live replica (or the restarted server); off: fail it."""
    interrupted_tool_calls: Literal["fail", "retry", "report"] = "fail"
    """A tool call that was running at the crash may or may not have taken effect: fail the task
    (default), run the call again (for idempotent tools), or report it to the model as interrupted."""


class EventRelayConfig(Section):
    """Task events shared by every replica through Redis, so SubscribeToTask works on any of them."""

    enabled: bool = False
    redis_url: SecretStr | None = None
    """Default: redis://127.0.0.1:6379/0."""


class GrpcServerConfig(Section):
    """A2A over gRPC for every exposed agent, on one port beside HTTP (``hector.server.grpc``)."""

    enabled: bool = False
    port: int = Field(default=50051, gt=0, le=65535)
    host: str | None = None
    """Default: server.host."""


class ServerConfig(Section):
    aliases: ClassVar[dict[str, str]] = {"transport": "preferred_transport"}

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
    """Addresses or networks (``10.0.0.0/8``) whose X-Forwarded-For/-Proto headers are believed."""
    task_lease_interval: Duration = Field(default=10.0, gt=0)
    """A running task's lease is renewed this often; a working task whose lease is three
    intervals old (its server died) is taken over by any replica: continued or failed."""
    task_recovery: TaskRecoveryConfig = TaskRecoveryConfig()
    event_relay: EventRelayConfig = EventRelayConfig()
    grpc: GrpcServerConfig = GrpcServerConfig()
    preferred_transport: Literal["json-rpc", "rest", "grpc"] = "json-rpc"
    """Listed first in the agent cards, so clients that take the first interface they speak use it."""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        bad = []
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                bad.append(entry)
        if bad:
            raise ValueError(
                f"not IP addresses or networks: {bad}; write each proxy as an address (10.0.0.5) "
                "or a network (10.0.0.0/8)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _grpc_port(cls, data: Any) -> Any:
        # SPEC's `grpc_port` (the Go original always served gRPC): a port given turns gRPC on.
        if isinstance(data, dict) and "grpc_port" in data:
            data = dict(data)
            grpc = dict(data.get("grpc") or {})
            if "port" in grpc:
                raise ValueError("give either 'grpc.port' or its alias 'grpc_port', not both")
            grpc["port"] = data.pop("grpc_port")
            grpc.setdefault("enabled", True)
            data["grpc"] = grpc
        return data
