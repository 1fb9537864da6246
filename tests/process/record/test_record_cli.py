"""``oaws record``, ``replay`` and ``inspect`` as real processes against real servers on port 0."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import zlib
from pathlib import Path

import orjson
import pytest

from oaws.recording import records
from tests.recording.helpers import OAWS, lines, start, stop, ticks_of, wait_until

BUS = ("--bus", "tcp://127.0.0.1:*")
THREE = ("RELIANCE:NSE", "INFY:NSE", "NIFTY:NSE_INDEX")


def oaws(env, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*OAWS, *args], check=False, env=env, capture_output=True, text=True, timeout=timeout)


def recorder(env, tmp_path: Path, *args: str) -> subprocess.Popen:
    err = open(tmp_path / "record.err", "wb")  # the process owns it
    return subprocess.Popen([*OAWS, "record", *args], env=env, stdout=subprocess.DEVNULL, stderr=err)


@pytest.fixture
def server(cli_env, tmp_path):
    proc, url = start(cli_env, tmp_path / "serve.err", "serve", "--port", "0", *BUS, "--rate", "40", "--seed", "3")
    yield url
    stop(proc)


def test_record_then_replay_then_record_again_gives_the_same_ticks(cli_env, tmp_path, server):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    out = oaws(cli_env, "record", str(first), *THREE, "--mode", "quote", "--count", "60", "--url", server)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # quiet when stderr is not a terminal
    replay, url = start(cli_env, tmp_path / "replay.err", "replay", str(first), "--port", "0", *BUS, "--speed", "4")
    try:
        out = oaws(cli_env, "record", str(second), *THREE, "--mode", "quote", "--count", "60", "--url", url)
        assert out.returncode == 0, out.stderr
        refused = oaws(cli_env, "record", str(tmp_path / "no.jsonl"), "TCS:NSE", "--count", "1", "--url", url)
        unknown = oaws(cli_env, "subscribe", "TCS:NSE", "--url", url)
    finally:
        stop(replay)
    original, again = ticks_of(first), ticks_of(second)
    assert len(original) == 60 and {t["symbol"] for t in original} == {"RELIANCE", "INFY", "NIFTY"}

    def same(t: dict) -> tuple:  # fseq is the bus's stamp: each bus counts its own
        return t["symbol"], t["exchange"], t["mode"], {k: v for k, v in t["data"].items() if k != "fseq"}

    assert [same(t) for t in again] == [same(t) for t in original]
    assert all("fseq" in t["data"] for t in again)
    assert lines(second)[0]["broker"] == "replay" and lines(first)[0]["broker"] == "sim"
    assert refused.returncode == 1
    assert refused.stderr == "oaws: TCS:NSE is not in the recording (SYMBOL_NOT_FOUND)\n"
    # nothing to show: no table, just the reason
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr == "oaws: TCS:NSE is not in the recording (SYMBOL_NOT_FOUND)\n"
    assert not (tmp_path / "no.jsonl").exists()


@pytest.mark.parametrize(("name", "sig"), [("r.jsonl", signal.SIGTERM), ("r.jsonl.gz", signal.SIGINT)])
def test_a_signal_flushes_and_closes_a_complete_recording(cli_env, tmp_path, server, name, sig):
    path = tmp_path / name
    proc = recorder(cli_env, tmp_path, str(path), *THREE, "--url", server)
    try:
        wait_until(lambda: path.exists() and len(ticks_of(path)) >= 20)
        seen = len(ticks_of(path))
        proc.send_signal(sig)
        assert proc.wait(10) == 0
    finally:
        stop(proc)
    warnings: list[str] = []
    got = list(records(str(path), warnings.append))
    assert warnings == [], warnings  # no cut line, and a gzip stream closed properly
    assert got[0]["type"] == "header" and all(r["type"] == "market_data" for r in got[1:])
    assert len(got) - 1 >= seen
    assert (tmp_path / "record.err").read_text() == ""


def test_a_killed_recorder_leaves_every_flushed_tick_readable(cli_env, tmp_path, server):
    path = tmp_path / "r.jsonl"
    proc = recorder(cli_env, tmp_path, str(path), *THREE, "--url", server)
    wait_until(lambda: path.exists() and len(ticks_of(path)) >= 20)
    proc.kill()
    proc.wait(5)
    got = [r for r in records(str(path), lambda _: None) if r["type"] == "market_data"]
    assert len(got) >= 20 and all(isinstance(t["data"]["ltp"], float) for t in got)


def test_gzip_recording_survives_kill_9_and_record_again(cli_env, tmp_path, server):
    # kill -9 left the gzip stream unfinished; the next record appended behind it; then
    # inspect, replay and zcat read nothing of any session
    path = tmp_path / "r.jsonl.gz"
    proc = recorder(cli_env, tmp_path, str(path), *THREE, "--url", server)
    try:
        wait_until(lambda: path.exists() and len(ticks_of(path)) >= 30)
        proc.kill()
        proc.wait(5)
    finally:
        stop(proc)
    first = len(ticks_of(path))  # every flushed tick: at most the last half-second is lost
    again = oaws(cli_env, "record", str(path), *THREE, "--count", "40", "--url", server)
    assert again.returncode == 0 and "Traceback" not in again.stderr and again.stderr.count("\n") <= 1
    out = oaws(cli_env, "inspect", str(path), "--json")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    summary = orjson.loads(out.stdout)
    assert summary["sessions"] == 2 and summary["ticks"] == first + 40 >= 70
    assert summary["skipped"]["damaged_parts"] == 0 and summary["warnings"] == []
    # zcat reads it: complete gzip members, one per flush
    unzipped = subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=False)
    assert unzipped.returncode == 0 and unzipped.stdout.count(b'"type":"market_data"') == first + 40
    # replay serves every tick of both sessions
    replay, url = start(cli_env, tmp_path / "replay.err", "replay", str(path), "--port", "0", *BUS, "--speed", "0")
    try:
        oaws(cli_env, "record", str(tmp_path / "copy.jsonl"), "RELIANCE:NSE", "--count", "1", "--url", url)

        def finished() -> re.Match | None:
            return re.search(r"replay finished after (\d+) ticks", (tmp_path / "replay.err").read_text())

        wait_until(finished)
        assert int(finished().group(1)) == first + 40
    finally:
        stop(replay)
    assert "warning" not in (tmp_path / "replay.err").read_text().lower()


def test_inspect_of_a_damaged_gzip_recording_says_what_was_skipped(cli_env, tmp_path, server):
    path = tmp_path / "r.jsonl.gz"
    out = oaws(cli_env, "record", str(path), *THREE, "--count", "200", "--url", server)
    assert out.returncode == 0, out.stderr
    data = bytearray(path.read_bytes())
    members = [m.start() for m in re.finditer(b"\x1f\x8b\x08", bytes(data))]
    assert len(members) >= 3  # one per flush, at 40 ticks/s
    lost = data[members[1] : members[2]]
    data[(members[1] + members[2]) // 2] ^= 0x20
    path.write_bytes(bytes(data))
    lost_ticks = zlib.decompress(bytes(lost), 31).count(b'"type":"market_data"')
    out = oaws(cli_env, "inspect", str(path), "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr
    summary = orjson.loads(out.stdout)
    assert summary["ticks"] == 200 - lost_ticks and summary["skipped"]["damaged_parts"] == 1
    assert out.stderr == f"oaws: warning: {summary['warnings'][0]}\n" and "skipped 1 damaged part" in out.stderr
    table = oaws(cli_env, "inspect", str(path))
    assert re.search(r"Skipped\s+1 damaged compressed part \(", table.stdout), table.stdout


def test_inspect_of_a_gzip_bomb_is_bounded_and_one_sentence(cli_env, tmp_path):
    # a 1.4 MB bomb took inspect to a MemoryError at 2.9 GB; here 256 MiB of zeros in one member
    bomb = tmp_path / "bomb.jsonl.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)  # after a full flush: the same bytes each time
    bomb.write_bytes(block + again * 255 + packer.flush())  # the CRC is wrong: that is damage as well
    assert bomb.stat().st_size < 1 << 20
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(r.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, *OAWS, "inspect", str(bomb)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    code, peak_kib = map(int, run.stdout.split())
    assert (code, run.stderr) == (1, f"oaws: {bomb} holds no ticks: its compressed data is damaged\n")
    assert peak_kib < 200 * 1024  # a bound, not a timing: the old reader held the whole 256 MiB (and a copy)


def test_a_server_restart_leaves_a_gap_marker(cli_env, tmp_path):
    serve = ("serve", *BUS, "--rate", "40", "--seed", "3")
    first, url = start(cli_env, tmp_path / "serve1.err", *serve, "--port", "0")
    path = tmp_path / "r.jsonl"
    proc = recorder(cli_env, tmp_path, str(path), *THREE, "--url", url)
    try:
        wait_until(lambda: path.exists() and len(ticks_of(path)) >= 5)
        stop(first)
        again, _ = start(cli_env, tmp_path / "serve2.err", *serve, "--port", url.rsplit(":", 1)[1])
        try:

            def resumed() -> bool:
                kinds = [r["type"] for r in records(str(path), lambda _: None)]
                return "gap" in kinds and kinds[kinds.index("gap") :].count("market_data") >= 5

            wait_until(resumed, timeout=20)
            proc.terminate()
            assert proc.wait(10) == 0
        finally:
            stop(again)
    finally:
        stop(proc)
    got = list(records(str(path)))
    at = [r["type"] for r in got].index("gap")
    gap = got[at]
    before, after = got[at - 1], got[at + 1]
    assert before["type"] == after["type"] == "market_data"
    assert before["received_ns"] <= gap["from_ns"] < gap["to_ns"] <= after["received_ns"]
    assert gap["reason"]
    err = (tmp_path / "record.err").read_text()
    assert "reconnecting in" in err and "reconnected to" in err and "Traceback" not in err


def test_unwritable_path_and_full_disk_are_one_sentence(cli_env, tmp_path, server):
    missing = tmp_path / "missing" / "r.jsonl"
    out = oaws(cli_env, "record", str(missing), "--url", server)
    assert out.returncode == 1
    assert out.stderr == f"oaws: cannot write {missing}: No such file or directory\n"
    out = oaws(cli_env, "record", "/dev/full", "--url", server, "--count", "1000")
    assert out.returncode == 1
    assert out.stderr.startswith("oaws: the disk is full: stopped writing /dev/full") and out.stderr.count("\n") == 1


def test_no_server_is_one_sentence_and_leaves_no_file(cli_env, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "r.jsonl"
    out = oaws(cli_env, "record", str(path), "--url", f"ws://127.0.0.1:{port}", "--no-autostart")
    assert out.returncode == 1
    assert out.stderr == f"oaws: nothing is listening at ws://127.0.0.1:{port} (connection refused)\n"
    assert not path.exists()


def test_record_to_stdout_rotate_and_inspect(cli_env, tmp_path, server):
    out = oaws(cli_env, "record", "-", "RELIANCE:NSE", "--mode", "ltp", "--count", "5", "--url", server)
    assert out.returncode == 0, out.stderr
    got = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert got[0]["type"] == "header" and got[0]["mode"] == 1 and got[0]["instruments"] == ["RELIANCE:NSE"]
    assert [m["type"] for m in got[1:]] == ["market_data"] * 5 and all(m["mode"] == 1 for m in got[1:])
    assert all(isinstance(m["received_ns"], int) for m in got[1:])

    base = tmp_path / "r.jsonl"
    out = oaws(cli_env, "record", str(base), *THREE, "--rotate", "4kB", "--count", "80", "--url", server)
    assert out.returncode == 0, out.stderr
    parts = sorted(tmp_path.glob("r.*.jsonl"))
    assert len(parts) >= 2 and not base.exists() and parts[0].name == "r.0001.jsonl"
    assert all(p.stat().st_size <= 4000 for p in parts)  # checked line by line, not at each flush
    assert all(lines(p)[0]["type"] == "header" for p in parts)

    out = oaws(cli_env, "inspect", *map(str, parts), "--json")
    assert out.returncode == 0, out.stderr
    summary = orjson.loads(out.stdout)
    # issue 19 #8: one recording cut into parts is one session
    assert summary["ticks"] == 80 and summary["sessions"] == 1 and summary["gaps"] == []
    assert summary["missing"] == 0
    assert set(summary["instruments"]) == set(THREE) and sum(summary["instruments"].values()) == 80
    assert summary["span_s"] > 0 and summary["ticks_per_s"] > 0 and summary["broker"] == "sim"
    out = oaws(cli_env, "inspect", *map(str, parts))
    assert out.returncode == 0, out.stderr
    for text in ("Ticks", "80", "Span", "Gaps", "RELIANCE:NSE", "NIFTY:NSE_INDEX", "Ticks/s"):
        assert text in out.stdout
    # times in exchange time by default, in the configured zone otherwise
    (start,) = [line for line in out.stdout.splitlines() if line.startswith("From")]
    assert start.rstrip().endswith(" IST")
    utc = oaws({**cli_env, "OAWS_TIME_ZONE": "UTC"}, "inspect", *map(str, parts))
    (start_utc,) = [line for line in utc.stdout.splitlines() if line.startswith("From")]
    assert start_utc.rstrip().endswith(" UTC") and start_utc != start


def test_replay_and_inspect_errors_are_one_sentence(cli_env, tmp_path):
    missing = tmp_path / "missing.jsonl"
    out = oaws(cli_env, "replay", str(missing), "--port", "0", *BUS)
    assert out.returncode == 1 and out.stderr == f"oaws: the recording {missing} does not exist\n"
    out = oaws(cli_env, "replay", str(missing), "--from", "lunchtime")
    assert out.returncode == 1 and "is not a time" in out.stderr and out.stderr.count("\n") == 1
    out = oaws(cli_env, "inspect", str(missing))
    assert out.returncode == 1 and out.stderr.startswith(f"oaws: cannot read {missing}: No such file")
    out = oaws({**cli_env, "OAWS_TIME_ZONE": "Mars/Olympus_Mons"}, "inspect", str(missing))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "is not a time zone" in out.stderr
