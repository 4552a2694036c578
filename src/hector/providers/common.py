"""What the provider modules share: their error texts and tool-argument parsing.

Kept apart from the provider modules so that using one provider never imports another's SDK.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from hector.errors import ProviderError, ProviderHTTPError, ProviderTimeoutError
from hector.tls import describe_tls_error, find_tls_error

log = logging.getLogger("hector.providers")


def parse_arguments(raw: str, tool: str) -> dict[str, Any]:
    """Tool-call arguments as a dict; text that is not a JSON object is kept under ``_raw``.

    Models do produce broken JSON now and then. Handing the text on lets the tool report a
    clear error to the model instead of failing the whole run.
    """
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("tool call %s: arguments are not valid JSON; passing them on as _raw", tool)
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


@dataclass(frozen=True)
class Failures:
    """Builds one model's exceptions, so every provider words its failures alike.

    Each names the provider, the ``llms`` entry and the host, and none shows the API key: a
    proxy may echo request headers back in its error body, so server text is redacted.
    """

    provider: str
    name: str
    """The key under ``llms:`` in the configuration."""
    host: str
    timeout: float
    api_key: str | None = None

    @property
    def where(self) -> str:
        return f"{self.provider} ({self.name})"

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, "[redacted]") if self.api_key else text

    def http(self, status: int, detail: str) -> ProviderHTTPError:
        return ProviderHTTPError(self.where, status, self.redact(detail) or "no detail given")

    def timed_out(self) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"{self.where}: no answer from {self.host} within {self.timeout:g}s "
            f"(raise `timeout` in llms.{self.name} if the model needs longer)"
        )

    def unreachable(self, reason: object, check: str = "that the server is running") -> ProviderError:
        if isinstance(reason, BaseException) and find_tls_error(reason) is not None:
            return ProviderError(
                f"{self.where}: TLS connection to {self.host} failed: {describe_tls_error(reason)} "
                f"(TLS options go in llms.{self.name} or at the top level)"
            )
        return ProviderError(
            f"{self.where}: cannot connect to {self.host}: {self.redact(str(reason))}; "
            f"check `host` in llms.{self.name} and {check}"
        )

    def stream_failed(self, detail: str) -> ProviderError:
        """An error reported inside a response that had started with 200 OK."""
        return ProviderError(f"{self.where}: the response stream failed: {self.redact(detail)}")
