"""What ``oaws replay``, ``serve --broker replay``, ``inspect`` and ``record`` refuse, as real processes:
files that are no recording, recordings or windows without a tick, ``record --count 0``. Each is one
line on stderr and exit 1 (2 for a usage error, as typer gives it), before anything listens: a refused
replay that served instead would time out here."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.recording.helpers import OAWS, write_recording

BUS = ("--bus", "tcp://127.0.0.1:*")
NOT_A_RECORDING = " (is it a recording made by `oaws record`?)"
BAD_FILES = {
    "junk.txt": (b"hello world\nthis is not a recording\n", NOT_A_RECORDING),
    "empty.jsonl": (b"", NOT_A_RECORDING),
    "bad.gz": (b"\x1f\x8b\x08\x00" + b"garbage" * 20, ": its compressed data is damaged"),
    "random.bin": (os.urandom(4096).replace(b"\x1f\x8b", b"xx"), NOT_A_RECORDING),
}


def oaws(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*OAWS, *args], check=False, env=env, capture_output=True, text=True, timeout=20)


def refused(out: subprocess.CompletedProcess, sentence: str) -> None:
    assert "Traceback" not in out.stderr
    assert (out.returncode, out.stderr) == (1, f"oaws: {sentence}\n")
    assert "serving on" not in out.stderr and out.stdout == ""


@pytest.fixture
def utc(cli_env):
    return {**cli_env, "OAWS_TIME_ZONE": "UTC"}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("how", ["replay", "serve"])
def test_replay_of_a_file_without_a_tick_is_one_sentence(cli_env, tmp_path, name, how):
    content, why = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    args = ("replay", str(path)) if how == "replay" else ("serve", "--broker", "replay", "--replay", str(path))
    refused(oaws(cli_env, *args, "--port", "0", *BUS), f"{path} holds no ticks{why}")


def test_replay_of_a_window_without_a_tick_says_what_the_recordings_span(utc, tmp_path):
    r1 = tmp_path / "r1.jsonl"
    write_recording(r1, [("RELIANCE:NSE", 0.0), ("INFY:NSE", 1.0), ("RELIANCE:NSE", 3.5)])
    span = "2025-12-29 09:20:00.000 UTC to 2025-12-29 09:20:03.500 UTC"  # tests.recording.helpers.T0
    out = oaws(utc, "replay", str(r1), "--from", "23:59", "--port", "0", *BUS)
    refused(out, f"no tick of {r1} falls at or after 2025-12-29 23:59:00.000 UTC (it spans {span})")
    out = oaws(utc, "replay", str(r1), "--from", "09:20:01.5", "--to", "09:20:03", "--port", "0", *BUS)
    window = "between 2025-12-29 09:20:01.500 UTC and 2025-12-29 09:20:03.000 UTC"
    refused(out, f"no tick of {r1} falls {window} (it spans {span})")
    r2 = tmp_path / "r2.jsonl"
    write_recording(r2, [("TCS:NSE", 10.0)])
    out = oaws(utc, "serve", "--broker", "replay", "--replay", str(r1), "--replay", str(r2), "--to", "08:00")
    span = "2025-12-29 09:20:00.000 UTC to 2025-12-29 09:20:10.000 UTC"
    refused(out, f"no tick of the recordings falls at or before 2025-12-29 08:00:00.000 UTC (they span {span})")
    # in the default zone, the exchange's, as `oaws inspect` shows times
    out = oaws({k: v for k, v in utc.items() if k != "OAWS_TIME_ZONE"}, "replay", str(r1), "--to", "14:00")
    span = "2025-12-29 14:50:00.000 IST to 2025-12-29 14:50:03.500 IST"
    refused(out, f"no tick of {r1} falls at or before 2025-12-29 14:00:00.000 IST (it spans {span})")


def test_replay_of_recordings_that_received_nothing_is_one_sentence(cli_env, tmp_path):
    path = tmp_path / "quiet.jsonl"
    write_recording(path, [])
    refused(
        oaws(cli_env, "replay", str(path), "--port", "0", *BUS), f"{path} holds no ticks: its recorder received none"
    )


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("json", [False, True])
def test_inspect_of_a_file_that_is_no_recording_is_one_sentence(cli_env, tmp_path, name, json):
    content, why = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    refused(oaws(cli_env, "inspect", str(path), *(["--json"] if json else [])), f"{path} holds no ticks{why}")


def test_inspect_of_several_files_none_a_recording_is_one_sentence(cli_env, tmp_path):
    paths = []
    for name, (content, _) in sorted(BAD_FILES.items()):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(content)
    names = f"{paths[0]}, {paths[1]} and 2 more"
    refused(
        oaws(cli_env, "inspect", *map(str, paths)),
        f"none of {names} holds a tick (are they recordings made by `oaws record`?)",
    )


def test_inspect_summarises_a_recording_that_received_nothing_and_warns_about_junk_beside_ticks(cli_env, tmp_path):
    # a header and no tick: a session that recorded nothing is still a recording (exit 0)
    quiet = tmp_path / "quiet.jsonl"
    write_recording(quiet, [])
    out = oaws(cli_env, "inspect", str(quiet), "--json")
    assert (out.returncode, out.stderr) == (0, "")
    assert '"sessions":1' in out.stdout and '"ticks":0' in out.stdout
    # ticks beside junk: the summary of the ticks, and one warning line for the junk
    junk, good = tmp_path / "junk.txt", tmp_path / "r.jsonl"
    junk.write_bytes(BAD_FILES["junk.txt"][0])
    write_recording(good, [("RELIANCE:NSE", 0.0), ("INFY:NSE", 1.0)])
    out = oaws(cli_env, "inspect", str(junk), str(good))
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert out.stderr == f"oaws: warning: {junk}: skipped 2 lines that are not JSON (first: line 1)\n"
    assert "RELIANCE:NSE" in out.stdout and "INFY:NSE" in out.stdout


@pytest.mark.parametrize("count", ["0", "-3"])
def test_record_count_below_one_is_the_usage_error_tail_gives(cli_env, tmp_path, count):
    path = tmp_path / "r.jsonl"
    nowhere = ("--url", "ws://127.0.0.1:9", "--no-autostart")  # never reached: the option is refused first
    record = oaws(cli_env, "record", str(path), "--count", count, *nowhere)
    tail = oaws(cli_env, "tail", "--count", count, *nowhere)
    assert record.returncode == tail.returncode == 2 and "Traceback" not in record.stderr
    assert record.stderr.count("\n") == 1 and "'--count'" in record.stderr
    assert record.stderr.replace(" record ", " tail ") == tail.stderr
    assert not path.exists()
