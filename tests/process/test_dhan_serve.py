"""``oaws serve --broker dhan`` as a user runs it: against ``oaws sim dhan``, both real processes.

The simulator prints its ``export DHAN_...`` lines; the server gets them as its environment
(the token never on a command line), the instruments file is the simulator's own scrip
master CSV, and ``oaws tail`` reads the ticks through the proxy.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import orjson
import pytest

from tests.helpers import broker_sim, oaws, start_serve

OAWS = [sys.executable, "-m", "oaws"]
pytestmark = pytest.mark.process


@pytest.fixture
def dhan(cli_env) -> Iterator[dict[str, str]]:
    """``oaws sim dhan`` on free ports; the DHAN_* variables it exports."""
    proc, exported = broker_sim(cli_env, "dhan", "DHAN_", "DHAN_MASTER_URL", "--tick-interval", "0.1")
    try:
        yield exported
    finally:
        proc.terminate()
        proc.wait(10)


def control(env: dict[str, str], action: str) -> dict:
    request = urllib.request.Request(f"{env['DHAN_API_URL']}/sim/{action}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return orjson.loads(response.read())


def instruments_file(env: dict[str, str], tmp_path) -> str:
    with urllib.request.urlopen(env["DHAN_MASTER_URL"], timeout=5) as response:
        path = tmp_path / "api-scrip-master.csv"
        path.write_bytes(response.read())
    return str(path)


def no_secret(env: dict[str, str], *texts: str) -> None:
    for text in texts:
        assert env["DHAN_ACCESS_TOKEN"] not in text


def test_serve_dhan_gives_tail_ticks_and_twenty_levels(cli_env, dhan, tmp_path, ipc_bus):
    env = {**cli_env, **dhan}
    path = instruments_file(dhan, tmp_path)
    server, url = start_serve(env, "--broker", "dhan", "--instruments", path, "--port", "0", "--bus", ipc_bus)
    try:
        tail = oaws(env, "tail", "RELIANCE:NSE", "--json", "--count", "3", "--url", url, "--no-autostart")
        assert tail.returncode == 0, tail.stderr
        ticks = [orjson.loads(line) for line in tail.stdout.splitlines()]
        assert len(ticks) == 3 and {(t["symbol"], t["exchange"]) for t in ticks} == {("RELIANCE", "NSE")}
        assert all(t["data"]["ltp"] > 0 and t["data"]["ltt"] > 1_600_000_000_000 for t in ticks)
        quote = oaws(
            env, "tail", "TCS:NSE", "--json", "--count", "2", "--mode", "quote", "--url", url, "--no-autostart"
        )
        assert quote.returncode == 0, quote.stderr
        data = orjson.loads(quote.stdout.splitlines()[-1])["data"]
        assert data["close"] > 0 and data["change"] == round(data["ltp"] - data["close"], 2)
        deep = oaws(
            env,
            "tail",
            "RELIANCE:NSE",
            "--json",
            "--count",
            "2",
            "--mode",
            "depth",
            "--depth",
            "20",
            "--url",
            url,
            "--no-autostart",
        )
        assert deep.returncode == 0, deep.stderr
        book = orjson.loads(deep.stdout.splitlines()[-1])["data"]["depth"]
        assert len(book["buy"]) == len(book["sell"]) == 20
        assert book["buy"][0]["price"] < book["sell"][0]["price"]
        no_secret(dhan, tail.stdout, tail.stderr, quote.stderr, deep.stdout, deep.stderr)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=15)
    no_secret(dhan, stderr)


def test_an_expired_token_is_one_sentence_and_a_non_zero_exit(cli_env, dhan, tmp_path, ipc_bus):
    env = {**cli_env, **dhan}
    path = instruments_file(dhan, tmp_path)
    control(dhan, "expire")
    out = oaws(env, "serve", "--broker", "dhan", "--instruments", path, "--port", "0", "--bus", ipc_bus, timeout=60)
    assert out.returncode != 0
    said = [line for line in out.stderr.splitlines() if line.startswith("oaws:") and "token" in line.lower()]
    assert len(said) == 1 and out.stderr.splitlines()[-1] == said[0], out.stderr
    assert said[0].count(". ") == 0 and "DHAN_ACCESS_TOKEN" in said[0]
    assert "Traceback" not in out.stderr
    no_secret(dhan, out.stdout, out.stderr)


def test_a_token_expiring_while_serving_stops_serve_with_one_sentence(cli_env, dhan, tmp_path, ipc_bus):
    env = {**cli_env, **dhan}
    path = instruments_file(dhan, tmp_path)
    server, url = start_serve(env, "--broker", "dhan", "--instruments", path, "--port", "0", "--bus", ipc_bus)
    tail = subprocess.Popen(
        [*OAWS, "tail", "RELIANCE:NSE", "--json", "--url", url, "--no-autostart"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        assert orjson.loads(tail.stdout.readline())["symbol"] == "RELIANCE"  # a client holds it
        control(dhan, "expire")  # Dhan's feed answers 807 and closes
        _, stderr = server.communicate(timeout=30)
    finally:
        for proc in (tail, server):
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
    assert server.returncode != 0
    assert "Traceback" not in stderr
    said = [line for line in stderr.splitlines() if line.startswith("oaws:") and "token" in line.lower()]
    assert len(said) == 1 and "DHAN_ACCESS_TOKEN" in said[0], stderr
    no_secret(dhan, stderr)
