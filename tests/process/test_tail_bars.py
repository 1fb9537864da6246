"""``oaws tail --bars`` against a real server replaying a recording as fast as it can: the
bars printed are final, one per bucket, and are the aggregator's bars of those ticks (the first
counting its volume from the first tick seen)."""

from __future__ import annotations

import subprocess

import orjson
import pytest

from oaws.bars.aggregator import bars_of
from tests.helpers import OAWS
from tests.recording.helpers import start, write_recording

pytestmark = pytest.mark.process


def tail_bars(cli_env, tmp_path, ticks: int, *args: str) -> tuple[subprocess.CompletedProcess[str], list]:
    """``oaws tail RELIANCE:NSE --bars 1m ARGS`` against a server replaying ``ticks`` ticks,
    5 s apart, as fast as it can; the command's result and the messages replayed."""
    path = tmp_path / "day.jsonl"
    written = write_recording(path, [("RELIANCE:NSE", 5.0 * n) for n in range(ticks)])
    proc, url = start(
        cli_env,
        tmp_path / "serve.log",
        "serve",
        "--replay",
        str(path),
        "--speed",
        "0",
        "--port",
        "0",
        "--bus",
        "tcp://127.0.0.1:*",
    )
    try:
        done = subprocess.run(
            [*OAWS, "tail", "RELIANCE:NSE", "--bars", "1m", *args, "--url", url, "--no-autostart"],
            env=cli_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
    assert done.returncode == 0, done.stderr
    return done, written


def test_tail_bars_prints_each_final_bar_once(cli_env, tmp_path):
    done, written = tail_bars(cli_env, tmp_path, 60, "--count", "3")  # five minutes
    got = [orjson.loads(line) for line in done.stdout.splitlines()]
    ticks = [m["data"] for m in written]
    expected = [b.as_dict() for b in bars_of(ticks, "1m")][:3]
    assert all(bar["final"] for bar in got) and len(got) == 3
    expected[0]["volume"] -= ticks[0]["volume"]  # the stream joined at the first tick: its day volume is the base
    assert got == expected


def test_live_prints_the_forming_bar_on_each_tick(cli_env, tmp_path):
    done, _ = tail_bars(cli_env, tmp_path, 30, "--live", "--count", "1")
    got = [orjson.loads(line) for line in done.stdout.splitlines()]
    forming, final = got[:-1], got[-1]
    assert forming and not any(b["final"] for b in forming) and final["final"]
    assert [b["ticks"] for b in forming if b["start"] == final["start"]] == list(range(1, final["ticks"] + 1))
