"""gRPC for ``type: a2a`` agents: the channel and its TLS, call metadata, failures in words.

Whether a channel uses TLS is decided per gRPC address the agent's card gives:

- ``grpcs://`` or ``https://`` → TLS; ``grpc://`` or ``http://`` → plaintext;
- a bare ``host:port`` (the usual form in cards) → TLS when the agent is configured with an
  ``https`` URL or a ``ca_certificate`` / client certificate, plaintext otherwise.

TLS trusts the system roots plus ``ca_certificate`` and presents the client certificate if one
is set (mutual TLS). grpcio cannot turn certificate verification off, so
``insecure_skip_verify`` never weakens a TLS channel: it is still verified, and a warning says
so. The Go original instead fell back to plaintext, which would send the credentials unencrypted
to a server that expects TLS; a plaintext channel is used only where the address (or the
agent's ``http`` URL) asks for one, and then, as there, with the warning ``Using insecure gRPC
connection for A2A agent <id>``.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import grpc.aio
from opentelemetry import propagate

from hector.errors import ConfigError
from hector.tls import TLSOptions

log = logging.getLogger("hector.agent.remote")

_TLS_SCHEMES = {"grpcs", "https"}
_PLAIN_SCHEMES = {"grpc", "http"}
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\s*", re.S)
_CHANNEL_OPTIONS = [
    # Large answers and long streams: gRPC's 4 MiB default receive limit is too small for some tasks.
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # A call has no deadline (a task may run for hours), so a server that vanished mid-call
    # (host down, network cut: no reset ever arrives) is noticed by keepalive pings instead: one
    # unanswered for 20 s fails the call (current grpcio times the ack with ping_timeout_ms, older
    # releases with keepalive_timeout_ms). Every 6 minutes, as gRPC servers by default refuse
    # pings more often than every 5 minutes; and on for as long as a quiet stream lasts.
    ("grpc.keepalive_time_ms", 6 * 60 * 1000),
    ("grpc.keepalive_timeout_ms", 20 * 1000),
    ("grpc.http2.ping_timeout_ms", 20 * 1000),
    ("grpc.http2.max_pings_without_data", 0),
]

_warned: set[str] = set()


def insecure_grpc_warning(agent_id: str) -> str:
    """SPEC §5.8's wording for a plaintext gRPC channel chosen with ``insecure_skip_verify``."""
    return f"Using insecure gRPC connection for A2A agent {agent_id}"


def unverifiable_warning(agent_id: str) -> str:
    return (
        f"insecure_skip_verify cannot be honoured over gRPC for A2A agent {agent_id}: the server's "
        "certificate is still verified (trust a private CA with ca_certificate)"
    )


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def grpc_target(url: str) -> tuple[str, bool | None]:
    """(``host:port`` for grpcio, whether the scheme asks for TLS — ``None`` for a bare address)."""
    if "://" not in url:
        return url.rstrip("/"), None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _TLS_SCHEMES | _PLAIN_SCHEMES:
        raise ConfigError(f"unsupported gRPC address {url!r} (use host:port, grpc:// or grpcs://)")
    port = parts.port or (443 if scheme in _TLS_SCHEMES else 80)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}", scheme in _TLS_SCHEMES


def _read(path: str, what: str, component: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{component}: failed to read {what} from {path}: {exc.strerror or exc}") from None


def _system_roots() -> bytes:
    """The system trust store as PEM, so ``ca_certificate`` adds to it (as for HTTP) instead of
    replacing it; empty when the platform keeps no bundle file."""
    cafile = ssl.get_default_verify_paths().cafile
    try:
        return Path(cafile).read_bytes() if cafile else b""
    except OSError:
        return b""


def _key_and_chain(tls: TLSOptions, component: str) -> tuple[bytes | None, bytes | None]:
    """The client key and certificate chain; the key may sit in the certificate file."""
    if not tls.client_certificate:
        return None, None
    cert = _read(tls.client_certificate, "client certificate", component)
    key = _read(tls.client_key, "client key", component) if tls.client_key else cert
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(key)]
    keys = [b for b in blocks if b"PRIVATE KEY-----" in b.splitlines()[0]]
    chain = b"".join(m.group(0) for m in _PEM_BLOCK.finditer(cert) if m.group(1) == b"CERTIFICATE")
    if not keys or not chain:
        raise ConfigError(f"{component}: the client certificate and key must be PEM files")
    return keys[0], chain


def channel_credentials(tls: TLSOptions, component: str) -> grpc.ChannelCredentials:
    roots = None
    if tls.ca_certificate:
        roots = _system_roots() + b"\n" + _read(tls.ca_certificate, "CA certificate", component)
    key, chain = _key_and_chain(tls, component)
    return grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=chain)


class ChannelFactory:
    """``ClientConfig.grpc_channel_factory`` for one external agent: address → channel."""

    def __init__(self, agent_id: str, agent_url: str, tls: TLSOptions, component: str) -> None:
        self.agent_id = agent_id
        self.tls = tls
        self.component = component
        self.last_tls: bool | None = None
        """Whether the latest channel used TLS: a failure is explained by it."""
        self.tls_by_default = (
            agent_url.lower().startswith("https:") or bool(tls.ca_certificate) or bool(tls.client_certificate)
        )

    def uses_tls(self, url: str) -> bool:
        scheme_tls = grpc_target(url)[1]
        return self.tls_by_default if scheme_tls is None else scheme_tls

    def __call__(self, url: str) -> grpc.aio.Channel:
        target, _ = grpc_target(url)
        self.last_tls = self.uses_tls(url)
        if not self.last_tls:
            if self.tls.insecure_skip_verify:
                _warn_once(insecure_grpc_warning(self.agent_id))
            return grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        if self.tls.insecure_skip_verify:
            _warn_once(unverifiable_warning(self.agent_id))
        credentials = channel_credentials(self.tls, self.component)
        return grpc.aio.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)


def call_metadata(headers: Mapping[str, str], agent_name: str) -> dict[str, str]:
    """gRPC metadata for one call: the credentials (as the HTTP headers would carry them), the
    current W3C trace context, and ``agent-name`` for servers that route one gRPC service to
    several agents (the Go original routes by it)."""
    metadata = {key.lower(): value for key, value in headers.items()}
    propagate.inject(metadata)
    metadata["agent-name"] = agent_name
    return metadata


def describe_grpc_error(exc: grpc.aio.AioRpcError, channels: ChannelFactory | None = None) -> str:
    """A failed call in words; TLS failures as the troubleshooting guide words them, with the fix.
    *channels* tells whether the call went over TLS, for failures grpcio leaves unexplained."""
    code, details = exc.code(), exc.details() or ""
    lowered = details.lower()
    tls = channels.last_tls if channels is not None else None
    if "certificate_verify_failed" in lowered or "unable to get local issuer" in lowered:
        return (
            "x509: certificate signed by unknown authority: the gRPC server's certificate comes from "
            "a CA that is not trusted here; if it is a private or internal CA, add it with "
            "ca_certificate: /path/to/ca.pem"
        )
    if "hostname verification" in lowered or "peer name" in lowered or "subject alternative" in lowered:
        return (
            "x509: certificate is not valid for this host: the gRPC server's certificate does not "
            "list the name it was reached by; connect with a name the certificate lists, or have "
            "it reissued for this name"
        )
    if "certificate_required" in lowered or "peer did not return a certificate" in lowered:
        return "the server requires a client certificate (mutual TLS): set client_certificate and client_key"
    if "wrong_version_number" in lowered:
        return (
            "the gRPC server did not answer with TLS (plaintext gRPC?): TLS was used because of the "
            "address scheme, an https agent URL or a ca_certificate/client_certificate"
        )
    if "socket closed" in lowered and tls is not None:
        # grpcio reports both of these as a bare "Socket closed".
        if tls and channels is not None and not channels.tls.client_certificate:
            return (
                "the gRPC server closed the connection during the TLS handshake: it may require a "
                "client certificate (mutual TLS): set client_certificate and client_key"
            )
        if not tls:
            return (
                "the gRPC server closed the plaintext connection: it may expect TLS (give the "
                "agent an https URL or a ca_certificate, or have the card list a grpcs:// address)"
            )
    if "ping timeout" in lowered or "keepalive watchdog timeout" in lowered:
        return "the gRPC server stopped answering (keepalive pings went unanswered): the connection was lost"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"gRPC UNAUTHENTICATED (check credentials): {details}"
    return f"gRPC {code.name}: {details}"
