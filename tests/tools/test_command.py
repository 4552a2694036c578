"""execute_command: injection payloads, process control, environment, and a run through a server."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import get_text_parts
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, TaskState

from hector.config.schema import ToolConfig
from hector.errors import ConfigError, ToolError
from hector.tools import Tool, ToolContext
from hector.tools.registry import ToolEnv, build_tool
from tests.harness import running_hector

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the command sandbox targets Linux")

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
CTX = ToolContext(agent_id="ops", context_id="ctx", task_id=None, user="tester")

BLACK: dict[str, Any] = {}  # deny_by_default false, default deny list
WHITE: dict[str, Any] = {
    "deny_by_default": True,
    "allowed_commands": ["echo", "touch", "cat", "ls", "find", "git", "nice", "env", "pwd"],
}
TOUCH_DENIED: dict[str, Any] = {"denied_commands": ["touch"]}
SHELLS_ALLOWED: dict[str, Any] = {"allowed_commands": ["sh", "bash", "touch"]}
ECHO_ONLY: dict[str, Any] = {"deny_by_default": True, "denied_commands": [], "allowed_commands": ["echo"]}
PATH_WITH_ALIAS: dict[str, Any] = {"env": {"PATH": "{bin}:" + SYSTEM_PATH}}


class Box:
    """A workspace, a directory outside it with a file to protect, and planted traps."""

    def __init__(self, base: Path) -> None:
        self.base, self.ws, self.outside = base, base / "ws", base / "outside"
        self.ws.mkdir()
        self.outside.mkdir()
        self.victim, self.marker = self.outside / "victim", self.outside / "pwned"
        self.victim.write_text("keep")
        rm = os.path.realpath(shutil.which("rm", path=SYSTEM_PATH) or "/bin/rm")
        (self.ws / "rm").symlink_to(rm)  # a symlink named like the denied program
        shutil.copy2(rm, self.ws / "tidy-copy")  # the denied program under another name
        (self.ws / "link-out").symlink_to(self.outside, target_is_directory=True)
        (self.ws / "input.txt").write_text("line\n")
        (self.base / "bin").mkdir()
        (self.base / "bin" / "tidy").symlink_to(rm)  # a PATH program that is really rm

    def fill(self, text: str) -> str:
        for key, value in {"{M}": self.marker, "{victim}": self.victim, "{bin}": self.base / "bin"}.items():
            text = text.replace(key, str(value))
        return text

    def tool(self, **cfg: Any) -> Tool:
        cfg.setdefault("working_directory", "ws")
        cfg["env"] = {k: self.fill(v) for k, v in cfg.get("env", {"PATH": SYSTEM_PATH}).items()}
        return build_tool("execute_command", ToolConfig(type="command", **cfg), ToolEnv(base_dir=self.base))


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


async def run(tool: Tool, command: str, **arguments: Any) -> str:
    return await tool.call({"command": command, **arguments}, CTX)


# id: (config, command, expectation). "!fragment": refused with a message containing fragment;
# anything else: text the program must have printed literally. {M} is the marker outside.
PAYLOADS: dict[str, tuple[dict[str, Any], str, str]] = {
    "semicolon": (BLACK, "echo hi; touch {M}", "hi; touch {M}"),
    "and": (BLACK, "echo hi && touch {M}", "hi && touch {M}"),
    "or": (BLACK, "echo hi || touch {M}", "hi || touch {M}"),
    "background": (BLACK, "echo hi & touch {M}", "hi & touch {M}"),
    "dollar-subst": (BLACK, "echo $(touch {M})", "$(touch {M})"),
    "quoted-subst-whitelist": (WHITE, 'echo "$(touch {M})"', "$(touch {M})"),
    "backticks": (BLACK, "echo `touch {M}`", "`touch {M}`"),
    "pipe-sh": (BLACK, "echo hi | sh", "hi | sh"),
    "pipe-sh-c": (BLACK, "echo x | sh -c 'touch {M}'", "x | sh -c touch {M}"),
    "redirect": (BLACK, "echo hi > {M}", "hi > {M}"),
    "redirect-glued": (BLACK, "echo hi >{M}", "hi >{M}"),
    "redirect-append": (BLACK, "echo hi >> {M}", "hi >> {M}"),
    "newline": (BLACK, "echo hi\ntouch {M}", "!single line"),
    "carriage-return": (BLACK, "echo hi\rtouch {M}", "!single line"),
    "nul": (BLACK, "echo hi\x00touch {M}", "!NUL"),
    "semicolon-whitelist": (WHITE, "echo hi; touch {M}", "!argument leaves the workspace"),
    "env-command": (BLACK, "env touch {M}", "!env may only print"),
    "env-assign-command": (BLACK, "env -i PATH=/bin touch {M}", "!env may only print"),
    "env-split-string": (BLACK, "env -S 'touch {M}'", "!env may only print"),
    "xargs": (BLACK, "xargs touch {M}", "!xargs is not allowed"),
    "find-exec": (BLACK, "find . -exec touch {M} ;", "!find -exec"),
    "find-execdir": (BLACK, "find . -execdir touch {M} +", "!find -execdir"),
    "find-ok": (BLACK, "find . -ok touch {M} ;", "!find -ok"),
    "find-fprint": (BLACK, "find . -fprint {M}", "!find -fprint"),
    "find-delete": (BLACK, "find {victim} -delete", "!find -delete"),
    "sh-c": (BLACK, "sh -c 'touch {M}'", "!shells are not allowed"),
    "bash-c": (BLACK, "bash -c 'touch {M}'", "!shells are not allowed"),
    "abs-sh-c": (BLACK, "/bin/sh -c 'touch {M}'", "!shells are not allowed"),
    "dash-whitelist": (WHITE, "dash -c 'touch {M}'", "!dash (not in allow list)"),
    "allowed-sh-c": (SHELLS_ALLOWED, "sh -c 'touch {M}'", "!sh -c is not allowed"),
    "allowed-bash-ec": (SHELLS_ALLOWED, "bash -ec 'touch {M}'", "!bash -ec is not allowed"),
    "busybox": (BLACK, "busybox sh -c 'touch {M}'", "!"),
    "python-c": (BLACK, "python3 -c \"open('{M}', 'w')\"", "!inline code (-c)"),
    "python-Ic": (BLACK, "python3 -Ic \"open('{M}', 'w')\"", "!inline code (-c)"),
    "python-W-c": (BLACK, "python3 -W ignore -c \"open('{M}', 'w')\"", "!(-c)"),
    "python-versioned": (BLACK, "python3.11 -c \"open('{M}', 'w')\"", "!(-c)"),
    "python-timeit": (BLACK, "python3 -m timeit \"open('{M}', 'w')\"", "!(-m timeit)"),
    "perl-e": (BLACK, 'perl -e \'open(F, ">", "{M}")\'', "!inline code (-e)"),
    "perl-lne": (BLACK, 'perl -lne \'open(F, ">", "{M}")\'', "!inline code"),
    "perl-I-e": (BLACK, 'perl -I lib -e \'open(F, ">", "{M}")\'', "!(-e)"),
    "node-e": (BLACK, "node -e \"require('fs').writeFileSync('{M}', 'x')\"", "!(-e)"),
    "node-eval": (BLACK, "node --eval=\"require('fs').writeFileSync('{M}', 'x')\"", "!--eval"),
    "node-pe": (BLACK, "node --title t -pe \"require('fs').writeFileSync('{M}', 'x')\"", "!(-p)"),
    "awk-system": (BLACK, "awk 'BEGIN{system(\"touch {M}\")}'", "!inline code (system()"),
    "awk-redirect": (BLACK, 'awk \'BEGIN{print "x" > "{M}"}\'', "!inline code (>)"),
    "gawk-getline": (BLACK, "gawk 'BEGIN{\"touch {M}\" | getline}'", "!inline code (|)"),
    "mawk-system": (BLACK, "mawk 'BEGIN{system(\"touch {M}\")}'", "!inline code"),
    "sed-e-command": (BLACK, "sed '1e touch {M}' input.txt", "disabled in sandbox mode"),
    "sed-w-flag": (BLACK, "sed 's/line/x/w {M}' input.txt", "disabled in sandbox mode"),
    "sed-W-command": (BLACK, "sed -n 'W {M}' input.txt", "disabled in sandbox mode"),
    "git-alias": (BLACK, "git -c alias.x='!touch {M}' x", "!git -c is not allowed"),
    "git-pager": (BLACK, "git -c core.pager='touch {M}' log", "!git -c"),
    "git-C-c": (BLACK, "git -C . -c core.fsmonitor='touch {M}' status", "!git -c"),
    "git-exec-path": (BLACK, "git --exec-path={M} x", "!--exec-path"),
    "git-upload-pack": (BLACK, "git clone --upload-pack='touch {M}' a b", "!--upload-pack"),
    "git-clone-u": (BLACK, "git clone -u 'touch {M}' a b", "!git clone -u"),
    "git-ext-transport": (BLACK, "git clone 'ext::sh -c touch% {M}' b", "!ext::"),
    "git-rebase-x": (BLACK, "git rebase -x 'touch {M}' HEAD", "!git rebase -x"),
    "git-foreach": (BLACK, "git submodule foreach 'touch {M}'", "!git submodule"),
    "git-bisect-run": (BLACK, "git bisect run touch {M}", "!git bisect"),
    "git-config-write": (BLACK, "git config alias.x '!touch {M}'", "!git config"),
    "nice": (TOUCH_DENIED, "nice touch {M}", "!touch (in deny list)"),
    "nice-n": (TOUCH_DENIED, "nice -n 5 touch {M}", "!touch (in deny list)"),
    "timeout-rm": (BLACK, "timeout 5 rm {victim}", "!rm (in deny list)"),
    "nested-wrappers": (BLACK, "timeout -s KILL 5 nice -n 1 rm {victim}", "!rm (in deny list)"),
    "nohup-rm": (BLACK, "nohup rm {victim}", "!rm (in deny list)"),
    "stdbuf-rm": (BLACK, "stdbuf -oL rm {victim}", "!rm (in deny list)"),
    "time-o": (BLACK, "time -o {M} true", "!time -o is not allowed"),
    "deep-wrappers": (BLACK, "nice " * 10 + "touch {M}", "!too many nested"),
    "setsid": (BLACK, "setsid touch {M}", "!setsid is not allowed"),
    "sudo": (BLACK, "sudo touch {M}", "!sudo (in deny list)"),
    "strace": (BLACK, "strace -o {M} true", "!"),
    "dotdot-path": (BLACK, "/usr/bin/../bin/rm {victim}", "!rm (in deny list)"),
    "absolute-path": (BLACK, "/bin/rm {victim}", "!rm (in deny list)"),
    "quoted-name": (BLACK, '"rm" {victim}', "!rm (in deny list)"),
    "escaped-name": (BLACK, "r\\m {victim}", "!rm (in deny list)"),
    "uppercase-name": (BLACK, "RM {victim}", "!"),
    "workspace-symlink": (BLACK, "./rm {victim}", "!rm (in deny list)"),
    "workspace-copy": (BLACK, "./tidy-copy {victim}", "!same program as rm"),
    "path-symlink": (PATH_WITH_ALIAS, "tidy {victim}", "!rm (in deny list)"),
    "deny-by-default": (ECHO_ONLY, "rm {victim}", "!rm (not in allow list)"),
    "deny-by-default-link": (ECHO_ONLY, "./rm {victim}", "!rm (not in allow list)"),
    "arg-dotdot": (WHITE, "touch ../outside/pwned", "!argument leaves the workspace"),
    "arg-absolute": (WHITE, "touch {M}", "!argument leaves the workspace"),
    "arg-symlink-out": (WHITE, "touch link-out/pwned", "!argument leaves the workspace"),
    "arg-glued": (WHITE, "touch -r{victim} x", "!argument leaves the workspace"),
    "arg-long-option": (WHITE, "touch --reference={victim} x", "!argument leaves"),
    "git-init-outside": (WHITE, "git init {M}", "!argument leaves the workspace"),
    "tar-checkpoint": (BLACK, "tar cf x.tar --checkpoint-action=exec='touch {M}' .", "!--checkpoint-action"),
    "tar-abbreviated": (BLACK, "tar cf x.tar --to-com='touch {M}' .", "!tar: inline code (--to-command)"),
    "tar-old-style": (BLACK, "tar cIf 'touch {M}' x.tar input.txt", "!tar: inline code (-I)"),
    "rsync-e": (BLACK, "rsync -avze 'touch {M}' a: b", "!rsync: inline code (-e)"),
    "git-abbreviated": (BLACK, "git clone --upload-pa='touch {M}' a b", "!git --upload-pack is not allowed"),
    "time-abbreviated": (BLACK, "time --outp={M} true", "!time --output is not allowed"),
    "wrapped-inline": (BLACK, "nice -n 5 python3 -c \"open('{M}', 'w')\"", "!inline code (-c)"),
    "env-preload": (BLACK, "env LD_PRELOAD=./x.so ls", "!env may only print"),
    "message-not-in-allow-list": (ECHO_ONLY, "touch {M}", "!command not allowed: touch (not in allow list)"),
    "message-allow-list-only": (SHELLS_ALLOWED, "ls {M}", "!command not allowed: ls (not in allow list)"),
    "message-deny-wins": ({"allowed_commands": ["chmod"]}, "chmod 600 {victim}", "!chmod (in deny list)"),
    "blank": (BLACK, "   ", "!command is required"),
    "unbalanced-quote": (BLACK, "echo 'unbalanced {M}", "!could not parse command"),
    "not-found": (BLACK, "no-such-program {M}", "!command not found: no-such-program"),
    "pattern-rm-rf": (BLACK, "echo rm -rf /", "!denied pattern"),
    "pattern-no-preserve-root": (BLACK, "echo --no-preserve-root", "!denied pattern"),
}


@pytest.mark.parametrize(("config", "command", "expected"), PAYLOADS.values(), ids=PAYLOADS.keys())
async def test_injection_payloads(box: Box, config: dict[str, Any], command: str, expected: str) -> None:
    tool = box.tool(**config)
    if expected.startswith("!"):
        fragment = box.fill(expected[1:])
        with pytest.raises(ToolError, match=re.escape(fragment) if fragment else None):
            await run(tool, box.fill(command))
    else:
        assert box.fill(expected) in await run(tool, box.fill(command))
    assert not box.marker.exists()
    assert sorted(p.name for p in box.outside.iterdir()) == ["victim"]
    assert box.victim.read_text() == "keep"


async def test_allowed_commands_return_output_and_exit_code(box: Box) -> None:
    tool = box.tool(**WHITE)
    assert await run(tool, "echo hello") == "hello\n[exit code: 0]"
    assert await run(tool, "echo 'a  b' \"c;d\"") == "a  b c;d\n[exit code: 0]"
    result = await run(tool, "ls missing-file")
    assert "No such file" in result and result.endswith("[exit code: 2]")
    await run(tool, "touch made-here")
    assert (box.ws / "made-here").exists()


async def test_inline_code_only_for_explicitly_allowed_interpreters_in_blacklist_mode(box: Box) -> None:
    (box.ws / "script.py").write_text("print(6 * 7)\n")
    explicit = box.tool(allowed_commands=["python3"])
    assert await run(explicit, "python3 -c 'print(6 * 7)'") == "42\n[exit code: 0]"
    whitelisted = box.tool(deny_by_default=True, allowed_commands=["python3"])
    with pytest.raises(ToolError, match="inline code"):
        await run(whitelisted, "python3 -c 'print(6 * 7)'")
    assert await run(whitelisted, "python3 script.py") == "42\n[exit code: 0]"
    assert await run(box.tool(**BLACK), "awk '$1 < 2 {print \"small\"}' input.txt") == "[exit code: 0]"


async def test_working_dir_is_confined(box: Box) -> None:
    (box.ws / "sub").mkdir()
    tool = box.tool(**WHITE)
    assert await run(tool, "pwd", working_dir="sub") == f"{box.ws / 'sub'}\n[exit code: 0]"
    for bad, message in [
        ("../", "directory traversal"),
        ("/tmp", "absolute paths not allowed"),
        ("link-out", "escapes"),
        ("missing", "not found"),
        ("input.txt", "not a directory"),
    ]:
        with pytest.raises(ToolError, match=message):
            await run(tool, "pwd", working_dir=bad)


SPAWNER = """
import os, subprocess, sys, time
kids = [subprocess.Popen(["sleep", "60"])]
if "escape" in sys.argv:  # a grandchild that leaves the process group, in a session of its own
    kids.append(subprocess.Popen(["sleep", "60"], start_new_session=True))
with open("pids.tmp", "w") as f:
    f.write(" ".join(str(k.pid) for k in kids))
os.replace("pids.tmp", "pids")
print("spawned", flush=True)
if "wait" in sys.argv:
    time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie is dead, merely not reaped yet


async def all_dead(pids: list[int], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return not any(alive(p) for p in pids)


@pytest.fixture
def spawner(box: Box) -> Any:
    (box.ws / "spawn.py").write_text(SPAWNER)
    pids: list[int] = []

    def read_pids() -> list[int]:
        pids.extend(int(p) for p in (box.ws / "pids").read_text().split())
        return pids

    yield read_pids
    for pid in pids:  # never leave a sleeper behind, even when a test fails
        if alive(pid):
            os.kill(pid, 9)


async def test_timeout_kills_the_whole_tree(box: Box, spawner: Any) -> None:
    tool = box.tool(allowed_commands=["python3"], max_execution_time=1)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"^command timed out after 1s and was killed$"):
        await run(tool, "python3 spawn.py wait escape")
    assert time.monotonic() - started < 3
    assert await all_dead(spawner())


async def test_timeout_argument_is_capped_and_checked(box: Box) -> None:
    tool = box.tool(allowed_commands=["sleep"], max_execution_time=0.5)
    with pytest.raises(ToolError, match=r"after 0\.5s"):
        await run(tool, "sleep 5", timeout=100)
    with pytest.raises(ToolError, match=r"after 0\.2s"):
        await run(tool, "sleep 5", timeout=0.2)
    for bad in (-1, 0, "3", True, float("nan")):
        with pytest.raises(ToolError, match="timeout must be a positive number"):
            await run(tool, "sleep 0", timeout=bad)


async def test_background_leftovers_are_killed_when_the_program_ends(box: Box, spawner: Any) -> None:
    tool = box.tool(allowed_commands=["python3"])
    started = time.monotonic()
    assert await run(tool, "python3 spawn.py") == "spawned\n[exit code: 0]"
    assert time.monotonic() - started < 3  # not held by the sleeper that still had the pipe
    assert await all_dead(spawner())


async def test_cancellation_kills_the_process_group(box: Box, spawner: Any) -> None:
    tool = box.tool(allowed_commands=["python3"])
    call = asyncio.create_task(run(tool, "python3 spawn.py wait escape"))
    while not (box.ws / "pids").exists():
        await asyncio.sleep(0.02)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await all_dead(spawner())


async def test_output_is_capped(box: Box) -> None:
    tool = box.tool(allowed_commands=["seq"], max_output_size=1024 * 1024)
    result = await run(tool, "seq 1 800000")  # about 5.5 MB
    body, _, tail = result.rpartition("\n[output truncated: ")
    assert len(body.encode()) == 1024 * 1024
    assert body.startswith("1\n2\n3\n")
    assert tail.endswith("limit 1048576 bytes]\n[exit code: 0]")
    assert int(tail.split()[0]) == 5_488_895 - 1024 * 1024


async def test_environment_is_scrubbed(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary")
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:canary@db/x")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_canary")
    monkeypatch.setenv("PATH", f".::{box.ws}:{SYSTEM_PATH}")  # relative and workspace entries
    result = await run(box.tool(allowed_commands=["env"], env={}), "env")  # no PATH of its own
    assert "canary" not in result
    lines = set(result.splitlines())
    assert {f"PATH={SYSTEM_PATH}", f"HOME={box.ws}", "TERM=dumb", "LANG=C.UTF-8"} <= lines
    configured = box.tool(allowed_commands=["printenv"], env={"PATH": SYSTEM_PATH, "FOO": "bar"})
    assert await run(configured, "printenv FOO") == "bar\n[exit code: 0]"


async def test_configuration(box: Box) -> None:
    with pytest.raises(ToolError, match="command is required"):
        await box.tool().call({}, CTX)
    with pytest.raises(ConfigError, match="enable_sandboxing: false requires allowed_commands"):
        box.tool(enable_sandboxing=False)
    tool = box.tool(allowed_commands=["ls", "echo"])
    assert tool.require_approval  # on by default for commands
    assert tool.parameters["required"] == ["command"]
    assert "Allowed programs: echo, ls." in tool.description


async def test_end_to_end_through_a_server(tmp_path: Path) -> None:
    config = {
        "version": "2",
        "llms": {"t": {"type": "test"}},
        "tools": {
            "execute_command": {
                "type": "command",
                "working_directory": "ws",
                "allowed_commands": ["echo"],
                "deny_by_default": True,
                "require_approval": False,
            }
        },
        "agents": {"ops": {"llm": "t", "tools": ["execute_command"]}},
    }
    async with running_hector(config, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        card = await A2ACardResolver(http, f"{url}/agents/ops").get_agent_card()
        client = ClientFactory(
            ClientConfig(streaming=False, httpx_client=http, supported_protocol_bindings=["JSONRPC"])
        ).create(card)

        async def ask(text: str, n: int) -> tuple[int, str]:
            message = Message(
                role=Role.ROLE_USER, message_id=f"m-{n}", context_id="c-1", parts=[Part(text=text)]
            )
            events = [e async for e in client.send_message(SendMessageRequest(message=message))]
            task = events[-1].task
            return task.status.state, "".join(get_text_parts(task.status.message.parts))

        assert await ask('use execute_command {"command": "echo hello"}', 1) == (
            TaskState.TASK_STATE_COMPLETED,
            "Tool execute_command returned: hello\n[exit code: 0]",
        )
        assert await ask('use execute_command {"command": "touch pwned"}', 2) == (
            TaskState.TASK_STATE_COMPLETED,
            "Tool execute_command returned: ERROR: command not allowed: touch (not in allow list)",
        )
        await client.close()
    assert not (tmp_path / "ws" / "pwned").exists()
