"""The one factory for outbound HTTP clients and TLS contexts.

Every component that opens a connection (LLM providers, JWKS, MCP, external agents, vector
stores, web_request) builds its client here, so TLS options mean the same thing everywhere.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

import httpx

from hector.errors import ConfigError

log = logging.getLogger("hector.tls")

_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class TLSOptions:
    insecure_skip_verify: bool = False
    ca_certificate: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    min_tls_version: str | None = None


_warned: set[str] = set()


def create_ssl_context(tls: TLSOptions | None, component: str) -> ssl.SSLContext:
    """System trust store, plus ``ca_certificate`` if given; TLS ≥ 1.2; hostname checked.

    ``insecure_skip_verify`` turns off chain and hostname checks and warns once per component.
    """
    tls = tls or TLSOptions()
    ctx = ssl.create_default_context()
    ctx.minimum_version = _TLS_VERSIONS.get(tls.min_tls_version or "1.2", ssl.TLSVersion.TLSv1_2)
    if tls.ca_certificate:
        try:
            ctx.load_verify_locations(cafile=tls.ca_certificate)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"{component}: failed to read CA certificate from {tls.ca_certificate}: {reason}; "
                "check the path, that the file is readable and that it is PEM"
            ) from None
    if tls.client_certificate:
        try:
            ctx.load_cert_chain(tls.client_certificate, tls.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{component}: failed to load client certificate {tls.client_certificate}: {exc}"
            ) from None
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if component not in _warned:
            _warned.add(component)
            log.warning(
                "TLS certificate verification disabled for %s (insecure_skip_verify=true); "
                "use only in development",
                component,
            )
    return ctx


def create_async_client(
    *,
    component: str,
    tls: TLSOptions | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
    base_url: str = "",
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with Hector's TLS rules and a finite timeout."""
    return httpx.AsyncClient(
        verify=create_ssl_context(tls, component),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers=headers,
        base_url=base_url,
        follow_redirects=False,
    )
