"""Fixtures for the security tests: signing keys, a real JWKS server, tokens, a controllable clock."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import hector.security.jwks as jwks_module
from tests.harness import serve_app

ISSUER = "https://auth.example.test/"
AUDIENCE = "hector-api"
V1 = {"A2A-Version": "1.0"}
LLMS = {"t": {"type": "test"}}


def send_body(text: str = "hi", message_id: str | None = None) -> dict[str, Any]:
    """A JSON-RPC 1.0 SendMessage request."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {
            "message": {
                "role": "ROLE_USER",
                "messageId": message_id or uuid.uuid4().hex,
                "parts": [{"text": text}],
            }
        },
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **V1}


def completed_text(response: httpx.Response) -> str:
    """The answer of a completed SendMessage call (asserts the call succeeded)."""
    assert response.status_code == 200, (response.status_code, response.text)
    task = response.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
    return str(task["artifacts"][0]["parts"][0]["text"])


def assert_401(response: httpx.Response, error: str | None = None) -> None:
    """A 401 with a JSON body and a Bearer challenge."""
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    if error is not None:
        assert body["error"] == error, body


# --- keys and tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any

    @property
    def jwk(self) -> dict[str, Any]:
        """The public half as a JWK with its kid."""
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        data: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


@dataclass(frozen=True)
class Keys:
    rsa: SigningKey
    ec: SigningKey
    rotated: SigningKey
    attacker: SigningKey


@pytest.fixture(scope="session")
def keys() -> Keys:
    def rsa_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(
        rsa=SigningKey("rsa-1", "RS256", rsa_key()),
        ec=SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
        rotated=SigningKey("rsa-2", "RS256", rsa_key()),
        attacker=SigningKey("rsa-1", "RS256", rsa_key()),  # claims the real kid, wrong key
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "email": "alice@example.test",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def make_token(key: SigningKey, kid: str | None = None, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key.private, algorithm=key.alg, headers={"kid": kid or key.kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [
            b64(json.dumps(header).encode()),
            b64(json.dumps(payload).encode()),
            b64(signature) if signature else "",
        ]
    )


# --- the JWKS server ------------------------------------------------------------------------------


@dataclass
class JWKSServer:
    """A JWKS endpoint on loopback whose key set and health the test controls."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False
    requests: int = 0
    url: str = ""

    def app(self) -> Starlette:
        async def jwks(request: Request) -> Response:
            self.requests += 1
            if self.failing:
                return JSONResponse({"error": "down"}, status_code=503)
            return JSONResponse({"keys": self.keys})

        return Starlette(routes=[Route("/.well-known/jwks.json", jwks)])


@pytest.fixture
async def jwks_server(keys: Keys) -> AsyncIterator[JWKSServer]:
    server = JWKSServer(keys=[keys.rsa.jwk, keys.ec.jwk])
    async with serve_app(server.app()) as url:
        server.url = f"{url}/.well-known/jwks.json"
        yield server


def jwt_auth(server: JWKSServer, **overrides: Any) -> dict[str, Any]:
    """server.auth for JWTs from *server*."""
    return {
        "enabled": True,
        "jwks_url": server.url,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        **overrides,
    }


# --- a clock for the JWKS cache ---------------------------------------------------------------------


class FakeClock:
    """Replaces ``time`` in the JWKS module: real time plus an offset the test can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(jwks_module, "time", fake)
    return fake


# --- logs -----------------------------------------------------------------------------------------


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record from every logger, at DEBUG."""
    names = ("hector", "httpx", "httpcore", "uvicorn", "a2a")
    before = {name: logging.getLogger(name).level for name in names}
    with caplog.at_level(logging.DEBUG):
        for name in names:
            logging.getLogger(name).setLevel(logging.DEBUG)
        yield caplog
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def log_dump(caplog: pytest.LogCaptureFixture) -> str:
    """Everything a handler could write: messages, arguments and extra fields of every record."""
    return "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in caplog.records)


# --- raw HTTP ---------------------------------------------------------------------------------------


async def raw_get(base_url: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET *target* byte for byte (no client-side path normalisation); returns (status, body)."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    lines = [f"GET {target} HTTP/1.1", f"Host: {url.host}:{url.port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
