"""The Go original's `global` section is read as `server` (SPEC §2.12), and shown that way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hector.cli import main

WriteConfig = Callable[..., Path]

LEGACY = """\
global:
  a2a_server: {host: 0.0.0.0, port: 9090, base_url: "https://agents.example.com", grpc_port: 50052}
  auth: {jwks_url: "https://sso.example.com/jwks.json", issuer: "https://sso.example.com/", audience: api}
  observability:
    enable_metrics: true
    tracing: {enabled: true, exporter_type: otlp, endpoint_url: "collector:4317", sampling_rate: 0.5}
llms:
  t: {type: test}
"""


def validate(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, dict[str, Any]]:
    code = main(["validate", str(path), "--format", "json", "--print-config"])
    return code, json.loads(capsys.readouterr().out)


def test_global_settings_become_server_settings(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = validate(capsys, write_config(LEGACY))
    assert code == 0, report
    server = report["config"]["server"]
    assert (server["host"], server["port"], server["base_url"]) == (
        "0.0.0.0",
        9090,
        "https://agents.example.com",
    )
    assert server["grpc"] == {"enabled": True, "port": 50052, "host": None}
    auth = server["auth"]
    assert auth["enabled"] is True  # the original turned auth on by giving the three settings
    assert (auth["jwks_url"], auth["issuer"], auth["audience"]) == (
        "https://sso.example.com/jwks.json",
        "https://sso.example.com/",
        "api",
    )
    assert server["observability"]["metrics"]["enabled"] is True
    tracing = server["observability"]["tracing"]
    assert (tracing["enabled"], tracing["exporter"], tracing["endpoint"], tracing["sampling_rate"]) == (
        True,
        "otlp",
        "collector:4317",
        0.5,
    )
    assert "global" not in report["config"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "global:\n  a2a_server: {port: 9090}\nserver: {port: 8081}\n",
            "give either server.port or global.a2a_server.port, not both",
        ),
        (
            "global:\n  a2a_server: {prot: 9090}\n",
            "global.a2a_server.prot: unknown key (accepted: host, port, base_url,",
        ),
        ("global:\n  performance: {max_concurrency: 4}\n", "global.performance: not supported"),
        (
            # A partial set was silently ignored by the original; here it is refused.
            "global:\n  auth: {jwks_url: 'https://sso.example.com/jwks.json'}\n",
            "server.auth: incomplete JWT configuration, missing issuer, audience",
        ),
    ],
)
def test_global_mistakes_are_errors(
    text: str, message: str, write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(text)
    code, report = validate(capsys, path)
    assert code == 1
    assert report["valid"] is False
    assert report["errors"][0]["message"].startswith(f"{path}: invalid configuration:")
    assert message in report["errors"][0]["message"]
