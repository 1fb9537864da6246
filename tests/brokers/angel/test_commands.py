"""`oaws login angel`, `oaws instruments update|search`, `oaws sim angel` / `oaws angel-sim`: the plugin's commands
through the real command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys

import orjson
import pytest
import requests
import typer
from typer.testing import CliRunner

from oaws.brokers.angel.master import INDEX_FILE, master_dir
from oaws.brokers.angel.session import session_path
from oaws.brokers.angel.simulator import fixture_master_bytes
from oaws.cli import app as oaws_app


@pytest.fixture
def app() -> typer.Typer:
    return oaws_app


@pytest.fixture
def sim_env(sim, monkeypatch):
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    return sim


def run(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, list(args))


async def test_login_angel_stores_a_private_session(app, sim_env):
    result = run(app, "login", "angel")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Logged in to Angel One as S9990001 (SIMULATED USER); session saved to ")
    assert str(session_path()) in result.stdout
    assert stat.S_IMODE(session_path().stat().st_mode) == 0o600
    for secret in (sim_env.pin, sim_env.totp_secret, sim_env.api_key):
        assert secret not in result.output
    assert sim_env.logins == 1


async def test_a_refused_login_is_one_line_on_stderr(app, sim_env, monkeypatch):
    monkeypatch.setenv("ANGEL_PIN", "0000")
    result = run(app, "login", "angel")
    assert result.exit_code == 1
    assert result.stderr == "oaws: Angel One refused the login of S9990001: Invalid PIN (AB1000)\n"
    assert not session_path().exists()


def test_login_without_credentials_names_what_to_set(app):
    result = run(app, "login", "angel")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "oaws: Angel One credentials missing: set ANGEL_API_KEY and ANGEL_CLIENT_CODE and "
        "ANGEL_PIN and ANGEL_TOTP_SECRET (or api_key, client_code, pin, totp_secret in "
        "the [angel] section of "
    )
    assert result.stderr.count("\n") == 1


def test_login_to_another_broker_is_refused(app):
    result = run(app, "login", "zerodha")
    assert result.exit_code == 2
    assert result.stderr == (
        "oaws: no broker is called 'zerodha' (Zerodha Kite is kite); "
        "brokers with a login: angel, dhan, flattrade, kite, shoonya\n"
    )


async def test_instruments_update_then_search(app, sim_env):
    result = run(app, "instruments", "update", "--broker", "angel")
    assert result.exit_code == 0, result.output
    served = len(json.loads(sim_env.master_bytes))  # the fixture's 43 and today's simulated options
    assert served > 43
    assert result.stdout == f"Saved {served:,} instruments to {master_dir() / INDEX_FILE}.\n"
    assert sim_env.rest_requests == ["GET /OpenAPI_File/files/OpenAPIScripMaster.json"]

    table = run(app, "instruments", "search", "--broker", "angel", "reliance")
    assert table.exit_code == 0
    first = table.stdout.splitlines()[1].split()
    assert first[0] == "RELIANCE:NSE" and first[-2:] == ["RELIANCE-EQ", "2885"]

    result = run(
        app, "instruments", "search", "--broker", "angel", "nifty", "--exchange", "nse_index", "--json", "-n", "2"
    )
    found = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(f["instrument"], f["token"], f["exchange_type"]) for f in found] == [
        ("NIFTY:NSE_INDEX", "99926000", 1),
        ("BANKNIFTY:NSE_INDEX", "99926009", 1),
    ]


def test_search_without_a_master_says_how_to_get_one(app):
    result = run(app, "instruments", "search", "--broker", "angel", "reliance")
    assert result.exit_code == 1
    assert "run `oaws instruments update --broker angel`" in result.stderr and result.stderr.count("\n") == 1


def test_search_reads_a_local_copy(app, tmp_path, monkeypatch):
    copy = tmp_path / "OpenAPIScripMaster.json"
    copy.write_bytes(fixture_master_bytes())
    by_option = run(app, "instruments", "search", "--broker", "angel", "SBIN", "--instruments", str(copy), "--json")
    assert orjson.loads(by_option.stdout.splitlines()[0])["instrument"] == "SBIN:NSE"
    monkeypatch.setenv("OAWS_INSTRUMENTS", str(copy))
    by_env = run(app, "instruments", "search", "--broker", "angel", "USDINR", "--json")
    assert orjson.loads(by_env.stdout)["instrument"] == "USDINR27DEC24FUT:CDS"


def test_search_mistakes_are_one_sentence(app, tmp_path, monkeypatch):
    copy = tmp_path / "master.json"
    copy.write_bytes(fixture_master_bytes())
    monkeypatch.setenv("OAWS_INSTRUMENTS", str(copy))
    unknown = run(app, "instruments", "search", "--broker", "angel", "RELIANCE", "--exchange", "NASDAQ")
    assert unknown.exit_code == 2 and "unknown exchange 'NASDAQ'" in unknown.stderr
    nothing = run(app, "instruments", "search", "--broker", "angel", "ZZZZZ")
    assert nothing.exit_code == 1 and nothing.stderr == "oaws: no instrument matches 'ZZZZZ'\n"


@pytest.mark.process
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_angel_sim_command_serves_logins_until_a_signal(app, monkeypatch, sig):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oaws",
        "angel-sim",
        "--rest-port",
        "0",
        "--feed-port",
        "0",
        "--tick-interval",
        "0.05",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        env: dict[str, str] = {}
        async with asyncio.timeout(20):
            while "ANGEL_MASTER_URL" not in env:  # stdout holds the exports and nothing else
                line = (await proc.stdout.readline()).decode()
                assert line.startswith("export "), f"angel-sim wrote {line!r} on stdout"
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = await asyncio.to_thread(run, app, "login", "angel")
        assert result.exit_code == 0, result.output
        assert env["ANGEL_FEED_URL"].startswith("ws://127.0.0.1:") and env["ANGEL_FEED_URL"].endswith("/smart-stream")
        async with asyncio.timeout(20):
            curl = ""
            while "/sim/expire" not in curl:  # the banner on stderr shows how to cause faults
                curl = (await proc.stderr.readline()).decode()
                assert curl, "angel-sim exited early"
                assert not curl.startswith("export ")
        assert curl.split()[:4] == ["curl", "-X", "POST", f"{env['ANGEL_API_URL']}/sim/expire"]
        control = await asyncio.to_thread(requests.post, f"{env['ANGEL_API_URL']}/sim/drop", timeout=5)
        assert control.status_code == 200 and control.json()["action"] == "drop"
    finally:
        proc.send_signal(sig)
        async with asyncio.timeout(10):
            await proc.wait()
    assert proc.returncode == 0, (await proc.stderr.read()).decode()
    assert await proc.stdout.read() == b""
    assert not os.path.exists("logs")


def _oaws(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oaws", *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def _one_sentence(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("oaws: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize("option", ["--rest-port", "--feed-port"])
@pytest.mark.parametrize("port", ["99999", "-1"])
def test_angel_sim_refuses_a_port_out_of_range_in_one_line(cli_env, option, port):
    message = _one_sentence(_oaws(cli_env, "angel-sim", option, port), code=2)  # 2: a command-line mistake
    assert f"Invalid value for '{option}'" in message and message.endswith(" angel-sim --help`)")


def _unwritable(tmp_path, where: str) -> str:
    """A directory oaws cannot create: under /proc, or under a regular file."""
    if where == "proc":
        if not os.path.isdir("/proc"):
            pytest.skip("no /proc here")
        return "/proc/oaws-no-such-dir"
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / "dir")


@pytest.mark.parametrize("where", ["proc", "file"])
async def test_login_with_an_unwritable_state_dir_is_one_sentence(sim_env, cli_env, tmp_path, where):
    state = _unwritable(tmp_path, where)
    env = cli_env | sim_env.env() | {"OAWS_STATE_DIR": state}
    message = _one_sentence(await asyncio.to_thread(_oaws, env, "login", "angel"))
    assert message.startswith(f"oaws: cannot save the Angel session to {state}/angel-session.json: ")
    assert message.endswith(("No such file or directory", "Not a directory"))
    assert sim_env.logins == 1


@pytest.mark.parametrize("where", ["proc", "file"])
async def test_instruments_update_with_an_unwritable_cache_is_one_sentence(sim_env, cli_env, tmp_path, where):
    cache = _unwritable(tmp_path, where)
    env = cli_env | sim_env.env() | {"OAWS_CACHE_DIR": cache}
    message = _one_sentence(await asyncio.to_thread(_oaws, env, "instruments", "update", "--broker", "angel"))
    assert message.startswith(f"oaws: cannot save the instrument master in {cache}/angel: ")
    assert sim_env.rest_requests == []  # found out before downloading


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:1/x", "connection refused"),
        ("file:///tmp/master.json", "unsupported URL scheme 'file' (use http:// or https://)"),
        ("master.json", "not a URL (it needs http:// or https://)"),
    ],
)
def test_instruments_update_says_why_a_download_failed(cli_env, url, reason):
    message = _one_sentence(_oaws(cli_env, "instruments", "update", "--broker", "angel", "--url", url))
    assert message == f"oaws: cannot download the instrument master from {url}: {reason}"


async def test_instruments_update_names_the_http_status(sim_env, cli_env):
    url = f"{sim_env.api_url}/no/such/master.json"
    message = _one_sentence(
        await asyncio.to_thread(_oaws, cli_env, "instruments", "update", "--broker", "angel", "--url", url)
    )
    assert message == f"oaws: cannot download the instrument master from {url}: HTTP 404 Not Found"
