"""The command line end to end: real `oaws` processes."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time

import orjson
import pytest

from oaws.instruments import Instrument
from oaws.protocol.codes import Refused
from tests.helpers import OAWS, oaws, start_serve


def start_server(env, *args: str) -> tuple[subprocess.Popen, str]:
    return start_serve(env, "--port", "0", "--bus", "tcp://127.0.0.1:*", "--rate", "20", *args)


@pytest.fixture
def server(cli_env):
    proc, url = start_server(cli_env)
    yield url
    proc.terminate()
    proc.wait(5)


def test_version_and_help_list_every_command(cli_env):
    out = oaws(cli_env, "--version")
    assert out.returncode == 0 and re.fullmatch(r"oaws \d+\.\d+\.\d+\n", out.stdout)
    help_text = oaws(cli_env, "--help").stdout
    for command in ("serve", "tail", "subscribe"):
        assert command in help_text


def test_tail_json_count(server, cli_env):
    out = oaws(cli_env, "tail", "--json", "--count", "3", "--url", server, "--mode", "ltp", "RELIANCE:NSE")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        m = orjson.loads(line)
        assert m["type"] == "market_data" and m["symbol"] == "RELIANCE" and m["mode"] == 1
        assert isinstance(m["data"]["ltp"], float)


def test_tail_default_watchlist_human_lines(server, cli_env):
    out = oaws(cli_env, "tail", "--count", "8", "--url", server)
    assert out.returncode == 0, out.stderr
    names = {line.split()[1] for line in out.stdout.splitlines()}
    assert "NIFTY:NSE_INDEX" in names or "RELIANCE:NSE" in names


def test_tail_shows_trade_times_in_exchange_time_or_the_configured_zone(server, cli_env):
    from datetime import datetime, timedelta

    def first_clock(env):
        out = oaws(env, "tail", "--count", "1", "--url", server, "RELIANCE:NSE")
        assert out.returncode == 0, out.stderr
        return datetime.strptime(out.stdout.split()[0], "%H:%M:%S.%f")

    ist, utc = first_clock(cli_env), first_clock({**cli_env, "OAWS_TIME_ZONE": "UTC"})
    # the two ticks are a moment apart; their clocks are 5 h 30 min apart
    apart = (ist - utc) % timedelta(days=1)
    assert abs(apart - timedelta(hours=5, minutes=30)) < timedelta(seconds=30), (ist, utc)


def test_tail_into_head_exits_cleanly(server, cli_env):
    cmd = " ".join(OAWS) + f" tail --json --url {server} RELIANCE:NSE | head -1"
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=cli_env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["symbol"] == "RELIANCE"
    assert "Traceback" not in out.stderr and out.stderr == ""


def test_subscribe_table_and_json(server, cli_env):
    out = oaws(cli_env, "subscribe", "--url", server, "RELIANCE:NSE", "NIFTY:NSE_INDEX")
    assert out.returncode == 0, out.stderr
    assert "RELIANCE:NSE" in out.stdout and "NIFTY:NSE_INDEX" in out.stdout
    out = oaws(cli_env, "subscribe", "--json", "--mode", "depth", "--url", server, "INFY:NSE", "TCS:NSE")
    rows = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert [r["symbol"] for r in rows] == ["INFY", "TCS"]
    assert all(len(r["data"]["depth"]["sell"]) == 5 for r in rows)


async def test_subscribe_reports_unknown_and_prints_the_others(bus, capsys):
    """Against a feed that knows only some symbols, the others still print (exit 1)."""
    from oaws.cli.stream import _snapshot
    from oaws.config import ClientSettings
    from oaws.server.proxy import Proxy, ProxyOptions

    def check(i: Instrument) -> None:
        if i.symbol == "NOSUCH":
            raise Refused("SYMBOL_NOT_FOUND", "NOSUCH is not listed on NSE")
        if i.symbol == "FOO":  # a message that names the instrument itself, as Angel's does
            raise Refused("SYMBOL_NOT_FOUND", "FOO:NSE is not in Angel One's instrument master")

    proxy = Proxy(bus.endpoint, ProxyOptions(port=0), check=check)
    await proxy.start()
    try:
        await bus.control_ready()

        async def feed():
            await bus.subscription()
            bus.publish("NSE_RELIANCE_QUOTE", {"symbol": "RELIANCE", "exchange": "NSE", "ltp": 1400.0, "close": 1390.0})

        import asyncio

        task = asyncio.create_task(feed())
        code = await _snapshot(
            [Instrument("RELIANCE", "NSE"), Instrument("NOSUCH", "NSE"), Instrument("FOO", "NSE")],
            2,
            as_json=True,
            timeout=5,
            settings=ClientSettings(proxy.url, None, False),
        )
        await task
    finally:
        await proxy.close()
    out = capsys.readouterr()
    assert code == 1
    assert orjson.loads(out.out)["data"]["ltp"] == 1400.0
    assert "NOSUCH:NSE: NOSUCH is not listed on NSE (SYMBOL_NOT_FOUND)" in out.err
    assert "oaws: FOO:NSE is not in Angel One's instrument master (SYMBOL_NOT_FOUND)\n" in out.err  # named once


def test_bad_instrument_is_one_sentence(cli_env):
    out = oaws(cli_env, "tail", "--url", "ws://127.0.0.1:1", "RELIANCE")
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "SYMBOL:EXCHANGE" in out.stderr


def test_nothing_listening_is_one_sentence(cli_env):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = oaws(cli_env, "tail", "--url", f"ws://127.0.0.1:{port}", "--no-autostart")
    assert out.returncode == 1 and "connection refused" in out.stderr and "Traceback" not in out.stderr


def test_serve_port_in_use_is_one_sentence(cli_env):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        out = oaws(cli_env, "serve", "--port", str(taken.getsockname()[1]), "--bus", "tcp://127.0.0.1:*")
    finally:
        taken.close()
    assert out.returncode == 1 and "is in use" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_within_a_second_on_signal(cli_env, sig):
    proc, _ = start_server(cli_env)
    start = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(5) == 0
    assert time.monotonic() - start < 1.0
    assert "Traceback" not in proc.stderr.read()


def test_workers_share_the_port_and_stop_with_the_server(cli_env):
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*OAWS, "serve", "--port", str(port), "--bus", "tcp://127.0.0.1:*", "--workers", "2"],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:
            if "serving on" in line:
                break
        pids: set[int] = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            except OSError:
                time.sleep(0.1)  # the worker may still be starting
                continue
            pids.add(orjson.loads(body)["answered_by"])  # "pid" is the server's, whoever answers
        assert len(pids) == 2 and proc.pid in pids
        worker = (pids - {proc.pid}).pop()
        # ticks flow through either process: a worker gets them over the bus
        for _ in range(4):
            out = oaws(cli_env, "subscribe", "--json", "--url", f"ws://127.0.0.1:{port}", "RELIANCE:NSE")
            assert out.returncode == 0 and orjson.loads(out.stdout)["symbol"] == "RELIANCE"
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{worker}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the worker outlived the server")


def test_tail_stats_reports_end_to_end_latency(server, cli_env):
    out = oaws(cli_env, "tail", "--stats", "--count", "30", "--url", server, "RELIANCE:NSE", "INFY:NSE")
    assert out.returncode == 0, out.stderr
    total = [line for line in out.stderr.splitlines() if line.startswith("oaws: total:")]
    assert len(total) == 1
    m = re.search(r"(\d+) ticks, latency p50 ([\d.]+) ms, p99 ([\d.]+) ms", total[0])
    # 30 ticks, but the first of each of the two streams is the server's memory, not a sample (issue 19 #6)
    assert m and int(m.group(1)) == 28 and 0 <= float(m.group(2)) <= float(m.group(3)) < 1000


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nosuch"], "No such command 'nosuch' (see `"),
        (["tail", "--nosuch"], "No such option: --nosuch (see `"),
        (["tail", "--count", "0"], "'--count'"),
        (["inspect"], "Missing argument 'FILE'"),  # as the usage line names it: oaws inspect [OPTIONS] FILE...
        (["serve", "--port", "abc"], "'--port'"),
    ],
)
def test_command_line_mistakes_are_one_line_and_exit_2(cli_env, args, says):
    out = oaws(cli_env, *args)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("oaws: ") and out.stderr.count("\n") == 1 and says in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({}, ["--rate", "-1"], "the simulated tick rate must be a positive number of ticks per second, not -1"),
        ({"OAWS_RATE": "0"}, [], "the simulated tick rate must be a positive number of ticks per second, not 0"),
        ({}, ["--slow-timeout", "0"], "--slow-timeout must be a positive number of seconds, not 0"),
        ({}, ["--rate", "nan"], "the simulated tick rate must be a positive number of ticks per second, not nan"),
        ({"OAWS_RATE": "inf"}, [], "the simulated tick rate must be a positive number of ticks per second, not inf"),
    ],
)
def test_impossible_serve_settings_are_one_sentence(cli_env, env, args, says):
    out = oaws({**cli_env, **env}, "serve", "--port", "0", "--bus", "tcp://127.0.0.1:*", *args)
    assert out.returncode == 1 and out.stderr == f"oaws: {says}\n"


def test_verbose_logs_never_show_the_api_key(cli_env):
    secret = "k3y-that-must-not-reach-a-log"
    proc = subprocess.Popen(
        [*OAWS, "-v", "serve", "--port", "0", "--bus", "tcp://127.0.0.1:*", "--api-key", secret],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            m = re.search(r"serving on (ws://\S+):", line)
            if m:
                break
        assert m, "".join(seen)
        client = oaws(cli_env, "-v", "subscribe", "--api-key", secret, "--url", m.group(1), "RELIANCE:NSE")
        wrong = oaws(cli_env, "-v", "subscribe", "--api-key", "x" + secret, "--url", m.group(1), "INFY:NSE")
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=10)[1]
    server_log = "".join(seen) + rest
    assert client.returncode == 0 and wrong.returncode == 1
    assert "INFO websockets.server" in server_log  # verbose it was: websockets logs only under -v
    for text in (server_log, client.stderr, wrong.stderr):
        assert secret not in text


def test_replay_option_picks_the_replay_feed(cli_env, tmp_path):
    missing = tmp_path / "none.jsonl"
    # the replay feed it is (it looks for the file), not the configured simulated market
    out = oaws(cli_env, "serve", "--replay", str(missing), "--port", "0", "--bus", "tcp://127.0.0.1:*")
    assert out.returncode == 1 and out.stderr == f"oaws: the recording {missing} does not exist\n"
    out = oaws(cli_env, "serve", "--broker", "sim", "--replay", str(missing), "--port", "0")
    assert out.returncode == 1 and out.stderr == "oaws: --replay goes with --broker replay, not --broker sim\n"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("port = -1", "port = -1 in {} is out of range: it must be from 0 to 65535"),
        ("port = 99999999999999999999", "port = 99999999999999999999 in {} is out of range"),
        ("port = 8765.5", "port = 8765.5 in {} is not a valid int"),
        ('host = ["127.0.0.1"]', "host = ['127.0.0.1'] in {} is not a valid str"),
        ("bus = 5", "bus = 5 in {} is not a valid str"),
    ],
)
def test_a_bad_value_in_the_config_file_is_one_sentence_naming_it_exit_2(cli_env, tmp_path, line, said):
    config = tmp_path / "config.toml"
    config.write_text(line + "\n")
    for command in (("status",), ("serve", "--port", "0"), ("tail", "--count", "1")):
        out = oaws(cli_env, *command)
        assert out.returncode == 2, (command, out.returncode, out.stderr)
        assert out.stderr == f"oaws: {said.format(config)}\n" or (
            out.stderr.startswith(f"oaws: {said.format(config)}") and out.stderr.count("\n") == 1
        ), out.stderr
