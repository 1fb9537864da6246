"""``oaws history`` as a user runs it, three real processes: ``oaws sim angel`` (Angel One's
REST API, its candle endpoint among them), ``oaws serve --broker angel`` with the simulator's
``export ANGEL_...`` lines as its environment, and ``oaws history`` through the proxy's
``GET /history``, the bus and ``AngelFeed.history`` (smartapi's getCandleData)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from oaws.config import IST
from tests.helpers import broker_sim, oaws, start_serve

OAWS = [sys.executable, "-m", "oaws"]
pytestmark = pytest.mark.process


@pytest.fixture
def angel(cli_env) -> Iterator[dict[str, str]]:
    """``oaws sim angel`` on free ports; the ANGEL_* variables it exports."""
    proc, exported = broker_sim(cli_env, "angel", "ANGEL_", "ANGEL_MASTER_URL", "--tick-interval", "0.1")
    try:
        yield exported
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def served(cli_env, angel, tmp_path) -> Iterator[tuple[dict[str, str], str]]:
    with urllib.request.urlopen(angel["ANGEL_MASTER_URL"], timeout=10) as response:
        master = tmp_path / "OpenAPIScripMaster.json"
        master.write_bytes(response.read())
    env = {**cli_env, **angel, "OAWS_INSTRUMENTS": str(master)}
    proc, url = start_serve(env, "--broker", "angel", "--port", "0", "--bus", "tcp://127.0.0.1:*")
    try:
        yield env, url
    finally:
        proc.terminate()
        proc.wait(10)


def history(env: dict[str, str], url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return oaws(env, "history", "RELIANCE:NSE", "--url", url, "--no-autostart", *args, timeout=60)


def test_the_candles_of_angel_sim_come_through_oaws_history(served):
    env, url = served
    done = history(env, url, "--interval", "1d", "--days", "10", "--json")
    assert done.returncode == 0, done.stderr
    bars = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(bars) >= 4  # ten calendar days hold at least four trading days
    starts = [datetime.fromisoformat(bar["start"]) for bar in bars]
    assert starts == sorted(starts) and all(s.utcoffset() == timedelta(hours=5, minutes=30) for s in starts)
    assert all(s.time() == datetime.min.time() for s in starts)  # day candles stamped at midnight IST
    for bar in bars:
        assert bar["instrument"] == "RELIANCE" and bar["exchange"] == "NSE"
        assert bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"]) <= bar["high"]
    assert all(s.weekday() < 5 for s in starts)


def test_five_minute_candles_as_csv_are_aligned_to_the_session_open(served):
    env, url = served
    done = history(env, url, "--interval", "5m", "--days", "5", "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert rows, done.stdout
    for row in rows:
        start = datetime.fromisoformat(row["start"]).astimezone(IST)
        minutes = start.hour * 60 + start.minute - (9 * 60 + 15)
        assert 0 <= minutes < 375 and minutes % 5 == 0, row["start"]
        assert int(row["volume"]) >= 0


def test_an_interval_angel_lacks_is_one_sentence(served):
    env, url = served
    done = history(env, url, "--interval", "1s")
    assert done.returncode == 2 and done.stderr.startswith("oaws: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
