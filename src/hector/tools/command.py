"""``execute_command`` (``type: command``): one program, no shell, in the workspace, under a policy.

A call goes through these steps:

- The policy (``hector.tools.command_policy``, whose docstring holds every rule) turns the command
  string into an argv, or refuses it with a ``ToolError``; nothing runs when it refuses.
- The program runs in the workspace (``working_directory``), or in the sub-directory named by the
  ``working_dir`` argument (confined like every tool path), with stdin from /dev/null and an
  environment built from scratch: ``PATH`` made of the absolute directories of the server's PATH
  that are not inside the workspace, ``HOME`` = the workspace, ``LANG``/``LC_ALL`` = C.UTF-8,
  ``TERM=dumb``, plus the tool's own ``env`` entries from the config (the operator's explicit
  choice; a ``PATH`` there replaces the server's, sanitized the same way). Nothing else from the
  server's environment gets through: API keys, tokens and database URLs stay out of reach of the
  commands, and so out of the model's view.
- It runs in a session and process group of its own. At the deadline (the ``timeout`` argument,
  capped by ``max_execution_time``), or when the call is cancelled, the whole group gets SIGKILL,
  along with every process of the session and every descendant that moved out of the group. When
  the program ends normally, whatever it left running is killed the same way: nothing outlives
  the call. Only a program that double-forks and calls setsid before the end can get away, which
  is why setsid and inline interpreter code are refused by the policy.
- stdout and stderr share one pipe, so the model sees them interleaved as they happened. The first
  ``max_output_size`` bytes are kept; the rest is read and dropped (the program is never stuck on a
  full pipe) and the result says how many bytes were cut.

The result is the output followed by ``[exit code: N]`` (N < 0: killed by signal -N). A non-zero
exit is an ordinary result, since the model needs the output to fix its command; a refusal or a
timeout is a ``ToolError``.

``enable_sandboxing: false`` is accepted for the Go original's sake, which required
``allowed_commands`` with it; Hector applies the policy either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from hector.config.schema import ToolConfig
from hector.errors import ConfigError, ToolError
from hector.tools import Tool, ToolContext
from hector.tools.command_policy import CommandPolicy, Plan
from hector.tools.registry import ToolEnv
from hector.tools.workspace import confine, workspace_root

log = logging.getLogger("hector.tools.command")

_READ_CHUNK = 64 * 1024
_GRACE = 1.0
"""Seconds to collect the last output once the processes are gone; a process that escaped the
kill and still holds the pipe does not hold the call."""


def build(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    if not cfg.enable_sandboxing and not cfg.allowed_commands:
        raise ConfigError(f"tool {name!r}: enable_sandboxing: false requires allowed_commands")
    root = workspace_root(cfg.working_directory, env.base_dir)
    path = sanitized_path(cfg.env.get("PATH") or os.environ.get("PATH") or os.defpath, root)
    environment = {"HOME": str(root), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb"}
    environment |= {**cfg.env, "PATH": path}
    return CommandTool(
        CommandPolicy(cfg, root, path),
        root=root,
        environment=environment,
        max_time=cfg.max_execution_time,
        max_output=cfg.max_output_size,
    )


def sanitized_path(raw: str, root: Path) -> str:
    """Keep absolute directories outside the workspace: an empty or relative entry would mean the
    working directory, and a workspace directory would let the agent plant programs under the
    names of allowed ones."""
    kept: list[str] = []
    for entry in raw.split(os.pathsep):
        outside = not Path(os.path.realpath(entry)).is_relative_to(root)
        if os.path.isabs(entry) and outside and entry not in kept:
            kept.append(entry)
    return os.pathsep.join(kept)


class CommandTool(Tool):
    """The tool the model calls; see the module docstring for what a call does."""

    def __init__(
        self,
        policy: CommandPolicy,
        *,
        root: Path,
        environment: dict[str, str],
        max_time: float,
        max_output: int,
    ) -> None:
        self.name = "execute_command"
        listed = sorted(policy.allowed)
        self.description = (
            "Run one program in the workspace and return its output and exit code. There is no "
            "shell: pipes, redirections, ;, &&, $(...) and globs are passed as plain text."
            + (f" Allowed programs: {', '.join(listed)}." if listed else "")
        )
        self.parameters = {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "Program and arguments, e.g. `ls -la src`."},
                "working_dir": {
                    "type": "string",
                    "description": "Directory to run in, relative to the workspace (default: the workspace).",
                },
                "timeout": {
                    "type": "number",
                    "description": f"Seconds before the command is killed (at most {max_time:g}).",
                },
            },
            "required": ["command"],
        }
        self._policy = policy
        self._root = root
        self._environment = environment
        self._max_time = max_time
        self._max_output = max_output

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        command = arguments.get("command")
        if not isinstance(command, str):
            raise ToolError("command is required")
        cwd = self._working_dir(arguments.get("working_dir"))
        timeout = self._timeout(arguments.get("timeout"))
        audit = {"component": "tool", "tool": self.name, "agent": ctx.agent_id, "user": ctx.user}
        try:
            plan = self._policy.vet(command, cwd)
        except ToolError as exc:
            log.warning("command refused", extra={**audit, "action": "refuse", "reason": exc.message})
            raise
        started = time.monotonic()
        code, output, dropped = await run(plan, cwd, self._environment, timeout, self._max_output)
        # The program name only: arguments may carry data that has no place in logs.
        log.info(
            "command finished",
            extra={
                **audit,
                "action": "execute",
                "program": plan.argv[0],
                "exit_code": code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        text = output.decode("utf-8", errors="replace")
        if text and not text.endswith("\n"):
            text += "\n"
        if dropped:
            text += f"[output truncated: {dropped} more bytes not shown, limit {self._max_output} bytes]\n"
        return f"{text}[exit code: {code}]"

    def _working_dir(self, value: Any) -> Path:
        if value is None or value == "":
            return self._root
        if not isinstance(value, str):
            raise ToolError("working_dir must be a string")
        path = confine(self._root, value, must_exist=True)
        if not path.is_dir():
            raise ToolError(f"not a directory: {value}")
        return path

    def _timeout(self, value: Any) -> float:
        if value is None:
            return self._max_time
        # `not value > 0` also refuses NaN.
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ToolError("timeout must be a positive number of seconds")
        return min(float(value), self._max_time)


async def run(
    plan: Plan, cwd: Path, environment: dict[str, str], time_limit: float, max_output: int
) -> tuple[int, bytes, int]:
    """Run *plan*; return ``(exit code, kept output, bytes dropped)`` or raise on timeout.

    The pipe is ours rather than asyncio's: asyncio's ``Process.wait()`` also waits for its pipes
    to close, which a background grandchild holding stdout would delay until the deadline.
    """
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *plan.argv,
            executable=plan.executable,
            cwd=cwd,
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        raise ToolError(f"could not start {plan.argv[0]}: {exc.strerror or exc}") from None
    finally:
        os.close(write_fd)
    output = _Output(max_output)
    # Wrapping an fd does no I/O; the file is closed below, once the reader task is over.
    pipe = open(read_fd, "rb", buffering=0)  # noqa: ASYNC230, SIM115
    reading = asyncio.create_task(output.drain(pipe))
    try:
        code: int | None = None
        try:
            async with asyncio.timeout(time_limit):
                code = await proc.wait()
        except TimeoutError:
            pass
        finally:
            # Runs on cancellation too: the group must not outlive the call in any case.
            kill_session(proc.pid)
        if code is None:
            await proc.wait()
            raise ToolError(f"command timed out after {time_limit:g}s and was killed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), _GRACE)
    finally:
        reading.cancel()
        try:
            await asyncio.wait([reading])
        finally:
            pipe.close()
    return code, bytes(output.kept), output.dropped


class _Output:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.dropped = 0

    async def drain(self, pipe: io.FileIO) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            while chunk := await reader.read(_READ_CHUNK):
                kept = chunk[: max(self.limit - len(self.kept), 0)]
                self.kept += kept
                self.dropped += len(chunk) - len(kept)
        finally:
            transport.close()


def kill_session(leader: int) -> None:
    """SIGKILL the process group of *leader*, every process of its session and every descendant.

    The group alone would miss children that called setpgid or setsid; the pids are collected
    before the first signal, while the parent links still show who belongs to the command.
    """
    doomed = _session_members(leader)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _session_members(leader: int) -> set[int]:
    children: dict[int, list[int]] = {}
    members: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        # Fields after the command name, which may itself contain spaces and parentheses.
        ppid, pgrp, session = (int(x) for x in stat[stat.rindex(")") + 2 :].split()[1:4])
        pid = int(entry.name)
        children.setdefault(ppid, []).append(pid)
        if leader in (pgrp, session):
            members.add(pid)
    stack = [leader, *members]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in members:
                members.add(child)
                stack.append(child)
    members.discard(os.getpid())
    return members
