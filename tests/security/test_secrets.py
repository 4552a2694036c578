"""Secrets never reach logs or responses; authentication attempts are audited as JSON lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hector.cli import main
from hector.config import load_config, parse_config
from hector.logsetup import setup_logging
from hector.security.redact import collect_secrets
from tests.harness import running_hector
from tests.security.conftest import LLMS, V1, assert_401, bearer, completed_text, send_body

CANARY = "sk-canary-7f3a9c"
OTHER_KEY = "other-key-0123456789"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers (pytest's too) and sets levels: put them back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "uvicorn.access", "a2a")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in named.items():
        logging.getLogger(name).setLevel(old)


def canary_config() -> dict[str, Any]:
    return {
        "llms": {"t": {"type": "test", "api_key": "${HECTOR_SECTEST_CANARY}"}},
        "server": {
            "auth": {"enabled": True, "api_keys": [CANARY, OTHER_KEY]},
            "rate_limiting": {
                "enabled": True,
                "requests_per_minute": 600,
                "backend": "redis",
                # A password the local Redis does not expect: every limiter call fails and is logged.
                "redis_url": f"redis://:{CANARY}@127.0.0.1:6379/14",
            },
        },
        "logger": {"level": "debug", "format": "json"},
        "agents": {"echo": {"llm": "t"}},
    }


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_validate_print_config_hides_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HECTOR_SECTEST_CANARY", CANARY)
    path = tmp_path / "hector.yaml"
    path.write_text(yaml.safe_dump(canary_config()))
    for args in (["--print-config"], ["--print-config", "-f", "json"], ["-f", "verbose"]):
        assert main(["validate", str(path), *args]) == 0
        captured = capsys.readouterr()
        assert CANARY not in captured.out + captured.err, args
        assert "valid" in captured.out
    # An invalid config's error does not echo the secret either.
    bad = canary_config()
    bad["server"]["auth"]["api_keys"] = {"not": CANARY}
    path.write_text(yaml.safe_dump(bad))
    assert main(["validate", str(path)]) == 1
    assert main(["validate", str(path), "-f", "json"]) == 1
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
    # --api-key next to --config is refused without printing the key.
    path.write_text(yaml.safe_dump(canary_config()))
    assert main(["serve", "-c", str(path), "--api-key", CANARY]) == 1
    captured = capsys.readouterr()
    assert "--api-key" in captured.err and CANARY not in captured.out + captured.err


async def test_secrets_never_logged_or_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setenv("HECTOR_SECTEST_CANARY", CANARY)
    path = tmp_path / "hector.yaml"
    path.write_text(yaml.safe_dump(canary_config()))
    loaded = load_config(path)
    log_file = tmp_path / "hector.log"
    setup_logging("debug", "json", str(log_file), collect_secrets(loaded.config))
    responses: list[httpx.Response] = []
    async with running_hector(canary_config(), tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        good = await client.post("/agents/echo", json=send_body("hello"), headers=bearer(CANARY))
        assert completed_text(good) == "[test model] You said: hello"
        responses.append(good)
        for header in (
            f"Bearer {CANARY}x",
            f"Bearer x{CANARY}",
            f"Basic {CANARY}",
            f"Bearer {CANARY} {CANARY}",
            f"Bearer {CANARY[:-1]}",
        ):
            response = await client.post(
                "/agents/echo", json=send_body(), headers={"Authorization": header, **V1}
            )
            assert_401(response)
            responses.append(response)
        responses.append(await client.get("/agents", headers=bearer(CANARY)))
        responses.append(await client.get("/agents/echo", headers=bearer(OTHER_KEY)))
        responses.append(await client.get("/ready"))
        responses.append(await client.get("/agents/nobody", headers=bearer(CANARY)))
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert text, "the server logged something"
    assert CANARY not in text
    assert CANARY[:-1] not in text, "not even the near miss"
    for response in responses:
        assert CANARY not in response.text and CANARY not in str(response.headers)

    lines = json_lines(log_file)
    attempts = [line for line in lines if line.get("action") == "authenticate"]
    assert all(line["component"] == "auth" for line in attempts)
    ok = [line for line in attempts if line["success"] is True]
    failed = [line for line in attempts if line["success"] is False]
    assert ok and failed
    assert all(line["user"].startswith("api-key:") for line in ok), ok
    assert all(line["user"] is None for line in failed)
    for line in attempts:
        assert line["level"] == "info" and line["timestamp"].endswith("Z")


async def test_unknown_secret_as_token_is_not_logged(
    tmp_path: Path, keys: Any, restore_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Here the canary is in no configuration, so redaction cannot know it: it must simply never be
    # written, whichever way it is presented.
    cfg = {
        "llms": LLMS,
        "server": {"auth": {"enabled": True, "api_keys": [OTHER_KEY]}},
        "agents": {"echo": {"llm": "t"}},
    }
    log_file = tmp_path / "hector.log"
    setup_logging("debug", "json", str(log_file), collect_secrets(parse_config(cfg).config))
    fake_jwt = f"eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.{CANARY}.{CANARY}"
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(base_url=url) as client:
        for token in (CANARY, fake_jwt):
            response = await client.post("/agents/echo", json=send_body(), headers=bearer(token))
            assert_401(response)
            assert CANARY not in response.text
            listing = await client.get("/agents", headers=bearer(token))
            assert listing.status_code == 200 and CANARY not in listing.text
        completed_text(await client.post("/agents/echo", json=send_body(), headers=bearer(OTHER_KEY)))
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert CANARY not in text and OTHER_KEY not in text
    attempts = [line for line in json_lines(log_file) if line.get("action") == "authenticate"]
    assert [line["success"] for line in attempts].count(False) >= 4
    assert any(line["success"] is True and line["user"].startswith("api-key:") for line in attempts)
