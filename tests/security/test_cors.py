"""CORS: preflights answered before authentication, allowed origins echoed, wildcard without credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.harness import running_hector
from tests.security.conftest import LLMS, V1, bearer, completed_text, send_body

APP = "https://app.example.com"
EVIL = "https://evil.example.com"
KEY = "cors-key-0123456789"


def config(cors: dict[str, Any], require_auth: bool = True) -> dict[str, Any]:
    return {
        "llms": LLMS,
        "server": {
            "auth": {"enabled": True, "api_keys": [KEY], "require_auth": require_auth},
            "cors": cors,
        },
        "agents": {"echo": {"llm": "t"}},
    }


RESTRICTED = {
    "allowed_origins": [APP],
    "allowed_methods": ["GET", "POST", "OPTIONS"],
    "allowed_headers": ["Authorization", "Content-Type", "A2A-Version"],
    "max_age": 86400,
}


def preflight(
    origin: str, method: str = "POST", headers: str = "authorization, content-type"
) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_preflight_is_answered_before_auth(tmp_path: Path) -> None:
    async with running_hector(config(RESTRICTED), tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ("/agents/echo", "/agents/echo/message:send", "/agents", "/agents/nobody"):
            response = await client.options(path, headers=preflight(APP))
            assert response.status_code in (200, 204), (path, response.status_code, response.text)
            h = response.headers
            assert h["access-control-allow-origin"] == APP
            assert {m.strip() for m in h["access-control-allow-methods"].split(",")} == {
                "GET",
                "POST",
                "OPTIONS",
            }
            allowed_headers = {x.strip().lower() for x in h["access-control-allow-headers"].split(",")}
            assert {"authorization", "content-type", "a2a-version"} <= allowed_headers
            assert h["access-control-max-age"] == "86400"
            assert "origin" in h["vary"].lower()
            assert h.get("access-control-allow-credentials") != "true"
            assert "www-authenticate" not in h


async def test_disallowed_origin_gets_no_allow_origin(tmp_path: Path) -> None:
    async with running_hector(config(RESTRICTED), tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.options("/agents/echo", headers=preflight(EVIL))
        assert "access-control-allow-origin" not in response.headers
        assert response.status_code >= 400
        # A disallowed method or header is refused too.
        response = await client.options("/agents/echo", headers=preflight(APP, method="DELETE"))
        assert response.status_code >= 400
        # Actual requests from that origin are processed (CORS is enforced by browsers) but carry no ACAO.
        answer = await client.post("/agents/echo", json=send_body(), headers={"Origin": EVIL, **bearer(KEY)})
        completed_text(answer)
        assert "access-control-allow-origin" not in answer.headers
        for path in ("/health", "/agents"):
            assert (
                "access-control-allow-origin"
                not in (await client.get(path, headers={"Origin": EVIL})).headers
            )


async def test_actual_requests_from_allowed_origin(tmp_path: Path) -> None:
    async with running_hector(config(RESTRICTED), tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        origin = {"Origin": APP}
        answer = await client.post("/agents/echo", json=send_body(), headers={**origin, **bearer(KEY)})
        completed_text(answer)
        for response in (
            answer,
            await client.get("/health", headers=origin),
            await client.get("/agents", headers=origin),
            # Errors carry it too, so browser apps can read the 401.
            await client.post("/agents/echo", json=send_body(), headers={**origin, **V1}),
        ):
            assert response.headers["access-control-allow-origin"] == APP, response.request.url
            assert "origin" in response.headers["vary"].lower()
            assert response.headers.get("access-control-allow-credentials") != "true"
        assert answer.status_code == 200
        unauthorized = await client.post("/agents/echo", json=send_body(), headers={**origin, **V1})
        assert unauthorized.status_code == 401


async def test_wildcard_never_allows_credentials(tmp_path: Path) -> None:
    cors = {"allowed_origins": ["*"], "allow_credentials": True}
    async with running_hector(config(cors), tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        pre = await client.options("/agents/echo", headers=preflight(EVIL, headers="authorization"))
        assert pre.status_code in (200, 204)
        assert pre.headers["access-control-allow-origin"] in ("*", EVIL)
        assert pre.headers.get("access-control-allow-credentials") != "true"
        for response in (
            await client.get("/health", headers={"Origin": EVIL}),
            await client.post("/agents/echo", json=send_body(), headers={"Origin": EVIL, **bearer(KEY)}),
        ):
            assert response.headers["access-control-allow-origin"] == "*"
            assert response.headers.get("access-control-allow-credentials") != "true"


async def test_preflight_with_optional_auth_and_default_lists(tmp_path: Path) -> None:
    # Only origins given: the default methods and headers apply.
    cors = {"allowed_origins": [APP]}
    async with (
        running_hector(config(cors, require_auth=False), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.options("/agents/echo", headers=preflight(APP))
        assert response.status_code in (200, 204)
        assert response.headers["access-control-allow-origin"] == APP
        methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert {"GET", "POST"} <= methods
