"""The JWKS fetch of server.auth over HTTPS: its own TLS options, the top-level defaults, the warning."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.harness import running_hector
from tests.security.conftest import (
    LLMS,
    JWKSServer,
    SigningKey,
    assert_401,
    bearer,
    completed_text,
    jwt_auth,
    make_token,
    send_body,
)
from tests.tls.conftest import Certs, https, insecure_records

KEY = SigningKey("tls-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@contextlib.asynccontextmanager
async def jwks_over_https(certfile: str) -> AsyncIterator[JWKSServer]:
    server = JWKSServer(keys=[KEY.jwk])
    async with https(server.app(), certfile) as url:
        server.url = f"{url}/.well-known/jwks.json"
        yield server


def config(server: JWKSServer, top_level: dict[str, Any] | None = None, **tls: Any) -> dict[str, Any]:
    return {
        **(top_level or {}),
        "llms": LLMS,
        "server": {"auth": jwt_auth(server, **tls)},
        "agents": {"echo": {"llm": "t"}},
    }


async def call(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/agents/echo", json=send_body("hi"), headers=bearer(make_token(KEY)))


async def test_untrusted_jwks_server_leaves_keys_unloaded(
    certs: Certs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        jwks_over_https(certs.good) as jwks,
        running_hector(config(jwks), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert "jwks: signing keys not loaded yet" in ready.json()["problems"]
        assert_401(await call(client))
    errors = [
        r.getMessage() for r in caplog.records if r.name == "hector.auth" and r.levelno >= logging.ERROR
    ]
    assert any(
        m.startswith(f"failed to fetch JWKS from {jwks.url}: x509: certificate signed by unknown authority")
        for m in errors
    ), errors


@pytest.mark.parametrize("where", ["server.auth", "top level"])
async def test_ca_certificate_trusts_the_jwks_server(certs: Certs, tmp_path: Path, where: str) -> None:
    async with jwks_over_https(certs.good) as jwks:
        if where == "server.auth":
            cfg = config(jwks, ca_certificate=certs.ca)
        else:
            cfg = config(jwks, {"ca_certificate": certs.ca})
        async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/ready")).status_code == 200
            assert completed_text(await call(client)) == "[test model] You said: hi"


async def test_insecure_skip_verify_warns_once_naming_the_jwks_fetch(
    certs: Certs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hector.tls"):
        async with (
            jwks_over_https(certs.wrong_host) as jwks,
            running_hector(config(jwks, insecure_skip_verify=True), tmp_path) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            # Warned at start-up, before any request.
            assert len(insecure_records(caplog, "JWKS fetch (server.auth)")) == 1
            assert (await client.get("/ready")).status_code == 200
            assert completed_text(await call(client)) == "[test model] You said: hi"
    assert len(insecure_records(caplog, "JWKS fetch (server.auth)")) == 1
