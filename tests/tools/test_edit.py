"""search_replace and apply_patch: behaviour, all-or-nothing patches, and patch-header attacks;
plus the JSON schemas and argument errors of all five file tools."""

from __future__ import annotations

import os
from typing import Any

import pytest

from hector.errors import ToolError
from tests.tools.test_files import SECRET, World, run, world

__all__ = ["world"]  # the fixture, shared with test_files


def replace(w: World, **cfg: Any) -> Any:
    return w.tool("search_replace", **cfg)


def patcher(w: World, **cfg: Any) -> Any:
    return w.tool("apply_patch", **cfg)


def fail_replace_after(monkeypatch: pytest.MonkeyPatch, successes: int) -> None:
    """Make the os.replace after *successes* calls fail (disk full); later ones work again."""
    real = os.replace
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == successes + 1:
            raise OSError(28, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky)


def leftovers(w: World) -> list[str]:
    return sorted(str(p.relative_to(w.ws)) for p in w.ws.rglob("*hector-tmp"))


# --- all tools: schemas and arguments ---------------------------------------------------------


def test_every_tool_declares_a_json_schema(world: World) -> None:
    required = {
        "read_file": ["path"],
        "write_file": ["path", "content"],
        "grep_search": ["pattern"],
        "search_replace": ["path", "old_string", "new_string"],
        "apply_patch": ["patch"],
    }
    for name, fields in required.items():
        schema = world.tool(name).parameters
        assert schema["type"] == "object" and schema["required"] == fields
        assert schema["additionalProperties"] is False
        assert all("type" in p and "description" in p for p in schema["properties"].values())


async def test_bad_arguments_name_the_fix(world: World) -> None:
    read = world.tool("read_file")
    with pytest.raises(ToolError, match="missing required argument 'path'"):
        await run(read)
    with pytest.raises(ToolError, match=r"unknown argument\(s\) \['file'\]"):
        await run(read, path="ok.txt", file="x")
    with pytest.raises(ToolError, match="'path' must be of type string, got int"):
        await run(read, path=3)
    with pytest.raises(ToolError, match="'start_line' must be of type integer, got bool"):
        await run(read, path="ok.txt", start_line=True)
    assert await run(read, path="ok.txt", start_line=1.0, end_line=None) == "    1| hello"


# --- search_replace --------------------------------------------------------------------------------


async def test_replace_once_and_report(world: World) -> None:
    (world.ws / "c.py").write_text("a = 1\nb = 2\n")
    assert await run(replace(world), path="c.py", old_string="b = 2", new_string="b = 3") == (
        "replaced 1 occurrence in c.py"
    )
    assert (world.ws / "c.py").read_text() == "a = 1\nb = 3\n"


async def test_replace_counts(world: World) -> None:
    (world.ws / "c.txt").write_text("x x x\n")
    tool = replace(world)
    with pytest.raises(
        ToolError, match=r"old_string occurs 3 times in c\.txt; .* or set replace_all to true"
    ):
        await run(tool, path="c.txt", old_string="x", new_string="y")
    assert await run(tool, path="c.txt", old_string="x", new_string="y", replace_all=True) == (
        "replaced 3 occurrences in c.txt"
    )
    with pytest.raises(ToolError, match=r"old_string not found in c\.txt; read the file and copy"):
        await run(tool, path="c.txt", old_string="x", new_string="y")
    (world.ws / "many.txt").write_text("z" * 101)
    with pytest.raises(ToolError, match=r"occurs 101 times .* more than max_replacements \(100\)"):
        await run(tool, path="many.txt", old_string="z", new_string="q", replace_all=True)
    assert (world.ws / "many.txt").read_text() == "z" * 101
    with pytest.raises(ToolError, match="old_string is empty"):
        await run(tool, path="c.txt", old_string="", new_string="y")
    with pytest.raises(ToolError, match="are the same"):
        await run(tool, path="c.txt", old_string="y", new_string="y")


async def test_replace_keeps_windows_line_endings(world: World) -> None:
    (world.ws / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await run(replace(world), path="w.txt", old_string="one\ntwo", new_string="1\n2")
    assert (world.ws / "w.txt").read_bytes() == b"1\r\n2\r\nthree\r\n"


async def test_replace_refuses_binary_and_non_utf8(world: World) -> None:
    (world.ws / "b.dat").write_bytes(b"x\x00y")
    (world.ws / "l.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ToolError, match="binary"):
        await run(replace(world), path="b.dat", old_string="x", new_string="z")
    with pytest.raises(ToolError, match=r"not valid UTF-8 \(byte 3\)"):
        await run(replace(world), path="l.txt", old_string="caf", new_string="tea")


async def test_replace_is_atomic(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_replace_after(monkeypatch, 0)
    with pytest.raises(ToolError, match="no space left"):
        await run(replace(world), path="ok.txt", old_string="hello", new_string="bye")
    assert (world.ws / "ok.txt").read_text() == "hello\n"
    assert leftovers(world) == []


async def test_replace_backup_and_symlink_inside(world: World) -> None:
    (world.ws / "alias").symlink_to("ok.txt")
    await run(replace(world, backup_on_overwrite=True), path="alias", old_string="hello", new_string="bye")
    assert (world.ws / "alias").is_symlink()  # the link's target was edited, the link kept
    assert (world.ws / "ok.txt").read_text() == "bye\n"
    assert (world.ws / "ok.txt.bak").read_text() == "hello\n"


# --- apply_patch -----------------------------------------------------------------------------------

ORIGINAL = "".join(f"line {i}\n" for i in range(1, 21))


@pytest.fixture
def code(world: World) -> World:
    (world.ws / "a.txt").write_text(ORIGINAL)
    (world.ws / "b.txt").write_text("alpha\nbeta\n")
    return world


async def test_patch_modifies_with_context_and_several_hunks(code: World) -> None:
    patch = """diff --git a/a.txt b/a.txt
index 83db48f..bf269f4 100644
--- a/a.txt
+++ b/a.txt
@@ -2,3 +2,3 @@
 line 2
-line 3
+LINE 3
 line 4
@@ -17,3 +17,4 @@ some function
 line 17
 line 18
+inserted
 line 19
"""
    assert await run(patcher(code), patch=patch) == "applied patch: modified a.txt"
    expected = ORIGINAL.replace("line 3\n", "LINE 3\n").replace("line 19\n", "inserted\nline 19\n")
    assert (code.ws / "a.txt").read_text() == expected


async def test_patch_tolerates_wrong_line_numbers_counts_and_trailing_blanks(code: World) -> None:
    # Header says line 40 and wrong counts; a blank line stands for an empty context line.
    (code.ws / "c.txt").write_text("def f():\n\n    return 1   \n")
    patch = "--- c.txt\n+++ c.txt\n@@ -40,7 +40,9 @@\n def f():\n\n-    return 1\n+    return 2\n\n\n"
    assert await run(patcher(code), patch=patch) == "applied patch: modified c.txt"
    assert (code.ws / "c.txt").read_text() == "def f():\n\n    return 2\n"


async def test_patch_creates_and_deletes(code: World) -> None:
    create = "--- /dev/null\n+++ b/new/dir/n.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n"
    assert await run(patcher(code), patch=create) == "applied patch: created new/dir/n.txt"
    assert (code.ws / "new/dir/n.txt").read_text() == "one\ntwo\n"
    with pytest.raises(ToolError, match=r"already exists; to change it, use '--- a/new/dir/n\.txt'"):
        await run(patcher(code), patch=create)
    partial = "--- a/b.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-alpha\n"
    with pytest.raises(ToolError, match="must remove every line of the file"):
        await run(patcher(code), patch=partial)
    delete = "--- a/b.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-alpha\n-beta\n"
    assert await run(patcher(code), patch=delete) == "applied patch: deleted b.txt"
    assert not (code.ws / "b.txt").exists()


async def test_patch_no_newline_markers_and_crlf(code: World) -> None:
    (code.ws / "n.txt").write_text("a\nb")
    patch = "--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
    await run(patcher(code), patch=patch)
    assert (code.ws / "n.txt").read_text() == "a\nc\n"
    (code.ws / "w.txt").write_bytes(b"x\r\ny\r\n")
    patch = "--- a/w.txt\n+++ b/w.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n\\ No newline at end of file\n"
    await run(patcher(code), patch=patch)
    assert (code.ws / "w.txt").read_bytes() == b"x\r\nz"
    # Untouched lines keep their own endings; no marker keeps the missing final newline missing.
    (code.ws / "m.txt").write_bytes(b"a\r\nb\nc\nd")
    await run(patcher(code), patch="--- m.txt\n+++ m.txt\n@@ -3,2 +3,3 @@\n c\n-d\n+D\n+E\n")
    assert (code.ws / "m.txt").read_bytes() == b"a\r\nb\nc\nD\r\nE"


async def test_patch_mismatch_names_the_hunk_and_changes_nothing(code: World) -> None:
    patch = "--- a/a.txt\n+++ b/a.txt\n@@ -5,2 +5,2 @@\n line 5\n-line six\n+line 6!\n"
    with pytest.raises(ToolError) as raised:
        await run(patcher(code), patch=patch)
    assert str(raised.value).startswith(
        "a.txt: hunk 1 (patch line 3) does not apply: its context and removed lines are not in the "
        "file; at line 6 it expects 'line six' but finds 'line 6'. Read the file again"
    )
    assert (code.ws / "a.txt").read_text() == ORIGINAL


async def test_multi_file_patch_is_all_or_nothing(code: World) -> None:
    good = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-line 1\n+first\n"
    bad_hunk = "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-gamma\n+delta\n"
    traversal = "--- /dev/null\n+++ b/../outside/marker.txt\n@@ -0,0 +1 @@\n+PWNED\n"
    create = "--- /dev/null\n+++ b/fresh.txt\n@@ -0,0 +1 @@\n+fresh\n"
    before = code.snapshot()
    for second in (bad_hunk, traversal):
        with pytest.raises(ToolError):
            await run(patcher(code), patch=create + good + second)
        assert (code.ws / "a.txt").read_text() == ORIGINAL
        assert not (code.ws / "fresh.txt").exists()
    assert code.snapshot() == before
    result = await run(patcher(code), patch=create + good)
    assert result == "applied patch: created fresh.txt, modified a.txt"


async def test_patch_write_failure_restores_earlier_files(
    code: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch = (
        "--- /dev/null\n+++ b/fresh.txt\n@@ -0,0 +1 @@\n+fresh\n"
        "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-line 1\n+first\n"
        "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-alpha\n+ALPHA\n"
    )
    fail_replace_after(monkeypatch, 2)  # fresh.txt and a.txt are written, b.txt fails
    with pytest.raises(ToolError, match=r"writing the patch failed: no space left .*; no file was changed"):
        await run(patcher(code), patch=patch)
    monkeypatch.undo()
    assert (code.ws / "a.txt").read_text() == ORIGINAL
    assert (code.ws / "b.txt").read_text() == "alpha\nbeta\n"
    assert not (code.ws / "fresh.txt").exists()
    assert leftovers(code) == []


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("just some text\n", "no file headers found"),
        ("@@ -1 +1 @@\n-a\n+b\n", "a hunk with no file headers"),
        ("--- a/a.txt\n+++ b/a.txt\n@@ bad @@\n", "malformed hunk header"),
        ("--- a/a.txt\n+++ b/a.txt\n", "no @@ hunks for a.txt"),
        ("--- /dev/null\n+++ /dev/null\n", "both sides are /dev/null"),
        (
            "--- a/a.txt\n+++ b/c.txt\n@@ -1 +1 @@\n-line 1\n+x\n",
            "renaming 'a.txt' to 'c.txt' is not supported",
        ),
        ('--- "a/a.txt"\n+++ "b/a.txt"\n@@ -1 +1 @@\n-line 1\n+x\n', "quoted file names"),
        ("--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-line 1\n+x\n" * 2, "changes a.txt twice"),
    ],
)
async def test_patch_format_errors(code: World, patch: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        await run(patcher(code), patch=patch)
    assert (code.ws / "a.txt").read_text() == ORIGINAL


async def test_patch_prefixes_and_limits(code: World) -> None:
    (code.ws / "a").mkdir()
    (code.ws / "a/x.txt").write_text("in a\n")
    # No b/ on the other side: "a/" is a real directory, not git's prefix.
    plain = "--- a/x.txt\n+++ a/x.txt\n@@ -1 +1 @@\n-in a\n+still in a\n"
    assert await run(patcher(code), patch=plain) == "applied patch: modified a/x.txt"
    timestamps = "--- b.txt\t2024-01-01 10:00\n+++ b.txt\t2024-01-02 10:00\n@@ -2 +2 @@\n-beta\n+BETA\n"
    assert await run(patcher(code), patch=timestamps) == "applied patch: modified b.txt"
    with pytest.raises(ToolError, match=r"patch too large: 101 bytes \(max: 100\)"):
        await run(patcher(code, max_file_size=100), patch="x" * 101)
    with pytest.raises(ToolError, match=r"extension '\.txt' is denied"):
        await run(patcher(code, denied_extensions=[".txt"]), patch=timestamps)


async def test_patch_refuses_deleting_a_symlink_and_writing_through_one(code: World) -> None:
    (code.ws / "alias").symlink_to("b.txt")
    delete = "--- a/alias\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-alpha\n-beta\n"
    with pytest.raises(ToolError, match="symlink"):
        await run(patcher(code), patch=delete)
    assert (code.ws / "alias").is_symlink() and (code.ws / "b.txt").exists()


PATCH_ATTACKS = {
    "old_header_dotdot": "--- a/../../x\n+++ b/../../x\n@@ -1 +1 @@\n-a\n+PWNED\n",
    "new_header_absolute": "--- /dev/null\n+++ {top}/outside/marker.txt\n@@ -0,0 +1 @@\n+PWNED\n",
    "git_prefix_absolute": "--- /dev/null\n+++ b/{top}/outside/marker.txt\n@@ -0,0 +1 @@\n+PWNED\n",
    "no_prefix_dotdot": "--- /dev/null\n+++ ../outside/marker.txt\n@@ -0,0 +1 @@\n+PWNED\n",
    "timestamp_dotdot": "--- /dev/null\n+++ ../outside/m.txt\t2024-01-01\n@@ -0,0 +1 @@\n+PWNED\n",
    "rename_out": "--- a/ok.txt\n+++ b/../outside/marker.txt\n@@ -1 +1 @@\n-hello\n+PWNED\n",
    "create_in_linked_dir": "--- /dev/null\n+++ b/link_dir/new.txt\n@@ -0,0 +1 @@\n+PWNED\n",
    "modify_linked_file": f"--- a/link_file\n+++ b/link_file\n@@ -1 +1 @@\n-{SECRET}\n+PWNED\n",
    "delete_linked_file": f"--- a/link_file\n+++ /dev/null\n@@ -1 +0,0 @@\n-{SECRET}\n",
    "delete_in_sibling": f"--- a/../ws-evil/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-{SECRET}\n",
    "modify_via_sibling_link": f"--- a/evil/f\n+++ b/evil/f\n@@ -1 +1 @@\n-{SECRET}\n+PWNED\n",
    "second_file_escapes": (
        "--- a/ok.txt\n+++ b/ok.txt\n@@ -1 +1 @@\n-hello\n+PWNED\n"
        "--- /dev/null\n+++ b/sub/up/outside/marker.txt\n@@ -0,0 +1 @@\n+PWNED\n"
    ),
    "backslash_header": "--- /dev/null\n+++ b/..\\outside\\marker.txt\n@@ -0,0 +1 @@\n+PWNED\n",
    "nul_header": "--- /dev/null\n+++ b/x\x00/../../marker.txt\n@@ -0,0 +1 @@\n+PWNED\n",
}


@pytest.mark.parametrize("patch", list(PATCH_ATTACKS.values()), ids=list(PATCH_ATTACKS))
async def test_patch_header_attacks_are_refused(world: World, patch: str) -> None:
    before = world.snapshot()
    with pytest.raises(ToolError) as raised:
        await run(patcher(world), patch=patch.format(top=world.top))
    assert SECRET not in str(raised.value)
    assert world.snapshot() == before
    assert (world.ws / "ok.txt").read_text() == "hello\n"
    assert leftovers(world) == []


async def test_grep_of_the_whole_workspace_does_not_follow_symlinks_out(world: World) -> None:
    before = world.snapshot()
    result = await run(world.tool("grep_search"), pattern="SEC.ET", path=".")
    assert SECRET not in result
    assert "skipped" in result  # link_file, refused by O_NOFOLLOW
    assert world.snapshot() == before
