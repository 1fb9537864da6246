"""Recordings as tables: ``oaws bars`` equals the aggregator on the same ticks, ``oaws export``'s
Parquet read back with pyarrow equals the JSON ticks field by field, and the notebook API."""

from __future__ import annotations

import subprocess

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from oaws.bars import COLUMNS, bars_of, from_recording
from oaws.recording import read
from tests.recording.helpers import OAWS, T0, ticks_of, write_recording

NAMES = ["RELIANCE:NSE", "NIFTY26DECFUT:NFO", "NIFTY:NSE_INDEX"]


def _ticks(n: int = 300, step: float = 1.7) -> list[tuple[str, float]]:
    """``n`` ticks over the instruments, ``step`` seconds apart: several minutes of bars."""
    return [(NAMES[i % len(NAMES)], i * step) for i in range(n)]


def oaws(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OAWS, *args], env=env, capture_output=True, text=True, timeout=60)


def _expected(messages, interval: str, keep=None) -> list[dict]:
    bars = bars_of([m["data"] for m in messages if keep is None or m["symbol"] in keep], interval)
    bars.sort(key=lambda b: (b.symbol, b.exchange, b.start_ms))
    return [{k: v for k, v in b.as_dict().items() if k in COLUMNS} for b in bars]


def test_oaws_bars_equals_the_aggregator_on_the_same_ticks(tmp_path, cli_env):
    path = tmp_path / "day.jsonl"
    messages = write_recording(path, _ticks(), mode=3)
    done = oaws(cli_env, "bars", str(path), "--interval", "1m", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert rows == _expected(messages, "1m")
    assert len(rows) > 3 * 5  # several bars of each instrument


def test_gzip_and_rotated_parts_and_a_filter(tmp_path, cli_env):
    ticks = _ticks()
    first = write_recording(tmp_path / "day.1.jsonl.gz", ticks[:150], mode=2, seed=3)
    # the second part goes on where the first stopped (its own sim, so its own prices)
    second = write_recording(tmp_path / "day.2.jsonl", [(n, t) for n, t in ticks[150:]], mode=2, seed=4)
    done = oaws(
        cli_env, "bars", str(tmp_path / "day.1.jsonl.gz"), str(tmp_path / "day.2.jsonl"), "RELIANCE:NSE", "-f", "jsonl"
    )
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert rows == _expected(first + second, "1m", keep={"RELIANCE"})
    assert {r["instrument"] for r in rows} == {"RELIANCE"}


def test_csv_and_parquet_hold_the_same_bars(tmp_path, cli_env):
    path = tmp_path / "day.jsonl"
    messages = write_recording(path, _ticks(), mode=3)
    expected = _expected(messages, "5m")
    done = oaws(cli_env, "bars", str(path), "-i", "5m")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    first = expected[0]
    assert lines[1].split(",") == [str(first[c]) if first[c] is not None else "" for c in COLUMNS]
    assert len(lines) == len(expected) + 1
    out = tmp_path / "bars.parquet"
    done = oaws(cli_env, "bars", str(path), "-i", "5m", "-o", str(out))
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert table.schema.field("start").type == pa.timestamp("ms", tz="Asia/Kolkata")
    assert table.schema.field("volume").type == pa.int64()
    assert table.column("close").to_pylist() == [b["close"] for b in expected]
    assert table.column("volume").to_pylist() == [b["volume"] for b in expected]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # no temporary file left


def test_export_writes_the_json_ticks_field_by_field(tmp_path, cli_env):
    path = tmp_path / "day.jsonl.gz"
    write_recording(path, _ticks(90), mode=3)
    written = ticks_of(path)
    out = tmp_path / "ticks.parquet"
    done = oaws(cli_env, "export", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types["symbol"] == pa.dictionary(pa.int32(), pa.string())
    assert types["mode"] == pa.int8()
    assert types["ltt"] == types["timestamp"] == pa.timestamp("ms", tz="Asia/Kolkata")
    assert types["received"] == pa.timestamp("ns", tz="Asia/Kolkata")
    assert types["ltp"] == types["week_52_high"] == pa.float64()
    assert types["volume"] == types["oi"] == pa.int64()
    level = pa.struct([("price", pa.float64()), ("quantity", pa.int64()), ("orders", pa.int64())])
    assert types["depth_buy"] == types["depth_sell"] == pa.list_(level)
    rows = table.to_pylist()
    assert len(rows) == len(written) == 90
    for row, message in zip(rows, written, strict=True):
        data = message["data"]
        assert (row["symbol"], row["exchange"], row["mode"]) == (message["symbol"], message["exchange"], 3)
        assert int(row["ltt"].timestamp() * 1000) == data["ltt"]
        assert int(row["timestamp"].timestamp() * 1000) == data["timestamp"]
        assert table.column("received").cast(pa.int64()).to_pylist()[rows.index(row)] == message["received_ns"]
        for name in ("ltp", "open", "high", "low", "close", "average_price", "change", "change_percent", "volume"):
            assert row[name] == data[name], name
        for name in ("oi", "upper_circuit", "lower_circuit", "week_52_high", "week_52_low", "prev_oi"):
            assert row[name] == data.get(name), name
        assert row["depth_buy"] == data["depth"]["buy"]
        assert row["depth_sell"] == data["depth"]["sell"]


def test_quote_ticks_have_no_depth_and_missing_fields_are_null(tmp_path):
    path = tmp_path / "quote.jsonl"
    write_recording(path, _ticks(6), mode=2)
    frame = read(path)
    assert frame["depth_buy"].isna().all() and frame["oi"].isna().all()
    assert str(frame["volume"].dtype) == "Int64"
    assert str(frame["ltt"].dtype) == "datetime64[ms, Asia/Kolkata]"


def test_read_takes_recordings_and_parquet_alike(tmp_path, cli_env):
    path = tmp_path / "day.jsonl"
    write_recording(path, _ticks(60), mode=3)
    out = tmp_path / "ticks.parquet"
    assert oaws(cli_env, "export", str(path), "-o", str(out)).returncode == 0
    from_json, from_parquet = read(path), read(str(out))
    assert from_json.equals(from_parquet)
    assert list(from_json["ltp"]) == [m["data"]["ltp"] for m in ticks_of(path)]
    assert from_json["received"].iloc[0].value == T0


def test_from_recording_is_a_frame_of_the_bars(tmp_path, cli_env):
    path = tmp_path / "day.jsonl"
    messages = write_recording(path, _ticks(), mode=3)
    frame = from_recording(path, "5m")
    assert list(frame.columns) == list(COLUMNS)
    assert str(frame["start"].dtype) == "datetime64[ms, Asia/Kolkata]"
    expected = _expected(messages, "5m")
    assert [r["close"] for r in expected] == list(frame["close"])
    assert [r["start"] for r in expected] == [t.isoformat() for t in frame["start"]]
    out = tmp_path / "ticks.parquet"
    assert oaws(cli_env, "export", str(path), "-o", str(out)).returncode == 0
    assert from_recording(out, "5m").equals(frame)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--interval", "7m"], 2, "the interval is one of"),
        (["-f", "xls"], 2, "--format is one of csv, jsonl, parquet"),
        (["-f", "parquet"], 2, "--format parquet needs -o FILE"),
        (["-o", "bars.txt"], 2, "cannot tell the format"),
        (["A:B:C"], 2, "is not an instrument"),
        (["FOO:NSE"], 1, "no tick of FOO:NSE"),
    ],
)
def test_mistakes_are_one_sentence(tmp_path, cli_env, args, code, says):
    path = tmp_path / "day.jsonl"
    write_recording(path, _ticks(6))
    done = subprocess.run([*OAWS, "bars", str(path), *args], env=cli_env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == code
    assert says in done.stderr and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_files_that_are_not_recordings(tmp_path, cli_env):
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    for command in (["bars", str(junk)], ["bars", str(tmp_path / "nope.jsonl")], ["export", str(junk), "-o", "t.pq"]):
        done = subprocess.run([*OAWS, *command], env=cli_env, capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 1, command
        assert done.stderr.startswith("oaws: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "t.pq").exists()


def test_a_failed_write_leaves_the_old_file(tmp_path, cli_env):
    out = tmp_path / "ticks.parquet"
    out.write_bytes(b"old")
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    done = oaws(cli_env, "export", str(junk), "-o", str(out))
    assert done.returncode == 1
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.txt", "ticks.parquet"]
