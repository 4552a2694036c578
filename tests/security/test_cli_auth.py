"""`hector serve` zero-config auth flags: all three enable JWT auth, fewer warn and leave it off."""

from __future__ import annotations

import importlib
import io
from pathlib import Path

import httpx
import pytest
import yaml
from rich.console import Console

from hector.assembly import build_runtime
from hector.cli import main
from hector.config import LoadedConfig
from hector.server.app import create_app
from tests.harness import serve_app
from tests.security.conftest import (
    AUDIENCE,
    ISSUER,
    V1,
    JWKSServer,
    Keys,
    bearer,
    completed_text,
    make_token,
    send_body,
)

serve_module = importlib.import_module("hector.cli.serve")  # `hector.cli.serve` is also the command
JWKS = "https://auth.example.test/.well-known/jwks.json"
WARNING = "authentication is DISABLED"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[LoadedConfig]:
    """Records the configuration `hector serve` would run, instead of running it."""
    monkeypatch.chdir(tmp_path)  # no stray .env files
    calls: list[LoadedConfig] = []
    monkeypatch.setattr(serve_module, "serve", lambda loaded, *args, **kwargs: calls.append(loaded))
    return calls


def announced(loaded: LoadedConfig) -> str:
    buffer = io.StringIO()
    serve_module.announce(loaded, Console(file=buffer, width=200), "http://127.0.0.1:8080")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "flags",
    [
        ["--auth-jwks-url", JWKS],
        ["--auth-issuer", ISSUER],
        ["--auth-audience", AUDIENCE],
        ["--auth-jwks-url", JWKS, "--auth-issuer", ISSUER],
        ["--auth-jwks-url", JWKS, "--auth-audience", AUDIENCE],
        ["--auth-issuer", ISSUER, "--auth-audience", AUDIENCE],
        ["--auth-jwks-url", JWKS, "--auth-issuer", ISSUER, "--no-auth-required"],
    ],
)
def test_incomplete_auth_flags_warn_and_disable_auth(served: list[LoadedConfig], flags: list[str]) -> None:
    assert main(["serve", "--provider", "test", *flags]) == 0
    (loaded,) = served
    assert loaded.config.server.auth.enabled is False
    assert any(WARNING in w for w in loaded.warnings), loaded.warnings
    assert "--auth-jwks-url, --auth-issuer and --auth-audience" in announced(loaded)
    assert WARNING in announced(loaded)


def test_all_three_flags_enable_auth(served: list[LoadedConfig]) -> None:
    args = ["serve", "--provider", "test", "--auth-jwks-url", JWKS, "--auth-issuer", ISSUER]
    assert main([*args, "--auth-audience", AUDIENCE]) == 0
    (loaded,) = served
    auth = loaded.config.server.auth
    assert auth.enabled and auth.require_auth
    assert (auth.jwks_url, auth.issuer, auth.audience) == (JWKS, ISSUER, AUDIENCE)
    assert not any(WARNING in w for w in loaded.warnings)
    assert WARNING not in announced(loaded)


def test_no_auth_required(served: list[LoadedConfig]) -> None:
    args = ["serve", "--provider", "test", "--auth-jwks-url", JWKS, "--auth-issuer", ISSUER]
    assert main([*args, "--auth-audience", AUDIENCE, "--no-auth-required"]) == 0
    (loaded,) = served
    assert loaded.config.server.auth.enabled and loaded.config.server.auth.require_auth is False


def test_no_flags_no_auth_no_warning(served: list[LoadedConfig]) -> None:
    assert main(["serve", "--provider", "test"]) == 0
    (loaded,) = served
    assert loaded.config.server.auth.enabled is False
    assert not any(WARNING in w for w in loaded.warnings)


def test_auth_flags_with_config_file_are_refused(
    served: list[LoadedConfig], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hector.yaml"
    path.write_text(yaml.safe_dump({"llms": {"t": {"type": "test"}}, "agents": {"a": {"llm": "t"}}}))
    assert main(["serve", "-c", str(path), "--auth-issuer", ISSUER]) == 1
    assert "--auth-issuer" in capsys.readouterr().err
    assert served == []


@pytest.mark.parametrize("required", [True, False])
async def test_flags_give_a_working_jwt_server(
    served: list[LoadedConfig], jwks_server: JWKSServer, keys: Keys, tmp_path: Path, required: bool
) -> None:
    args = ["serve", "--provider", "test", "--auth-jwks-url", jwks_server.url, "--auth-issuer", ISSUER]
    args += ["--auth-audience", AUDIENCE] + ([] if required else ["--no-auth-required"])
    assert main(args) == 0
    (loaded,) = served
    app = create_app(build_runtime(loaded.config, tmp_path))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        completed_text(
            await client.post("/agents/assistant", json=send_body(), headers=bearer(make_token(keys.rsa)))
        )
        anonymous = await client.post("/agents/assistant", json=send_body(), headers=V1)
        if required:
            assert anonymous.status_code == 401
        else:
            completed_text(anonymous)
        assert (
            await client.post("/agents/assistant", json=send_body(), headers=bearer("forged"))
        ).status_code == 401
