"""TLS for outbound connections: options, SSL contexts, file checks and error descriptions.

The one place that turns TLS options into an ``ssl.SSLContext`` (system store plus
``ca_certificate``, TLS ≥ 1.2, hostnames checked unless ``insecure_skip_verify``) and explains
a failed handshake in the words of the seed's troubleshooting guide (``describe_tls_error``).
It depends on nothing but ``ssl``, so configuration checks can use it without an HTTP stack.
"""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass

from hector.errors import ConfigError

log = logging.getLogger("hector.tls")

_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

# OpenSSL verify codes (X509_V_ERR_*) grouped by what the user has to do about them.
_UNKNOWN_AUTHORITY = {2, 19, 20}  # issuer not found / untrusted root in chain / no local issuer
_SELF_SIGNED = {18}
_NAME_MISMATCH = {62, 64}  # hostname, IP address
_OUT_OF_DATE = {9, 10}  # not yet valid, expired
_OPENSSL_LOCATION = re.compile(r" \(_ssl\.c:\d+\)")


@dataclass(frozen=True)
class TLSOptions:
    insecure_skip_verify: bool = False
    ca_certificate: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    min_tls_version: str | None = None


_warned: set[str] = set()


def insecure_warning(component: str) -> str:
    """The wording of the insecure_skip_verify warning (SPEC §5.8), for `validate` and start-up alike."""
    return f"TLS certificate verification disabled for {component} (insecure_skip_verify=true)"


def warn_insecure(component: str) -> None:
    """Log the insecure_skip_verify warning for *component*, once per process."""
    if component not in _warned:
        _warned.add(component)
        log.warning(insecure_warning(component))


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "KEY_VALUES_MISMATCH":
            return "the private key does not belong to the certificate"
        return f"not a usable PEM file ({exc.reason or exc.strerror or exc})"
    return exc.strerror or str(exc)


def _no_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal and hang a server start.
    raise ValueError("the private key is encrypted; give an unencrypted PEM key")


def load_ca(ctx: ssl.SSLContext, path: str, label: str) -> None:
    """Trust the certificates in *path* (PEM); a ``ConfigError`` in the seed's words if it cannot."""
    try:
        ctx.load_verify_locations(cafile=path)
    except OSError as exc:
        raise ConfigError(
            f"{label}: failed to read CA certificate from {path}: {_reason(exc)}; "
            "check the path (absolute paths are safest), that the file is readable and that it is PEM"
        ) from None


def load_cert_chain(ctx: ssl.SSLContext, cert: str, key: str | None, label: str, kind: str) -> None:
    """Present *cert* (with *key*, or the key inside *cert*); *kind* is "client" or "server"."""
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except (OSError, ValueError) as exc:
        reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
        where = f"{cert} (key: {key})" if key else cert
        raise ConfigError(f"{label}: failed to read {kind} certificate from {where}: {reason}") from None


def tls_file_problems(tls: TLSOptions, label: str) -> list[str]:
    """What is wrong with the files *tls* names (missing, unreadable, not PEM), without warning."""
    problems = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no system store: only the files are checked
    if tls.ca_certificate:
        try:
            load_ca(ctx, tls.ca_certificate, label)
        except ConfigError as exc:
            problems.append(exc.message)
    if tls.client_certificate:
        try:
            load_cert_chain(ctx, tls.client_certificate, tls.client_key, label, "client")
        except ConfigError as exc:
            problems.append(exc.message)
    return problems


def create_ssl_context(tls: TLSOptions | None, component: str) -> ssl.SSLContext:
    """System trust store, plus ``ca_certificate`` if given; TLS ≥ 1.2; hostname checked.

    ``insecure_skip_verify`` turns off chain and hostname checks and warns once per component.
    """
    tls = tls or TLSOptions()
    ctx = ssl.create_default_context()
    ctx.minimum_version = _TLS_VERSIONS[tls.min_tls_version or "1.2"]
    if tls.ca_certificate:
        load_ca(ctx, tls.ca_certificate, component)
    if tls.client_certificate:
        load_cert_chain(ctx, tls.client_certificate, tls.client_key, component, "client")
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        warn_insecure(component)
    return ctx


def find_tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind *exc*: HTTP libraries wrap it in their own connect errors."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe_tls_error(exc: BaseException) -> str:
    """*exc* in the words of the seed's Troubleshooting section, with the fix; ``str(exc)`` when
    no TLS error is behind it."""
    tls = find_tls_error(exc)
    if tls is None:
        return str(exc)
    if isinstance(tls, ssl.SSLCertVerificationError):
        code, detail = tls.verify_code, tls.verify_message
        if code in _UNKNOWN_AUTHORITY:
            return (
                f"x509: certificate signed by unknown authority ({detail}): the server's certificate "
                "comes from a CA that is not trusted here; if it is a private or internal CA, add it "
                "with ca_certificate: /path/to/ca.pem"
            )
        if code in _SELF_SIGNED:
            return (
                f"x509: certificate is not trusted ({detail}): the server presents a self-signed "
                "certificate; trust it with ca_certificate: /path/to/that-certificate.pem, or, for "
                "development and tests only, set insecure_skip_verify: true"
            )
        if code in _NAME_MISMATCH:
            return (
                f"x509: certificate is not valid for this host: the name does not match ({detail}); "
                "connect with a name the certificate lists, or have it reissued for this name"
            )
        if code in _OUT_OF_DATE:
            return (
                f"x509: certificate is out of date ({detail}): the server's certificate must be renewed "
                "(or this machine's clock is wrong)"
            )
        return f"x509: certificate verification failed: {detail}"
    reason = tls.reason or ""
    if "CERTIFICATE_REQUIRED" in reason:
        return "the server requires a client certificate (mutual TLS): set client_certificate and client_key"
    if reason == "WRONG_VERSION_NUMBER":
        return "the server did not answer with TLS (plain HTTP?): use an http:// URL or enable TLS there"
    return f"TLS handshake failed: {_OPENSSL_LOCATION.sub('', tls.strerror or str(tls))}"
