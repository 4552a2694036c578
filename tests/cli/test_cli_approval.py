"""`hector call` pausing for approval, then `hector task approve|deny`, against a real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hector.cli import main
from hector.tools import FunctionTool
from tests.harness import hector_in_thread

CONFIG = {"llms": {"t": {"type": "test"}}, "agents": {"ops": {"llm": "t", "tools": ["deploy"]}}}


@pytest.mark.parametrize(
    ("decision", "outcome"), [("approve", "deployed prod"), ("deny", "TOOL_EXECUTION_DENIED")]
)
def test_call_then_decide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], decision: str, outcome: str
) -> None:
    done: list[str] = []

    def deploy(env: str) -> str:
        """Deploys."""
        done.append(env)
        return f"deployed {env}"

    tool = FunctionTool(deploy)
    tool.require_approval = True
    tool.approval_prompt = "Deploy to {env}?"
    with hector_in_thread(CONFIG, tmp_path, {"deploy": tool}) as url:
        assert main(["call", 'use deploy {"env": "prod"}', "--url", url, "--agent", "ops"]) == 0
        out, err = capsys.readouterr()
        assert "Deploy to prod?" in out
        match = re.search(r"hector task approve ops (\S+)", err)
        assert match, err
        assert done == []
        assert main(["task", decision, "ops", match.group(1), "--url", url]) == 0
        out, _ = capsys.readouterr()
        assert outcome in out
    assert done == (["prod"] if decision == "approve" else [])
