"""The TLS factory against real HTTPS servers: trust, verification failures in the seed's words, mTLS."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from hector.config import LLMConfig, ToolConfig, parse_config
from hector.config.tls import effective_tls
from hector.errors import ConfigError
from hector.http_client import create_async_client
from hector.tls import TLSOptions, create_ssl_context, describe_tls_error, tls_file_problems
from tests.harness import serve_app
from tests.tls.conftest import GREETING, Certs, hello_app, https, insecure_records

UNKNOWN_AUTHORITY = r"x509: certificate signed by unknown authority .*ca_certificate"
NOT_TRUSTED = r"x509: certificate is not trusted .*self-signed.*insecure_skip_verify: true"
WRONG_NAME = r"x509: certificate is not valid for this host: the name does not match"
EXPIRED = r"x509: certificate is out of date \(certificate has expired\)"


async def fetch(url: str, tls: TLSOptions | None, component: str = "test client") -> str:
    async with create_async_client(component=component, tls=tls, timeout=5) as client:
        response = await client.get(url)
        return response.text


def leaf(certs: Certs, name: str) -> str:
    return str(getattr(certs, name))


@pytest.mark.parametrize(
    ("server", "options", "failure"),
    [
        ("good", {}, UNKNOWN_AUTHORITY),
        ("good", {"ca_certificate": "ca"}, None),
        ("good", {"insecure_skip_verify": True}, None),
        ("self_signed", {}, NOT_TRUSTED),
        ("self_signed", {"ca_certificate": "self_signed_cert"}, None),
        ("self_signed", {"insecure_skip_verify": True}, None),
        ("wrong_host", {"ca_certificate": "ca"}, WRONG_NAME),
        ("wrong_host", {"insecure_skip_verify": True}, None),
        ("expired", {"ca_certificate": "ca"}, EXPIRED),
        ("expired", {"insecure_skip_verify": True}, None),
    ],
)
async def test_server_certificates(
    certs: Certs, server: str, options: dict[str, object], failure: str | None
) -> None:
    ca = options.get("ca_certificate")
    tls = TLSOptions(
        ca_certificate=leaf(certs, str(ca)) if ca else None,
        insecure_skip_verify=bool(options.get("insecure_skip_verify")),
    )
    async with https(hello_app(), leaf(certs, server)) as url:
        if failure is None:
            assert await fetch(url, tls) == GREETING
        else:
            with pytest.raises(httpx.ConnectError) as caught:
                await fetch(url, tls)
            assert re.search(failure, describe_tls_error(caught.value)), describe_tls_error(caught.value)


async def test_the_system_store_stays_trusted_with_a_ca_certificate(certs: Certs) -> None:
    # ca_certificate adds to the system store, it does not replace it.
    with_ca = create_ssl_context(TLSOptions(ca_certificate=certs.ca), "c")
    system = ssl.create_default_context()
    assert with_ca.cert_store_stats()["x509_ca"] == system.cert_store_stats()["x509_ca"] + 1
    assert with_ca.check_hostname is True
    assert with_ca.verify_mode == ssl.CERT_REQUIRED
    assert with_ca.minimum_version == ssl.TLSVersion.TLSv1_2
    assert (
        create_ssl_context(TLSOptions(min_tls_version="1.3"), "c").minimum_version == ssl.TLSVersion.TLSv1_3
    )


async def test_insecure_warning_names_the_component_once(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    tls = TLSOptions(insecure_skip_verify=True)
    with caplog.at_level(logging.WARNING, logger="hector.tls"):
        async with https(hello_app(), certs.expired) as url:
            assert await fetch(url, tls, "MCP server docs") == GREETING
            assert await fetch(url, tls, "MCP server docs") == GREETING
            create_ssl_context(tls, "A2A agent helper")
    assert insecure_records(caplog, "MCP server docs") == [
        "TLS certificate verification disabled for MCP server docs (insecure_skip_verify=true)"
    ]
    assert len(insecure_records(caplog, "A2A agent helper")) == 1


async def test_mutual_tls_presents_the_client_certificate(certs: Certs) -> None:
    async with https(hello_app(), certs.good, client_ca=certs.ca) as url:
        without = TLSOptions(ca_certificate=certs.ca)
        with pytest.raises(httpx.TransportError):  # uvicorn resets the connection after its alert
            await fetch(url, without)
        both = TLSOptions(
            ca_certificate=certs.ca, client_certificate=certs.client_cert, client_key=certs.client_key
        )
        assert await fetch(url, both) == GREETING


def failed_handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> ssl.SSLError:
    """The client's error from one handshake with a server that sends its alert before closing
    (uvicorn resets the connection instead, which hides the alert)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_once() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
            with contextlib.suppress(ssl.SSLError):
                tls.do_handshake()
            time.sleep(0.2)  # let the client read the alert before the connection closes

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    with socket.create_connection(listener.getsockname()) as raw, pytest.raises(ssl.SSLError) as caught:
        # In TLS 1.3 the server judges the client's certificate after the client's side of the
        # handshake is done: that alert arrives on the first read.
        client_ctx.wrap_socket(raw, server_hostname="127.0.0.1").recv(1)
    thread.join(5)
    listener.close()
    return caught.value


def test_missing_client_certificate_is_explained(certs: Certs) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.good)
    server_ctx.load_verify_locations(certs.ca)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = create_ssl_context(TLSOptions(ca_certificate=certs.ca), "c")
    assert describe_tls_error(failed_handshake(server_ctx, client_ctx)) == (
        "the server requires a client certificate (mutual TLS): set client_certificate and client_key"
    )


def test_min_tls_version_refuses_older_servers(certs: Certs) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.good)
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    client_ctx = create_ssl_context(TLSOptions(ca_certificate=certs.ca, min_tls_version="1.3"), "c")
    description = describe_tls_error(failed_handshake(server_ctx, client_ctx))
    assert description.startswith("TLS handshake failed: [SSL: TLSV1_ALERT_PROTOCOL_VERSION]"), description
    assert "_ssl.c" not in description


async def test_plain_http_server_is_named() -> None:
    async with serve_app(hello_app()) as url:
        with pytest.raises(httpx.ConnectError) as caught:
            await fetch(url.replace("http://", "https://"), None)
    assert "did not answer with TLS" in describe_tls_error(caught.value)


def test_describe_passes_other_errors_through() -> None:
    assert describe_tls_error(ConnectionRefusedError("connection refused")) == "connection refused"


# --- files -----------------------------------------------------------------------------------------


def test_unloadable_ca_files_are_named_with_the_reason(certs: Certs, tmp_path: Path) -> None:
    cases = {
        str(tmp_path / "missing.pem"): "No such file or directory",
        str(tmp_path): "Is a directory",
        certs.not_pem: "not a usable PEM file (NO_CERTIFICATE_OR_CRL_FOUND)",
    }
    for path, reason in cases.items():
        [problem] = tls_file_problems(TLSOptions(ca_certificate=path), "llms.x")
        assert problem.startswith(f"llms.x: failed to read CA certificate from {path}: {reason}")
        with pytest.raises(ConfigError, match="failed to read CA certificate from"):
            create_ssl_context(TLSOptions(ca_certificate=path), "LLM provider openai (x)")
    assert tls_file_problems(TLSOptions(ca_certificate=certs.ca), "llms.x") == []


def test_unloadable_client_certificates(certs: Certs, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(certs.client_key).read_bytes(), None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    cases = [
        (certs.client_cert, str(tmp_path / "nokey.pem"), "No such file or directory"),
        (certs.client_cert, certs.not_pem, "not a usable PEM file"),
        (certs.client_cert, str(encrypted), "the private key is encrypted"),
        (certs.ca, certs.client_key, "the private key does not belong to the certificate"),
        (certs.client_cert, None, "not a usable PEM file"),  # the key is not inside the certificate file
    ]
    for cert, key_path, reason in cases:
        [problem] = tls_file_problems(TLSOptions(client_certificate=cert, client_key=key_path), "tools.t")
        assert problem.startswith(f"tools.t: failed to read client certificate from {cert}"), problem
        assert reason in problem
    good = TLSOptions(client_certificate=certs.client_cert, client_key=certs.client_key)
    assert tls_file_problems(good, "tools.t") == []


# --- top-level defaults ----------------------------------------------------------------------------------


def test_components_inherit_each_key_they_do_not_set() -> None:
    cfg = parse_config(
        {
            "ca_certificate": "/top/ca.pem",
            "min_tls_version": 1.3,
            "client_certificate": "/top/client.pem",
            "client_key": "/top/client-key.pem",
        }
    ).config
    inherited = effective_tls(LLMConfig(), cfg)
    assert inherited == TLSOptions(
        ca_certificate="/top/ca.pem",
        client_certificate="/top/client.pem",
        client_key="/top/client-key.pem",
        min_tls_version="1.3",
    )
    own = effective_tls(
        ToolConfig.model_validate({"ca_certificate": None, "client_certificate": "/own.pem"}), cfg
    )
    # Explicit null opts out; the certificate and key are one setting (the key is in /own.pem).
    assert own == TLSOptions(client_certificate="/own.pem", min_tls_version="1.3")
    assert effective_tls(LLMConfig(ca_certificate="/own-ca.pem")).ca_certificate == "/own-ca.pem"


def test_insecure_default_can_be_refused_per_component() -> None:
    cfg = parse_config({"insecure_skip_verify": True}).config
    assert effective_tls(LLMConfig(), cfg).insecure_skip_verify is True
    assert effective_tls(LLMConfig(insecure_skip_verify=False), cfg).insecure_skip_verify is False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"min_tls_version": "1.1"}, "min_tls_version: Input should be '1.2' or '1.3'"),
        ({"llms": {"l": {"client_key": "/k.pem"}}}, "client_key is given without client_certificate"),
    ],
)
def test_invalid_tls_options_are_config_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_tls_keys_are_accepted_on_every_outbound_section() -> None:
    # server.auth takes them for the JWKS fetch.
    cfg = parse_config({"server": {"auth": {"enabled": True, "api_keys": ["k"], "ca_certificate": "/a.pem"}}})
    assert cfg.config.server.auth.ca_certificate == "/a.pem"
    with pytest.raises(ValidationError):
        LLMConfig.model_validate({"min_tls_version": "1.0"})
