"""The one factory for outbound HTTP clients.

Every component that opens a connection (LLM providers, JWKS, MCP, external agents, vector
stores, web_request) builds its client here, or at least its TLS context (``hector.tls``), so
TLS options mean the same thing everywhere.
"""

from __future__ import annotations

import httpx

from hector.observability.tracing import inject_trace_context
from hector.tls import TLSOptions, create_ssl_context


def create_async_client(
    *,
    component: str,
    tls: TLSOptions | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
    base_url: str = "",
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with Hector's TLS rules and a finite timeout.

    Requests carry the current W3C trace context (``traceparent``), so the services Hector
    calls (models, MCP servers, other agents) join the caller's trace.
    """
    return httpx.AsyncClient(
        verify=create_ssl_context(tls, component),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers=headers,
        base_url=base_url,
        follow_redirects=False,
        event_hooks={"request": [inject_trace_context]},
    )
