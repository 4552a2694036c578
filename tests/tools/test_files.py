"""File tools: a traversal/injection battery over all five tools, then read_file, write_file and
grep_search behaviour, and one end-to-end run through a Hector server. (test_edit.py shares the
``world`` fixture and checks every tool's schema and argument errors.)"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState

from hector.config.schema import ToolConfig
from hector.errors import ToolError
from hector.tools import Tool, ToolContext
from hector.tools.registry import ToolEnv, build_tool
from tests.harness import running_hector
from tests.server.test_a2a import client_for, final_text, request

CTX = ToolContext(agent_id="a", context_id="c", task_id=None, user="u")
SECRET = "TOP-SECRET"


@dataclass
class World:
    """tmp/x/ws is the workspace; everything else under tmp/x must never change or leak."""

    base: Path
    top: Path
    ws: Path

    def tool(self, handler: str, **cfg: Any) -> Tool:
        config = ToolConfig(working_directory="x/ws", require_approval=False, **cfg)
        return build_tool(handler, config, ToolEnv(base_dir=self.base))

    def snapshot(self) -> dict[str, Any]:
        """Everything outside the workspace: files with contents, links with targets, dirs."""
        seen: dict[str, Any] = {}
        for dirpath, dirnames, filenames in os.walk(self.top):
            if Path(dirpath) == self.top:
                dirnames.remove("ws")
            for name in dirnames + filenames:
                path = Path(dirpath, name)
                rel = str(path.relative_to(self.top))
                if path.is_symlink():
                    seen[rel] = ("link", os.readlink(path))
                elif path.is_dir():
                    seen[rel] = ("dir",)
                else:
                    seen[rel] = ("file", path.read_bytes())
        return seen


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    top = tmp_path / "x"
    ws, outside, evil, home = top / "ws", top / "outside", top / "ws-evil", top / "home"
    for d in (ws / "sub", outside, evil, home):
        d.mkdir(parents=True)
    (outside / "secret.txt").write_text(f"{SECRET}\n")
    (evil / "f").write_text(f"{SECRET}\n")
    (home / ".bashrc").write_text(f"{SECRET}\n")
    monkeypatch.setenv("HOME", str(home))  # so a "~" that slipped through would land in the snapshot
    (ws / "ok.txt").write_text("hello\n")
    (ws / "link_dir").symlink_to(outside)
    (ws / "link_file").symlink_to(outside / "secret.txt")
    (ws / "evil").symlink_to(evil)
    (ws / "dangling").symlink_to(outside / "new.txt")
    (ws / "sub" / "up").symlink_to("../..")
    return World(tmp_path, top, ws)


async def run(tool: Tool, **arguments: Any) -> str:
    return await tool.call(arguments, CTX)


REFUSED = {
    "dotdot": "../x",
    "dotdot_nested": "a/../../x",
    "dotdot_deep": "../" * 12 + "etc/passwd",
    "dotdot_only": "..",
    "dot_dotdot": "./../x",
    "dotdot_inside": "sub/../ok.txt",
    "dotdot_newline": "a\n../../x",
    "etc_passwd": "/etc/passwd",
    "abs_outside": "{top}/outside/marker.txt",
    "abs_inside": "{top}/ws/inside.txt",
    "abs_sibling": "{top}/ws-evil/f",
    "double_slash": "//etc/passwd",
    "proc_root": "/proc/self/root/etc/passwd",
    "tilde_home": "~/.bashrc",
    "tilde_user": "~root/.bashrc",
    "backslash_dotdot": "..\\x",
    "backslash_deep": "..\\..\\outside\\marker.txt",
    "backslash_mixed": "a\\..\\..\\x",
    "unc": "\\\\server\\share\\x",
    "drive_backslash": "C:\\x",
    "drive_slash": "C:/x",
    "nul_middle": "ok.txt\x00../../x",
    "nul_end": "marker\x00",
    "link_dir_file": "link_dir/secret.txt",
    "link_dir_new": "link_dir/marker.txt",
    "link_dir_nested": "link_dir/sub/marker.txt",
    "link_file": "link_file",
    "dangling_link": "dangling",
    "sibling_dotdot": "../ws-evil/f",
    "sibling_link": "evil/f",
    "relative_up_link": "sub/up/outside/secret.txt",
    "long_name": "a" * 300,
    "long_path": "d/" * 600 + "x",
    "empty": "",
    "blank": "   ",
}
# Text that only looks like a traversal: a literal name that must stay inside the workspace.
LITERAL = {
    "pct_dotdot": "%2e%2e/x",
    "pct_slash": "%2e%2e%2fx",
    "pct_mixed": "..%2fx",
    "pct_double": "%252e%252e/x",
    "overlong_utf8": "%c0%ae%c0%ae/x",
    "four_dots": "....//x",
    "three_dots": ".../x",
    "fullwidth_dots": "\uff0e\uff0e/x",
    "one_dot_leaders": "\u2024\u2024/x",
    "dotdot_space": ".. /x",
    "dotdot_semicolon": "..;/x",
    "file_url": "file:///etc/passwd",
    "env_var": "$HOME/x",
}
OPERATIONS = ["read", "write", "replace", "grep", "patch_create", "patch_modify"]


async def attempt(world: World, operation: str, path: str) -> str:
    if operation == "read":
        return await run(world.tool("read_file"), path=path)
    if operation == "write":
        return await run(world.tool("write_file"), path=path, content="PWNED")
    if operation == "replace":
        return await run(world.tool("search_replace"), path=path, old_string="SECRET", new_string="PWNED")
    if operation == "grep":
        return await run(world.tool("grep_search"), pattern="SEC.ET|root:", path=path)
    if operation == "patch_create":
        patch = f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+PWNED\n"
    else:
        patch = f"--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{SECRET}\n+PWNED\n"
    return await run(world.tool("apply_patch"), patch=patch)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("path", list(REFUSED.values()), ids=list(REFUSED))
async def test_traversal_payloads_are_refused(world: World, operation: str, path: str) -> None:
    path = path.format(top=world.top)
    before = world.snapshot()
    with pytest.raises(ToolError) as raised:
        await attempt(world, operation, path)
    message = str(raised.value)
    assert SECRET not in message and "root:" not in message
    assert str(world.top) not in message  # no host paths in what the model sees
    assert world.snapshot() == before
    assert "PWNED" not in (world.ws / "ok.txt").read_text()


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("path", list(LITERAL.values()), ids=list(LITERAL))
async def test_lookalike_payloads_stay_literal_names_inside(world: World, operation: str, path: str) -> None:
    before = world.snapshot()
    try:
        result = await attempt(world, operation, path)
    except ToolError as exc:  # reading, replacing or grepping a name that does not exist
        assert operation not in ("write", "patch_create"), exc
        result = str(exc)
    assert SECRET not in result and "root:" not in result
    assert world.snapshot() == before
    if operation in ("write", "patch_create"):
        assert (world.ws / path).read_text().strip() == "PWNED"


# --- read_file -------------------------------------------------------------------------------------


async def test_read_numbers_lines_and_reads_ranges(world: World) -> None:
    (world.ws / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 21)))
    read = world.tool("read_file")
    full = await run(read, path="n.txt")
    assert full.splitlines()[0] == "    1| line 1" and full.splitlines()[-1] == "   20| line 20"
    assert await run(read, path="n.txt", start_line=12, end_line=13) == "   12| line 12\n   13| line 13"
    assert (await run(read, path="n.txt", start_line=19, end_line=99)).count("\n") == 1
    with pytest.raises(ToolError, match=r"start_line 21 is past the end of n\.txt, which has 20 lines"):
        await run(read, path="n.txt", start_line=21)
    with pytest.raises(ToolError, match="end_line 2 is before start_line 5"):
        await run(read, path="n.txt", start_line=5, end_line=2)


async def test_read_refuses_binary_large_and_special_files(world: World) -> None:
    (world.ws / "bin.dat").write_bytes(b"abc\x00def")
    (world.ws / "big.txt").write_text("x" * 101)
    (world.ws / "empty.txt").write_text("")
    os.mkfifo(world.ws / "pipe")
    read = world.tool("read_file", max_file_size=100)
    with pytest.raises(ToolError, match="binary"):
        await run(read, path="bin.dat")
    with pytest.raises(ToolError, match=r"file too large: 101 bytes \(max: 100\)"):
        await run(read, path="big.txt")
    with pytest.raises(ToolError, match="not a regular file"):  # and does not hang on the FIFO
        await run(read, path="pipe")
    with pytest.raises(ToolError, match="is a directory"):
        await run(read, path="sub")
    with pytest.raises(ToolError, match=r"not found: nope\.txt"):
        await run(read, path="nope.txt")
    assert await run(read, path="empty.txt") == "empty.txt is empty"


async def test_read_defaults_to_ten_mib_and_survives_bad_utf8(world: World) -> None:
    (world.ws / "latin1.txt").write_bytes("café\r\n".encode("latin-1"))
    (world.ws / "huge.txt").write_bytes(b"x" * (10 * 1024 * 1024 + 1))
    read = world.tool("read_file")
    assert await run(read, path="latin1.txt") == "    1| caf\ufffd"
    with pytest.raises(ToolError, match=r"\(max: 10485760\)"):
        await run(read, path="huge.txt")


async def test_read_follows_symlinks_that_stay_inside_and_cuts_long_output(world: World) -> None:
    (world.ws / "alias").symlink_to("ok.txt")
    (world.ws / "long.txt").write_text(("y" * 400 + "\n") * 100)
    (world.ws / "wide.txt").write_text("z" * 2000)
    read = world.tool("read_file")
    assert await run(read, path="alias") == "    1| hello"
    long = await run(read, path="long.txt")
    assert long.endswith("[cut at line 98 of 100; read on with start_line=99]") and len(long) < 41_000
    assert await run(read, path="wide.txt") == "    1| " + "z" * 500 + "… [2000 characters]"


# --- write_file ------------------------------------------------------------------------------------


async def test_write_creates_parents_and_reports(world: World) -> None:
    write = world.tool("write_file")
    assert await run(write, path="new/deep/f.txt", content="héllo") == "wrote 6 bytes to new/deep/f.txt"
    assert (world.ws / "new/deep/f.txt").read_text() == "héllo"
    assert await run(write, path="ok.txt", content="") == "wrote 0 bytes to ok.txt"
    assert (world.ws / "ok.txt").read_text() == ""


async def test_write_size_limits(world: World) -> None:
    with pytest.raises(ToolError, match=r"content too large: 11 bytes \(max: 10\)"):
        await run(world.tool("write_file", max_file_size=10), path="f.txt", content="x" * 11)
    default = world.tool("write_file")
    with pytest.raises(ToolError, match=r"content too large: 1048577 bytes \(max: 1048576\)"):
        await run(default, path="f.txt", content="x" * (1024 * 1024 + 1))
    await run(default, path="f.txt", content="x" * 1024 * 1024)
    assert not (world.ws / "f.txt.bak").exists()


async def test_write_extension_rules(world: World) -> None:
    both = world.tool("write_file", allowed_extensions=[".txt", ".exe"], denied_extensions=["exe"])
    with pytest.raises(ToolError, match="extension 'exe' is denied"):
        await run(both, path="tool.EXE", content="x")
    only_py = world.tool("write_file", allowed_extensions=[".py"])
    with pytest.raises(
        ToolError, match=r"this extension is not allowed; use one of allowed_extensions \['.py'\]"
    ):
        await run(only_py, path="notes.txt", content="x")
    with pytest.raises(ToolError, match="files without an extension are not allowed"):
        await run(only_py, path="Makefile", content="x")
    assert await run(only_py, path="Main.PY", content="x") == "wrote 1 bytes to Main.PY"
    extensionless = world.tool("write_file", allowed_extensions=["", ".md"])
    assert await run(extensionless, path="Makefile", content="all:") == "wrote 4 bytes to Makefile"
    with pytest.raises(ToolError, match="not allowed"):
        await run(extensionless, path="a.sh", content="x")
    assert await run(world.tool("write_file", denied_extensions=[".sh"]), path="README", content="x")


async def test_write_never_goes_through_a_symlink(world: World) -> None:
    (world.ws / "alias").symlink_to("ok.txt")
    with pytest.raises(ToolError, match="refusing to write through a symlink: alias"):
        await run(world.tool("write_file"), path="alias", content="changed")
    assert (world.ws / "ok.txt").read_text() == "hello\n"
    assert (world.ws / "alias").is_symlink()
    with pytest.raises(ToolError, match="is not a regular file"):
        await run(world.tool("write_file"), path="sub", content="x")


async def test_write_backup_only_when_configured(world: World) -> None:
    await run(world.tool("write_file"), path="ok.txt", content="v2")
    assert not (world.ws / "ok.txt.bak").exists()
    backup = world.tool("write_file", backup_on_overwrite=True)
    await run(backup, path="ok.txt", content="v3")
    assert (world.ws / "ok.txt.bak").read_text() == "v2"
    assert (world.ws / "ok.txt").read_text() == "v3"
    await run(backup, path="fresh.txt", content="new")
    assert not (world.ws / "fresh.txt.bak").exists()


async def test_write_is_atomic_and_keeps_permissions(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    target = world.ws / "ok.txt"
    target.chmod(0o600)

    def broken_replace(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", broken_replace)
        with pytest.raises(ToolError, match="no space left"):
            await run(world.tool("write_file"), path="ok.txt", content="half-written")
    assert target.read_text() == "hello\n"
    assert sorted(p.name for p in world.ws.iterdir() if "tmp" in p.name) == []
    await run(world.tool("write_file"), path="ok.txt", content="whole")
    assert target.read_text() == "whole" and target.stat().st_mode & 0o777 == 0o600


# --- grep_search -----------------------------------------------------------------------------------


@pytest.fixture
def tree(world: World) -> World:
    (world.ws / "src").mkdir()
    (world.ws / "src/a.py").write_text("import os\nTODO: first\nx = 1\n")
    (world.ws / "src/b.txt").write_text("todo: second\n")
    (world.ws / "src/bin.dat").write_bytes(b"TODO\x00")
    (world.ws / ".git").mkdir()
    (world.ws / ".git/config").write_text("TODO in git\n")
    (world.ws / "wide.txt").write_text("w" * 5000 + "TODO\n")
    return world


async def test_grep_results_case_and_include(tree: World) -> None:
    grep = tree.tool("grep_search")
    assert await run(grep, pattern="TODO") == (  # skipped: bin.dat and the two file symlinks
        "src/a.py:2: TODO: first\n[3 file(s) skipped: binary, larger than 10485760 bytes, or symlinks]"
    )
    found = await run(grep, pattern="todo", ignore_case=True, include="*.txt")
    assert found == "src/b.txt:1: todo: second"
    assert await run(grep, pattern="x = \\d", path="src/a.py") == "src/a.py:3: x = 1"
    assert (await run(grep, pattern="nothing here")).startswith("no matches\n[3 file(s) skipped")
    assert await run(grep, pattern="nothing here", path="src/a.py") == "no matches"
    with pytest.raises(ToolError, match=r"invalid regular expression: .*escape characters"):
        await run(grep, pattern="foo(")


async def test_grep_limits(tree: World) -> None:
    (tree.ws / "many.txt").write_text("hit\n" * 50)
    grep = tree.tool("grep_search", max_file_size=1000)
    limited = await run(grep, pattern="hit", max_results=3)
    assert limited.splitlines() == [
        "many.txt:1: hit",
        "many.txt:2: hit",
        "many.txt:3: hit",
        "[2 file(s) skipped: binary, larger than 1000 bytes, or symlinks]",
        "[stopped at 3 results; narrow the pattern, path or include]",
    ]
    assert "wide.txt" not in await run(tree.tool("grep_search"), pattern="TODO")  # beyond the scanned width
    assert len((await run(tree.tool("grep_search"), pattern="w+")).split("…")[0]) < 600


@pytest.mark.parametrize("pattern", ["(a+)+$", "(\\w*x)*y", "((ab)*c)+", "(?:a|b+){2,}", "(x[)]+)*"])
async def test_grep_refuses_nested_repeats(tree: World, pattern: str) -> None:
    with pytest.raises(ToolError, match="repeats a group that itself repeats"):
        await run(tree.tool("grep_search"), pattern=pattern)


@pytest.mark.parametrize("pattern", ["(ab)+", "(a+)?b", "(a{2})+", "[(a+)]+", "\\(a+\\)+", "(a+){3}"])
async def test_grep_allows_safe_repeats(tree: World, pattern: str) -> None:
    assert await run(tree.tool("grep_search"), pattern=pattern, path="src/a.py") == "no matches"


# --- end to end ------------------------------------------------------------------------------------


async def test_agent_writes_reads_and_gets_a_traversal_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (tmp_path / "secret.txt").write_text(SECRET)
    config = {
        "llms": {"t": {"type": "test"}},
        "tools": {
            "read_file": {"type": "function", "handler": "read_file", "working_directory": str(ws)},
            "write_file": {"handler": "write_file", "working_directory": "ws", "require_approval": False},
        },
        "agents": {"files": {"llm": "t", "tools": ["read_file", "write_file"]}},
    }
    async with running_hector(config, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(url, "files", binding="JSONRPC", version="1.0", streaming=False, http=http)

        async def ask(text: str, context: str) -> tuple[int, str]:
            state, answer, _ = final_text([e async for e in client.send_message(request(text, context))])
            return state, answer

        done = TaskState.TASK_STATE_COMPLETED
        wrote = await ask('use write_file {"path": "notes.txt", "content": "hi there"}', "c-1")
        assert wrote == (done, "Tool write_file returned: wrote 8 bytes to notes.txt")
        read = await ask('use read_file {"path": "notes.txt"}', "c-2")
        assert read == (done, "Tool read_file returned:     1| hi there")
        refused = await ask('use read_file {"path": "../secret.txt"}', "c-3")
        assert refused == (done, "Tool read_file returned: ERROR: directory traversal not allowed (..)")
        await client.close()
    assert (ws / "notes.txt").read_text() == "hi there"
