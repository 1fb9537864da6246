#!/usr/bin/env python3
"""Can ``oaws record`` keep up with the proxy? Publish N ticks/s, record them, count.

Three processes, as in production: a publisher that binds a ZeroMQ PUB socket and sends
LTP ticks at a fixed open-loop rate over --symbols instruments (each stamped with its
send time and a sequence number), ``oaws serve --role proxy`` reading that bus, and
``oaws record`` subscribed to every instrument. At the end the recording is read back:
every published tick must be in it, once, in order, and the lag between publishing and
receiving must stay flat (a recorder that falls behind shows a growing lag, then loss
when the proxy conflates it).

    python benchmarks/record_throughput.py --rate 50000 --symbols 500 --seconds 10 [--gzip]

Prints one JSON object. Figures come from a shared 2-core machine: compare runs side by side.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import orjson

OAWS = [sys.executable, "-m", "oaws"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def symbol(i: int) -> str:
    return f"SYM{i:04d}"


def publish(
    bus: str, n_symbols: int, rate: float, seconds: float, bound: mp.Event, go: mp.Event, sent_out: mp.Value
) -> None:
    import zmq

    sock = zmq.Context().socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 1_000_000)
    sock.bind(bus)
    bound.set()
    names = [symbol(i).encode() for i in range(n_symbols)]
    topics = [b"NSE_%s_LTP" % n for n in names]
    go.wait()
    t0 = time.perf_counter()
    sent = 0
    while True:
        now = time.perf_counter() - t0
        if now >= seconds:
            break
        due = min(int(now * rate), sent + 2000)
        while sent < due:
            i = sent % n_symbols
            ns = time.time_ns()
            ms = ns // 1_000_000
            payload = (
                b'{"symbol":"%s","exchange":"NSE","mode":1,"seq":%d,"ltp":%d.%02d,"ltt":%d,"timestamp":%d,'
                b'"bench_ns":%d}' % (names[i], sent, 1000 + sent % 977, sent % 100, ms, ms, ns)
            )
            sock.send_multipart([topics[i], payload])
            sent += 1
        time.sleep(0.0005)
    sent_out.value = sent
    time.sleep(0.5)
    sock.close(linger=2000)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_topics(url: str, n: int, timeout: float = 20.0) -> None:
    health = url.replace("ws://", "http://") + "/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=1) as r:
                if json.load(r).get("topics", 0) >= n:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the recorder did not subscribe in time")


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=50_000, help="ticks published per second")
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--gzip", action="store_true", help="record to FILE.gz")
    ap.add_argument("--keep", help="write the recording here instead of a temporary directory")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="oaws-bench-")
    env = dict(os.environ, OAWS_STATE_DIR=os.path.join(tmp, "state"), OAWS_CONFIG=os.path.join(tmp, "none.toml"))
    bus = f"tcp://127.0.0.1:{free_port()}"
    # The publisher binds first, so that the proxy's first connection attempt succeeds.
    sent = mp.Value("q", 0)
    bound, go = mp.Event(), mp.Event()
    pub = mp.Process(target=publish, args=(bus, a.symbols, a.rate, a.seconds, bound, go, sent))
    pub.start()
    bound.wait(10)
    server = subprocess.Popen(
        [*OAWS, "serve", "--role", "proxy", "--bus", bus, "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
    )
    url = None
    for line in server.stderr:  # type: ignore[union-attr]
        m = re.search(r"serving on (ws://\S+):", line)
        if m:
            url = m.group(1)
            break
    if url is None:
        raise SystemExit("the proxy did not start")
    path = a.keep or os.path.join(tmp, "bench.jsonl" + (".gz" if a.gzip else ""))
    instruments = [f"{symbol(i)}:NSE" for i in range(a.symbols)]
    recorder = subprocess.Popen(
        [*OAWS, "record", path, *instruments, "--mode", "ltp", "--url", url], env=env, stderr=subprocess.PIPE, text=True
    )
    wait_for_topics(url, a.symbols)
    time.sleep(0.5)  # the proxy's subscriptions travel to the publisher
    go.set()
    cpu0 = cpu_seconds(recorder.pid)
    proxy_cpu0 = cpu_seconds(server.pid)
    pub.join()
    time.sleep(1.0)  # let the last ticks arrive
    cpu1 = cpu_seconds(recorder.pid)
    proxy_cpu1 = cpu_seconds(server.pid)
    recorder.send_signal(signal.SIGTERM)
    _, err = recorder.communicate(timeout=30)
    server.send_signal(signal.SIGTERM)
    server.communicate(timeout=10)

    from oaws.recording import records

    seqs: list[int] = []
    lags: list[float] = []
    for record in records(path):
        if record.get("type") != "market_data":
            continue
        data = record["data"]
        seqs.append(data["seq"])
        lags.append((record["received_ns"] - data["bench_ns"]) / 1e6)
    in_order = all(b > a_ for a_, b in itertools.pairwise(seqs))
    lags.sort()
    elapsed = a.seconds
    out = {
        "rate": a.rate,
        "symbols": a.symbols,
        "seconds": a.seconds,
        "gzip": a.gzip,
        "published": sent.value,
        "published_per_s": round(sent.value / elapsed),
        "recorded": len(seqs),
        "missing": sent.value - len(set(seqs)),
        "duplicates": len(seqs) - len(set(seqs)),
        "in_order": in_order,
        "recorded_per_s": round(len(seqs) / elapsed),
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": lags[-1] if lags else None,
        "recorder_cpu": round((cpu1 - cpu0) / (elapsed + 1.4), 2),
        "proxy_cpu": round((proxy_cpu1 - proxy_cpu0) / (elapsed + 1.4), 2),
        "file_bytes": os.path.getsize(path),
        "recorder_exit": recorder.returncode,
    }
    for k in ("lag_p50_ms", "lag_p99_ms", "lag_max_ms"):
        if out[k] is not None:
            out[k] = round(out[k], 2)
    if err.strip():
        out["recorder_stderr"] = err.strip()[-500:]
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
