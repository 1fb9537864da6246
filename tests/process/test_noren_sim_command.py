"""`oaws sim noren [--as NAME]`, `oaws sim shoonya`, `oaws sim flattrade`: the simulator as a real process.

Its stdout holds the chosen host's export lines and nothing else; Noren's own client logs in
against it with those values; its stderr shows the fault controls as curl lines, and they
answer; SIGINT and SIGTERM end it cleanly; mistakes are one sentence.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys

import pyotp
import pytest
import requests
from NorenRestApiPy.NorenApi import NorenApi

from oaws.brokers.noren.family import HOSTS

NAMES = ("USER_ID", "PASSWORD", "TOTP_SECRET", "VENDOR_CODE", "API_SECRET", "API_KEY", "API_URL", "FEED_URL",
         "MASTER_URL", "AUTH_URL", "TOKEN_URL")  # fmt: skip


async def _start(cli_env: dict[str, str], *args: str) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    """Start ``oaws sim ARGS`` and read its export lines (all of them: the last is TOKEN_URL)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oaws",
        "sim",
        *args,
        "--rest-port",
        "0",
        "--feed-port",
        "0",
        "--tick-interval",
        "0.05",
        env=cli_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    env: dict[str, str] = {}
    async with asyncio.timeout(30):
        while not any(name.endswith("_TOKEN_URL") for name in env):
            line = (await proc.stdout.readline()).decode()
            assert line.startswith("export "), f"oaws sim wrote {line!r} on stdout"
            name, _, value = line.removeprefix("export ").strip().partition("=")
            env[name] = value
    return proc, env


async def _stop(proc: asyncio.subprocess.Process, sig: int = signal.SIGINT) -> tuple[bytes, bytes]:
    if proc.returncode is None:
        proc.send_signal(sig)
    async with asyncio.timeout(15):
        out, err = await proc.communicate()
    return out, err


def _noren_login(env: dict[str, str], prefix: str) -> dict:
    class Api(NorenApi):
        def __init__(self) -> None:
            super().__init__(host=env[f"{prefix}_API_URL"] + "/", websocket=env[f"{prefix}_FEED_URL"])

    return Api().login(
        userid=env[f"{prefix}_USER_ID"],
        password=env[f"{prefix}_PASSWORD"],
        twoFA=pyotp.TOTP(env[f"{prefix}_TOTP_SECRET"]).now(),
        vendor_code=env[f"{prefix}_VENDOR_CODE"],
        api_secret=env[f"{prefix}_API_SECRET"],
        imei="abc1234",
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_sim_noren_as_flattrade_serves_until_a_signal(cli_env, sig):
    proc, env = await _start(cli_env, "noren", "--as", "flattrade")
    try:
        assert set(env) == {f"FLATTRADE_{name}" for name in NAMES}
        assert env["FLATTRADE_API_URL"].startswith("http://127.0.0.1:")
        assert env["FLATTRADE_API_URL"].endswith("/PiConnectTP")
        assert env["FLATTRADE_FEED_URL"].endswith("/PiConnectWSTp/")
        reply = await asyncio.to_thread(_noren_login, env, "FLATTRADE")
        assert reply is not None and reply["stat"] == "Ok"
        assert proc.stderr is not None
        lines: list[str] = []
        async with asyncio.timeout(20):
            while not lines or "/sim/expire" not in lines[-1]:  # the banner on stderr shows how to cause faults
                line = (await proc.stderr.readline()).decode()
                assert line, "oaws sim exited early"
                lines.append(line)
        curls = [line.split() for line in lines if line.lstrip().startswith("curl ")]
        root = env["FLATTRADE_API_URL"].removesuffix("/PiConnectTP")
        assert ["curl", "-X", "POST", f"{root}/sim/drop"] == curls[0][:4]
        assert any("oaws login flattrade" in line for line in lines)
        control = await asyncio.to_thread(requests.post, f"{root}/sim/drop", timeout=5)
        assert control.status_code == 200 and control.json()["action"] == "drop"
        master = await asyncio.to_thread(requests.get, env["FLATTRADE_MASTER_URL"] + "/NSE_symbols.txt.zip", timeout=5)
        assert master.status_code == 200 and master.content[:2] == b"PK"
    finally:
        out, err = await _stop(proc, sig)
    assert proc.returncode == 0, err.decode()
    assert out == b""
    text = err.decode()
    assert "Traceback" not in text
    for secret in ("PASSWORD", "TOTP_SECRET", "API_SECRET", "API_KEY"):
        assert env[f"FLATTRADE_{secret}"] not in text


@pytest.mark.parametrize(
    "args, prefix", [(("shoonya",), "SHOONYA"), (("noren",), "SHOONYA"), (("flattrade",), "FLATTRADE")]
)
async def test_each_hosts_sim_prints_its_own_prefix(cli_env, args, prefix):
    proc, env = await _start(cli_env, *args)
    try:
        assert set(env) == {f"{prefix}_{name}" for name in NAMES}
        api_path = HOSTS[prefix.lower()].api_url.rsplit("/", 1)[-1]
        assert env[f"{prefix}_API_URL"].endswith(f"/{api_path}")
        body = "jData=" + json.dumps({"uid": env[f"{prefix}_USER_ID"]}) + "&jKey=nope"
        answer = await asyncio.to_thread(requests.post, env[f"{prefix}_API_URL"] + "/UserDetails", data=body, timeout=5)
        assert answer.json() == {"stat": "Not_Ok", "emsg": "Session Expired :  Invalid Session Key"}
    finally:
        _, err = await _stop(proc)
    assert proc.returncode == 0, err.decode()


def _oaws(cli_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oaws", "sim", *args],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _one_sentence(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("oaws: ") and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""
    return result.stderr.strip()


@pytest.mark.parametrize("option", ["--rest-port", "--feed-port"])
def test_a_port_in_use_is_one_sentence(cli_env, option):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        other = "--feed-port" if option == "--rest-port" else "--rest-port"
        message = _one_sentence(_oaws(cli_env, "noren", option, port, other, "0"), code=1)
    assert message == "oaws: cannot start the simulator on 127.0.0.1: Address already in use"


def test_an_unknown_host_is_one_sentence(cli_env):
    message = _one_sentence(_oaws(cli_env, "noren", "--as", "nope"), code=2)
    assert message == "oaws: --as 'nope' is not a Noren broker; choose one of flattrade, shoonya"


# The client's protocol pings (every 3 s, payload {"t":"h"}): real seconds, so they are here ----------------
class _Client(NorenApi):
    def __init__(self, sim) -> None:
        super().__init__(host=sim.api_url + "/", websocket=sim.feed_url)
        self.sim = sim
        self.ticks: list[dict] = []
        self.opens = 0
        self.closes = 0

    def begin(self) -> None:
        sim = self.sim
        assert self.login(sim.user_id, sim.password, pyotp.TOTP(sim.totp_secret).now(), sim.vendor_code,
                          sim.api_secret, "abc1234") is not None  # fmt: skip
        self.start_websocket(
            subscribe_callback=self.ticks.append,
            socket_open_callback=lambda: setattr(self, "opens", self.opens + 1),
            socket_close_callback=lambda: setattr(self, "closes", self.closes + 1),
        )

    @property
    def app(self):
        return self._NorenApi__websocket

    async def aclose(self) -> None:
        self._NorenApi__stop_event.set()
        self.app.keep_running = False
        self.sim.drop_all()  # wakes the client's select()
        await asyncio.to_thread(self._NorenApi__ws_thread.join, 5)


async def test_the_clients_pings_are_answered_and_a_silence_leaves_them_unanswered():
    from oaws.brokers.noren.simulator import NorenSimulator
    from tests.helpers import eventually

    async with NorenSimulator(tick_interval=0.05) as sim:
        client = _Client(sim)
        try:
            await asyncio.to_thread(client.begin)
            await eventually(lambda: client.opens == 1, what="the ck")
            client.subscribe("NSE|2885")
            await eventually(lambda: client.app.last_pong_tm > 0, what="a pong to the client's first ping")
            count = len(client.ticks)
            await eventually(lambda: len(client.ticks) > count + 5, what="updates after the ping")
            sim.go_silent(seconds=None)
            pinged, ponged = client.app.last_ping_tm, client.app.last_pong_tm
            await eventually(lambda: client.app.last_ping_tm > pinged + 1, what="another ping")
            assert client.app.last_pong_tm == ponged  # the silent simulator left it unanswered
            sim.go_silent(silent=False)
            await eventually(lambda: client.app.last_pong_tm > ponged, what="the pong once speaking again")
        finally:
            await client.aclose()
