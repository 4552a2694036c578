"""The `hector` command line, called the way a user calls it (through `main(argv)`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hector.cli import main
from tests.harness import hector_in_thread

SERVER_CONFIG = {
    "llms": {"t": {"type": "test"}},
    "agents": {"echo": {"llm": "t", "description": "Echo agent"}},
}


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    with hector_in_thread(SERVER_CONFIG, tmp_path) as url:
        yield url


def write(tmp_path: Path, data: object, name: str = "hector.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("Hector version ")


def test_validate_ok_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, SERVER_CONFIG)
    assert main(["validate", str(good)]) == 0
    assert capsys.readouterr().out.strip() == f"{good}: valid"
    bad = write(tmp_path, {"agents": {"x": {"llm": "missing"}}}, "bad.yaml")
    assert main(["validate", str(bad)]) == 1
    assert "agent 'x': llm 'missing' not found (available: [])" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
    assert "file not found" in capsys.readouterr().err


def test_local_call_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, SERVER_CONFIG)
    assert main(["call", "ping", "--config", str(cfg), "--session", "s1"]) == 0
    assert capsys.readouterr().out.strip() == "[test model] You said: ping"
    assert (tmp_path / ".hector" / "hector.db").is_file(), "the data dir is relative to the config file"


def test_local_call_unknown_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, SERVER_CONFIG)
    assert main(["call", "ping", "--config", str(cfg), "--agent", "ghost"]) == 1
    assert "agent 'ghost' not found (available: ['echo'])" in capsys.readouterr().err


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_remote_call(server_url: str, capsys: pytest.CaptureFixture[str], stream: str) -> None:
    assert (
        main(["call", "hello server", "--url", server_url, "--agent", "echo", stream, "--session", "s"]) == 0
    )
    assert capsys.readouterr().out.strip() == "[test model] You said: hello server"


def test_remote_list_info_and_tasks(server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--url", server_url]) == 0
    out = capsys.readouterr().out
    assert "echo" in out and "Echo agent" in out
    assert main(["info", "echo", "--url", server_url]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "echo"
    assert main(["call", "remember", "--url", server_url, "--agent", "echo", "--session", "ctx-list"]) == 0
    capsys.readouterr()
    assert main(["task", "list", "echo", "--url", server_url, "--session", "ctx-list"]) == 0
    line = capsys.readouterr().out.strip()
    task_id, state, context = line.split()
    assert (state, context) == ("completed", "ctx-list")
    assert main(["task", "get", "echo", task_id, "--url", server_url]) == 0
    task = json.loads(capsys.readouterr().out)
    assert task["id"] == task_id and task["status"]["state"] == "TASK_STATE_COMPLETED"


def test_remote_errors_are_one_line(server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "x", "--url", server_url, "--agent", "ghost"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "Traceback" not in err
    assert main(["call", "x", "--url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach http://127.0.0.1:9" in err and "Traceback" not in err


def test_serve_refuses_config_plus_zero_config_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path, SERVER_CONFIG)
    assert main(["serve", "--config", str(cfg), "--provider", "openai"]) == 1
    assert "--config cannot be combined with zero-config flags: --provider" in capsys.readouterr().err


def test_serve_without_provider_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HECTOR_PROVIDER", raising=False)
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "no LLM provider is configured" in err and "--provider test" in err


def test_chat_session_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path, SERVER_CONFIG)
    lines = iter(["first", "", "second", "/exit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", "--config", str(cfg), "--session", "resume-me"]) == 0
    out = capsys.readouterr().out
    assert "You said: first" in out and "You said: second" in out
    lines = iter(["third"])  # EOF after one line ends the chat cleanly

    def read(prompt: str = "") -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", read)
    assert main(["chat", "--config", str(cfg), "--session", "resume-me"]) == 0
    assert "You said: third" in capsys.readouterr().out
