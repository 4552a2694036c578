"""HTTP rate limiting: token buckets in memory and in Redis, keys per user or per client address."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

from hector.config import parse_config
from tests.harness import running_hector
from tests.security.conftest import LLMS, V1, bearer

REDIS_URL = "redis://127.0.0.1:6379/15"
KEY_A = "rl-key-alpha-0123"
KEY_B = "rl-key-bravo-4567"


def config(rate: dict[str, Any], auth: dict[str, Any] | None = None, **server: Any) -> dict[str, Any]:
    return {
        "llms": LLMS,
        "server": {
            "rate_limiting": {"enabled": True, "requests_per_minute": 6, **rate},
            "auth": auth or {"enabled": False},
            **server,
        },
        "agents": {"echo": {"llm": "t"}},
    }


def assert_limited(response: httpx.Response) -> int:
    """A 429 in the documented shape; returns Retry-After."""
    assert response.status_code == 429, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    retry = response.headers["retry-after"]
    assert retry.isdigit() and int(retry) >= 1, retry
    body = response.json()
    assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["message"]
    assert body["retry_after_seconds"] == int(retry)
    assert_rate_headers(response, remaining=0)
    return int(retry)


def assert_rate_headers(
    response: httpx.Response, remaining: int | None = None, limit: int | None = None
) -> None:
    h = response.headers
    for prefix in ("", "x-"):
        assert h[f"{prefix}ratelimit-limit"].isdigit()
        assert h[f"{prefix}ratelimit-remaining"].isdigit()
        assert h[f"{prefix}ratelimit-reset"].isdigit()
        if limit is not None:
            assert int(h[f"{prefix}ratelimit-limit"]) == limit
        if remaining is not None:
            assert int(h[f"{prefix}ratelimit-remaining"]) == remaining
    # RateLimit-Reset counts seconds; X-RateLimit-Reset is a unix time.
    assert int(h["ratelimit-reset"]) <= 3600
    assert abs(int(h["x-ratelimit-reset"]) - time.time()) <= 3600


async def test_memory_burst_then_429(tmp_path: Path) -> None:
    async with (
        running_hector(config({"burst": 3}), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for expected_remaining in (2, 1, 0):
            allowed = await client.get("/agents")
            assert allowed.status_code == 200
            assert_rate_headers(allowed, remaining=expected_remaining, limit=3)
        assert_limited(await client.get("/agents"))
        assert_limited(await client.get("/agents/echo"))
        # Health and readiness are never limited.
        for _ in range(10):
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/ready")).status_code == 200


async def test_burst_defaults_to_requests_per_minute(tmp_path: Path) -> None:
    async with (
        running_hector(config({"requests_per_minute": 4}), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        statuses = [(await client.get("/agents")).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]


AUTH = {"enabled": True, "api_keys": [KEY_A, KEY_B]}


async def test_per_user_buckets(tmp_path: Path) -> None:
    async with (
        running_hector(config({"burst": 2, "per_user": True}, AUTH), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for key in (KEY_A, KEY_B):  # each key has its own two requests
            for _ in range(2):
                assert (await client.get("/agents/echo", headers=bearer(key))).status_code == 200
        assert_limited(await client.get("/agents/echo", headers=bearer(KEY_A)))
        assert_limited(await client.get("/agents/echo", headers=bearer(KEY_B)))


async def test_without_per_user_keys_share_the_address_bucket(tmp_path: Path) -> None:
    async with (
        running_hector(config({"burst": 3}, AUTH), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert (await client.get("/agents/echo", headers=bearer(KEY_A))).status_code == 200
        assert (await client.get("/agents/echo", headers=bearer(KEY_B))).status_code == 200
        assert (await client.get("/agents", headers=V1)).status_code == 200
        assert_limited(await client.get("/agents/echo", headers=bearer(KEY_B)))
        assert_limited(await client.get("/agents/echo", headers=bearer(KEY_A)))


async def test_forwarded_for_ignored_from_untrusted_peers(tmp_path: Path) -> None:
    async with (
        running_hector(config({"burst": 2}), tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for i in range(2):
            response = await client.get("/agents", headers={"X-Forwarded-For": f"203.0.113.{i}"})
            assert response.status_code == 200
        assert_limited(await client.get("/agents", headers={"X-Forwarded-For": "203.0.113.99"}))


async def test_forwarded_for_honoured_from_trusted_proxies(tmp_path: Path) -> None:
    cfg = config({"burst": 2}, trusted_proxies=["127.0.0.1/32"])
    async with (
        running_hector(cfg, tmp_path) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for client_ip in ("203.0.113.1", "203.0.113.2"):
            for _ in range(2):
                response = await client.get("/agents", headers={"X-Forwarded-For": client_ip})
                assert response.status_code == 200
            assert_limited(await client.get("/agents", headers={"X-Forwarded-For": client_ip}))
        # A client cannot prepend addresses to escape: the nearest untrusted hop counts.
        assert_limited(await client.get("/agents", headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.1"}))
        # The proxy itself (no header) has its own bucket.
        assert (await client.get("/agents")).status_code == 200


def test_serve_leaves_forwarded_for_to_trusted_proxies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve_module = importlib.import_module("hector.cli.serve")  # `hector.cli.serve` is also a command
    seen: dict[str, Any] = {}

    async def record(server: uvicorn.Server, sockets: Any = None) -> None:
        seen["proxy_headers"] = server.config.proxy_headers  # and return instead of serving

    monkeypatch.setattr(uvicorn.Server, "serve", record)
    monkeypatch.setattr(serve_module, "setup_logging", lambda *a, **k: None)
    loaded = parse_config(config({"burst": 2}, data_dir=str(tmp_path)), "<test>")
    serve_module.serve(loaded, None, None, None, None)
    assert seen == {"proxy_headers": False}, "only server.trusted_proxies may decide about X-Forwarded-For"


# --- Redis ----------------------------------------------------------------------------------------


@pytest.fixture
async def redis_db() -> AsyncIterator[str]:
    """Redis db 15, flushed before and after. Skipped when Redis is down, unless in CI."""
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, RedisConnectionError, RedisTimeoutError) as exc:
        await client.aclose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    await client.flushdb()
    try:
        yield REDIS_URL
    finally:
        await client.flushdb()
        await client.aclose()


async def test_redis_limit_is_shared_by_two_servers(redis_db: str, tmp_path: Path) -> None:
    rate = {"burst": 5, "backend": "redis", "redis_url": redis_db}
    async with (
        running_hector(config(rate), tmp_path / "a") as url_a,
        running_hector(config(rate), tmp_path / "b") as url_b,
        httpx.AsyncClient(base_url=url_a) as a,
        httpx.AsyncClient(base_url=url_b) as b,
    ):
        statuses = []
        for client in (a, a, a, b, b):  # 3 to A, 2 to B: the shared bucket of 5 is empty
            response = await client.get("/agents")
            statuses.append(response.status_code)
            assert_rate_headers(response, limit=5)
        assert statuses == [200] * 5
        assert_limited(await b.get("/agents"))  # the 6th request, 3rd to B
        assert_limited(await a.get("/agents"))
        assert (await a.get("/health")).status_code == 200


async def test_redis_per_user(redis_db: str, tmp_path: Path) -> None:
    rate = {"burst": 2, "backend": "redis", "redis_url": redis_db, "per_user": True}
    async with (
        running_hector(config(rate, AUTH), tmp_path / "a") as url_a,
        running_hector(config(rate, AUTH), tmp_path / "b") as url_b,
        httpx.AsyncClient(base_url=url_a) as a,
        httpx.AsyncClient(base_url=url_b) as b,
    ):
        assert (await a.get("/agents/echo", headers=bearer(KEY_A))).status_code == 200
        assert (await b.get("/agents/echo", headers=bearer(KEY_A))).status_code == 200
        assert_limited(await a.get("/agents/echo", headers=bearer(KEY_A)))
        assert (await b.get("/agents/echo", headers=bearer(KEY_B))).status_code == 200
