"""Agent visibility, credentials and require_auth (the seed's table), excluded paths, card security."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import running_hector
from tests.security.conftest import LLMS, V1, assert_401, bearer, completed_text, raw_get, send_body

KEY = "vis-key-0123456789"
AGENTS = {
    "pub": {"llm": "t", "visibility": "public"},
    "int": {"llm": "t", "visibility": "internal"},
    "hidden": {"llm": "t", "visibility": "private"},
}
UNKNOWN = "nobody"  # same length as "hidden": their 404s must be byte-identical
MODES: dict[str, dict[str, Any]] = {
    "require_auth": {"enabled": True, "api_keys": [KEY], "require_auth": True},
    "optional_auth": {"enabled": True, "api_keys": [KEY], "require_auth": False},
    "auth_disabled": {"enabled": False, "api_keys": [KEY]},
}

# (mode, credential) → what discovery lists, and the status of the card and of SendMessage per agent.
#  * public: listed for everyone; access follows require_auth.
#  * internal: listed only when authenticated; access always needs authentication (with auth
#    disabled nobody can authenticate, so it is unreachable: the config check warns about that).
#  * private: never listed, never reachable over HTTP (404, like an unknown agent) — except that
#    with require_auth, an unauthenticated caller is refused before the agent is looked up, so
#    private and unknown agents both answer 401 there and still look the same.
EXPECTED: dict[tuple[str, bool], tuple[list[str], dict[str, int]]] = {
    ("require_auth", False): (["pub"], {"pub": 401, "int": 401, "hidden": 401, UNKNOWN: 401}),
    ("require_auth", True): (["int", "pub"], {"pub": 200, "int": 200, "hidden": 404, UNKNOWN: 404}),
    ("optional_auth", False): (["pub"], {"pub": 200, "int": 401, "hidden": 404, UNKNOWN: 404}),
    ("optional_auth", True): (["int", "pub"], {"pub": 200, "int": 200, "hidden": 404, UNKNOWN: 404}),
    ("auth_disabled", False): (["pub"], {"pub": 200, "int": 401, "hidden": 404, UNKNOWN: 404}),
    ("auth_disabled", True): (["pub"], {"pub": 200, "int": 401, "hidden": 404, UNKNOWN: 404}),
}


def config(auth: dict[str, Any]) -> dict[str, Any]:
    return {"llms": LLMS, "server": {"auth": auth}, "agents": AGENTS}


@pytest.mark.parametrize(("mode", "with_key"), list(EXPECTED))
async def test_visibility_table(mode: str, with_key: bool, tmp_path: Path) -> None:
    listed, statuses = EXPECTED[(mode, with_key)]
    headers = bearer(KEY) if with_key else dict(V1)
    async with (
        running_hector(config(MODES[mode]), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for path in ("/agents", "/v1/agents"):
            listing = await client.get(path, headers=headers)
            assert listing.status_code == 200, "discovery is always open"
            body = listing.json()
            assert sorted(a["name"] for a in body["agents"]) == listed and body["total"] == len(listed)

        for agent, status in statuses.items():
            for card_path in (f"/agents/{agent}", f"/agents/{agent}/.well-known/agent-card.json"):
                card = await client.get(card_path, headers=headers)
                assert card.status_code == status, (card_path, card.text)
                if status == 200:
                    assert card.json()["name"] == agent
            call = await client.post(f"/agents/{agent}", json=send_body(f"to {agent}"), headers=headers)
            assert call.status_code == status, (agent, call.text)
            if status == 200:
                assert completed_text(call) == f"[test model] You said: to {agent}"
            elif status == 401:
                assert_401(call)
                expected = (
                    "Unauthorized: agent is internal" if agent == "int" else "Missing Authorization header"
                )
                assert call.json()["error"] == expected
            else:
                assert call.json()["error"] == f"agent {agent!r} not found"
                # The 404 names only agents this caller may see in discovery.
                assert call.json()["available"] == listed

        # A private agent cannot be told apart from one that does not exist, on any route.
        for suffix, method in (
            ("", "GET"),
            ("", "POST"),
            ("/.well-known/agent-card.json", "GET"),
            ("/message:send", "POST"),
            ("/tasks/t-1", "GET"),
        ):
            hidden = await client.request(
                method, f"/agents/hidden{suffix}", json=send_body(), headers=headers
            )
            unknown = await client.request(
                method, f"/agents/{UNKNOWN}{suffix}", json=send_body(), headers=headers
            )
            assert hidden.status_code == unknown.status_code in (401, 404), suffix
            assert hidden.content == unknown.content.replace(UNKNOWN.encode(), b"hidden"), suffix
            assert dict(hidden.headers) | {"date": ""} == dict(unknown.headers) | {"date": ""}, suffix


async def test_excluded_paths_match_exactly(tmp_path: Path) -> None:
    auth = {**MODES["require_auth"], "excluded_paths": ["/health", "/.well-known/agent-card.json"]}
    async with running_hector(config(auth), tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        assert (await client.get("/ready")).status_code == 200
        root = await client.get("/.well-known/agent-card.json")
        assert root.status_code == 200 and root.json()["name"] == "pub"
        # A trailing slash is the same path (it is redirected to /health, not let through).
        status, _ = await raw_get(url, "/health/")
        assert status in (200, 307)
        for target in (
            "/healthz",
            "/HEALTH",
            "/health/x",
            "/health/../agents/pub",
            "/health/..%2Fagents%2Fpub",
            "/health%2F..%2Fagents%2Fpub",
            "/%2Fhealth",
            "//health",
            "/./health",
            "/health;/../agents/pub",
            "/.well-known/agent-card.json/../../agents/pub",
            "/.well-known/agent-card.json%2F..%2F..%2Fagents%2Fpub",
            "/agents/pub/../../health",
            "/agents/int/.well-known/agent-card.json",
        ):
            status, body = await raw_get(url, target)
            assert status == 401, (target, status, body)
            assert json.loads(body)["error"], target


async def test_root_card_needs_auth_unless_excluded(tmp_path: Path) -> None:
    auth = {**MODES["require_auth"], "excluded_paths": ["/health"]}
    async with running_hector(config(auth), tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        assert_401(await client.get("/.well-known/agent-card.json"))
        assert (await client.get("/.well-known/agent-card.json", headers=bearer(KEY))).json()["name"] == "pub"
        # /health and /ready stay open even when excluded_paths leaves them out.
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 200


async def test_custom_excluded_path_opens_only_that_path(tmp_path: Path) -> None:
    auth = {**MODES["require_auth"], "excluded_paths": ["/agents/pub/.well-known/agent-card.json"]}
    async with running_hector(config(auth), tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/agents/pub/.well-known/agent-card.json")).status_code == 200
        assert_401(await client.get("/agents/pub"))
        assert_401(await client.post("/agents/pub", json=send_body(), headers=V1))
        assert_401(await client.get("/.well-known/agent-card.json"))
        assert (await client.get("/health")).status_code == 200


def _bearer_scheme(card: dict[str, Any]) -> dict[str, Any]:
    scheme = card["securitySchemes"]["BearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert scheme["httpAuthSecurityScheme"]["scheme"] == "bearer"
    return dict(scheme)


@pytest.mark.parametrize("mode", list(MODES))
async def test_cards_advertise_bearer_auth(mode: str, tmp_path: Path) -> None:
    async with (
        running_hector(config(MODES[mode]), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        headers = bearer(KEY) if mode != "auth_disabled" else {}
        public = (await client.get("/agents/pub", headers=headers)).json()
        listed = (await client.get("/agents", headers=headers)).json()["agents"]
        if mode == "auth_disabled":
            assert "securitySchemes" not in public and "security" not in public
            assert "securityRequirements" not in public
            return
        internal = (await client.get("/agents/int", headers=headers)).json()
        for card in (public, internal, *listed):
            _bearer_scheme(card)
        # Internal agents always require the scheme; public ones when require_auth is set.
        assert internal["security"] == [{"BearerAuth": []}]
        assert internal["securityRequirements"] == [{"schemes": {"BearerAuth": {}}}]
        if mode == "require_auth":
            assert public["security"] == [{"BearerAuth": []}]
            assert public["securityRequirements"] == [{"schemes": {"BearerAuth": {}}}]
        else:
            assert "security" not in public and "securityRequirements" not in public
        root = (await client.get("/.well-known/agent-card.json")).json()
        assert root == public
