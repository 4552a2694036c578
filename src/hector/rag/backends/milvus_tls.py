"""How a Milvus store reaches its server over TLS, with Hector's trust settings.

pymilvus hands gRPC file paths, and gRPC then trusts exactly the CA file it is given. Hector's
clients trust the system roots plus ``ca_certificate``, so the store gives gRPC a bundle of both.
gRPC reports a failed TLS handshake only as "unavailable" after its timeout, so the store first
connects with Python's ssl and the same settings: a wrong CA or host name fails at once, in the
words of ``describe_tls_error``. gRPC has no switch to skip verification either; with
``insecure_skip_verify`` the store takes the certificate the server presents in that first
handshake and has gRPC trust exactly it, under the name it was issued for.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509

from hector.config.schema import VectorStoreConfig
from hector.config.tls import effective_tls, vector_store_component
from hector.errors import VectorStoreError
from hector.rag.backends.common import trust_bundle
from hector.tls import create_ssl_context, describe_tls_error

CONNECT_TIMEOUT = 10.0


def tls_options(name: str, cfg: VectorStoreConfig) -> tuple[dict[str, Any], ssl.SSLContext]:
    """pymilvus's TLS arguments, and the context of the first handshake (which warns when
    verification is off, once per store)."""
    tls = effective_tls(cfg)
    context = create_ssl_context(tls, vector_store_component("milvus", name))
    options: dict[str, Any] = {"secure": True}
    if tls.client_certificate:
        # pymilvus presents a client certificate only together with a CA file of its own.
        ca = tls.ca_certificate or ssl.get_default_verify_paths().openssl_cafile
        options |= {
            "client_pem_path": tls.client_certificate,
            "client_key_path": tls.client_key or tls.client_certificate,
            "ca_pem_path": ca,
        }
    elif tls.ca_certificate:
        options["server_pem_path"] = tls.ca_certificate
    return options, context


def pinned_name(der: bytes) -> str:
    """A name the certificate was issued for, for gRPC's host-name check (insecure mode)."""
    cert = x509.load_der_x509_certificate(der)
    with contextlib.suppress(x509.ExtensionNotFound):
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for value in [*names.get_values_for_type(x509.DNSName), *names.get_values_for_type(x509.IPAddress)]:
            return str(value)
    common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value) if common else "localhost"


class MilvusTLS:
    """One store's connection settings: *options* (pymilvus's arguments, updated in place with the
    files made here), the ssl context of the first handshake (None: plain), and those files."""

    def __init__(
        self,
        options: dict[str, Any],
        context: ssl.SSLContext | None,
        insecure: bool,
        ca: str | None,
        fail: Callable[[str], VectorStoreError],
    ) -> None:
        self.options = options
        self.context = context
        self.insecure = insecure
        self.ca = ca
        self.fail = fail
        self.pin: Path | None = None
        self.bundle: Path | None = None

    def _ca_key(self) -> str:
        return "ca_pem_path" if "client_pem_path" in self.options else "server_pem_path"

    def trust_system_roots(self) -> None:
        """Make gRPC's one CA file the system roots plus ca_certificate, as every client of Hector
        trusts (a top-level company CA must not make a publicly certified server untrusted)."""
        if self.ca is None or self.insecure or self.bundle is not None:
            return
        self.bundle = trust_bundle(self.ca)
        self.options[self._ca_key()] = str(self.bundle)

    def handshake(self, host: str, port: int, listen: float = 0.0) -> None:
        """Reach the server (and finish a TLS handshake) with Python's sockets: fast, clear errors.
        With *listen*, wait that long for an alert (a refused client certificate comes after the
        handshake)."""
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as raw:
                if self.context is None:
                    return
                with self.context.wrap_socket(raw, server_hostname=host) as secured:
                    der = secured.getpeercert(binary_form=True)
                    if listen:
                        secured.settimeout(listen)
                        with contextlib.suppress(TimeoutError):
                            if not secured.recv(1):  # a gRPC server waits for the client to speak
                                raise ConnectionResetError("closed right after the TLS handshake")
        except ssl.SSLError as exc:
            raise self.fail(f"TLS with {host}:{port} failed: {describe_tls_error(exc)}") from None
        except OSError as exc:
            hint = ""
            if listen and "client_pem_path" not in self.options:
                hint = "; the server may require a client certificate: set client_certificate and client_key"
            raise self.fail(f"cannot reach {host}:{port}: {exc.strerror or exc}{hint}") from None
        if self.insecure and der:
            # gRPC cannot skip verification: it trusts exactly the certificate just presented.
            if self.pin is not None:  # an earlier attempt's pin
                self.pin.unlink(missing_ok=True)
            with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as pin:
                pin.write(ssl.DER_cert_to_PEM_cert(der))
            self.pin = Path(pin.name)
            self.options |= {self._ca_key(): pin.name, "server_name": pinned_name(der)}

    def check_pinned_dates(self) -> None:
        """After a failed connection in insecure mode: say so if the pinned certificate is out of
        date, which gRPC refuses whatever it trusts."""
        if self.pin is None:
            return
        cert = x509.load_pem_x509_certificate(self.pin.read_bytes())
        now = datetime.datetime.now(datetime.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise self.fail(
                f"the server's certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d}: gRPC refuses it even with "
                "insecure_skip_verify (it can trust any issuer and name, not any date)"
            )

    def remove_files(self) -> None:
        for file in (self.pin, self.bundle):
            if file is not None:
                file.unlink(missing_ok=True)
        self.pin = self.bundle = None
