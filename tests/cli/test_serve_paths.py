"""`hector serve` resolves the paths of its config file against the file's folder, not the
working directory it was started from."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import yaml

from tests.cli.test_quickstart import wait_ready
from tests.server.test_recovery import HECTOR, free_port


def test_logger_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    config = folder / "hector.yaml"
    data = {
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t"}},
        "logger": {"level": "info", "format": "json", "file": "hector.log"},
    }
    config.write_text(yaml.safe_dump(data))
    port = free_port()
    output = tmp_path / "output.txt"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [HECTOR, "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=elsewhere,
            start_new_session=True,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc, output)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert not (elsewhere / "hector.log").exists()
    lines = (folder / "hector.log").read_text().splitlines()
    assert any('"Application startup complete."' in line for line in lines), lines[:5]
