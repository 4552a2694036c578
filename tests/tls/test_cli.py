"""`hector validate` warns about TLS files and insecure components; `hector serve` refuses the files
and prints each insecure warning once at start-up."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from hector.cli import main
from hector.config import load_config
from tests.tls.conftest import Certs, hector_serve

serve_module = importlib.import_module("hector.cli.serve")  # `hector.cli.serve` is also a command


def unreadable_files(tmp_path: Path, certs: Certs) -> tuple[dict[str, Any], list[str]]:
    """A configuration naming a missing CA, a directory and a non-PEM file, and the messages."""
    missing = str(tmp_path / "company-ca.pem")
    config = {
        "ca_certificate": certs.not_pem,
        "llms": {"internal": {"type": "openai", "host": "https://llm.test/v1", "ca_certificate": missing}},
        "tools": {
            "fetch": {"type": "function", "handler": "web_request", "client_certificate": str(tmp_path)}
        },
        "agents": {"a": {"llm": "internal", "tools": ["fetch"]}},
    }
    messages = [
        f"top level: failed to read CA certificate from {certs.not_pem}: not a usable PEM file "
        "(NO_CERTIFICATE_OR_CRL_FOUND)",
        f"llms.internal: failed to read CA certificate from {missing}: No such file or directory",
        f"tools.fetch: failed to read client certificate from {tmp_path}: Is a directory",
    ]
    return config, messages


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "hector.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def flat(text: str) -> str:
    return " ".join(text.split())


def test_validate_warns_about_unreadable_tls_files_and_passes(
    tmp_path: Path, certs: Certs, capsys: pytest.CaptureFixture[str]
) -> None:
    config, messages = unreadable_files(tmp_path, certs)
    assert main(["validate", str(write(tmp_path, config))]) == 0
    captured = capsys.readouterr()
    assert "valid" in captured.out
    for message in messages:
        assert f"warning: {message}" in flat(captured.err)


def test_serve_refuses_unreadable_tls_files(
    tmp_path: Path, certs: Certs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setattr(serve_module, "setup_logging", lambda *a, **k: None)

    async def must_not_serve(*args: object, **kwargs: object) -> None:
        pytest.fail("the server must not start")

    monkeypatch.setattr(uvicorn.Server, "serve", must_not_serve)
    config, messages = unreadable_files(tmp_path, certs)
    assert main(["serve", "--config", str(write(tmp_path, config))]) == 1
    err = flat(capsys.readouterr().err)
    assert "error: cannot use the TLS files of the configuration:" in err
    for message in messages:
        assert message in err


def test_relative_tls_paths_start_at_the_config_file(
    tmp_path: Path, certs: Certs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    for source, name in ((certs.ca, "ca.pem"), (certs.good_cert, "cert.pem"), (certs.good_key, "key.pem")):
        shutil.copy(source, folder / name)
    config = {
        "ca_certificate": "ca.pem",
        "llms": {"l": {"type": "openai", "host": "https://llm.test", "ca_certificate": "./ca.pem"}},
        "server": {"tls": {"cert_file": "cert.pem", "key_file": "key.pem", "client_ca_file": "ca.pem"}},
    }
    path = write(folder, config)
    monkeypatch.chdir(tmp_path)  # not the config's folder
    assert main(["validate", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err
    cfg = load_config(path).config
    assert cfg.ca_certificate == str(folder / "ca.pem")
    assert cfg.llms["l"].ca_certificate == str(folder / "ca.pem")
    assert cfg.server.tls is not None
    assert (cfg.server.tls.cert_file, cfg.server.tls.key_file) == (
        str(folder / "cert.pem"),
        str(folder / "key.pem"),
    )


def test_validate_warns_for_each_insecure_component(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "llms": {"dev": {"type": "anthropic", "api_key": "k", "insecure_skip_verify": True}},
        "tools": {
            "docs": {"type": "mcp", "server_url": "https://mcp.test/mcp", "insecure_skip_verify": True}
        },
        "agents": {"remote": {"type": "a2a", "url": "https://agent.test", "insecure_skip_verify": True}},
    }
    assert main(["validate", str(write(tmp_path, config))]) == 0
    err = flat(capsys.readouterr().err)
    for component in ("LLM provider anthropic (dev)", "MCP server docs", "A2A agent remote"):
        assert (
            f"warning: TLS certificate verification disabled for {component} (insecure_skip_verify=true)"
            in err
        )


def test_serve_prints_each_insecure_warning_once_at_start_up(tmp_path: Path) -> None:
    config = {
        "insecure_skip_verify": True,  # the default of every component below but `careful`
        "llms": {
            "remote": {"type": "openai", "host": "https://127.0.0.1:9/v1", "api_key": "k"},
            "careful": {"type": "ollama", "host": "https://127.0.0.1:9", "insecure_skip_verify": False},
            "unused": {"type": "gemini", "api_key": "k"},
        },
        "vector_stores": {"vs": {"type": "weaviate", "host": "vs.test", "enable_tls": True}},
        "tools": {"fetch": {"type": "function", "handler": "web_request"}},
        "agents": {"a": {"llm": "remote", "tools": ["fetch", "web_request"]}, "b": {"llm": "careful"}},
        "server": {
            "auth": {"enabled": True, "jwks_url": "https://127.0.0.1:9/jwks", "issuer": "i", "audience": "a"}
        },
    }
    with hector_serve(config, tmp_path) as running:
        log = running.log  # everything up to the first answer to /health: start-up
    components = [
        "LLM provider openai (remote)",
        "LLM provider gemini (unused)",  # declared, not used by an agent: warned all the same
        "vector store weaviate (vs)",  # not built by this version: warned all the same
        "tool fetch",
        "tool web_request",
        "JWKS fetch (server.auth)",
    ]
    for component in components:
        warning = f"TLS certificate verification disabled for {component} (insecure_skip_verify=true)"
        assert log.count(warning) == 1, (component, log)
    assert "LLM provider ollama (careful)" not in log
    assert log.count("TLS certificate verification disabled by default for every outbound connection") == 1
