"""`oaws sim kite` / `oaws kite-sim` as a process: exports on stdout, faults on stderr, clean exits."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from kiteconnect import KiteConnect, KiteTicker
from websockets.sync.client import connect

from tests.helpers import OAWS


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*OAWS, *args, "--rest-port", "0", "--feed-port", "0", "--tick-interval", "0.05"],
        env={k: v for k, v in env.items() if not k.startswith("KITE_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def exports(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The export lines on stdout, read until the last one (stdout holds nothing else)."""
    assert proc.stdout is not None
    env: dict[str, str] = {}
    while "KITE_LOGIN_URL" not in env:
        line = proc.stdout.readline()
        assert line, "the simulator exited before printing its exports"
        assert line.startswith("export "), f"kite-sim wrote {line!r} on stdout"
        name, _, value = line.removeprefix("export ").strip().partition("=")
        env[name] = value
    return env


@pytest.mark.parametrize(("command", "sig"), [(("sim", "kite"), signal.SIGINT), (("kite-sim",), signal.SIGTERM)])
def test_kite_sim_serves_until_a_signal(cli_env, command, sig):
    proc = start(cli_env, *command)
    try:
        env = exports(proc)
        assert set(env) == {"KITE_API_KEY", "KITE_API_SECRET", "KITE_API_URL", "KITE_FEED_URL", "KITE_LOGIN_URL"}
        assert env["KITE_FEED_URL"].startswith("ws://127.0.0.1:")
        assert env["KITE_LOGIN_URL"] == env["KITE_API_URL"] + "/connect/login"
        # the login page's redirect carries a request token that kiteconnect exchanges
        page = requests.get(
            env["KITE_LOGIN_URL"], params={"api_key": env["KITE_API_KEY"], "v": 3}, timeout=5, allow_redirects=False
        )
        request_token = page.headers["Location"].split("request_token=")[1].split("&")[0]
        kc = KiteConnect(env["KITE_API_KEY"], root=env["KITE_API_URL"])
        session = kc.generate_session(request_token, env["KITE_API_SECRET"])
        assert kc.profile()["user_id"] == session["user_id"]
        assert len(kc.instruments()) > 300
        # the ticker, with the token
        url = f"{env['KITE_FEED_URL']}/?api_key={env['KITE_API_KEY']}&access_token={session['access_token']}"
        with connect(url, open_timeout=5) as ws:
            ws.send(json.dumps({"a": "subscribe", "v": [256265]}))
            deadline = time.monotonic() + 10
            ticks: list[dict] = []
            while not ticks and time.monotonic() < deadline:
                ticks = KiteTicker("k", "t")._parse_binary(ws.recv(timeout=5))
            assert [t["instrument_token"] for t in ticks] == [256265]
            # the fault lines on stderr name the control URLs; one of them, over HTTP
            assert proc.stderr is not None
            lines = []
            while not any("/sim/expire" in line for line in lines):
                line = proc.stderr.readline()
                assert line, "kite-sim exited early"
                lines.append(line)
            assert any(line.split()[:4] == ["curl", "-X", "POST", f"{env['KITE_API_URL']}/sim/drop"] for line in lines)
            reply = requests.post(f"{env['KITE_API_URL']}/sim/message", params={"text": "hi"}, timeout=5)
            assert reply.status_code == 200 and reply.json()["connections"] == 1
            while isinstance(message := ws.recv(timeout=5), bytes):
                pass
            assert json.loads(message) == {"type": "message", "data": "hi"}
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out == "" and "Traceback" not in err
    for secret in (request_token, session["access_token"]):
        assert secret not in err


def test_a_port_in_use_is_one_sentence(cli_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for option in ("--rest-port", "--feed-port"):
            args = ["--rest-port", "0", "--feed-port", "0"]
            args[args.index(option) + 1] = str(port)
            result = subprocess.run(
                [*OAWS, "sim", "kite", *args], env=cli_env, capture_output=True, text=True, timeout=30, check=False
            )
            assert result.returncode == 1, result.stderr
            assert result.stdout == "" and "Traceback" not in result.stderr
            assert result.stderr.startswith("oaws: ") and result.stderr.count("\n") == 1, result.stderr
            assert "in use" in result.stderr


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_a_command_line_mistake(cli_env, port):
    result = subprocess.run(
        [sys.executable, "-m", "oaws", "kite-sim", "--feed-port", port],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("oaws: ") and "--feed-port" in result.stderr
