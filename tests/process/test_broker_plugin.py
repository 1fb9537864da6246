"""A broker from another package: installed with pip inside the test, found through the
``oaws.brokers`` entry point, served by ``oaws serve --broker NAME`` to ``oaws tail``,
with no oaws file edited."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

from tests.helpers import oaws, start_serve

PLUGIN = '''
"""A broker whose every instrument trades at 100.00, 100.05, 100.10... (a test of the plugin interface)."""

import asyncio
import time

import orjson

from oaws.brokers.api import Broker, BrokerLimits, Feed, FeedError, Rejection
from oaws.brokers.settings import Setting, SettingsSpec
from oaws.protocol.codes import SYMBOL_NOT_FOUND
from oaws.ticks import at_mode, change

SETTINGS = SettingsSpec("flat", (Setting("step", "FLAT_STEP", kind=float, default=0.05, help="the price step"),))


class FlatFeed(Feed):
    name = "flat"

    def __init__(self, step, interval):
        super().__init__()
        self.step, self.interval, self.wanted, self.n = step, interval, {}, 0

    def check(self, instrument):
        if instrument.exchange != "NSE":
            raise Rejection(SYMBOL_NOT_FOUND, f"{instrument} does not trade flat")

    def want(self, instrument, mode):
        self.wanted.setdefault(instrument, set()).add(mode)

    def unwant(self, instrument, mode):
        self.wanted.get(instrument, set()).discard(mode)

    async def run(self):
        while True:
            self.n += 1
            now = int(time.time() * 1000)
            for instrument, modes in list(self.wanted.items()):
                ltp = round(100 + self.n * self.step, 2)
                moved, pct = change(ltp, 100.0, 2)
                tick = {"symbol": instrument.symbol, "exchange": instrument.exchange, "mode": 2, "ltp": ltp,
                        "ltt": now, "timestamp": now, "open": 100.0, "high": ltp, "low": 100.0, "close": 100.0,
                        "volume": self.n, "last_trade_quantity": 1, "average_price": ltp,
                        "total_buy_quantity": 1, "total_sell_quantity": 1, "change": moved, "change_percent": pct}
                for mode in modes:
                    self.publisher.publish(instrument, mode, orjson.dumps(at_mode(tick, mode, 2)))
            await asyncio.sleep(self.interval)


def make_feed(options):
    step = SETTINGS.load()["step"]
    if step <= 0:
        raise FeedError(f"FLAT_STEP must be above 0, not {step:g}")
    return FlatFeed(step, 0.02)


broker = Broker(name="flat", title="Flat", summary="everything at 100 and rising", make_feed=make_feed,
                settings=SETTINGS, limits=BrokerLimits(depths=(5,)))
'''

WHEEL = "Wheel-Version: 1.0\nGenerator: oaws-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
METADATA = "Metadata-Version: 2.1\nName: oaws-flat\nVersion: 0.1\nRequires-Dist: oaws\n"
ENTRY_POINTS = "[oaws.brokers]\nflat = oaws_flat:broker\n"


def build_wheel(directory: Path, source: str = PLUGIN) -> Path:
    """The plugin as a wheel, a package as pip installs it (no build backend, no network)."""
    files = {
        "oaws_flat/__init__.py": source,
        "oaws_flat-0.1.dist-info/METADATA": METADATA,
        "oaws_flat-0.1.dist-info/WHEEL": WHEEL,
        "oaws_flat-0.1.dist-info/entry_points.txt": ENTRY_POINTS,
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append("oaws_flat-0.1.dist-info/RECORD,,")
    files["oaws_flat-0.1.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / "oaws_flat-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def install(tmp_path: Path, cli_env: dict, source: str = PLUGIN) -> dict:
    """The test environment with the plugin installed by pip into a directory on its PYTHONPATH."""
    site = tmp_path / "site"
    wheel = build_wheel(tmp_path, source)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target", str(site)]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=120)
    assert (site / "oaws_flat-0.1.dist-info" / "entry_points.txt").exists()
    paths = [str(site), *filter(None, [cli_env.get("PYTHONPATH")])]
    return {**cli_env, "PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture
def plugin_env(tmp_path, cli_env):
    return install(tmp_path, cli_env)


@pytest.mark.process
def test_a_plugin_broker_serves_its_ticks_to_tail(plugin_env, ipc_bus):
    listed = oaws(plugin_env, "brokers", "--json")
    names = {orjson.loads(line)["name"] for line in listed.stdout.splitlines()}
    assert {"flat", "sim", "angel", "replay"} <= names, listed

    server, url = start_serve(
        plugin_env, "--broker", "flat", "--port", "0", "--bus", ipc_bus, announce=r"on (ws://\S+): flat"
    )
    try:
        tail = oaws(plugin_env, "tail", "ACME:NSE", "--json", "--count", "3", "--url", url, "--no-autostart")
        assert tail.returncode == 0, tail.stderr
        ticks = [orjson.loads(line) for line in tail.stdout.splitlines()]
        assert len(ticks) == 3
        assert {t["broker"] for t in ticks} == {"flat"} and {t["symbol"] for t in ticks} == {"ACME"}
        prices = [t["data"]["ltp"] for t in ticks]
        assert all(p > 100 for p in prices) and prices == sorted(prices)
        # its check refuses what it cannot serve, through the same protocol as oaws's own brokers
        refused = oaws(plugin_env, "subscribe", "ACME:BSE", "--url", url, "--no-autostart", "--timeout", "5")
        assert refused.returncode == 1 and refused.stderr == "oaws: ACME:BSE does not trade flat (SYMBOL_NOT_FOUND)\n"
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.process
def test_a_plugin_setting_of_the_wrong_kind_is_one_sentence(plugin_env, ipc_bus):
    out = oaws({**plugin_env, "FLAT_STEP": "steep"}, "serve", "--broker", "flat", "--port", "0", "--bus", ipc_bus)
    assert out.returncode == 1 and out.stderr == "oaws: FLAT_STEP = 'steep' is not a number\n", out.stderr


def test_an_unknown_broker_names_the_known_ones(cli_env):
    out = oaws(cli_env, "serve", "--broker", "nope", "--port", "0", "--bus", "tcp://127.0.0.1:*")
    assert out.returncode == 2  # a bad option value, as click's own usage errors
    assert out.stderr == (
        "oaws: unknown broker 'nope'; choose one of angel, dhan, flattrade, kite, openalgo, replay, shoonya, sim\n"
    )


@pytest.mark.process
def test_a_broken_plugin_is_left_out_and_said(tmp_path, cli_env):
    env = install(tmp_path, cli_env, source="raise ImportError('needs a library that is not installed')\n")
    listed = oaws(env, "brokers")
    assert listed.returncode == 0
    assert "flat       (not loaded) cannot load oaws_flat:broker: ImportError: needs a library" in listed.stdout
    assert "sim        Simulated market" in listed.stdout
    out = oaws(env, "serve", "--broker", "flat", "--port", "0", "--bus", "tcp://127.0.0.1:*")
    assert out.returncode == 1
    assert out.stderr == (
        "oaws: the flat broker plugin is installed but cannot load oaws_flat:broker: "
        "ImportError: needs a library that is not installed\n"
    ), out.stderr
