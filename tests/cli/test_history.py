"""``oaws history``: the broker's candles through a real server (a proxy and a feed with
known bars on a real bus, in a thread of its own), as a table, CSV and JSON lines."""

from __future__ import annotations

import asyncio
import csv
import io
import threading

import orjson
import pytest

from tests.server.test_history import market


@pytest.fixture
def server_url():
    """The URL of a proxy whose feed has the known bars, served from another thread."""
    ready = threading.Event()
    box: dict = {}

    async def serve() -> None:
        async with market(api_key="k") as (_hub, proxy):
            box["url"], box["stop"], box["loop"] = proxy.url, asyncio.Event(), asyncio.get_running_loop()
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield box["url"]
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(10)


def test_json_lines_are_the_bars(run, server_url):
    code, out, err = run("history", "RELIANCE:NSE", "-i", "5m", "--json", "--url", server_url, "--api-key", "k")
    assert (code, err) == (0, "")
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [r["open"] for r in rows] == [1300.0, 1301.0, 1302.0]
    assert rows[0]["start"] == "2025-12-01T09:15:00+05:30"
    assert all(r["final"] for r in rows)
    assert {(r["instrument"], r["exchange"], r["interval"]) for r in rows} == {("RELIANCE", "NSE", "5m")}


def test_csv_has_the_bars_columns(run, server_url):
    code, out, _ = run("history", "RELIANCE:NSE", "--format", "csv", "--url", server_url, "--api-key", "k")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["close"] for r in rows] == ["1301.0", "1302.0", "1303.0"]
    assert [r["volume"] for r in rows] == ["1000", "2000", "3000"]


def test_the_default_is_a_table(run, server_url):
    code, out, _ = run("history", "RELIANCE:NSE", "--days", "5", "--url", server_url, "--api-key", "k")
    assert code == 0
    assert "RELIANCE:NSE 5m, 5 days" in out
    assert "2025-12-01T09:25:00+05:30" in out and "1304.50" in out


def test_no_history_is_one_sentence(run, server_url):
    code, out, err = run("history", "TCS:NSE", "--url", server_url, "--api-key", "k")
    assert (code, out) == (1, "")
    assert err == "oaws: the hist feed has no history of TCS:NSE\n"


def test_a_wrong_key_is_one_sentence(run, server_url):
    code, _, err = run("history", "RELIANCE:NSE", "--url", server_url, "--api-key", "nope")
    assert code == 1 and err.startswith("oaws: history needs the API key") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["RELIANCE"], "not an instrument"),
        (["RELIANCE:NSE", "-i", "7m"], "the interval is one of"),
        (["RELIANCE:NSE", "--format", "xml"], "--format is one of"),
        (["RELIANCE:NSE", "--days", "0"], "--days"),
    ],
)
def test_command_line_mistakes_exit_2(run, args, says):
    code, _, err = run("history", *args, "--no-autostart", "--url", "ws://127.0.0.1:9")
    assert code == 2 and says in err
