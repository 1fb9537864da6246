"""``oaws inspect``'s figures (``oaws.recording.summary``): rates and sessions."""

from __future__ import annotations

from datetime import datetime

import orjson

from oaws.recording import Writer, count_sessions, make_header, summarize
from oaws.recording.writer import stamp
from tests.recording.helpers import T0, lines, write_recording

RELIANCE = "RELIANCE:NSE"


def test_the_peak_is_never_below_the_average_of_a_short_recording(tmp_path):
    """Issue 19 #8: 20 ticks 0.1 s apart across three seconds of the clock were "10.5
    average, 10 peak": the average divided 20 ticks by 1.9 s (19 intervals), the peak
    counted whole seconds of the clock only."""
    path = tmp_path / "r.jsonl"
    write_recording(path, [(RELIANCE, 0.95 + i / 10) for i in range(20)])
    s = summarize([str(path)])
    assert s.ticks == 20 and round(s.span_s, 3) == 1.9
    assert round(s.per_s, 1) == 10.0 and s.peak_per_s == 10
    assert s.peak_per_s >= round(s.per_s, 1)  # as shown


def test_a_burst_sets_the_peak_wherever_it_falls_in_the_clocks_seconds(tmp_path):
    """A second's worth of ticks across a boundary of the clock's seconds is one peak, not two halves."""
    path = tmp_path / "r.jsonl"
    ticks = [(RELIANCE, 0.0), *((RELIANCE, 1.5 + i / 100) for i in range(50)), (RELIANCE, 4.0)]
    write_recording(path, ticks)
    s = summarize([str(path)])
    assert s.peak_per_s == 50 and s.as_json()["peak_ticks_per_s"] == 50
    assert s.peak_per_s >= round(s.per_s, 1)  # as shown


def test_a_recording_under_a_second_long_counts_its_ticks_as_its_rate(tmp_path):
    path = tmp_path / "r.jsonl"
    write_recording(path, [(RELIANCE, i / 100) for i in range(7)])
    s = summarize([str(path)])
    assert s.per_s == 7.0 and s.peak_per_s == 7


def _record(base, n: int, started_ns: int) -> list[str]:
    """A session of ``n`` ticks to ``base`` cut into parts of 1 kB; the parts written."""
    header = make_header("ws://test", [RELIANCE], 2, broker="sim", started_ns=started_ns)
    writer = Writer(str(base), header, rotate_bytes=1000)
    message = orjson.loads(orjson.dumps({"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 2}))
    for i in range(n):
        writer.write_tick({**message, "data": {"ltp": 1400 + i, "pad": "x" * 100}}, started_ns + i * 1_000_000)
    writer.close()
    return writer.files


def test_a_recording_rotated_into_parts_is_one_session(tmp_path):
    """Issue 19 #8: each part of a rotated recording starts with a header; they are one
    session (the parts share ``session_ns``), and a second run to the same name is another."""
    base = tmp_path / "day.jsonl"
    first = _record(base, 40, T0)
    assert len(first) >= 3
    assert {lines(p)[0]["session_ns"] for p in first} == {T0}
    assert summarize(first).sessions == 1 and summarize(first).as_json()["sessions"] == 1
    second = _record(base, 20, T0 + 10**12)  # continues at the next part number
    assert set(first).isdisjoint(second)
    assert summarize(first + second).sessions == 2


def test_parts_written_before_session_ns_are_one_session_by_their_part_numbers():
    """Recordings from an oaws before ``session_ns``: a part after the first whose previous
    part is there too continues its session; a part alone (the first few left out) starts one."""
    head = {"type": "header", "source": "ws://x", "mode": 2, "instruments": [RELIANCE]}
    parts = [dict(head, part=n) for n in (1, 2, 3)]
    assert count_sessions(parts) == 1
    assert count_sessions(parts[1:]) == 1  # parts 2 and 3 of one session
    assert count_sessions([*parts, dict(head, part=1)]) == 2  # a second session appended to the first file
    assert count_sessions([parts[0], dict(head, part=2, instruments=["TCS:NSE"])]) == 2


def test_a_headers_start_is_in_exchange_time_with_its_offset(monkeypatch, tmp_path):
    """Issue 19 #12: ``started`` was the machine's zone (UTC on most servers)."""
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("OAWS_TIME_ZONE", raising=False)
    header = make_header("ws://x", [], 2, started_ns=T0)
    assert header["started"] == "2025-12-29T14:50:00.000+05:30"  # T0 is 09:20 UTC
    assert datetime.fromisoformat(header["started"]).timestamp() == T0 / 1e9
    monkeypatch.setenv("OAWS_TIME_ZONE", "Europe/London")
    assert stamp(T0) == "2025-12-29T09:20:00.000+00:00"
