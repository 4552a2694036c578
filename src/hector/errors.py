"""The one exception tree of Hector.

    HectorError
    ├── ConfigError                 a mistake in the user's configuration (exit 1 at load time)
    │   ├── ConfigLoadError         the file cannot be read or is not YAML
    │   └── EnvVarError             ${VAR} with no value and no default
    ├── AgentNotFoundError          an agent name that does not exist (or is not visible)
    ├── ProviderError               an LLM provider failed a request
    │   ├── ProviderHTTPError       the provider answered with an error status
    │   └── ProviderTimeoutError    no answer within the configured timeout
    ├── ToolError                   a tool failed; the message is shown to the model
    ├── VectorStoreError            a vector-store back end failed (connection, TLS, collection)
    ├── DocumentSourceError         a document store's database or API could not be read
    ├── IndexingError               a document store cannot be searched: its first indexing failed
    ├── AgentRunError               the agent loop could not finish (e.g. max iterations)
    └── ClientError                 the CLI's A2A client could not complete a call

Messages are written for the person reading them: they name the thing, the place and the fix.
Mapping to HTTP statuses and JSON-RPC codes lives in the transport layer, not here.
"""

from __future__ import annotations


class HectorError(Exception):
    """Base class of every error Hector raises on purpose."""

    default_message = "Hector error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(HectorError):
    default_message = "invalid configuration"


class ConfigLoadError(ConfigError):
    """The file could not be read as YAML at all (``hector validate``'s "load" errors; the others
    are "process" errors: what the file says is wrong)."""

    default_message = "configuration file could not be read"


class EnvVarError(ConfigError):
    default_message = "environment variable is not set"


class AgentNotFoundError(HectorError):
    default_message = "agent not found"


class ProviderError(HectorError):
    default_message = "LLM provider request failed"


class ProviderHTTPError(ProviderError):
    def __init__(self, provider: str, status_code: int, detail: str) -> None:
        self.status_code = status_code
        super().__init__(f"{provider} answered HTTP {status_code}: {detail}")


class ProviderTimeoutError(ProviderError):
    default_message = "LLM provider timed out"


class ToolError(HectorError):
    default_message = "tool failed"


class VectorStoreError(HectorError):
    default_message = "vector store request failed"


class DocumentSourceError(HectorError):
    """A document store's database or API could not be read (never names its credentials)."""

    default_message = "document source could not be read"


class IndexingError(HectorError):
    """A served document store whose first indexing failed (or was stopped): searching it would
    find nothing, or a partial index, so it answers this instead."""

    default_message = "document store not indexed"


class AgentRunError(HectorError):
    default_message = "agent run failed"


class ClientError(HectorError):
    default_message = "A2A call failed"
