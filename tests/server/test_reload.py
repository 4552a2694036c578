"""`hector serve --config-watch`: a changed config applies without dropping requests; a bad one is refused."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from a2a.types.a2a_pb2 import TaskState

from hector.config import load_config
from hector.server.reload import ReloadingApp
from tests.server.test_a2a import client_for, request
from tests.server.test_recovery import HECTOR, free_port, wait_ready


def write(path: Path, description: str, extra_agent: bool = False, **top: Any) -> None:
    tool = {
        "type": "command",
        "deny_by_default": True,
        "allowed_commands": ["sleep"],
        "require_approval": False,
    }
    agents: dict[str, Any] = {
        "worker": {"llm": "t", "description": description, "tools": ["execute_command"]}
    }
    if extra_agent:
        agents["second"] = {"llm": "t"}
    path.write_text(
        yaml.safe_dump(
            {"llms": {"t": {"type": "test"}}, "tools": {"execute_command": tool}, "agents": agents, **top}
        )
    )


async def descriptions(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    return {a["name"]: a["description"] for a in (await http.get(f"{url}/agents")).json()["agents"]}


async def wait_for(check: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out waiting for the reload"
        await asyncio.sleep(0.2)


async def test_reload_applies_changes_keeps_streams_and_refuses_bad_configs(tmp_path: Path) -> None:
    config = tmp_path / "hector.yaml"
    write(config, "first version")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [HECTOR, "serve", "--config", str(config), "--port", str(port), "--config-watch"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await wait_ready(url, proc)
        async with httpx.AsyncClient(timeout=30) as http:
            assert await descriptions(http, url) == {"worker": "first version"}
            client = await client_for(
                url, "worker", binding="JSONRPC", version="1.0", streaming=True, http=http
            )
            stream = client.send_message(request('use execute_command {"command": "sleep 3"}', "ctx-reload"))
            assert (await anext(stream)).HasField("task")
            write(config, "second version", extra_agent=True)

            async def reloaded() -> bool:
                return await descriptions(http, url) == {
                    "worker": "second version",
                    "second": "Hector agent second",
                }

            await wait_for(reloaded)
            # The request that started before the change finishes on the old configuration.
            rest = [e async for e in stream]
            assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
            config.write_text("agents:\n  worker:\n    llmm: t\n")  # a typo: refused
            await wait_for(lambda: _contains(log, "configuration change rejected"))
            assert await descriptions(http, url) == {
                "worker": "second version",
                "second": "Hector agent second",
            }
            await client.close()
        assert "agents.worker.llmm: unknown key (did you mean 'llm'?)" in log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


async def _contains(path: Path, text: str) -> bool:
    return text in path.read_text()


async def test_listener_changes_warn_that_they_need_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "hector.yaml"
    data_dir = {"data_dir": str(tmp_path / "data")}
    write(path, "first", server=data_dir)
    async with ReloadingApp(path, load_config(path), lambda loaded: None, interval=3600) as app:
        write(path, "second", server=data_dir)
        with caplog.at_level(logging.WARNING, logger="hector.reload"):
            assert await app.reload()
        assert not [r for r in caplog.records if "restart" in r.getMessage()]

        write(path, "third", server={**data_dir, "port": 9999, "grpc": {"enabled": True, "port": 50999}})
        with caplog.at_level(logging.WARNING, logger="hector.reload"):
            assert await app.reload()
        warned = [r.getMessage() for r in caplog.records if "restart" in r.getMessage()]
        assert warned == [
            "server.port, server.grpc take effect only after a restart (the listeners stay as they are)"
        ]
