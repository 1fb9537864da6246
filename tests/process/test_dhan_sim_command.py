"""``oaws sim dhan`` as a user runs it: the exports on stdout, a working simulator, a clean stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.helpers import OAWS

NAMES = (
    "DHAN_CLIENT_ID",
    "DHAN_ACCESS_TOKEN",
    "DHAN_API_URL",
    "DHAN_FEED_URL",
    "DHAN_DEPTH_URL",
    "DHAN_ORDER_URL",
    "DHAN_MASTER_URL",
)


def _exports(proc: subprocess.Popen[str], timeout: float = 20.0) -> dict[str, str]:
    """The export lines the simulator prints on stdout once it listens."""
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        while len(lines) < len(NAMES):
            line = proc.stdout.readline()
            if not line:
                return
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert len(lines) == len(NAMES), f"expected {len(NAMES)} export lines, got {lines!r}"
    env = {}
    for line in lines:
        assert line.startswith("export ") and line.endswith("\n"), line
        name, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
        env[name] = value
    assert tuple(env) == NAMES
    return env


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sim_dhan_prints_exports_serves_and_stops_on_a_signal(
    cli_env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    stderr = (tmp_path / "stderr").open("w+")
    args = [*OAWS, "sim", "dhan", "--rest-port", "0", "--feed-port", "0", "--tick-interval", "0.05"]
    proc = subprocess.Popen(args, env=cli_env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        env = _exports(proc)
        request = urllib.request.Request(
            f"{env['DHAN_API_URL']}/v2/profile",
            headers={"access-token": env["DHAN_ACCESS_TOKEN"], "client-id": env["DHAN_CLIENT_ID"]},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["dhanClientId"] == env["DHAN_CLIENT_ID"]
        with urllib.request.urlopen(env["DHAN_MASTER_URL"], timeout=5) as response:
            assert response.read().startswith(b"SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,")
        token, client = env["DHAN_ACCESS_TOKEN"], env["DHAN_CLIENT_ID"]
        with connect(f"{env['DHAN_FEED_URL']}?version=2&token={token}&clientId={client}&authType=2") as ws:
            entries = [{"ExchangeSegment": "NSE_EQ", "SecurityId": "2885"}]
            ws.send(json.dumps({"RequestCode": 15, "InstrumentCount": 1, "InstrumentList": entries}))
            assert [ws.recv(timeout=5)[0] for _ in range(3)] == [7, 6, 2]
            with urllib.request.urlopen(f"{env['DHAN_API_URL']}/sim/state", timeout=5) as response:
                assert json.loads(response.read())["feed"] == [1]
        assert env["DHAN_DEPTH_URL"] == f"{env['DHAN_FEED_URL']}/twentydepth"
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
        assert proc.stdout is not None and proc.stdout.read() == "", "stdout carries only the exports"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    stderr.seek(0)
    said = stderr.read()
    stderr.close()
    assert "Traceback" not in said
    assert "/sim/drop" in said and "/sim/disconnect" in said, "the fault endpoints are listed"
    assert token not in said, "the access token appears only in the export lines"


@pytest.mark.parametrize("option", ["--rest-port", "--feed-port"])
def test_sim_dhan_on_a_port_in_use_is_one_sentence(cli_env: dict[str, str], option: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        other = "--feed-port" if option == "--rest-port" else "--rest-port"
        result = subprocess.run(
            [*OAWS, "sim", "dhan", option, port, other, "0"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "oaws: cannot start the simulator on 127.0.0.1: Address already in use", result.stderr
    assert "Traceback" not in result.stderr
    assert not [line for line in lines if line.startswith("oaws:")][:-1], "one sentence"


def test_dhan_sim_alias_is_the_same_command(cli_env: dict[str, str]) -> None:
    result = subprocess.run([*OAWS, "dhan-sim", "--help"], env=cli_env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "--rest-port" in result.stdout and "--feed-port" in result.stdout and "--tick-interval" in result.stdout
