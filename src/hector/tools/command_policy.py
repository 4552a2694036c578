"""What ``execute_command`` may run. Every decision is taken before anything starts.

Parsing: ``shlex.split`` (POSIX rules) makes the argv that is executed directly. There is never a
shell: ``;``, ``&&``, ``|``, ``$(…)``, backticks, ``>`` and globs are plain text for the program.
A newline, CR or NUL is refused (a payload must not read as one command to an approver and as
another to the sandbox), and so is a match of V2's ``DENIED_PATTERNS`` on the whole string.

The program: ``argv[0]`` is looked up on the sanitized PATH (relative to the working directory if
it has a ``/``). Two names are judged: the typed basename and the real path's basename (symlinks
followed: ``./x`` → ``/bin/rm``, ``python`` → ``python3.11``); the real path is what runs.

1. Deny list (``denied_commands``, default ``DEFAULT_DENIED``), case-insensitive, on both names and
   on the file itself (a copy or hard link of a denied program is that program)
   → ``command not allowed: X (in deny list)``. It wins over everything.
2. ``deny_by_default: true`` → the program must be in ``allowed_commands``; otherwise a non-empty
   ``allowed_commands`` must contain it → ``command not allowed: X (not in allow list)``. The real
   name counts, and the typed name when it was found on PATH (the operator's directories).
3. Escapes, refused even when the program is allowed: ``RUNNERS`` (xargs, setsid — which would
   leave the process group —, sudo, strace …); ``env`` with more than print-only options; wrappers
   (``_WRAPPERS``: nice, timeout, nohup, stdbuf, ionice, taskset, time) are judged again on the
   program they run, recursively, and ``time -o``, ``ionice -p``, ``taskset -p`` are refused;
   ``SHELLS`` unless named in ``allowed_commands``, and then never with ``-c``/``-C``/``--command``
   (an allowed busybox has its applet judged as a program); ``find`` -exec, -execdir, -ok, -okdir,
   -delete, -fprint*, -fls; ``git`` -c, --config-env, --exec-path, --upload-pack, --receive-pack,
   --exec, --template, --extcmd, ``ext::``, ``clone -u``, ``rebase -x``, ``difftool -x``, ``grep
   -O``, ``bisect run``, ``submodule foreach``, ``filter-branch``, ``send-email``, ``config``
   writes. Long options also count abbreviated, as getopt_long and git accept them.
4. File arguments, with ``deny_by_default: true`` only: each argument, the value after ``=`` and
   the value glued to a short option (``-o/x``), read as a path from the working directory, must
   resolve inside the workspace (no absolute paths, no ``..`` out, no symlinks out); with
   ``deny_by_default: false`` (a blacklist, which the seed docs call incomplete) they are free.

Inline code: an interpreter may run code given on the command line only if it is named in
``allowed_commands`` AND ``deny_by_default`` is false. Otherwise refused: python/pypy ``-c`` (also
clustered, ``-Ic``) before the script, or ``-m`` with one of ``CODE_MODULES`` (timeit, pdb …);
perl ``-e -E -M -m -d``, ruby ``-e -r``, php ``-r -R -B -E -d -z``, lua ``-e -l``, node ``-e -p -r
--eval --print --require --import --loader``, awk ``-l --load``, anywhere before ``--``, alone or
clustered (``-lne``), a script's own arguments included (conservative: these interpreters take
option values as separate words); awk arguments containing ``system(``, ``|``, ``>`` (redirection,
and comparisons too: write ``b < a``) or ``@load``. sed runs with GNU ``--sandbox`` added, so sed
itself rejects ``e``/``w``/``r`` commands and ``s///e``/``w`` (a sed without it fails, closed).
tclsh has no such option (its script is a file, or stdin: /dev/null). The same rule covers options
that run a command named in their value: tar ``-I -F --to-command --checkpoint-action
--info-script``, rsync ``-e --rsh --rsync-path``, zip ``-T`` (so ``-TT``) ``--unzip-command``.

Not covered: a script *file* is not inline code, so with a file-writing tool an allowed interpreter
runs what the agent writes; programs obeying workspace files (git hooks, Makefiles) are out of sight.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hector.config.schema import ToolConfig
from hector.errors import ToolError


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _patterns(text: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in text.split())


DEFAULT_DENIED = _words(
    "rm rmdir sudo su chmod chown dd mkfs fdisk mount umount kill killall pkill reboot shutdown passwd"
    " useradd userdel groupadd"
)
# V2's default patterns, matched in this order against the whole command string.
DENIED_PATTERNS = _patterns(r"""
    rm\s+(-rf|-fr|--recursive)  >\s*/dev/  :\(\)\s*\{\s*:\|:\s*&\s*\}\s*;  wget.*\|\s*sh  curl.*\|\s*sh
    eval\s*\$  \$\(.*\)\s*>\s*/  >\s*/etc/  chmod\s+777  --no-preserve-root
""")
RUNNERS = _words(
    "xargs setsid chroot strace ltrace gdb unshare nsenter flock watch script parallel sudo su doas"
    " pkexec runuser systemd-run start-stop-daemon daemonize"
)
SHELLS = _words("sh bash dash zsh ksh ksh93 mksh pdksh ash fish csh tcsh rbash yash posh busybox")
CODE_MODULES = _words("timeit pdb cProfile profile trace idlelib runpy code")
_FIND_ACTIONS = _words("-exec -execdir -ok -okdir -delete -fprint -fprint0 -fprintf -fls")
_ENV_PRINT_ONLY = _words("-i --ignore-environment - -0 --null")
_GIT_GLOBAL_VALUE = _words("-C --git-dir --work-tree --namespace --super-prefix")
_GIT_ANYWHERE = _words(
    "--upload-pack --receive-pack --exec --exec-path --extcmd --template --config-env --open-files-in-pager"
)
_GIT_SHORT = {"clone": "u", "rebase": "x", "difftool": "x", "grep": "O"}
_GIT_CONFIG_READS = _words("--get --get-all --get-regexp --list -l get list")
_PYTHON = re.compile(r"(python|pypy)[\d.]*")
_AWK = re.compile(r"[gmn]?awk|original-awk")
_AWK_CODE = re.compile(r"system\s*\(|[|>]|@load")
_SED = re.compile(r"g?sed")
_TAR = re.compile(r"g?tar|bsdtar")


@dataclass(frozen=True)
class _Wrapper:
    value_opts: str = ""
    refused_opts: str = ""
    operands: int = 0  # before the wrapped command: timeout's DURATION, taskset's MASK


_WRAPPERS = {
    "nice": _Wrapper("-n --adjustment"),
    "timeout": _Wrapper("-s --signal -k --kill-after", operands=1),
    "nohup": _Wrapper(),
    "stdbuf": _Wrapper("-i -o -e --input --output --error"),
    "ionice": _Wrapper("-c --class -n --classdata", "-p --pid -P --pgid -u --uid"),
    "taskset": _Wrapper(refused_opts="-p --pid", operands=1),
    "time": _Wrapper("-f --format", "-o --output"),
}


@dataclass(frozen=True)
class _Inline:
    short: str  # option letters that take code, or a library to load, from the command line
    glued: str = ""  # letters whose value is glued to them: the rest of that word is no options
    long: str = ""


_INLINE = (
    (re.compile(r"perl[\d.]*"), _Inline("eEMmd", "IxiCDFV")),
    (re.compile(r"j?ruby[\d.]*"), _Inline("er", "ICEFKTWxi")),
    (re.compile(r"php[\d.]*"), _Inline("rRBEdz", "cfFtS")),
    (re.compile(r"lua[\d.]*|luajit"), _Inline("el")),
    (re.compile(r"node(js)?|bun"), _Inline("epr", long="--eval --print --require --import --loader")),
    (_AWK, _Inline("l", "FvfeiEWdDLop", long="--load")),  # plus _AWK_CODE in any argument
    # Not interpreters, but the same thing: options that run a command given as their value.
    (_TAR, _Inline("IF", long="--to-command --checkpoint-action --info-script")),
    (re.compile(r"rsync"), _Inline("e", long="--rsh --rsync-path")),
    (re.compile(r"zip"), _Inline("T", long="--unzip-command")),
)


@dataclass(frozen=True)
class Plan:
    """A command that passed: the argv to run (possibly hardened) and the file to execute."""

    argv: list[str]
    executable: str


class CommandPolicy:
    """The rules of the module docstring, for one tool configuration."""

    def __init__(self, cfg: ToolConfig, root: Path, path: str) -> None:
        """*root* is the workspace; *path* the sanitized PATH that commands will run with."""
        self.root = root
        self.path = path
        self.allowed = frozenset(os.path.basename(c) for c in cfg.allowed_commands or ())
        denied = sorted(DEFAULT_DENIED) if cfg.denied_commands is None else cfg.denied_commands
        denied_names = [os.path.basename(c) for c in denied]
        self.denied = frozenset(n.casefold() for n in denied_names)
        self.deny_by_default = cfg.deny_by_default
        self._denied_files: list[tuple[str, str, os.stat_result]] = []
        for name in denied_names:
            found = shutil.which(name, path=path)
            real = os.path.realpath(found) if found else ""
            # Only a file that *is* the program: multi-call pkill → pgrep must leave pgrep usable.
            if found and os.path.basename(real) == name:
                self._denied_files.append((name, real, os.stat(real)))

    def vet(self, command: str, cwd: Path) -> Plan:
        if not command.strip():
            raise ToolError("command is required")
        if any(c in command for c in "\n\r\x00"):
            raise ToolError("command must be a single line without NUL bytes (one program per call)")
        for pattern in DENIED_PATTERNS:
            if pattern.search(command):
                raise ToolError(f"command matches denied pattern: {pattern.pattern}")
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ToolError(f"could not parse command: {exc}") from None
        if not argv[0]:
            raise ToolError("command is required")
        argv, executable = self._check(argv, cwd, 0)
        if self.deny_by_default:
            self._confine_arguments(argv[1:], cwd)
        return Plan(argv, executable)

    def _check(self, argv: Sequence[str], cwd: Path, depth: int) -> tuple[list[str], str]:
        if depth > 8:
            raise ToolError("too many nested wrapper commands")
        typed = argv[0]
        self._refuse_denied(os.path.basename(typed))  # before the lookup: installed or not
        if "/" in typed:
            candidate = os.path.join(cwd, typed)
            found = candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
        else:
            found = shutil.which(typed, path=self.path) if typed else None
        if found is None:
            raise ToolError(f"command not found: {typed}")
        real = os.path.realpath(found)
        names = (os.path.basename(typed), os.path.basename(real))
        self._check_lists(names, real, on_path="/" not in typed)
        return self._check_escapes(list(argv), names, cwd, depth), real

    def _check_lists(self, names: tuple[str, str], real: str | None, *, on_path: bool) -> None:
        typed, actual = names
        self._refuse_denied(actual)
        if real and (twin := self._denied_twin(real)):
            raise ToolError(f"command not allowed: {typed} (same program as {twin}, in deny list)")
        listed = actual in self.allowed or (on_path and typed in self.allowed)
        if (self.deny_by_default or self.allowed) and not listed:
            raise ToolError(f"command not allowed: {typed if on_path else actual} (not in allow list)")

    def _refuse_denied(self, name: str) -> None:
        if name.casefold() in self.denied:
            raise ToolError(f"command not allowed: {name} (in deny list)")

    def _denied_twin(self, real: str) -> str | None:
        try:
            st = os.stat(real)
        except OSError:
            return None
        for name, path, denied in self._denied_files:
            if (st.st_dev, st.st_ino) == (denied.st_dev, denied.st_ino):
                return name
            if st.st_size == denied.st_size and _digest(real) == _digest(path):
                return name
        return None

    def _check_escapes(self, argv: list[str], names: tuple[str, str], cwd: Path, depth: int) -> list[str]:
        label, args = names[0], argv[1:]
        explicit = any(n in self.allowed for n in names)
        if any(n in RUNNERS for n in names):
            raise ToolError(f"{label} is not allowed: it runs other programs out of the sandbox's sight")
        if "env" in names:  # it prints the environment, or runs a command in a changed one (LD_PRELOAD)
            if any(a not in _ENV_PRINT_ONLY and (a.startswith("-") or "=" not in a) for a in args):
                raise ToolError("env may only print the environment: run the program directly, without env")
        elif wrapper := next((_WRAPPERS[n] for n in names if n in _WRAPPERS), None):
            start = _wrapped_start(args, wrapper, label)
            if start is not None:
                inner, _ = self._check(args[start:], cwd, depth + 1)
                return [argv[0], *args[:start], *inner]
        elif any(n in SHELLS for n in names):
            if not explicit:
                raise ToolError(f"{label}: shells are not allowed; run the program directly")
            if "busybox" in names:
                return [argv[0], *self._busybox_applet(args, cwd, depth)]
            _check_shell(args, label)
        elif "find" in names:
            if action := next((a for a in args if a in _FIND_ACTIONS), None):
                raise ToolError(f"find {action} is not allowed: it runs programs or writes files")
        elif "git" in names:
            _check_git(args)
        elif not (explicit and not self.deny_by_default):
            return _check_inline(argv, names)
        return argv

    def _busybox_applet(self, args: list[str], cwd: Path, depth: int) -> list[str]:
        if not args or args[0] in ("--help", "--list"):
            return args
        if args[0].startswith("-"):
            raise ToolError(f"busybox {args[0]} is not allowed")
        applet = (args[0], args[0])
        self._check_lists(applet, None, on_path=True)
        return self._check_escapes(args, applet, cwd, depth + 1)

    def _confine_arguments(self, args: Sequence[str], cwd: Path) -> None:
        for arg in args:
            candidates = [arg, arg.partition("=")[2]]
            if arg.startswith("-") and not arg.startswith("--"):
                candidates.append(arg[2:])
            for text in candidates:
                if text and not Path(os.path.realpath(os.path.join(cwd, text))).is_relative_to(self.root):
                    raise ToolError(f"argument leaves the workspace: {arg}")


def _wrapped_start(args: Sequence[str], spec: _Wrapper, label: str) -> int | None:
    """Index of the wrapped command in *args*, or None when the wrapper runs nothing."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if refused := _option(arg, spec.refused_opts.split()):
            raise ToolError(f"{label} {refused} is not allowed")
        glued = "=" in arg if arg.startswith("--") else len(arg) > 2
        i += 2 if _option(arg, spec.value_opts.split()) and not glued else 1
    i += spec.operands
    return i if i < len(args) else None


def _check_shell(args: Sequence[str], label: str) -> None:
    for arg in args:
        if arg == "--" or not arg.startswith(("-", "+")):
            return
        if _option(arg, ("--command", "--init-command")) or (arg[1:2] != "-" and set(arg) & {"c", "C"}):
            raise ToolError(f"{label} {arg} is not allowed: run a script file, or the program directly")


def _check_git(args: Sequence[str]) -> None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i].startswith("-c"):
            raise ToolError(f"git {args[i]} is not allowed: configuration can run arbitrary programs")
        i += 2 if args[i] in _GIT_GLOBAL_VALUE else 1
    sub, rest = (args[i], args[i + 1 :]) if i < len(args) else ("", [])
    for arg in args:
        if option := _option(arg, _GIT_ANYWHERE) or ("ext::" if "ext::" in arg else None):
            raise ToolError(f"git {option} is not allowed: it can run arbitrary programs")
    letters = _GIT_SHORT.get(sub, "")
    for arg in rest:
        if letters and arg.startswith("-") and not arg.startswith("--") and letters in arg[1:]:
            raise ToolError(f"git {sub} -{letters} is not allowed: it runs arbitrary programs")
    if (
        sub in ("filter-branch", "send-email")
        or (sub == "bisect" and "run" in rest)
        or (sub == "submodule" and "foreach" in rest)
        or (sub == "config" and not set(rest[:1]) <= _GIT_CONFIG_READS)
    ):
        raise ToolError(f"git {sub} is not allowed here (it can run programs or change configuration)")


def _check_inline(argv: list[str], names: tuple[str, str]) -> list[str]:
    """Refuse inline code for a non-exempt interpreter; hardens sed. Returns the argv to run."""
    label, args = names[0], argv[1:]

    def matches(pattern: re.Pattern[str]) -> bool:
        return any(pattern.fullmatch(n) for n in names)

    if matches(_SED):
        return [argv[0], "--sandbox", *args]
    if matches(_TAR) and args and not args[0].startswith("-"):
        args = ["-" + args[0], *args[1:]]  # tar's old style: a first word of bundled options
    if matches(_PYTHON):
        flag = _python_inline(args)
    else:
        spec = next((s for pattern, s in _INLINE if matches(pattern)), None)
        flag = _flag_inline(args, spec) if spec else None
        if not flag and matches(_AWK):
            flag = next((found.group() for a in args if (found := _AWK_CODE.search(a))), None)
    if flag:
        raise ToolError(f"{label}: inline code ({flag}) is not allowed; run a script file instead")
    return argv


def _python_inline(args: Sequence[str]) -> str | None:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-", "--") or not arg.startswith("-"):
            return None
        if arg.startswith("--"):
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        for j, letter in enumerate(arg[1:], start=2):
            if letter == "c":
                return "-c"
            if letter == "m":
                module = arg[j:] or (args[i + 1] if i + 1 < len(args) else "")
                return f"-m {module}" if module.partition(".")[0] in CODE_MODULES else None
            if letter in "WX":
                i += 0 if arg[j:] else 1  # a value of its own word is skipped
                break
        i += 1
    return None


def _flag_inline(args: Sequence[str], spec: _Inline) -> str | None:
    for arg in args:
        if arg == "--":
            return None
        if arg.startswith("--"):
            if found := _option(arg, spec.long.split()):
                return found
            continue
        for letter in arg[1:] if arg.startswith("-") else "":
            if letter in spec.short:
                return f"-{letter}"
            if letter in spec.glued:
                break
    return None


def _option(arg: str, options: Iterable[str]) -> str | None:
    """The option of *options* that *arg* names. Long ones may be abbreviated (getopt_long and git
    take any unambiguous prefix), so any prefix of a listed long option counts."""
    if arg.startswith("--"):
        given = arg.partition("=")[0]
        return next((o for o in options if len(given) > 2 and o.startswith(given)), None)
    return arg[:2] if arg[:2] in options else None


def _digest(path: str) -> bytes:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest()
