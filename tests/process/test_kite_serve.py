"""``oaws serve --broker kite`` as a process against the Kite simulator (run on the test's own event loop).

The access token comes from KITE_ACCESS_TOKEN (one the simulator issued), the instruments
from ``--instruments`` (the simulator's dump written to a file); ``oaws tail`` reads the
ticks through the proxy. An expired token stops the server with one sentence.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from oaws.brokers.kite.simulator import KiteSimulator
from tests.helpers import eventually

OAWS = [sys.executable, "-m", "oaws"]


def kite_env(tmp_path: Path, sim: KiteSimulator, **extra: str) -> dict[str, str]:
    """An oaws subprocess's environment: private dirs, the simulator's settings, nothing else of ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("OAWS_", "KITE_")) or k.lower() in ("http_proxy", "https_proxy", "all_proxy"))
    }
    env.update(
        OAWS_STATE_DIR=str(tmp_path / "state"),
        OAWS_CACHE_DIR=str(tmp_path / "cache"),
        OAWS_CONFIG=str(tmp_path / "config.toml"),
        PYTHONUNBUFFERED="1",
        **sim.env(),
        **extra,
    )
    return env


async def run(env: dict[str, str], *args: str, timeout: float = 40.0) -> subprocess.CompletedProcess[str]:
    """An ``oaws`` command in a thread, so that the simulator on this event loop keeps serving."""
    return await asyncio.to_thread(
        subprocess.run, [*OAWS, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


class Serve:
    """``oaws serve`` in the foreground, stdout and stderr read line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env, self.args = env, args
        self.proc: asyncio.subprocess.Process | None = None
        self.out: list[str] = []
        self.err: list[str] = []
        self.url = ""
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> Serve:
        self.proc = await asyncio.create_subprocess_exec(
            *OAWS,
            "serve",
            *self.args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout, self.out)),
            asyncio.create_task(self._read(self.proc.stderr, self.err)),
        ]
        await eventually(lambda: self.url or self.proc.returncode is not None, 30, what="serve to start")
        return self

    async def _read(self, stream: asyncio.StreamReader, lines: list[str]) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            found = re.search(r"serving on (ws://[\w.]+:\d+)", line)
            if found and not self.url:
                self.url = found.group(1)

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)


@pytest.fixture
async def sim():
    async with KiteSimulator(tick_interval=0.1, seed=3) as simulator:
        yield simulator


@pytest.fixture
def dump(tmp_path: Path, sim: KiteSimulator) -> Path:
    path = tmp_path / "instruments.csv"
    path.write_bytes(sim.dump_bytes())
    return path


def _serve_args(dump: Path) -> list[str]:
    return ["--broker", "kite", "--instruments", str(dump), "--port", "0", "--bus", "tcp://127.0.0.1:*"]


async def test_serve_kite_streams_ticks_to_tail(sim, dump, tmp_path):
    token = sim.issue_access_token()
    env = kite_env(tmp_path, sim, KITE_ACCESS_TOKEN=token)
    server = await Serve(env, *_serve_args(dump)).start()
    try:
        assert server.url, server.err
        tail = await run(env, "tail", "RELIANCE:NSE", "--json", "--count", "3", "--url", server.url, "--no-autostart")
        assert tail.returncode == 0, tail.stderr
        ticks = [orjson.loads(line) for line in tail.stdout.splitlines()]
        index = await run(
            env, "tail", "NIFTY:NSE_INDEX", "--json", "-n", "1", "-m", "ltp", "--url", server.url, "--no-autostart"
        )
        assert index.returncode == 0, index.stderr
    finally:
        await server.kill()
    assert len(ticks) == 3
    assert {(t["broker"], t["symbol"], t["exchange"]) for t in ticks} == {("kite", "RELIANCE", "NSE")}
    for t in ticks:
        data = t["data"]
        assert data["ltp"] > 0 and data["close"] > 0 and data["volume"] > 0
        assert data["change"] == pytest.approx(data["ltp"] - data["close"], abs=1e-6)
    assert orjson.loads(index.stdout)["data"]["ltp"] > 1000
    output = "\n".join([*server.out, *server.err, tail.stdout, tail.stderr])
    assert token not in output and sim.api_key not in output and sim.api_secret not in output


async def test_an_expired_token_stops_serve_with_one_sentence(sim, dump, tmp_path):
    token = sim.issue_access_token()
    env = kite_env(tmp_path, sim, KITE_ACCESS_TOKEN=token)
    server = await Serve(env, *_serve_args(dump)).start()
    try:
        assert server.url, server.err
        tail = await run(env, "tail", "INFY:NSE", "--json", "-n", "1", "--url", server.url, "--no-autostart")
        assert tail.returncode == 0, tail.stderr
        sim.expire_tokens()  # Kite's morning: the token is refused from now on
        code = await server.wait(20)
    finally:
        await server.kill()
    errors = [line for line in server.err if line.startswith("oaws: ") and "serving on" not in line]
    assert code != 0
    assert not any("Traceback" in line for line in server.err), "\n".join(server.err)
    assert errors == server.err[-1:] and len(errors) == 1, server.err
    assert "Kite refused the access token" in errors[0] and "log in again with `oaws login kite`" in errors[0]
    assert sim.handshakes <= 3  # no reconnect storm
    output = "\n".join([*server.out, *server.err])
    assert token not in output and sim.api_key not in output and sim.api_secret not in output


async def test_serve_without_an_access_token_says_how_to_get_one(sim, dump, tmp_path):
    env = kite_env(tmp_path, sim)
    done = await run(env, "serve", *_serve_args(dump))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("oaws: ")]
    assert len(lines) == 1 and "oaws login kite" in lines[0] and "KITE_ACCESS_TOKEN" in lines[0], done.stderr
    assert sim.handshakes == 0 and sim.api_key not in done.stderr + done.stdout
