"""OpenAlgo's own Python SDK (its FeedAPI, unchanged) against `oaws serve`, both generations:
1.0.47 (the test extra's on Python < 3.12) and the newest 2.x (the test extra's from 3.12
on; beside a 3.11 environment, the interpreter ``OAWS_SDK2_PYTHON`` names, which .ci/run
sets up). Each scenario runs in the SDK's own interpreter as a process
(test_openalgo_sdk_scenarios.py), against a server started from this environment.

The scenarios that need OpenAlgo's server behaviour (one message per tick per subscribed
mode, no per-request cap) also run against tests/openalgo_server.py, the reference for
what OpenAlgo does, so that a failure here says which side is wrong.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import OAWS
from tests.openalgo_server import OpenAlgoServer
from tests.process.test_cli import start_server

SCENARIOS = Path(__file__).with_name("test_openalgo_sdk_scenarios.py")
KEY = "sdk-key"


def installed_sdk() -> str | None:
    """The version of the SDK in this environment (read without importing it: it brings pandas)."""
    try:
        return importlib.metadata.version("openalgo")
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def interpreter(generation: str) -> str:
    """The Python that has this generation of the SDK, or a skip that says how to get one.

    The test extra brings 1.0.47 on Python < 3.12 and 2.x from 3.12 on; the other
    generation needs an interpreter of its own, ``OAWS_SDK2_PYTHON`` for 2.x.
    """
    here = installed_sdk() or ""
    if generation == "1.x":
        if not here.startswith("1."):
            pytest.skip("the OpenAlgo SDK 1.0.47 is in the test extra for Python < 3.12 only")
        return sys.executable
    python = os.environ.get("OAWS_SDK2_PYTHON")
    if not python and here.startswith("2."):
        return sys.executable
    if not python:
        pytest.skip("OAWS_SDK2_PYTHON names no Python with the OpenAlgo SDK 2.x (.ci/run sets one up)")
    # named but broken is a failure, not a skip: CI set it up to be run
    probe = subprocess.run(
        [python, "-c", "import openalgo; print(openalgo.__version__)"], capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, f"OAWS_SDK2_PYTHON={python} cannot import openalgo: {probe.stderr.strip()}"
    assert probe.stdout.startswith("2."), f"OAWS_SDK2_PYTHON={python} has openalgo {probe.stdout.strip()}, not 2.x"
    return python


#: both generations, ids ``sdk1`` and ``sdk2`` (`-k sdk2` picks 2.x, as .ci/run does)
generations = pytest.mark.parametrize("generation", [pytest.param(g, id=f"sdk{g[0]}") for g in ("1.x", "2.x")])


@pytest.fixture
def serve(cli_env):
    """``serve(rate)``: `oaws serve` with an API key and the simulated market at ``rate`` ticks a second."""
    started = []

    def start(rate: float = 20) -> str:
        # the scenarios subscribe made-up symbols (OAWS0001...): a market of every symbol
        proc, url = start_server({**cli_env, "OAWS_API_KEY": KEY}, "--rate", str(rate), "--any-symbol")
        started.append(proc)
        return url

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(5)


def scenario(generation: str, name: str, url: str, env: dict[str, str] | None = None) -> dict:
    """Run one scenario in the generation's interpreter; what the SDK saw, or the check that failed."""
    python = interpreter(generation)
    out = subprocess.run(
        [python, str(SCENARIOS), name, url, KEY],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=SCENARIOS.parent,
        env=env,
    )
    assert out.returncode == 0, f"OpenAlgo SDK {generation}, {out.stderr.strip() or out.stdout.strip()}"
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["sdk"].startswith(generation[0]), seen
    return seen


@generations
def test_ltp_and_quote_of_one_symbol_both_call_back(serve, generation):
    seen = scenario(generation, "ltp_and_quote", serve())
    assert seen["ltp"] >= 3 and seen["quote"] >= 3


@generations
def test_ltp_and_depth_of_one_symbol_both_call_back(serve, generation):
    seen = scenario(generation, "ltp_and_depth", serve())
    assert seen["ltp"] >= 3 and seen["depth"] >= 3


@generations
def test_three_modes_of_one_symbol_call_back_each_with_its_mode_and_drop_one(serve, generation):
    seen = scenario(generation, "three_modes", serve())
    assert min(seen[mode] for mode in ("ltp", "quote", "depth")) >= 3


@generations
def test_one_call_subscribes_and_unsubscribes_1001_instruments(serve, generation):
    seen = scenario(generation, "thousand_and_one", serve(rate=2))
    assert seen["symbols"] == 1001


@generations
def test_unsubscribe_stops_that_mode_and_leaves_the_others(serve, generation):
    seen = scenario(generation, "unsubscribe", serve())
    assert min(seen[mode] for mode in ("ltp", "quote", "depth")) >= 2


@generations
def test_subscribe_orders_calls_back_with_a_simulated_orders_updates(cli_env, ipc_bus, generation):
    if generation == "1.x":
        interpreter(generation)
        pytest.skip("the OpenAlgo SDK 1.0.47 has no subscribe_orders (2.x has)")
    proc, url = start_server({**cli_env, "OAWS_API_KEY": KEY}, "--bus", ipc_bus)
    try:
        order = [*OAWS, "sim", "order", "BUY", "RELIANCE:NSE", "10", "--bus", ipc_bus, "--json"]
        seen = scenario(generation, "subscribe_orders", url, {**cli_env, "OAWS_ORDER_COMMAND": json.dumps(order)})
    finally:
        proc.terminate()
        proc.wait(5)
    assert seen["updates"] == 2
    assert "order_status" in seen["keys"] and "user_id" in seen["keys"]


@generations
def test_a_wrong_key_is_not_connected(serve, generation):
    assert scenario(generation, "wrong_key", serve())["connected"] is False


@generations
@pytest.mark.parametrize(
    ("name", "tick_every"),
    [
        pytest.param(name, every, id=name)
        for name, every in [("ltp_and_quote", 0.05), ("ltp_and_depth", 0.05), ("thousand_and_one", 0.5)]
    ],
)
def test_the_scenarios_pass_against_a_server_that_behaves_like_openalgos(generation, name, tick_every):
    """The scenarios ask of oaws what OpenAlgo's server does: against the OpenAlgo-like
    server (tests/openalgo_server.py: one message per tick per mode held, no per-request cap)
    they pass too."""
    server = OpenAlgoServer(api_key=KEY, tick_every=tick_every)
    with server.running() as url:
        seen = scenario(generation, name, url)
    assert seen["scenario"] == name
