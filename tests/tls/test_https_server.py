"""`hector serve` terminating TLS itself (server.tls), mTLS, and card URLs behind a reverse proxy."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hector.cli import main
from tests.harness import running_hector
from tests.tls.conftest import Certs, HectorProcess, hector_serve

AGENTS = {"llms": {"t": {"type": "test"}}, "agents": {"echo": {"llm": "t"}}}


def trusting(certs: Certs, client: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs.ca)
    if client:
        ctx.load_cert_chain(certs.client_cert, certs.client_key)
    return ctx


def server_tls(certs: Certs, **extra: str) -> dict[str, Any]:
    return {"tls": {"cert_file": certs.good_cert, "key_file": certs.good_key, **extra}}


@pytest.fixture(scope="module")
def https_hector(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HectorProcess]:
    config = {**AGENTS, "server": server_tls(certs)}
    with hector_serve(config, tmp_path_factory.mktemp("https"), trusting(certs)) as running:
        yield running


@pytest.fixture(scope="module")
def mtls_hector(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HectorProcess]:
    config = {**AGENTS, "server": server_tls(certs, client_ca_file=certs.ca)}
    with hector_serve(config, tmp_path_factory.mktemp("mtls"), trusting(certs, client=True)) as running:
        yield running


def urls_in(data: Any) -> list[str]:
    """Every URL in a JSON document (an agent card, the discovery list)."""
    if isinstance(data, dict):
        return [url for value in data.values() for url in urls_in(value)]
    if isinstance(data, list):
        return [url for value in data for url in urls_in(value)]
    return [data] if isinstance(data, str) and data.startswith(("http://", "https://")) else []


def test_serves_https_with_https_card_urls(https_hector: HectorProcess, certs: Certs) -> None:
    base = f"https://127.0.0.1:{https_hector.port}"
    card = httpx.get(f"{base}/agents/echo/.well-known/agent-card.json", verify=trusting(certs))
    assert card.status_code == 200
    urls = urls_in(card.json())
    assert urls, card.json()
    assert all(url.startswith(f"{base}/") for url in urls), urls
    assert f"Hector serving agents echo at {base}" in " ".join(https_hector.log.split())


def test_refuses_plain_http_and_untrusting_clients(https_hector: HectorProcess) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{https_hector.port}/health")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{https_hector.port}/health")


def test_client_ca_file_requires_a_client_certificate(mtls_hector: HectorProcess, certs: Certs) -> None:
    url = f"https://127.0.0.1:{mtls_hector.port}/health"
    with pytest.raises(httpx.TransportError):
        httpx.get(url, verify=trusting(certs))
    assert httpx.get(url, verify=trusting(certs, client=True)).status_code == 200


# --- behind a reverse proxy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "header", "scheme"),
    [
        (["127.0.0.1/32"], "https", "https"),
        (["127.0.0.1/32"], None, "http"),
        ([], "https", "http"),  # anyone could send the header: only a trusted proxy is believed
        (["10.0.0.0/8"], "https", "http"),
    ],
)
async def test_forwarded_proto_only_from_trusted_proxies(
    tmp_path: Path, trusted: list[str], header: str | None, scheme: str
) -> None:
    config = {**AGENTS, "server": {"trusted_proxies": trusted}}
    headers = {"X-Forwarded-Proto": header} if header else {}
    async with running_hector(config, tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        card = (await client.get("/agents/echo/.well-known/agent-card.json", headers=headers)).json()
        listing = (await client.get("/agents", headers=headers)).json()
    port = url.rsplit(":", 1)[1]
    for found in (urls_in(card), urls_in(listing)):
        assert found
        assert all(u.startswith(f"{scheme}://127.0.0.1:{port}/") for u in found), found


# --- server.tls files are checked when the configuration loads -------------------------------------------


def write(tmp_path: Path, server: dict[str, Any]) -> Path:
    path = tmp_path / "hector.yaml"
    path.write_text(json.dumps({**AGENTS, "server": server}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        (
            {"key_file": "/missing/key.pem"},
            "server.tls: failed to read server certificate from {cert} (key: /missing/key.pem): "
            "No such file or directory",
        ),
        (
            {"key_file": "{client_key}"},
            "server.tls: failed to read server certificate from {cert} (key: {client_key}): "
            "the private key does not belong to the certificate",
        ),
        (
            {"client_ca_file": "{not_pem}"},
            "server.tls.client_ca_file: failed to read CA certificate from {not_pem}: not a usable PEM file",
        ),
    ],
)
def test_unusable_server_tls_files_fail_validate_and_serve(
    certs: Certs, tmp_path: Path, capsys: pytest.CaptureFixture[str], tls: dict[str, str], message: str
) -> None:
    names = {"cert": certs.good_cert, "client_key": certs.client_key, "not_pem": certs.not_pem}
    given = {key: value.format(**names) for key, value in tls.items()}
    path = write(tmp_path, {"tls": {"cert_file": certs.good_cert, "key_file": certs.good_key, **given}})
    expected = message.format(**names)
    assert main(["validate", str(path)]) == 1
    assert expected in " ".join(capsys.readouterr().err.split())
    assert main(["serve", "--config", str(path)]) == 1
    assert expected in " ".join(capsys.readouterr().err.split())


def test_disabled_server_tls_is_not_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path, {"tls": {"enabled": False, "cert_file": "/no/cert.pem", "key_file": "/no/key.pem"}}
    )
    assert main(["validate", str(path)]) == 0
