"""``oaws tail``, ``subscribe`` and ``record`` as processes against a server that behaves like
OpenAlgo's (tests/openalgo_server.py, on a thread of the test): they wait out its slow
authentication saying so, never end in a traceback, and leave no subscription behind."""

from __future__ import annotations

import time

import orjson
import pytest

from oaws.recording import records
from tests.helpers import oaws, wait_until
from tests.openalgo_server import OpenAlgoServer, market_data


def nothing_left(server: OpenAlgoServer) -> None:
    """The command's connection is gone, and with it every subscription it held."""
    wait_until(lambda: server.open_connections() == 0, what="the command's connection to close")
    assert server.subscriptions() == set() and server.connections >= 1


def waiting(url: str, seconds: str = "30") -> str:
    return f"oaws: waiting for {url} to answer authenticate (up to {seconds} s)\n"


def test_tail_waits_for_a_slow_authentication_and_passes_messages_through(cli_env):
    server = OpenAlgoServer(auth_delay=2.0)
    with server.running() as url:
        out = oaws(cli_env, "tail", "--json", "--count", "4", "--mode", "ltp", "--url", url, "--api-key", "oa-key",
                   "RELIANCE:NSE", "INFY:NSE")  # fmt: skip
        assert (out.returncode, out.stderr) == (0, waiting(url))
        messages = [orjson.loads(line) for line in out.stdout.splitlines()]
        assert len(messages) == 4 and {m["symbol"] for m in messages} == {"RELIANCE", "INFY"}
        # OpenAlgo's messages as they came: its broker field, no topic, nothing added
        assert all(set(m) == {"type", "symbol", "exchange", "mode", "data", "broker"} for m in messages)
        nothing_left(server)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_server_slower_than_the_auth_timeout_is_one_sentence(cli_env, how):
    server = OpenAlgoServer(auth_delay=4.0)
    with server.running() as url:
        args = ["--auth-timeout", "1.5"] if how == "option" else []
        env = {**cli_env, "OAWS_AUTH_TIMEOUT": "1.5"} if how == "environment" else cli_env
        out = oaws(env, "tail", "--url", url, "--api-key", "oa-key", *args, "RELIANCE:NSE")
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert out.stderr == waiting(url, "1.5") + f"oaws: {url} did not answer authenticate within 1.5 s\n"
        nothing_left(server)


def test_a_nonsensical_auth_timeout_is_one_sentence(cli_env):
    out = oaws(cli_env, "tail", "--url", "ws://127.0.0.1:9", "--auth-timeout", "nan", "RELIANCE:NSE")
    assert (out.returncode, out.stderr) == (2, "oaws: --auth-timeout must be a positive number of seconds, not nan\n")


def test_subscribe_counts_its_timeout_from_the_authenticated_connection(cli_env):
    server = OpenAlgoServer(auth_delay=2.5)
    with server.running() as url:
        started = time.monotonic()
        out = oaws(cli_env, "subscribe", "--json", "--timeout", "1.5", "--url", url, "--api-key", "oa-key",
                   "RELIANCE:NSE", "NOSUCH:NSE")  # fmt: skip
        assert time.monotonic() - started > 2.5  # longer than --timeout: the wait for authentication is not in it
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert orjson.loads(out.stdout)["symbol"] == "RELIANCE"
        assert out.stderr == waiting(url) + "oaws: NOSUCH:NSE: Symbol NOSUCH not found for exchange NSE (ERROR)\n"
        nothing_left(server)


def test_record_retries_a_broker_that_is_not_ready_and_records_once_ticks_come(cli_env, tmp_path):
    server = OpenAlgoServer(auth_delay=1.2, broker_failures=2)
    path = tmp_path / "r.jsonl"
    with server.running() as url:
        out = oaws(cli_env, "record", str(path), "--count", "6", "--mode", "quote", "--url", url,
                   "--api-key", "oa-key", "RELIANCE:NSE")  # fmt: skip
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        lines = out.stderr.splitlines()
        assert lines.count(waiting(url).rstrip("\n")) == 3 and len(lines) == 5
        refused = [line for line in lines if "could not authenticate" in line]
        assert len(refused) == 2 and all("Failed to connect to broker (BROKER_CONNECTION_ERROR); reconnecting in" in r
                                          for r in refused)  # fmt: skip
        header, *ticks = list(records(str(path)))
        assert header["broker"] == "angel" and len(ticks) == 6
        assert all(t["symbol"] == "RELIANCE" and t["mode"] == 2 and "average_price" in t["data"] for t in ticks)
        assert server.connections == 3
        nothing_left(server)


def test_tail_stats_leave_a_marked_snapshot_out_and_json_keeps_its_mark(cli_env):
    minute_ago = int(time.time() * 1000) - 60_000
    old = market_data("RELIANCE", "NSE", 1, 1400.0) | {"timestamp": minute_ago, "ltt": minute_ago}
    server = OpenAlgoServer(snapshots={("RELIANCE", "NSE"): old})
    with server.running() as url:
        out = oaws(cli_env, "tail", "--json", "--stats", "--count", "5", "--mode", "ltp", "--url", url,
                   "--api-key", "oa-key", "RELIANCE:NSE")  # fmt: skip
        assert out.returncode == 0, out.stderr
        first, *live = [orjson.loads(line) for line in out.stdout.splitlines()]
        assert first["snapshot"] is True and first["data"] == old and len(live) == 4
        assert not any("snapshot" in m for m in live)
        (total,) = [line for line in out.stderr.splitlines() if line.startswith("oaws: total: ")]
        # four samples, none of them the minute-old snapshot
        assert total.startswith("oaws: total: 4 ticks, latency p50 ")
        assert float(total.rsplit("max ", 1)[1].removesuffix(" ms")) < 10_000
        nothing_left(server)
