#!/usr/bin/env python3
"""Run the fan-out scenarios of the performance issue against oaws and the seed, side by side.

For each scenario it starts `oaws serve --role proxy` (and then the seed proxy) on the
same bus address, runs ../shared/bench/fanout.py against it, stops it, and prints one
JSON line per run and a table at the end. Run it on a quiet machine: the load
generator, the publisher and the proxy share the cores.

usage: python benchmarks/fanout_compare.py [--bench-dir ../shared/bench] [--only NAME ...]
       [--seconds 5] [--no-seed] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUS = "tcp://127.0.0.1:5599"

LIGHT = ["--clients", "20", "--subs", "20", "--symbols", "200"]
HEAVY = ["--clients", "50", "--subs", "100", "--symbols", "200"]
SCENARIOS: dict[str, list[str]] = {
    "light-2k": [*LIGHT, "--rate", "2000"],
    "light-10k": [*LIGHT, "--rate", "10000"],
    "light-40k": [*LIGHT, "--rate", "40000"],
    "heavy-4k": [*HEAVY, "--rate", "4000"],
    "heavy-12k-batch": [*HEAVY, "--rate", "12000", "--batch"],
    "stall-4k": [*LIGHT, "--rate", "4000", "--stall", "1"],
    "many-1000": ["--clients", "1000", "--subs", "5", "--symbols", "200", "--rate", "2000"],
    # overload: one tick per frame, past what one process delivers (compare --workers 1 and 2)
    "heavy-12k": [*HEAVY, "--rate", "12000"],
    "heavy-30k": [*HEAVY, "--rate", "30000"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"proxy exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("proxy did not start")


def run(kind: str, name: str, args: list[str], bench: Path, seconds: float, workers: int) -> dict:
    port = free_port()
    if kind == "oaws":
        cmd = [sys.executable, "-m", "oaws", "serve", "--role", "proxy", "--bus", BUS, "--port", str(port)]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        topics = "openalgo"
    else:
        cmd = [sys.executable, str(bench / "seed_proxy.py"), BUS, str(port)]
        topics = "seed"
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    try:
        wait_listening(port, proc)
        time.sleep(0.5)
        out = subprocess.run(
            [
                sys.executable,
                str(bench / "fanout.py"),
                "--url",
                f"ws://127.0.0.1:{port}",
                "--bus",
                BUS,
                "--topics",
                topics,
                "--pid",
                str(proc.pid),
                "--seconds",
                str(seconds),
                *args,
            ],
            capture_output=True,
            check=False,
            text=True,
            timeout=seconds + 120,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    if out.returncode != 0:
        return {"proxy": kind, "scenario": name, "error": out.stderr.strip().splitlines()[-1:]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"proxy": kind + (f"x{workers}" if kind == "oaws" and workers > 1 else ""), "scenario": name, **result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-dir", type=Path, default=HERE.parent.parent / "shared" / "bench")
    ap.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="scenarios to run (default: all)")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--no-seed", action="store_true", help="measure oaws only")
    ap.add_argument("--workers", type=int, default=1, help="oaws proxy processes (serve --workers)")
    a = ap.parse_args()
    if not (a.bench_dir / "fanout.py").exists():
        raise SystemExit(f"no fanout.py in {a.bench_dir}; pass --bench-dir")
    rows = []
    for name in a.only or list(SCENARIOS):
        for kind in ("oaws",) if a.no_seed else ("oaws", "seed"):
            r = run(kind, name, SCENARIOS[name], a.bench_dir, a.seconds, a.workers)
            print(json.dumps(r), flush=True)
            rows.append(r)
    print()
    print(
        f"{'scenario':<16} {'proxy':<7} {'delivered/s':>12} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'cpu':>5} {'rss MiB':>8}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['scenario']:<16} {r['proxy']:<7} error: {r['error']}")
            continue
        print(
            f"{r['scenario']:<16} {r['proxy']:<7} {r['delivered_per_s']:>12,} {r['delivered_ratio']:>6} "
            f"{r['p50_ms'] or 0:>8.2f} {r['p99_ms'] or 0:>8.2f} {r.get('proxy_cpu', 0):>5} "
            f"{r.get('proxy_rss_mib', 0):>8}"
        )


if __name__ == "__main__":
    main()
