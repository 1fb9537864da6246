#!/usr/bin/env python3
"""Soak: a long run of `oaws serve --role proxy` under churning load, watched for growth.

Processes, all started and stopped here:
  * a publisher: a ZeroMQ XPUB socket on a free port (a feed as the proxy sees it) that
    publishes LTP ticks at a fixed total rate (--rate), round robin over the topics the
    proxy subscribed, each stamped with "fseq" (so the proxy counts what the bus dropped)
    and "bench_ns" (its send time, for latency);
  * `oaws serve --role proxy --bus <that address> --port 0` in a private state directory,
    without an API key;
  * --drivers processes sharing --clients asyncio WebSocket clients that read everything.
    Each holds --subs random instruments of --symbols, replaces a third of them every
    --churn-every seconds (unsubscribe, subscribe), and a --reconnect-share of them hang
    up after a random 20-90 s session and connect again with a fresh set;
  * in this process, one stalled client (a raw socket with a small receive buffer that
    completes the handshake, subscribes --stall-subs instruments and never reads) and one
    non-reading client (subscribes nothing, sends a ping request with a 4 kB timestamp
    and a WebSocket ping frame 20 times a second, never reads). When the proxy closes
    either, it is replaced, so that one of each is always there.

Every --sample-every seconds one JSON line goes to --out: the proxy's RSS, open fds,
threads and CPU (from /proc), its asyncio tasks, clients and topics (from /health), the
ticks published, expected and delivered to the reading clients in that window (expected:
the ticks published on each instrument while a client held it), the readers' latency
(receive time minus bench_ns; snapshots left out) and the drivers' own CPU (a driver near
1.0 is saturated, and the latency is then partly its own). At the end (or on Ctrl-C) it
prints the first minute against the last as a table and one JSON line.

    python benchmarks/soak.py --minutes 30 --out soak.jsonl
    python benchmarks/soak.py --minutes 3 --out /tmp/soak.jsonl --sample-every 5

Figures come from a shared 2-core machine: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import json
import math
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

OAWS = [sys.executable, "-m", "oaws"]
SNAPSHOT_END = ',"snapshot":true}'
STAMP = '"bench_ns":'
#: latency histogram: 50 buckets a decade from 0.01 ms to 100 s (each about 5 % wide)
PER_DECADE = 50
LOW_DECADE = -2
BUCKETS = PER_DECADE * 7 + 1


def symbol(i: int) -> str:
    return f"SYM{i:04d}"


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so that nothing outlives a
    soak killed with SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_start() -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when children stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, which fork copied
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


# The publisher ---------------------------------------------------------------------------
def publisher(conn: Any, n_symbols: int, rate: float, counts: Any, total: Any) -> None:
    child_start()
    import zmq

    sock = zmq.Context().socket(zmq.XPUB)
    sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind("tcp://127.0.0.1:*")
    conn.send(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    names = [symbol(i).encode() for i in range(n_symbols)]
    topics = [b"NSE_%s_LTP" % n for n in names]
    index = {t: i for i, t in enumerate(topics)}
    live: list[int] = []  # the topics subscribed, published round robin
    where: dict[int, int] = {}
    fseq = [0] * n_symbols
    t0 = time.perf_counter()
    sent = k = 0
    while True:
        while True:
            try:
                msg = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            i = index.get(msg[1:])
            if i is None:
                continue
            if msg[0] == 1 and i not in where:
                where[i] = len(live)
                live.append(i)
            elif msg[0] == 0 and i in where:
                j = where.pop(i)
                last = live.pop()
                if last != i:
                    live[j] = last
                    where[last] = j
        due = int((time.perf_counter() - t0) * rate)
        if not live:
            sent = due  # nothing wanted: nothing owed either
        else:
            for _ in range(min(due - sent, 2000)):
                k += 1
                if k >= len(live):
                    k = 0
                i = live[k]
                fseq[i] += 1
                ns = time.time_ns()
                ms = ns // 1_000_000
                n = fseq[i]
                sock.send_multipart(
                    [
                        topics[i],
                        b'{"fseq":%d,"symbol":"%s","exchange":"NSE","mode":1,"ltp":%d.%02d,"ltt":%d,'
                        b'"timestamp":%d,"volume":%d,"bench_ns":%d}'
                        % (n, names[i], 1000 + n % 977, n % 100, ms, ms, n, ns),
                    ]
                )
                counts[i] += 1
                sent += 1
                total.value += 1
            sent = max(sent, due - 2000)  # behind by more than a burst: the rate is what it achieves
        time.sleep(0.0005)


# The reading clients ----------------------------------------------------------------------
def subscribe_message(action: str, picks: list[int]) -> str:
    entries = [{"symbol": symbol(i), "exchange": "NSE", "mode": 1} for i in picks]
    return json.dumps({"action": action, "symbols": entries, "mode": 1})


class Driver:
    """Some of the reading clients, in one process with one event loop."""

    def __init__(self, conn: Any, url: str, ids: list[int], a: argparse.Namespace, counts: Any) -> None:
        self.conn = conn
        self.url = url
        self.ids = ids
        self.a = a
        self.counts = counts
        self.delivered = 0
        self.snapshots = 0
        self.hist = [0] * BUCKETS
        self.max_ms = 0.0
        self.expected_done = 0  # ticks owed on subscriptions that have ended
        self.held: dict[int, dict[int, int]] = {}  # client -> instrument -> publisher's count when subscribed
        self.connected = 0
        self.connects = 0
        self.hangups = 0  # planned
        self.failures = 0  # unplanned: refused, closed by the proxy, timed out
        self.last_failure = ""
        self.requests = 0
        self._expected_mark = 0

    def begin(self, cid: int, picks: list[int]) -> None:
        held, counts = self.held[cid], self.counts
        for i in picks:
            held[i] = counts[i]

    def end(self, cid: int, picks: list[int]) -> None:
        held, counts = self.held[cid], self.counts
        for i in picks:
            self.expected_done += counts[i] - held.pop(i)

    def expected(self) -> int:
        counts = self.counts
        return self.expected_done + sum(counts[i] - base for h in self.held.values() for i, base in h.items())

    def window(self) -> dict[str, Any]:
        """What happened since the last call, for the parent's sample."""
        expected = self.expected()
        out = {
            "delivered": self.delivered,
            "expected": expected - self._expected_mark,
            "snapshots": self.snapshots,
            "hist": self.hist,
            "max_ms": self.max_ms,
            "connected": self.connected,
            "connects": self.connects,
            "hangups": self.hangups,
            "failures": self.failures,
            "last_failure": self.last_failure,
            "requests": self.requests,
        }
        self._expected_mark = expected
        self.delivered = self.snapshots = self.connects = self.hangups = self.failures = self.requests = 0
        self.hist = [0] * BUCKETS
        self.max_ms = 0.0
        return out

    async def read(self, ws: Any) -> None:
        log10, now_ns = math.log10, time.time_ns
        low, top = LOW_DECADE, BUCKETS - 1
        async for msg in ws:
            if not msg.startswith('{"type":"market_data"'):
                continue
            if msg.endswith(SNAPSHOT_END):
                self.snapshots += 1
                continue
            j = msg.rfind(STAMP) + len(STAMP)
            ms = (now_ns() - int(msg[j : j + 19])) / 1e6
            self.delivered += 1
            b = int((log10(ms) - low) * PER_DECADE) if ms > 0.01 else 0
            self.hist[b if b < top else top] += 1
            if ms > self.max_ms:
                self.max_ms = ms

    async def client(self, cid: int) -> None:
        from websockets.asyncio.client import connect

        a = self.a
        rng = random.Random(a.seed * 100_003 + cid)
        churner = rng.random() < a.reconnect_share
        loop = asyncio.get_running_loop()
        await asyncio.sleep(rng.uniform(0, 3))  # do not all knock at once
        while True:
            self.held[cid] = {}
            planned = False
            try:
                async with connect(self.url, compression=None, max_size=None, open_timeout=15) as ws:
                    self.connects += 1
                    self.connected += 1
                    reader = asyncio.create_task(self.read(ws))
                    try:
                        picks = rng.sample(range(a.symbols), a.subs)
                        self.begin(cid, picks)
                        await ws.send(subscribe_message("subscribe", picks))
                        self.requests += 1
                        hang_up = loop.time() + (rng.uniform(20, 90) if churner else math.inf)
                        while True:
                            wait = min(rng.uniform(0.5, 1.5) * a.churn_every, hang_up - loop.time())
                            done, _ = await asyncio.wait([reader], timeout=max(wait, 0))
                            if done:
                                reader.result()
                                raise ConnectionError(f"closed by the proxy ({ws.close_code} {ws.close_reason})")
                            if loop.time() >= hang_up:
                                planned = True
                                break
                            held = self.held[cid]
                            drop = rng.sample(sorted(held), max(1, len(held) // 3))
                            fresh = [i for i in rng.sample(range(a.symbols), 3 * len(drop)) if i not in held]
                            fresh = fresh[: len(drop)]
                            self.end(cid, drop)
                            await ws.send(subscribe_message("unsubscribe", drop))
                            self.begin(cid, fresh)
                            await ws.send(subscribe_message("subscribe", fresh))
                            self.requests += 2
                    finally:
                        self.connected -= 1
                        reader.cancel()
                        with contextlib.suppress(BaseException):
                            await reader
            except Exception as exc:  # any failure is counted, then the client tries again
                if not planned:
                    self.failures += 1
                    self.last_failure = f"{type(exc).__name__}: {exc}"[:200]
            finally:
                self.end(cid, list(self.held[cid]))
                del self.held[cid]
            if planned:
                self.hangups += 1
            await asyncio.sleep(rng.uniform(0.2, 1.0))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        asked = asyncio.Event()

        def readable() -> None:
            try:
                self.conn.recv()
            except EOFError:
                loop.stop()
                return
            asked.set()

        loop.add_reader(self.conn.fileno(), readable)
        tasks = [asyncio.create_task(self.client(cid)) for cid in self.ids]
        try:
            while True:
                await asked.wait()
                asked.clear()
                self.conn.send(self.window())
        finally:
            for t in tasks:
                t.cancel()


def driver(conn: Any, url: str, ids: list[int], a: argparse.Namespace, counts: Any) -> None:
    child_start()
    with contextlib.suppress(RuntimeError):  # the loop stopped: the parent went away
        asyncio.run(Driver(conn, url, ids, a, counts).run())


# The two clients that do not read ------------------------------------------------------------
def ws_text(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    m = int.from_bytes(mask * ((n + 3) // 4), "big") >> (8 * ((-n) % 4))
    return head + mask + (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big")


def raw_client(port: int) -> socket.socket:
    """A socket that completed the WebSocket handshake and will read nothing more."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)  # one byte at a time: nothing past the response's head is read
        if not chunk:
            raise ConnectionError("handshake refused")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    s.setblocking(False)
    return s


def abort(s: socket.socket | None) -> None:
    """Close with a reset: nothing lingers on either side."""
    if s is None:
        return
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


class NonReaders:
    """The stalled client and the non-reading one, replaced whenever the proxy lets one go."""

    def __init__(self, port: int, a: argparse.Namespace) -> None:
        self.port = port
        self.a = a
        self.stalled: socket.socket | None = None
        self.idle: socket.socket | None = None
        self.stalled_replaced = self.idle_replaced = 0
        self.idle_sent = self.idle_blocked = 0
        self.stall_picks = random.Random(a.seed).sample(range(a.symbols), min(a.stall_subs, a.symbols))
        self._ping = ws_text(json.dumps({"action": "ping", "timestamp": "x" * a.idle_bytes}).encode())
        self._wsping = ws_text(b"p" * 125, opcode=0x9)
        self._pending = b""
        self.stalled_unsent: int | None = None
        self._stalled_since = 0.0
        #: seconds each stalled client lasted, from its connection to its absence from /health
        self.stalled_lives: list[float] = []
        self.idle_unsent: int | None = None
        self.failure = ""

    def _open(self, stalled: bool) -> socket.socket | None:
        try:
            s = raw_client(self.port)
            if stalled:
                s.setblocking(True)
                s.sendall(ws_text(subscribe_message("subscribe", self.stall_picks).encode()))
                s.setblocking(False)
            return s
        except OSError as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            return None

    @staticmethod
    def peer(s: socket.socket | None) -> str | None:
        """``s`` as the proxy names it (the ``peer`` of /health's ``per_client``)."""
        with contextlib.suppress(OSError, AttributeError):
            host, port = s.getsockname()[:2]  # type: ignore[union-attr]
            return f"{host}:{port}"
        return None

    def keep(self, per_client: list[dict[str, Any]] | None) -> None:
        """Replace a client the proxy no longer lists (``per_client`` of /health; None: not
        known) or that is gone for this side; note what the proxy holds unsent for each."""
        listed = {c.get("peer"): c for c in per_client or ()}

        def gone(s: socket.socket | None) -> bool:
            name = self.peer(s)
            return name is None or (per_client is not None and name not in listed)

        def unsent(s: socket.socket | None) -> int | None:
            return listed.get(self.peer(s), {}).get("send_buffer")

        if gone(self.stalled):
            if self.stalled is not None:
                self.stalled_replaced += 1
                self.stalled_lives.append(round(time.monotonic() - self._stalled_since, 1))
            abort(self.stalled)
            self.stalled = self._open(stalled=True)
            self._stalled_since = time.monotonic()
        if gone(self.idle):
            if self.idle is not None:
                self.idle_replaced += 1
            abort(self.idle)
            self._pending = b""
            self.idle = self._open(stalled=False)
        self.stalled_unsent, self.idle_unsent = unsent(self.stalled), unsent(self.idle)

    def nag(self) -> None:
        """The non-reading client's requests: a ping request and a WebSocket ping frame. A
        frame the socket took in part is finished first; while the socket takes nothing
        (the proxy stopped reading it), none is added."""
        if self.idle is None:
            return
        if not self._pending:
            self._pending = self._ping + self._wsping
        try:
            n = self.idle.send(self._pending)
        except BlockingIOError:
            self.idle_blocked += 1
            return
        except OSError:  # the proxy closed it: the next check opens another
            abort(self.idle)
            self.idle = None
            self.idle_replaced += 1
            return
        self._pending = self._pending[n:]
        if self._pending:
            self.idle_blocked += 1
        self.idle_sent += 1

    def close(self) -> None:
        abort(self.stalled)
        abort(self.idle)
        self.stalled = self.idle = None


# Figures ------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_figures(pid: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_mib"] = round(int(line.split()[1]) / 1024, 1)
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def health(url: str) -> tuple[dict[str, Any] | None, float]:
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url.replace("ws://", "http://") + "/health", timeout=10) as r:
            body = json.load(r)
    except (OSError, ValueError):
        body = None
    return body, round((time.perf_counter() - t) * 1000, 1)


def percentile(hist: list[int], p: float) -> float | None:
    n = sum(hist)
    if not n:
        return None
    want = p / 100 * n
    seen = 0
    for b, c in enumerate(hist):
        seen += c
        if seen >= want:
            return round(10 ** ((b + 0.5) / PER_DECADE + LOW_DECADE), 2)  # the bucket's middle
    return None


def merge(hists: list[list[int]]) -> list[int]:
    return [sum(col) for col in zip(*hists, strict=True)] if hists else [0] * BUCKETS


# The run ------------------------------------------------------------------------------------
def start_proxy(bus: str, tmp: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    env = dict(
        os.environ,
        OAWS_STATE_DIR=os.path.join(tmp, "state"),
        OAWS_CONFIG=os.path.join(tmp, "none.toml"),
        PYTHONWARNINGS="ignore",
    )
    env.pop("OAWS_API_KEY", None)
    log = Path(tmp, "proxy.log")
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [*OAWS, "serve", "--role", "proxy", "--bus", bus, "--port", "0"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # Ctrl-C reaches this script only; it stops the proxy itself
            preexec_fn=die_with_parent,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"serving on (ws://\S+):", log.read_text(errors="replace"))
        if m:
            return proc, m.group(1), log
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
    stop_proxy(proc)
    raise SystemExit("the proxy did not start: " + " / ".join(tail))


def stop_proxy(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def summarize(samples: list[dict[str, Any]], hists: list[list[int]], a: argparse.Namespace) -> dict[str, Any]:
    end = samples[-1]["t"]
    lives = [x for s in samples for x in s["stalled_lives_s"]]
    first = [k for k, s in enumerate(samples) if s["t"] <= 60]
    last = [k for k, s in enumerate(samples) if s["t"] > end - 60]

    def part(ks: list[int]) -> dict[str, Any]:
        rows = [samples[k] for k in ks]

        def mean(key: str) -> float | None:
            vals = [r[key] for r in rows if r.get(key) is not None]
            return round(sum(vals) / len(vals), 1) if vals else None

        hist = merge([hists[k] for k in ks])
        expected = sum(r["expected"] for r in rows)
        delivered = sum(r["delivered"] for r in rows)
        return {
            "from_s": max(0.0, round(rows[0]["t"] - rows[0]["window_s"], 1)),
            "to_s": rows[-1]["t"],
            "rss_mib": mean("rss_mib"),
            "fds": mean("fds"),
            "tasks": mean("tasks"),
            "threads": mean("threads"),
            "idle_unsent": mean("idle_unsent"),
            "p50_ms": percentile(hist, 50),
            "p99_ms": percentile(hist, 99),
            "delivered_ratio": round(delivered / expected, 4) if expected else None,
            "published_per_s": mean("published_per_s"),
            "proxy_cpu": mean("proxy_cpu"),
            "driver_cpu_max": max((max(r["driver_cpu"]) for r in rows), default=None),
        }

    return {
        "summary": True,
        "minutes": round(end / 60, 2),
        "rate": a.rate,
        "clients": a.clients,
        "drivers": a.drivers,
        "first_minute": part(first),
        "last_minute": part(last),
        "stalled_replaced": samples[-1]["stalled_replaced"],
        "stalled_life_s": round(sum(lives) / len(lives), 1) if lives else None,
        "idle_replaced": samples[-1]["idle_replaced"],
        "slow_closed": samples[-1].get("slow_closed"),
        "bus_missing": samples[-1].get("bus_missing"),
        "client_failures": sum(s["failures"] for s in samples),
        "client_hangups": sum(s["hangups"] for s in samples),
    }


def print_table(summary: dict[str, Any]) -> None:
    f, l_ = summary["first_minute"], summary["last_minute"]
    print()
    print(f"{'':<18} {'first minute':>13} {'last minute':>13} {'change':>9}")
    for key, label in (
        ("rss_mib", "proxy RSS MiB"),
        ("fds", "proxy fds"),
        ("tasks", "asyncio tasks"),
        ("threads", "threads"),
        ("idle_unsent", "non-reader unsent"),
        ("p50_ms", "readers p50 ms"),
        ("p99_ms", "readers p99 ms"),
        ("delivered_ratio", "delivered/expected"),
        ("published_per_s", "published/s"),
        ("proxy_cpu", "proxy CPU"),
        ("driver_cpu_max", "driver CPU (max)"),
    ):
        x, y = f.get(key), l_.get(key)
        change = f"{y - x:+.4g}" if isinstance(x, int | float) and isinstance(y, int | float) else ""
        print(f"{label:<18} {x if x is not None else '-':>13} {y if y is not None else '-':>13} {change:>9}")
    print(
        f"stalled client replaced {summary['stalled_replaced']}x (each lasted {summary['stalled_life_s']} s), "
        f"non-reading client {summary['idle_replaced']}x; "
        f"slow clients closed {summary['slow_closed']}; bus ticks missing {summary['bus_missing']}; "
        f"reader hang-ups {summary['client_hangups']}, failures {summary['client_failures']}"
    )


def run(a: argparse.Namespace, out: Any, samples: list[dict[str, Any]], hists: list[list[int]]) -> None:
    ctx = mp.get_context("fork")  # before any thread; the children import what they need
    tmp = tempfile.mkdtemp(prefix="oaws-soak-")
    children: list[mp.process.BaseProcess] = []
    conns: list[Any] = []
    proc = None
    nonreaders = None
    try:
        counts = ctx.RawArray("q", a.symbols)
        total = ctx.RawValue("q", 0)
        mine, theirs = ctx.Pipe()
        pub = ctx.Process(target=publisher, args=(theirs, a.symbols, a.rate, counts, total), daemon=True)
        pub.start()
        children.append(pub)
        if not mine.poll(15):
            raise SystemExit("the publisher did not bind its socket")
        bus = mine.recv()
        proc, url, log = start_proxy(bus, tmp)
        port = int(url.rsplit(":", 1)[1])
        print(f"soak: proxy pid {proc.pid} on {url}, bus {bus}, log {log}", file=sys.stderr)
        ids = list(range(a.clients))
        for d in range(a.drivers):
            mine_d, theirs_d = ctx.Pipe()
            p = ctx.Process(target=driver, args=(theirs_d, url, ids[d :: a.drivers], a, counts), daemon=True)
            p.start()
            children.append(p)
            conns.append(mine_d)
        nonreaders = NonReaders(port, a)
        nonreaders.keep(None)

        def collect() -> list[dict[str, Any]]:
            for c in conns:
                c.send(b"?")
            got = []
            for c, p in zip(conns, children[1:], strict=True):
                if not c.poll(30):
                    raise SystemExit(f"driver {p.pid} does not answer")
                got.append(c.recv())
            return got

        def tick_until(until: float) -> None:
            """Keep the non-readers going (a request pair every 50 ms, presence every 2 s)."""
            next_check = time.monotonic() + 2
            while (now := time.monotonic()) < until:
                nonreaders.nag()
                if now >= next_check:
                    body, _ = health(url)
                    nonreaders.keep(body.get("per_client") if body is not None else None)
                    next_check = now + 2
                if proc.poll() is not None:
                    raise SystemExit(f"the proxy exited with {proc.returncode}; see {log}")
                time.sleep(max(0.0, min(1 / a.idle_rate, until - time.monotonic())))

        print(f"soak: {a.clients} clients connecting, {a.warmup:g} s of warm-up", file=sys.stderr)
        tick_until(time.monotonic() + a.warmup)
        collect()  # the warm-up's figures are not kept
        t0 = time.monotonic()
        mark = (t0, total.value, cpu_seconds(proc.pid), [cpu_seconds(p.pid) for p in children])
        end = t0 + a.minutes * 60
        lives_seen = len(nonreaders.stalled_lives)
        k = 0
        while mark[0] < end - 0.5:
            k += 1
            tick_until(min(t0 + k * a.sample_every, end))
            windows = collect()
            now = time.monotonic()
            body, health_ms = health(url)
            cpus = [cpu_seconds(p.pid) for p in children]
            proxy_cpu = cpu_seconds(proc.pid)
            dt = now - mark[0]
            expected = sum(w["expected"] for w in windows)
            delivered = sum(w["delivered"] for w in windows)
            hist = merge([w["hist"] for w in windows])
            h = body or {}
            sample = {
                "t": round(now - t0, 1),
                "window_s": round(dt, 2),
                **proc_figures(proc.pid),
                "proxy_cpu": round((proxy_cpu - mark[2]) / dt, 2),
                "tasks": h.get("tasks"),
                "clients": h.get("clients"),
                "topics": h.get("topics"),
                "conflating": h.get("conflating"),
                "slow_closed": h.get("slow_closed"),
                "bus_gaps": h.get("bus_gaps"),
                "bus_missing": h.get("bus_missing"),
                "health_ms": health_ms if body is not None else None,
                "published_per_s": round((total.value - mark[1]) / dt),
                "expected": expected,
                "delivered": delivered,
                "expected_per_s": round(expected / dt),
                "delivered_per_s": round(delivered / dt),
                "delivered_ratio": round(delivered / expected, 4) if expected else None,
                "p50_ms": percentile(hist, 50),
                "p99_ms": percentile(hist, 99),
                "max_ms": round(max(w["max_ms"] for w in windows), 2),
                "snapshots": sum(w["snapshots"] for w in windows),
                "readers_connected": sum(w["connected"] for w in windows),
                "connects": sum(w["connects"] for w in windows),
                "hangups": sum(w["hangups"] for w in windows),
                "failures": sum(w["failures"] for w in windows),
                "last_failure": next((w["last_failure"] for w in windows if w["failures"]), None),
                "requests": sum(w["requests"] for w in windows),
                "stalled_replaced": nonreaders.stalled_replaced,
                "stalled_lives_s": nonreaders.stalled_lives[lives_seen:],  # those that ended in this window
                "idle_replaced": nonreaders.idle_replaced,
                "idle_blocked": nonreaders.idle_blocked,
                "stalled_peer": nonreaders.peer(nonreaders.stalled),
                "idle_peer": nonreaders.peer(nonreaders.idle),
                "stalled_unsent": nonreaders.stalled_unsent,
                "idle_unsent": nonreaders.idle_unsent,
                "nonreader_failure": nonreaders.failure or None,
                "publisher_cpu": round((cpus[0] - mark[3][0]) / dt, 2),
                "driver_cpu": [round((c - c0) / dt, 2) for c, c0 in zip(cpus[1:], mark[3][1:], strict=True)],
                "load1": round(os.getloadavg()[0], 2),
            }
            samples.append(sample)
            hists.append(hist)
            out.write(json.dumps(sample) + "\n")
            out.flush()
            print(
                f"soak: {sample['t']:>7.1f} s  rss {sample['rss_mib']} MiB  fds {sample['fds']}  "
                f"tasks {sample['tasks']}  p50 {sample['p50_ms']} p99 {sample['p99_ms']} ms  "
                f"delivered {sample['delivered_ratio']}  drivers cpu {sample['driver_cpu']}",
                file=sys.stderr,
            )
            mark = (now, total.value, proxy_cpu, cpus)
            lives_seen = len(nonreaders.stalled_lives)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleaning short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if nonreaders is not None:
            nonreaders.close()
        if proc is not None:
            stop_proxy(proc)
        for c in conns:
            c.close()
        for p in children:
            p.terminate()
        for p in children:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        if a.proxy_log and os.path.exists(os.path.join(tmp, "proxy.log")):
            shutil.copyfile(os.path.join(tmp, "proxy.log"), a.proxy_log)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=10_000, help="ticks published per second, in all")
    ap.add_argument("--clients", type=int, default=200, help="reading clients")
    ap.add_argument("--sample-every", type=float, default=10, help="seconds between two samples")
    ap.add_argument("--out", default="soak.jsonl", help="the samples, one JSON line each")
    ap.add_argument("--symbols", type=int, default=2000, help="instruments to choose from")
    ap.add_argument("--subs", type=int, default=10, help="instruments each reading client holds")
    ap.add_argument("--churn-every", type=float, default=5, help="seconds between a client's changes (jittered)")
    ap.add_argument("--reconnect-share", type=float, default=0.25, help="clients that hang up after 20-90 s")
    ap.add_argument("--stall-subs", type=int, default=1000, help="instruments the stalled client holds")
    ap.add_argument("--idle-rate", type=float, default=20, help="request pairs per second of the non-reading client")
    ap.add_argument("--idle-bytes", type=int, default=4096, help="size of the timestamp its pings carry")
    ap.add_argument("--drivers", type=int, default=2, help="processes sharing the reading clients")
    ap.add_argument("--warmup", type=float, default=10, help="seconds before the first window")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--proxy-log", help="keep the proxy's stderr here (it goes with its temporary directory)")
    a = ap.parse_args()
    for name in ("minutes", "rate", "sample_every", "churn_every", "idle_rate"):
        if not getattr(a, name) > 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    if a.clients < 1 or a.drivers < 1 or not 1 <= a.subs <= a.symbols // 2 or a.symbols > 10_000:
        ap.error("need --clients >= 1, --drivers >= 1, 1 <= --subs <= --symbols / 2, --symbols <= 10000")
    if sys.platform != "linux":
        ap.error("the soak reads /proc: Linux only")
    a.drivers = min(a.drivers, a.clients)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a background job inherits it ignored
        signal.signal(signum, stop)
    samples: list[dict[str, Any]] = []
    hists: list[list[int]] = []
    interrupted = False
    with open(a.out, "w") as out:
        try:
            run(a, out, samples, hists)
        except KeyboardInterrupt:
            interrupted = True
            print("soak: interrupted", file=sys.stderr)
        if samples:
            summary = summarize(samples, hists, a)
            summary["interrupted"] = interrupted
            out.write(json.dumps(summary) + "\n")
            print_table(summary)
            print(json.dumps(summary))
    if interrupted:
        sys.exit(130)


if __name__ == "__main__":
    main()
