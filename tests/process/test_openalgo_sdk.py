"""OpenAlgo's own Python SDK (its FeedAPI, unchanged) against `oaws serve`."""

from __future__ import annotations

import time

import pytest

from tests.helpers import wait_until
from tests.process.test_cli import start_server

openalgo = pytest.importorskip("openalgo", reason="the OpenAlgo SDK is in the test extra (Python < 3.12)")


@pytest.fixture
def server(cli_env):
    cli_env["OAWS_API_KEY"] = "sdk-key"
    proc, url = start_server(cli_env)
    yield url
    proc.terminate()
    proc.wait(5)


def test_openalgo_sdk_feed_works_unchanged(server):
    client = openalgo.api(api_key="sdk-key", host="http://127.0.0.1:5000", ws_url=server)
    assert client.connect()  # it waits for {"type":"auth","status":"success"}
    got: dict[str, list] = {"ltp": [], "quote": [], "depth": []}
    try:
        assert client.subscribe_ltp([{"exchange": "NSE", "symbol": "RELIANCE"}], lambda d: got["ltp"].append(d))
        assert client.subscribe_quote([{"exchange": "NSE_INDEX", "symbol": "NIFTY"}], lambda d: got["quote"].append(d))
        assert client.subscribe_depth([{"exchange": "NSE", "symbol": "INFY"}], lambda d: got["depth"].append(d))
        wait_until(lambda: all(len(v) >= 2 for v in got.values()), what=lambda: {k: len(v) for k, v in got.items()})
        ltp = got["ltp"][-1]
        assert (ltp["symbol"], ltp["exchange"], ltp["mode"]) == ("RELIANCE", "NSE", 1) and ltp["data"]["ltp"] > 0
        quote = got["quote"][-1]["data"]
        assert quote["ltp"] > 20000 and quote["close"] > 0 and "change_percent" in quote
        depth = got["depth"][-1]["data"]["depth"]
        assert len(depth["buy"]) == 5 and depth["buy"][0]["price"] < depth["sell"][0]["price"]
        # the SDK's polling caches fill from the same messages
        assert client.get_ltp()["ltp"]["NSE"]["RELIANCE"]["ltp"] > 0
        assert client.get_depth()["depth"]["NSE"]["INFY"]["buyBook"]["1"]["price"] > 0
        assert client.unsubscribe_ltp([{"exchange": "NSE", "symbol": "RELIANCE"}])
        time.sleep(0.5)
        before = len(got["ltp"])
        time.sleep(0.6)
        assert len(got["ltp"]) == before  # unsubscribed: no more LTP ticks
    finally:
        client.disconnect()


def test_openalgo_sdk_with_a_wrong_key_is_not_connected(server):
    client = openalgo.api(api_key="wrong", host="http://127.0.0.1:5000", ws_url=server)
    try:
        assert client.connect() is False
    finally:
        client.disconnect()


def test_two_modes_of_one_symbol_fire_both_callbacks(server):
    """OpenAlgo issue #1664: one message per tick per subscribed mode, each at its own mode."""
    client = openalgo.api(api_key="sdk-key", host="http://127.0.0.1:5000", ws_url=server)
    assert client.connect()
    got: dict[str, list] = {"ltp": [], "quote": [], "depth": []}
    try:
        instrument = [{"exchange": "NSE", "symbol": "SBIN"}]
        assert client.subscribe_ltp(instrument, lambda d: got["ltp"].append(d))
        assert client.subscribe_quote(instrument, lambda d: got["quote"].append(d))
        assert client.subscribe_depth(instrument, lambda d: got["depth"].append(d))
        wait_until(lambda: all(len(v) >= 3 for v in got.values()), what=lambda: {k: len(v) for k, v in got.items()})
        assert {m["mode"] for m in got["ltp"]} == {1} and {m["mode"] for m in got["quote"]} == {2}
        assert {m["mode"] for m in got["depth"]} == {3}
        assert "volume" in got["quote"][-1]["data"] and "depth" in got["depth"][-1]["data"]
        # dropping Quote leaves LTP and Depth running
        assert client.unsubscribe_quote(instrument)
        time.sleep(0.5)
        counts = {k: len(v) for k, v in got.items()}
        wait_until(lambda: len(got["ltp"]) > counts["ltp"] + 2 and len(got["depth"]) > counts["depth"] + 2)
        assert len(got["quote"]) == counts["quote"]
    finally:
        client.disconnect()
