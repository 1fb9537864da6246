"""The recording format without sockets: lines, gzip, rotation, truncation, summaries."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from oaws.instruments import parse
from oaws.recording import (
    RecordingError,
    Writer,
    first_time_ns,
    instruments_in,
    make_header,
    market_lines,
    parse_duration,
    parse_rotate,
    parse_time,
    part_path,
    read_header,
    records,
    summarize,
    timeline,
)
from tests.recording.helpers import T0, lines, ticks_of, write_recording

THREE = [("RELIANCE:NSE", 0.0), ("INFY:NSE", 0.25), ("RELIANCE:NSE", 1.0), ("NIFTY:NSE_INDEX", 1.5)]


def test_a_recording_is_a_header_then_one_message_per_line(tmp_path):
    written = write_recording(tmp_path / "r.jsonl", THREE, gaps=[(0.5, 0.75)])
    got = lines(tmp_path / "r.jsonl")
    head = got[0]
    assert head["type"] == "header" and head["format"] == "oaws-recording" and head["version"] == 1
    assert head["source"] == "ws://test" and head["broker"] == "sim" and head["mode"] == 2
    assert head["instruments"] == ["RELIANCE:NSE", "INFY:NSE", "NIFTY:NSE_INDEX"] and head["started_ns"] == T0
    assert [g["type"] for g in got[1:]] == ["market_data", "market_data", "gap", "market_data", "market_data"]
    assert got[3] == {
        "type": "gap",
        "from_ns": T0 + 500_000_000,
        "to_ns": T0 + 750_000_000,
        "reason": "the connection dropped",
    }
    ticks = [g for g in got if g["type"] == "market_data"]
    assert [t["received_ns"] for t in ticks] == [T0, T0 + 250_000_000, T0 + 1_000_000_000, T0 + 1_500_000_000]
    assert [t["data"] for t in ticks] == [w["data"] for w in written]


def test_market_lines_turns_proxy_frames_into_lines_without_parsing():
    a = {
        "type": "market_data",
        "symbol": "A",
        "exchange": "NSE",
        "mode": 1,
        "data": {"ltp": 1.5, "note": '},{"type":"x'},
    }
    b = {"type": "market_data", "symbol": "B", "exchange": "NSE", "mode": 1, "data": {"ltp": 2.0}}
    batch = b"[" + orjson.dumps(a) + b"," + orjson.dumps(b) + b"]"
    out, n = market_lines(batch, 42)
    assert n == 2 and out.endswith(b"\n")
    assert [orjson.loads(x) for x in out.splitlines()] == [{**a, "received_ns": 42}, {**b, "received_ns": 42}]
    single, n = market_lines(orjson.dumps(b), 7)
    assert n == 1 and orjson.loads(single) == {**b, "received_ns": 7}
    # other shapes are left to a parser: replies, mixed arrays, another server's spacing
    assert market_lines(b'{"type":"subscribe","status":"success"}', 1) is None
    assert market_lines(b"[" + orjson.dumps(a) + b',{"type":"error"}]', 1) is None
    assert market_lines(b'{"type": "market_data", "symbol": "A"}', 1) is None


def test_gzip_round_trip_and_readers_look_at_the_bytes_not_the_name(tmp_path):
    written = write_recording(tmp_path / "r.jsonl.gz", THREE)
    raw = (tmp_path / "r.jsonl.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw).startswith(b'{"type":"header"')
    warnings: list[str] = []
    assert [t["data"] for t in ticks_of(tmp_path / "r.jsonl.gz")] == [w["data"] for w in written]
    (tmp_path / "renamed.jsonl").write_bytes(raw)
    got = [r["data"] for r in records(str(tmp_path / "renamed.jsonl"), warnings.append) if r["type"] == "market_data"]
    assert got == [w["data"] for w in written] and warnings == []


def test_a_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "r.jsonl"
    write_recording(path, THREE)
    data = path.read_bytes()
    path.write_bytes(data[:-40])  # a crash mid-write
    warnings: list[str] = []
    got = [r for r in records(str(path), warnings.append) if r["type"] == "market_data"]
    assert len(got) == 3 and [r["symbol"] for r in got] == ["RELIANCE", "INFY", "RELIANCE"]
    assert len(warnings) == 1 and "truncated last line" in warnings[0] and str(path) in warnings[0]


def test_a_cut_gzip_stream_yields_every_line_that_was_flushed(tmp_path):
    path = tmp_path / "r.jsonl.gz"
    writer = flushed_gzip(path, [range(0, 50)])
    size = path.stat().st_size
    writer.write_tick(tick(99), T0 + 99)  # buffered, never flushed
    writer.close()
    data = path.read_bytes()
    # a crash right after a flush leaves complete members: a whole file, nothing to warn about
    (tmp_path / "crashed.jsonl.gz").write_bytes(data[:size])
    warnings: list[str] = []
    got = [
        r["data"]["ltp"]
        for r in records(str(tmp_path / "crashed.jsonl.gz"), warnings.append)
        if r["type"] == "market_data"
    ]
    assert got == [float(i) for i in range(50)] and warnings == []
    # one in the middle of a write leaves a partial member: every line it holds, and a warning
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: size + (len(data) - size) // 2])
    got = [
        r["data"]["ltp"] for r in records(str(tmp_path / "cut.jsonl.gz"), warnings.append) if r["type"] == "market_data"
    ]
    assert got[:50] == [float(i) for i in range(50)] and len(got) <= 51
    assert len(warnings) >= 1 and "ends early" in warnings[0]
    assert len(ticks_of(path)) == 51  # closed properly: everything, no warning


def tick(i: int) -> dict:
    return {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "data": {"ltp": float(i)}}


def flushed_gzip(path, batches, notice=None) -> Writer:
    """A gzip writer that has written ``batches`` of ticks (numbered by their ``ltp``), flushing after each."""
    header = make_header("ws://test", [parse("RELIANCE:NSE")], 1, broker="sim")
    writer = Writer(str(path), header, **({"notice": notice} if notice else {}))
    for batch in batches:
        for i in batch:
            writer.write_tick(tick(i), T0 + i)
        writer.tick()
    return writer


def ltps(path, warnings=None) -> list[float]:
    return [
        r["data"]["ltp"]
        for r in records(str(path), (warnings.append if warnings is not None else lambda _: None))
        if r["type"] == "market_data"
    ]


def test_gzip_recording_survives_kill_and_append(tmp_path):
    # kill -9 after some flushes and in the middle of a write, then `record` to the same file again
    path = tmp_path / "r.jsonl.gz"
    first = flushed_gzip(path, [range(0, 40), range(40, 80)])
    flushed = path.stat().st_size
    first.write_tick(tick(80), T0 + 80)
    first.tick()
    data = path.read_bytes()
    path.write_bytes(data[: flushed + (len(data) - flushed) // 2])  # what the kill left: a partial last member
    notices: list[str] = []
    second = flushed_gzip(path, [range(100, 140)], notice=notices.append)
    second.close()
    warnings: list[str] = []
    got = ltps(path, warnings)
    assert got[:80] == [float(i) for i in range(80)] and got[-40:] == [float(i) for i in range(100, 140)]
    assert len(got) in (120, 121) and warnings == []
    assert [r["type"] for r in records(str(path))].count("header") == 2
    assert len(notices) == 1 and str(path) in notices[0] and "cut short" in notices[0]
    # concatenated complete members: standard gzip, as zcat reads it
    text = gzip.decompress(path.read_bytes())
    assert text.count(b'"type":"header"') == 2 and text.count(b'"type":"market_data"') == len(got)
    unzipped = subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=False)
    assert unzipped.returncode == 0 and unzipped.stdout == text


def test_a_recording_killed_by_an_older_oaws_and_appended_to_reads_every_session(tmp_path):
    # the old writer: one stream per session, sync-flushed, never closed by a killed recorder
    path = tmp_path / "r.jsonl.gz"
    buf = io.BytesIO()
    old = gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0)
    header = make_header("ws://test", [parse("RELIANCE:NSE")], 1, broker="sim")
    old.write(
        orjson.dumps(header) + b"\n" + b"".join(orjson.dumps({**tick(i), "received_ns": T0}) + b"\n" for i in range(30))
    )
    old.flush()
    path.write_bytes(buf.getvalue())
    with gzip.open(tmp_path / "next.gz", "wb") as later:  # the next session, as the old writer appended it
        later.write(orjson.dumps(header) + b"\n" + orjson.dumps({**tick(30), "received_ns": T0}) + b"\n")
    with open(path, "ab") as f:
        f.write((tmp_path / "next.gz").read_bytes())
    warnings: list[str] = []
    assert ltps(path, warnings) == [float(i) for i in range(31)]
    assert len(warnings) == 1 and "ended without closing" in warnings[0]


def test_a_flipped_byte_loses_only_the_damaged_member(tmp_path):
    path = tmp_path / "r.jsonl.gz"
    flushed_gzip(path, [range(k * 20, k * 20 + 20) for k in range(5)]).close()
    data = bytearray(path.read_bytes())
    assert len(data) < 1 << 20
    starts = [i for i in range(len(data)) if data[i : i + 3] == b"\x1f\x8b\x08"]
    assert len(starts) == 5  # one member per flush (the header went with the first batch)
    data[(starts[2] + starts[3]) // 2] ^= 0x10  # a byte inside the third member's compressed data
    path.write_bytes(bytes(data))
    warnings: list[str] = []
    got = ltps(path, warnings)
    assert got == [float(i) for i in list(range(40)) + list(range(60, 100))]
    assert len(warnings) == 1 and "skipped 1 damaged part" in warnings[0]
    s = summarize([str(path)])
    assert s.ticks == 80 and s.skipped.damaged_parts == 1 and s.skipped.damaged_bytes == starts[3] - starts[2]


def test_junk_and_damage_between_members_are_skipped_never_raised(tmp_path):
    path = tmp_path / "r.jsonl.gz"
    flushed_gzip(path, [range(0, 10), range(10, 20)]).close()
    good = path.read_bytes()
    second = good.find(b"\x1f\x8b\x08", 1)
    for damaged in (
        good[:second] + b"junk" * 100 + good[second:],  # junk between members
        good[:second] + good[second : second + 12] + good[second:],  # a member's first bytes, then a whole one
        good + b"\x1f\x8b",  # a member's first two bytes at the end
        good[:second] + os.urandom(3000) + good[second:],  # random bytes
    ):
        path.write_bytes(damaged)
        assert ltps(path) == [float(i) for i in range(20)]
    for _ in range(20):  # a gzip header and then nothing that inflates: read to the end, never a loop
        path.write_bytes(b"\x1f\x8b\x08" + os.urandom(3000))
        warnings: list[str] = []
        assert ltps(path, warnings) == [] and warnings  # damaged, or a stream that ends early


def test_a_line_nested_too_deep_to_serve_again_is_skipped_and_counted(tmp_path):
    # values nested 254-1,023 deep parse but cannot be written out again (#12): replay would die on them
    path = tmp_path / "r.jsonl"
    write_recording(path, THREE[:2])
    with open(path, "ab") as f:
        f.write(_deep_line(300) + b"\n")
    write_recording(path, THREE[2:])
    warnings: list[str] = []
    got = [r for r in records(str(path), warnings.append) if r["type"] == "market_data"]
    assert len(got) == 4 and warnings == [f"{path}: skipped 1 line nested more than 254 deep (too deep to serve again)"]
    assert summarize([str(path)]).skipped.too_deep == 1
    # a shallower line with many brackets is kept
    path.write_bytes(_wide_line(400) + b"\n")
    assert len(list(records(str(path)))) == 1


def _deep_line(depth: int) -> bytes:
    return (
        b'{"type":"market_data","symbol":"RELIANCE","exchange":"NSE","mode":1,"received_ns":1,"data":{"x":'
        + b"[" * depth
        + b"]" * depth
        + b"}}"
    )


def _wide_line(n: int) -> bytes:
    return (
        b'{"type":"market_data","symbol":"RELIANCE","exchange":"NSE","mode":1,"received_ns":1,"data":{"x":['
        + b",".join([b"[]"] * n)
        + b"]}}"
    )


def test_a_line_longer_than_a_mib_is_skipped_not_held(tmp_path):
    path = tmp_path / "r.jsonl"
    write_recording(path, THREE[:2])
    with open(path, "ab") as f:
        f.write(b'{"type":"market_data","pad":"' + b"x" * (3 << 20) + b'"}\n')
    write_recording(path, THREE[2:])
    warnings: list[str] = []
    assert len([r for r in records(str(path), warnings.append) if r["type"] == "market_data"]) == 4
    assert warnings == [f"{path}: skipped 1 line longer than 1 MiB"]


def test_the_writer_skips_a_tick_nested_too_deep_to_write(tmp_path):
    path = tmp_path / "r.jsonl"
    notices: list[str] = []
    writer = Writer(
        str(path), make_header("ws://test", [parse("RELIANCE:NSE")], 1, broker="sim"), notice=notices.append
    )
    writer.write_tick(tick(1), T0)
    writer.write_tick(orjson.loads(_deep_line(300)), T0)
    writer.write_tick(orjson.loads(_deep_line(500)), T0)
    writer.write_tick(tick(2), T0)
    writer.close()
    assert writer.ticks == 2 and writer.unwritable == 2 and len(notices) == 1
    assert [t["data"]["ltp"] for t in ticks_of(path)] == [1.0, 2.0]


def test_appending_after_a_crash_starts_a_new_line_and_a_new_session(tmp_path):
    path = tmp_path / "r.jsonl"
    write_recording(path, THREE[:2])
    path.write_bytes(path.read_bytes()[:-10])  # the first run crashed mid-line
    write_recording(path, THREE[2:])
    warnings: list[str] = []
    got = list(records(str(path), warnings.append))
    assert [r["type"] for r in got] == ["header", "market_data", "header", "market_data", "market_data"]
    assert len(warnings) == 1 and "1 line that is not JSON" in warnings[0]


def test_rotation_by_size_writes_numbered_parts_each_with_a_header(tmp_path):
    path = tmp_path / "ticks.jsonl.gz"
    (tmp_path / "ticks.0001.jsonl.gz").write_bytes(b"")  # an earlier run's part is never overwritten
    header = make_header("ws://test", [parse("RELIANCE:NSE")], 1, broker="sim")
    writer = Writer(str(path), header, rotate_bytes=20_000)
    for i in range(3000):
        writer.write_tick(
            {
                "type": "market_data",
                "symbol": "RELIANCE",
                "exchange": "NSE",
                "mode": 1,
                "data": {"ltp": float(i), "pad": os.urandom(40).hex()},
            },
            T0 + i,
        )
        if i % 500 == 0:
            writer.tick()
    writer.close()
    assert not path.exists() and (tmp_path / "ticks.0001.jsonl.gz").read_bytes() == b""
    parts = writer.files
    assert parts[0] == str(tmp_path / "ticks.0002.jsonl.gz") and len(parts) >= 3
    assert all(os.path.getsize(p) <= 20_000 for p in parts)
    assert parts == sorted(str(p) for p in tmp_path.glob("ticks.*.jsonl.gz") if p.name != "ticks.0001.jsonl.gz")
    seen = []
    for number, part in enumerate(parts, start=2):
        got = list(records(part))
        assert got[0]["type"] == "header" and got[0]["part"] == number
        seen += [r["data"]["ltp"] for r in got[1:]]
    assert seen == [float(i) for i in range(3000)]


def tick_line(i: int, pad: int = 0) -> dict:
    return {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "data": {"i": i, "p": "x" * pad}}


def frame(first: int, n: int) -> bytes:
    """A proxy frame of ``n`` ticks, as ``record`` writes it without parsing (``write_lines``)."""
    ticks = [dict(tick_line(i), data={"i": i, "pad": os.urandom(8).hex()}) for i in range(first, first + n)]
    return orjson.dumps(ticks)


@pytest.mark.parametrize("name", ["day.jsonl", "day.jsonl.gz"])
def test_size_rotation_keeps_every_part_within_the_size(tmp_path, name):
    # the limit holds line by line, between flushes: no `tick()` is called here at all
    header = make_header("ws://test", [parse("RELIANCE:NSE")], 1, broker="sim")
    writer = Writer(str(tmp_path / name), header, rotate_bytes=20_000)
    i = 0
    for _ in range(60):
        for _ in range(20):
            writer.write_tick(tick_line(i, pad=40 + i % 50), T0 + i)
            i += 1
        writer.write_lines(*market_lines(frame(i, 30), T0 + i))
        i += 30
    writer.write_gap(T0, T0 + 1, "the connection dropped")
    writer.close()
    sizes = [os.path.getsize(p) for p in writer.files]
    assert len(sizes) >= (3 if name.endswith(".gz") else 5) and max(sizes) <= 20_000
    if not name.endswith(".gz"):
        assert min(sizes[:-1]) > 19_000  # full parts, not a new part per flush
    got = [r for p in writer.files for r in records(p)]
    assert [r["data"]["i"] for r in got if r["type"] == "market_data"] == list(range(i)) and writer.ticks == i
    assert [r["type"] for r in got].count("header") == len(sizes) and got[-1]["type"] == "gap"


def test_a_line_larger_than_the_size_goes_alone_in_its_part(tmp_path):
    header = make_header("ws://test", [parse("RELIANCE:NSE")], 1, broker="sim")
    writer = Writer(str(tmp_path / "r.jsonl"), header, rotate_bytes=2_000)
    writer.write_tick(tick_line(0), T0)
    writer.write_tick(tick_line(1, pad=5_000), T0)
    writer.write_lines(*market_lines(frame(2, 3), T0))
    writer.write_lines(*market_lines(orjson.dumps([tick_line(5, pad=3_000), tick_line(6)]), T0))
    writer.close()
    parts = [[r["data"]["i"] for r in records(p) if r["type"] == "market_data"] for p in writer.files]
    assert parts == [[0], [1], [2, 3, 4], [5], [6]]
    sizes = [os.path.getsize(p) for p in writer.files]
    assert sizes[1] > 5_000 and sizes[3] > 3_000
    assert all(size <= 2_000 for k, size in enumerate(sizes) if k not in (1, 3))


def test_rotation_by_interval(tmp_path):
    now = [0.0]
    header = make_header("ws://test", [parse("RELIANCE:NSE")], 1, broker="sim")
    writer = Writer(str(tmp_path / "t.jsonl"), header, rotate_seconds=3600, clock=lambda: now[0])
    for minute in range(0, 150, 10):
        now[0] = minute * 60.0
        writer.write_tick(
            {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "data": {"minute": minute}}, T0
        )
        writer.tick()
    writer.close()
    assert [Path(p).name for p in writer.files] == ["t.0001.jsonl", "t.0002.jsonl", "t.0003.jsonl"]
    # lines go to the part open when they are written; the part closes at the first tick past the hour
    assert [r["data"]["minute"] for r in ticks_of(tmp_path / "t.0002.jsonl")] == [70, 80, 90, 100, 110, 120]


def test_part_names_keep_the_extensions():
    assert part_path("/a/ticks.jsonl.gz", 3) == "/a/ticks.0003.jsonl.gz"
    assert part_path("ticks.jsonl", 12) == "ticks.0012.jsonl"
    assert part_path("ticks", 1) == "ticks.0001"


def test_unwritable_paths_are_one_sentence(tmp_path):
    header = make_header("ws://test", [], 1)
    with pytest.raises(RecordingError, match=r"^cannot write .*missing/r.jsonl: No such file or directory$"):
        Writer(str(tmp_path / "missing" / "r.jsonl"), header)
    with pytest.raises(RecordingError, match="is a directory"):
        Writer(str(tmp_path), header)
    writer = Writer("/dev/full", header)
    writer.write_tick({"type": "market_data", "symbol": "A", "exchange": "NSE", "data": {}}, 1)
    with pytest.raises(RecordingError, match=r"^the disk is full: stopped writing /dev/full"):
        writer.tick()
    writer.abort()


def test_units_and_times():
    assert parse_rotate("100MB") == (100_000_000, None)
    assert parse_rotate("1GiB") == (2**30, None)
    assert parse_rotate("1h") == (None, 3600.0)
    assert parse_rotate("15m") == (None, 900.0)
    with pytest.raises(RecordingError, match="neither a size nor an interval"):
        parse_rotate("lots")
    assert parse_duration("90") == 90.0 and parse_duration("1.5h") == 5400.0
    with pytest.raises(RecordingError, match="not a duration"):
        parse_duration("-3s")
    day = int(datetime(2026, 1, 2, 15, 0).timestamp() * 1e9)
    assert parse_time("09:15", day) == int(datetime(2026, 1, 2, 9, 15).timestamp() * 1000)
    assert parse_time("09:15:30", day) == int(datetime(2026, 1, 2, 9, 15, 30).timestamp() * 1000)
    iso = "2026-01-02T09:15:00+05:30"
    assert parse_time(iso) == int(datetime.fromisoformat(iso).timestamp() * 1000)
    assert parse_time("1767325500000") == 1767325500000
    with pytest.raises(RecordingError, match="is not a time"):
        parse_time("after lunch")


def test_times_of_day_and_zoneless_datetimes_are_read_in_the_given_zone():
    ist = timezone(timedelta(hours=5, minutes=30))
    # 2026-01-02 03:00 UTC is 08:30 IST on the same day: 09:15 means 03:45 UTC
    day = int(datetime(2026, 1, 2, 3, 0, tzinfo=UTC).timestamp() * 1e9)
    opening = int(datetime(2026, 1, 2, 3, 45, tzinfo=UTC).timestamp() * 1000)
    assert parse_time("09:15", day, ist) == opening
    assert parse_time("2026-01-02T09:15", None, ist) == opening
    # an explicit offset wins over the zone
    assert parse_time("2026-01-02T09:15+00:00", None, ist) == opening + 5 * 3600_000 + 30 * 60_000
    # 2026-01-01 20:00 UTC is already 2 January in India: the day is the zone's day
    late = int(datetime(2026, 1, 1, 20, 0, tzinfo=UTC).timestamp() * 1e9)
    assert parse_time("09:15", late, ist) == opening


def test_summary_counts_instruments_span_gaps_and_peak(tmp_path):
    write_recording(tmp_path / "a.jsonl", THREE, gaps=[(0.5, 0.75)])
    write_recording(tmp_path / "b.jsonl.gz", [("TCS:NSE", 0.1), ("TCS:NSE", 0.2), ("TCS:NSE", 2.5)], mode=1)
    s = summarize([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl.gz")])
    assert s.ticks == 7 and len(s.headers) == 2
    assert s.instruments == {"RELIANCE:NSE": 2, "INFY:NSE": 1, "NIFTY:NSE_INDEX": 1, "TCS:NSE": 3}
    assert s.modes == {2: 4, 1: 3}
    assert s.first_ns == T0 and s.last_ns == T0 + 2_500_000_000 and s.span_s == 2.5
    assert s.gaps == [{"from_ns": T0 + 500_000_000, "to_ns": T0 + 750_000_000, "reason": "the connection dropped"}]
    # 7 ticks are 6 intervals over 2.5 s; the most within one second: the first of both files
    assert s.as_json()["ticks_per_s"] == 2.4 and s.peak_per_s == 4


def test_summary_counts_ticks_the_feeds_fseq_says_are_missing(tmp_path):
    path = tmp_path / "r.jsonl"
    writer = Writer(str(path), make_header("ws://test", [parse("RELIANCE:NSE")], 1, broker="sim"))
    for fseq, mode in [(1, 1), (2, 1), (5, 1), (6, 1), (1, 2), (3, 2), (1, 1), (2, 1)]:  # then the feed restarts
        writer.write_tick(
            {
                "type": "market_data",
                "symbol": "RELIANCE",
                "exchange": "NSE",
                "mode": mode,
                "data": {"fseq": fseq, "ltp": 1.0},
            },
            T0,
        )
    writer.close()
    assert summarize([str(path)]).missing == 2 + 1


def test_timeline_merges_files_by_receive_time_within_bounds(tmp_path):
    write_recording(tmp_path / "a.jsonl", [("RELIANCE:NSE", 0.0), ("RELIANCE:NSE", 2.0), ("RELIANCE:NSE", 4.0)])
    write_recording(tmp_path / "b.jsonl", [("TCS:NSE", 1.0), ("TCS:NSE", 3.0)])
    files = [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    merged = [(round((ns - T0) / 1e9, 1), r["symbol"]) for ns, r in timeline(files)]
    assert merged == [(0.0, "RELIANCE"), (1.0, "TCS"), (2.0, "RELIANCE"), (3.0, "TCS"), (4.0, "RELIANCE")]
    window = timeline(files, start_ms=T0 // 1_000_000 + 1000, end_ms=T0 // 1_000_000 + 3000)
    assert [round((ns - T0) / 1e9, 1) for ns, _ in window] == [1.0, 2.0, 3.0]
    assert instruments_in(files) == {parse("RELIANCE:NSE"), parse("TCS:NSE")}
    assert first_time_ns(files) == T0
    assert read_header(files[1])["instruments"] == ["TCS:NSE"]


def test_tail_json_output_without_a_header_still_reads(tmp_path):
    path = tmp_path / "tail.jsonl"
    path.write_bytes(
        b'{"type":"market_data","symbol":"SBIN","exchange":"NSE","mode":1,'
        b'"data":{"ltp":800.5,"timestamp":1767000000123}}\n'
    )
    assert instruments_in([str(path)]) == {parse("SBIN:NSE")}
    assert [ns for ns, _ in timeline([str(path)])] == [1767000000123 * 1_000_000]


def test_a_full_disk_leaves_no_partial_member_behind(tmp_path, monkeypatch):
    # a write cut short by a full disk: half of the member reaches the file, then ENOSPC
    import errno

    import oaws.recording.writer as writer_module

    path = tmp_path / "r.jsonl.gz"
    writer = flushed_gzip(path, [range(0, 20)])
    before = path.read_bytes()
    real_write = os.write

    def full(fd, data):
        if len(data) > 8:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_module.os, "write", full)
    for i in range(20, 40):
        writer.write_tick(tick(i), T0 + i)
    with pytest.raises(RecordingError, match=r"^the disk is full: stopped writing"):
        writer.tick()
    writer.abort()
    assert path.read_bytes() == before  # cut back to the last complete member
    warnings: list[str] = []
    assert ltps(path, warnings) == [float(i) for i in range(20)] and warnings == []
