"""Helpers for the recording tests: messages as the proxy sends them, recordings on disk,
and oaws processes on port 0."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from oaws.brokers.sim.feed import SimFeed, payload
from oaws.instruments import Instrument, parse
from oaws.recording import Writer, make_header

OAWS = [sys.executable, "-m", "oaws"]
T0 = 1_767_000_000_000_000_000  # a fixed receive time (ns) for recordings made in tests


def message(feed: SimFeed, instrument: Instrument, mode: int, now_ns: int) -> dict[str, Any]:
    """A ``market_data`` message as the proxy sends it, for the sim's next tick of ``instrument``."""
    state = feed.tick(instrument, now_ns=now_ns)
    return {
        "type": "market_data",
        "topic": instrument.dotted,
        "symbol": instrument.symbol,
        "exchange": instrument.exchange,
        "mode": mode,
        "broker": "sim",
        "data": orjson.loads(payload(state, mode)),
    }


def write_recording(
    path: Path | str, ticks: list[tuple[str, float]], mode: int = 2, seed: int = 1, gaps: list[tuple[float, float]] = ()
) -> list[dict[str, Any]]:
    """A recording of ``(instrument, seconds after T0)`` ticks; returns the messages written."""
    feed = SimFeed(seed=seed)
    instruments = list(dict.fromkeys(parse(name) for name, _ in ticks))
    writer = Writer(str(path), make_header("ws://test", instruments, mode, broker="sim", started_ns=T0))
    written = []
    pending_gaps = sorted(gaps)
    for name, at in ticks:
        while pending_gaps and pending_gaps[0][0] <= at:
            start, stop = pending_gaps.pop(0)
            writer.write_gap(T0 + int(start * 1e9), T0 + int(stop * 1e9), "the connection dropped")
        m = message(feed, parse(name), mode, T0 + int(at * 1e9))
        writer.write_tick(m, T0 + int(at * 1e9))
        written.append(m)
    writer.close()
    return written


def lines(path: Path | str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]


def ticks_of(path: Path | str) -> list[dict[str, Any]]:
    from oaws.recording import records

    return [r for r in records(str(path)) if r.get("type") == "market_data"]


def start(env: dict[str, str], log: Path, *args: str, timeout: float = 15) -> tuple[subprocess.Popen, str]:
    """An oaws server process (serve or replay) on port 0; returns it and its URL."""
    with open(log, "wb") as err:
        proc = subprocess.Popen([*OAWS, *args], env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"serving on (ws://\S+):", log.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not start: " + log.read_text(errors="replace"))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("timed out waiting")
