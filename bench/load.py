"""Load benchmark: Hector serving a trivial `test`-model agent vs. a bare Starlette floor.

Prints figures; it is not a test. Usage: ``.venv/bin/python bench/load.py [--requests N]
[--concurrency C] [--duration-cap S] [--postgres [ADMIN_URL]] [--json]``. Exits 1 if any request
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import create_async_engine

BENCH_DIR = Path(__file__).resolve().parent
PATH = "/agents/echo"
HEADERS = {"A2A-Version": "1.0", "Content-Type": "application/json"}
WARMUP = 50
FLOOR_CMD = [sys.executable, "-m", "uvicorn", "floor_app:app", "--log-level=warning", "--no-access-log"]
ROW = "{:<10}{:>9}{:>8}{:>9}{:>9}{:>9}{:>9}{:>13}{:>12}"
POSTGRES_ADMIN_URL = "postgresql+asyncpg://root@127.0.0.1:5432/test"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    peak_rss_mb: float
    cpu_ms_per_request: float  # the server process's CPU time (all threads) / measured requests
    capped: bool  # stopped by --duration-cap before sending all requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process *pid* so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def body(i: int) -> bytes:
    message = {
        "role": "ROLE_USER",
        "messageId": str(uuid.uuid4()),
        "contextId": str(uuid.uuid4()),
        "parts": [{"text": "hello"}],
    }
    return json.dumps(
        {"jsonrpc": "2.0", "id": i, "method": "SendMessage", "params": {"message": message}}
    ).encode()


def is_completed(response: httpx.Response, i: int) -> bool:
    if response.status_code != 200:
        return False
    data = response.json()
    task = data.get("result", {}).get("task", {})
    return bool(
        data.get("id") == i
        and task.get("status", {}).get("state") == "TASK_STATE_COMPLETED"
        and task.get("artifacts")
    )


@contextlib.contextmanager
def server(
    name: str, argv: list[str], port: int, ready_path: str, logs: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server subprocess, wait until it answers on ``ready_path``, always stop it."""
    log_file = logs / f"{name}.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=BENCH_DIR.parent,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n{log_file.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer in 30 s:\n{log_file.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                url = f"http://127.0.0.1:{port}{ready_path}"
                r = (
                    httpx.get(url)
                    if ready_path == "/health"
                    else httpx.post(url, content=body(0), headers=HEADERS)
                )
                if r.status_code == 200:
                    break
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, round(q / 100 * (len(sorted_ms) - 1)))]


async def load(base: str, total: int, concurrency: int, cap: float, pid: int) -> Figures:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, limits=limits, timeout=30) as client:
        latencies: list[float] = []
        errors = 0
        next_id = 0

        async def worker(n: int, deadline: float, record: bool) -> None:
            nonlocal errors, next_id
            while next_id < n and time.monotonic() < deadline:
                next_id += 1
                i = next_id
                start = time.perf_counter()
                try:
                    ok = is_completed(await client.post(PATH, content=body(i)), i)
                except (httpx.HTTPError, ValueError):
                    ok = False
                elapsed_ms = (time.perf_counter() - start) * 1000
                if record and ok:
                    latencies.append(elapsed_ms)
                elif record:
                    errors += 1

        await asyncio.gather(*(worker(WARMUP, time.monotonic() + cap, False) for _ in range(concurrency)))
        next_id = 0
        cpu_start = cpu_seconds(pid)
        start = time.perf_counter()
        deadline = time.monotonic() + cap
        await asyncio.gather(*(worker(total, deadline, True) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu_start

    done = len(latencies) + errors
    latencies.sort()
    return Figures(
        requests=done,
        errors=errors,
        seconds=round(seconds, 2),
        rps=round(done / seconds, 1),
        p50_ms=round(percentile(latencies, 50), 2),
        p90_ms=round(percentile(latencies, 90), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        peak_rss_mb=round(peak_rss_mb(pid), 1),
        cpu_ms_per_request=round(cpu * 1000 / done, 2) if done else float("nan"),
        capped=done < total,
    )


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for the run (created through *admin_url*), dropped after."""
    name = f"hector_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(sql))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def hector_config(tmp: Path, name: str, database_url: str | None) -> Path:
    """One agent ``echo`` on the offline test model; SQLite in a data dir unless *database_url*."""
    config: dict[str, Any] = {
        "llms": {"t": {"type": "test"}},
        "agents": {"echo": {"llm": "t"}},
        "server": {"data_dir": str(tmp / f"{name}-data")},
    }
    if database_url:
        config["session_stores"] = {"main": {"backend": "sql", "url": database_url}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Figures] = {}
    with contextlib.ExitStack() as stack:
        tmp_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hector-bench-")))
        hector = str(Path(sys.executable).parent / "hector")
        databases: dict[str, str | None] = {"hector": None}
        if args.postgres:
            databases["hector-pg"] = stack.enter_context(postgres_database(args.postgres))
        # --baseline: the same servers again from another source tree (e.g. `git archive` of an
        # older commit), first, so before and after are measured in one run.
        sources = {"before": {"PYTHONPATH": str(Path(args.baseline).resolve())}} if args.baseline else {}
        sources["hector"] = {}
        targets: dict[str, tuple[list[str], int, str, dict[str, str]]] = {}
        for source, env in sources.items():
            for name, database in databases.items():
                label = name.replace("hector", source)
                if database and source != "hector":  # each server gets a fresh database
                    database = stack.enter_context(postgres_database(args.postgres))
                port = free_port()
                config = hector_config(tmp_dir, label, database)
                argv = [hector, "serve", "--config", str(config), "--port", str(port), "--log-level", "warn"]
                targets[label] = (argv, port, "/health", env)
        port = free_port()
        floor_argv = [*FLOOR_CMD, "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port)]
        targets["floor"] = (floor_argv, port, PATH, {})
        for name, (argv, port, ready, env) in targets.items():
            with server(name, argv, port, ready, tmp_dir, env) as proc:
                base = f"http://127.0.0.1:{port}"
                results[name] = asyncio.run(
                    load(base, args.requests, args.concurrency, args.duration_cap, proc.pid)
                )

    hector_f, floor_f = results["hector"], results["floor"]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "concurrency": args.concurrency,
        "requests": args.requests,
        "duration_cap_s": args.duration_cap,
        "targets": {name: asdict(f) for name, f in results.items()},
        "ratio_hector_over_floor": {
            "rps": round(hector_f.rps / floor_f.rps, 3) if floor_f.rps else None,
            "p50": round(hector_f.p50_ms / floor_f.p50_ms, 2) if floor_f.p50_ms else None,
        },
    }


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{report['date']}  cpus={report['cpus']}  concurrency={report['concurrency']}  "
        f"requests={report['requests']}  cap={report['duration_cap_s']}s"
    )
    header = (
        "target",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "peak RSS MB",
        "CPU ms/req",
    )
    print(ROW.format(*header))
    for name, f in report["targets"].items():
        figures = (f["rps"], f["p50_ms"], f["p90_ms"], f["p99_ms"], f["peak_rss_mb"], f["cpu_ms_per_request"])
        row = ROW.format(name, f["requests"], f["errors"], *(f"{x:.1f}" for x in figures))
        print(row + ("  (hit duration cap)" if f["capped"] else ""))
    ratio = report["ratio_hector_over_floor"]
    print(f"hector/floor: req/s x{ratio['rps']}, p50 x{ratio['p50']}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="total measured requests per target")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (and connections)")
    parser.add_argument(
        "--duration-cap", type=float, default=60.0, help="stop sending after this many seconds"
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES_ADMIN_URL,
        metavar="ADMIN_URL",
        help="also load Hector on PostgreSQL: a fresh database, made and dropped through ADMIN_URL"
        f" (default {POSTGRES_ADMIN_URL})",
    )
    parser.add_argument(
        "--baseline",
        metavar="SRC_DIR",
        help="also load Hector from this source tree (its src/ folder, put first on PYTHONPATH)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()

    report = run(args)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    failed = {name: f["errors"] for name, f in report["targets"].items() if f["errors"]}
    if failed:
        print(f"\n!!! ERRORS: {failed} -- these figures are NOT valid !!!", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
