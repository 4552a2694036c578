"""Load benchmark: Hector serving a trivial `test`-model agent vs. a bare Starlette floor.

Prints figures; it is not a test. Usage: ``.venv/bin/python bench/load.py [--requests N]
[--concurrency C] [--duration-cap S] [--json]``. Exits 1 if any request failed.
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
import yaml

BENCH_DIR = Path(__file__).resolve().parent
PATH = "/agents/echo"
HEADERS = {"A2A-Version": "1.0", "Content-Type": "application/json"}
WARMUP = 50
FLOOR_CMD = [sys.executable, "-m", "uvicorn", "floor_app:app", "--log-level=warning", "--no-access-log"]
ROW = "{:<8}{:>9}{:>8}{:>9}{:>9}{:>9}{:>9}{:>13}"


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
    name: str, argv: list[str], port: int, ready_path: str, logs: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server subprocess, wait until it answers on ``ready_path``, always stop it."""
    log_file = logs / f"{name}.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=BENCH_DIR.parent)
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
        start = time.perf_counter()
        deadline = time.monotonic() + cap
        await asyncio.gather(*(worker(total, deadline, True) for _ in range(concurrency)))
        seconds = time.perf_counter() - start

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
        capped=done < total,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="hector-bench-") as tmp:
        tmp_dir = Path(tmp)
        config = tmp_dir / "hector.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "llms": {"t": {"type": "test"}},
                    "agents": {"echo": {"llm": "t"}},
                    "server": {"data_dir": f"{tmp}/data"},
                }
            )
        )
        hector = str(Path(sys.executable).parent / "hector")
        hector_port, floor_port = free_port(), free_port()
        targets = {
            "hector": (
                [hector, "serve", "--config", str(config), "--port", str(hector_port), "--log-level", "warn"],
                hector_port,
                "/health",
            ),
            "floor": (
                [*FLOOR_CMD, "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(floor_port)],
                floor_port,
                PATH,
            ),
        }
        for name, (argv, port, ready) in targets.items():
            with server(name, argv, port, ready, tmp_dir) as proc:
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
    print(ROW.format("target", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "peak RSS MB"))
    for name, f in report["targets"].items():
        figures = (f["rps"], f["p50_ms"], f["p90_ms"], f["p99_ms"], f["peak_rss_mb"])
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
