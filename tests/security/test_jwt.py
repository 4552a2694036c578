"""JWT authentication against a real JWKS server on loopback: valid tokens, forgeries, rotation, outages."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import running_hector
from tests.security.conftest import (
    AUDIENCE,
    LLMS,
    V1,
    FakeClock,
    JWKSServer,
    Keys,
    SigningKey,
    assert_401,
    b64,
    bearer,
    claims,
    completed_text,
    jwt_auth,
    log_dump,
    make_token,
    send_body,
    unsigned_token,
)


def config(jwks: JWKSServer, **auth: Any) -> dict[str, Any]:
    return {
        "llms": LLMS,
        "server": {"auth": jwt_auth(jwks, **auth)},
        "agents": {"echo": {"llm": "t"}, "vault": {"llm": "t", "visibility": "internal"}},
    }


async def call(client: httpx.AsyncClient, token: str, text: str = "hi") -> httpx.Response:
    return await client.post("/agents/echo", json=send_body(text), headers=bearer(token))


async def test_valid_rs256_and_es256_tokens_are_accepted(
    jwks_server: JWKSServer, keys: Keys, tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    tokens = [make_token(keys.rsa), make_token(keys.ec)]
    async with (
        running_hector(config(jwks_server), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for token in tokens:
            assert completed_text(await call(client, token, "hello")) == "[test model] You said: hello"
            # Authenticated: the internal agent is listed and callable.
            listing = (await client.get("/agents", headers=bearer(token))).json()
            assert sorted(a["name"] for a in listing["agents"]) == ["echo", "vault"]
            response = await client.post("/agents/vault", json=send_body(), headers=bearer(token))
            completed_text(response)
            # The HTTP+JSON binding and the 0.3 JSON-RPC dialect take the same credentials.
            rest = await client.post(
                "/agents/echo/message:send", json=send_body()["params"], headers=bearer(token)
            )
            assert rest.status_code == 200, rest.text
            legacy = {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "message/send",
                "params": {
                    "message": {
                        "role": "user",
                        "messageId": "m-03",
                        "parts": [{"kind": "text", "text": "hi"}],
                    }
                },
            }
            old = await client.post("/agents/echo", json=legacy, headers={"Authorization": f"Bearer {token}"})
            assert old.status_code == 200 and old.json()["result"]["status"]["state"] == "completed", old.text
        # aud may be a list that contains the audience.
        listed = make_token(keys.rsa, aud=["other-api", AUDIENCE])
        completed_text(await call(client, listed))
        # Within the 30 s leeway.
        completed_text(await call(client, make_token(keys.rsa, exp=int(time.time()) - 10)))
        assert jwks_server.requests == 1, "keys come from the cache, fetched once at start-up"
    dump = log_dump(all_logs)
    for token in [*tokens, listed]:
        assert token not in dump
        assert token.split(".")[2] not in dump, "not even the signature"


def _hs256_with_public_key(key: SigningKey) -> str:
    header = b64(b'{"alg":"HS256","typ":"JWT","kid":"%s"}' % key.kid.encode())
    payload = b64(json.dumps(claims()).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(key.public_pem, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _tamper_payload(token: str) -> str:
    header, _, signature = token.split(".")
    forged = b64(json.dumps(claims(sub="admin")).encode())
    return f"{header}.{forged}.{signature}"


def _tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[10] != "A" else "B").join([signature[:10], signature[11:]])
    return f"{header}.{payload}.{flipped}"


def forgeries(keys: Keys) -> dict[str, str]:
    now = int(time.time())
    return {
        "alg none": unsigned_token({"alg": "none", "typ": "JWT", "kid": keys.rsa.kid}, claims()),
        "alg none, no kid": unsigned_token({"alg": "none", "typ": "JWT"}, claims()),
        "HS256 signed with the public key PEM": _hs256_with_public_key(keys.rsa),
        "expired": make_token(keys.rsa, iat=now - 3600, nbf=now - 3600, exp=now - 120),
        "not yet valid": make_token(keys.rsa, nbf=now + 120, exp=now + 600),
        "wrong issuer": make_token(keys.rsa, iss="https://evil.example.test/"),
        "wrong audience": make_token(keys.rsa, aud="someone-else"),
        "unknown kid": make_token(keys.attacker, kid="who-knows"),
        "known kid, wrong key": make_token(keys.attacker),
        "tampered payload": _tamper_payload(make_token(keys.rsa)),
        "tampered signature": _tamper_signature(make_token(keys.rsa)),
        "missing sub": make_token(keys.rsa, sub=None),
        "missing exp": make_token(keys.rsa, exp=None),
        "missing iss": make_token(keys.rsa, iss=None),
        "missing aud": make_token(keys.rsa, aud=None),
        "alg does not match the key": unsigned_token(
            {"alg": "ES256", "kid": keys.rsa.kid}, claims(), b"x" * 64
        ),
        "not a JWT": "not-a-jwt",
    }


async def test_forged_tokens_are_rejected(
    jwks_server: JWKSServer, keys: Keys, tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    forged = forgeries(keys)
    async with (
        running_hector(config(jwks_server), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for attack, token in forged.items():
            response = await call(client, token)
            assert response.status_code == 401, f"{attack}: {response.status_code} {response.text}"
            assert_401(response)
            assert response.json()["error"].startswith(("Invalid token", "Invalid Authorization")), attack
            assert 'error="invalid_token"' in response.headers["www-authenticate"], attack
            assert token not in response.text
        # A raw token without the Bearer scheme is a malformed header.
        raw = await client.post(
            "/agents/echo", json=send_body(), headers={"Authorization": make_token(keys.rsa)}
        )
        assert_401(raw, "Invalid Authorization format, expected: Bearer <token>")
        # The server still serves valid tokens after all that.
        completed_text(await call(client, make_token(keys.rsa)))
    dump = log_dump(all_logs)
    for attack, token in forged.items():
        assert token not in dump, attack
    attempts = [r for r in all_logs.records if getattr(r, "action", None) == "authenticate"]
    assert len([r for r in attempts if getattr(r, "success", None) is False]) >= len(forged)


async def test_missing_token_is_401(jwks_server: JWKSServer, tmp_path: Path) -> None:
    async with (
        running_hector(config(jwks_server), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post("/agents/echo", json=send_body(), headers=V1)
        assert_401(response, "Missing Authorization header")
        assert "invalid_token" not in response.headers["www-authenticate"]


async def test_key_rotation_and_unknown_kid_flood(
    jwks_server: JWKSServer, keys: Keys, tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        running_hector(config(jwks_server), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert jwks_server.requests == 1
        completed_text(await call(client, make_token(keys.rsa)))

        # The issuer rotates to a new key. A minute after the last fetch, a token with the new
        # kid makes the cache refetch once, and works.
        jwks_server.keys = [keys.rotated.jwk]
        clock.advance(61)
        completed_text(await call(client, make_token(keys.rotated)))
        assert jwks_server.requests == 2

        # A flood of unknown kids, concurrent and sequential, within the same minute: no fetch.
        flood = [make_token(keys.attacker, kid=f"forged-{i}") for i in range(8)]
        responses = await asyncio.gather(*(call(client, t) for t in flood))
        for t in flood[:4]:
            responses.append(await call(client, t))
        assert all(r.status_code == 401 for r in responses), [r.status_code for r in responses]
        assert jwks_server.requests == 2, "unknown kids must not refetch more than once a minute"

        # A minute later, a concurrent flood makes exactly one fetch (single flight).
        clock.advance(61)
        responses = await asyncio.gather(*(call(client, t) for t in flood))
        assert all(r.status_code == 401 for r in responses)
        assert jwks_server.requests == 3

        # The old key is gone from the set: its tokens no longer pass.
        assert_401(await call(client, make_token(keys.rsa)))
        completed_text(await call(client, make_token(keys.rotated)))
        assert jwks_server.requests == 3


async def test_failing_jwks_keeps_the_old_keys(
    jwks_server: JWKSServer, keys: Keys, tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        running_hector(config(jwks_server, refresh_interval="2m"), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert jwks_server.requests == 1
        jwks_server.failing = True
        clock.advance(121)  # the periodic refresh is due, and fails
        for _ in range(5):
            completed_text(await call(client, make_token(keys.rsa)))
            completed_text(await call(client, make_token(keys.ec)))
        assert jwks_server.requests == 2, "a failed refresh is retried later, not on every request"
        assert (await client.get("/ready")).status_code == 200, "keys are loaded: still ready"

        # Unknown kid during the outage: refused; the old keys still work afterwards.
        clock.advance(61)
        assert_401(await call(client, make_token(keys.rotated)))
        completed_text(await call(client, make_token(keys.rsa)))

        # The issuer recovers with a rotated set: the next due refresh picks it up.
        jwks_server.failing = False
        jwks_server.keys = [keys.rotated.jwk]
        clock.advance(121)
        completed_text(await call(client, make_token(keys.rotated)))
        assert_401(await call(client, make_token(keys.rsa)))


async def test_ready_waits_for_the_jwks(
    jwks_server: JWKSServer, keys: Keys, tmp_path: Path, clock: FakeClock
) -> None:
    jwks_server.failing = True
    async with (
        running_hector(config(jwks_server), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert (await client.get("/health")).status_code == 200
        not_ready = await client.get("/ready")
        assert not_ready.status_code == 503
        assert any("jwks" in p for p in not_ready.json()["problems"])
        assert_401(await call(client, make_token(keys.rsa)))
        fetches = jwks_server.requests
        for _ in range(5):  # probes do not hammer the issuer
            assert (await client.get("/ready")).status_code == 503
        assert jwks_server.requests == fetches

        jwks_server.failing = False
        clock.advance(11)  # past the retry interval after a failure
        assert (await client.get("/ready")).status_code == 200
        completed_text(await call(client, make_token(keys.rsa)))
