"""The README's first command: `hector serve --config examples/quickstart.yaml`, then `hector call`,
run as a user runs them (separate processes), on a copy of examples/."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.test_recovery import HECTOR, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[str]:
    """The quick start served from a copy of examples/ (its data dir lands in the copy)."""
    folder = tmp_path / "examples"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns(".hector"))
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [HECTOR, "serve", "--config", str(folder / "quickstart.yaml"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, tmp_path / "serve.log")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert (folder / ".hector" / "hector.db").is_file()  # SQLite next to the config, as documented


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    with httpx.Client() as http:
        for _ in range(600):
            assert proc.poll() is None, "hector serve exited: " + log.read_text()[-2000:]
            try:
                if http.get(f"{url}/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise AssertionError("hector serve did not become ready: " + log.read_text()[-2000:])


def call(url: str, message: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HECTOR_")}
    done = subprocess.run(
        [HECTOR, "call", message, "--agent", "assistant", "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quickstart_answers_and_searches_its_docs(quickstart: str) -> None:
    assert "[test model] You said: Hello" in call(quickstart, "Hello")
    # The test model calls a tool the message names: the search over ./docs, on the embedded
    # vector store and the offline local embedder.
    found = call(quickstart, 'search {"query": "which vector store does the quick start use?"}')
    assert "Tool search returned:" in found
    assert "documents.md" in found
