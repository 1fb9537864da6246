"""What OpenAlgo's own Python SDK (its FeedAPI, unchanged) does against a server, one
scenario per run, in whichever interpreter has the SDK:

    python tests/process/test_openalgo_sdk_scenarios.py SCENARIO WS_URL API_KEY

It prints what it saw as one JSON line and exits 0, or says which check failed on stderr
and exits 1. tests/process/test_openalgo_sdk.py runs it for both generations of the SDK:
1.0.47 in the main environment (Python 3.11, the test extra) and the newest 2.x in a
Python 3.13 environment of its own (``OAWS_SDK2_PYTHON``, set up by .ci/run). So this file
needs the standard library and ``openalgo`` alone, and pytest collects no test from it.

The generations send the same requests differently: 1.x one single-form request per
instrument, 0.1 s apart; 2.x one ``symbols`` request per call, each unsubscribe entry
with its mode. Only 1.x's pause between requests is shortened here (to 10 ms, so that
1,001 instruments take 10 s rather than 100 s, at the 100 requests a second a server's
flood control allows); every frame it sends is the SDK's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable
from typing import Any

#: how long a scenario waits for what it expects (s): generous, two cores run the suite
PATIENCE = 10.0
#: how long an unsubscribed stream must stay silent (s)
QUIET = 1.0


def wait_for(condition: Callable[[], bool], what: Callable[[], str], timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"after {timeout:g} s: {what()}")


class Calls:
    """What each callback was given, by mode name."""

    def __init__(self) -> None:
        self.got: dict[str, list[dict[str, Any]]] = {"ltp": [], "quote": [], "depth": []}

    def on(self, mode: str) -> Callable[[dict[str, Any]], None]:
        return self.got[mode].append

    def count(self) -> dict[str, int]:
        return {mode: len(calls) for mode, calls in self.got.items()}

    def symbols(self, mode: str) -> set[str]:
        return {call["symbol"] for call in list(self.got[mode])}


def connect(url: str, key: str) -> Any:
    import openalgo

    if openalgo.__version__.startswith("1."):
        import openalgo.feed

        real_sleep = time.sleep
        openalgo.feed.time = types.SimpleNamespace(time=time.time, sleep=lambda s: real_sleep(s / 10))
    client = openalgo.api(api_key=key, host="http://127.0.0.1:5000", ws_url=url)
    if not client.connect():  # it waits for {"type":"auth","status":"success"}
        raise AssertionError(f"the SDK could not connect and authenticate to {url}")
    return client


def instrument(symbol: str, exchange: str = "NSE") -> dict[str, str]:
    return {"exchange": exchange, "symbol": symbol}


# Scenarios ------------------------------------------------------------------------
def both_modes(client: Any, second: str) -> dict[str, Any]:
    """LTP and ``second`` (quote or depth) on one symbol: both callbacks fire, each with its mode's data."""
    calls = Calls()
    rel = [instrument("RELIANCE")]
    assert client.subscribe_ltp(rel, calls.on("ltp"))
    assert getattr(client, f"subscribe_{second}")(rel, calls.on(second))
    wait_for(
        lambda: calls.count()["ltp"] >= 3 and calls.count()[second] >= 3,
        lambda: f"RELIANCE held in LTP and {second}: callbacks {calls.count()} (each mode's should fire)",
    )
    ltp, other = calls.got["ltp"][-1], calls.got[second][-1]
    assert (ltp["symbol"], ltp["exchange"], ltp["mode"]) == ("RELIANCE", "NSE", 1) and ltp["data"]["ltp"] > 0, ltp
    assert other["mode"] == (2 if second == "quote" else 3), other
    if second == "quote":
        assert other["data"]["close"] > 0 and other["data"]["open"] > 0, other
    else:
        depth = other["data"]["depth"]
        assert len(depth["buy"]) == 5 and depth["buy"][0]["price"] < depth["sell"][0]["price"], other
    return calls.count()


def ltp_and_quote(client: Any) -> dict[str, Any]:
    return both_modes(client, "quote")


def ltp_and_depth(client: Any) -> dict[str, Any]:
    return both_modes(client, "depth")


def three_modes(client: Any) -> dict[str, Any]:
    """LTP, Quote and Depth of one symbol (OpenAlgo issue #1664): each callback fires with
    messages of its own mode; dropping Quote leaves LTP and Depth running."""
    calls = Calls()
    sbin = [instrument("SBIN")]
    assert client.subscribe_ltp(sbin, calls.on("ltp"))
    assert client.subscribe_quote(sbin, calls.on("quote"))
    assert client.subscribe_depth(sbin, calls.on("depth"))
    wait_for(lambda: min(calls.count().values()) >= 3, lambda: f"SBIN held in three modes: callbacks {calls.count()}")
    modes = {name: {call["mode"] for call in list(got)} for name, got in calls.got.items()}
    assert modes == {"ltp": {1}, "quote": {2}, "depth": {3}}, modes
    assert "volume" in calls.got["quote"][-1]["data"] and "depth" in calls.got["depth"][-1]["data"]
    assert client.unsubscribe_quote(sbin)
    time.sleep(QUIET / 2)
    before = calls.count()
    wait_for(
        lambda: calls.count()["ltp"] > before["ltp"] + 2 and calls.count()["depth"] > before["depth"] + 2,
        lambda: f"LTP and Depth to go on after unsubscribe_quote: {calls.count()}",
    )
    assert calls.count()["quote"] == before["quote"], "Quote callbacks after unsubscribe_quote"
    return calls.count()


def thousand_and_one(client: Any) -> dict[str, Any]:
    """1,001 instruments in one ``subscribe_ltp`` call: every one of them ticks; one
    ``unsubscribe_ltp`` call stops them all."""
    calls = Calls()
    many = [instrument(f"OAWS{n:04d}") for n in range(1001)]
    assert client.subscribe_ltp(many, calls.on("ltp"))
    wait_for(
        lambda: len(calls.symbols("ltp")) == 1001,
        lambda: f"LTP callbacks of {len(calls.symbols('ltp'))} of the 1,001 instruments subscribed in one call",
        timeout=2 * PATIENCE,
    )
    assert client.unsubscribe_ltp(many)
    time.sleep(QUIET)
    before = calls.count()["ltp"]
    time.sleep(QUIET)
    assert calls.count()["ltp"] == before, f"{calls.count()['ltp'] - before} LTP callbacks after unsubscribing all"
    cached = client.get_ltp()["ltp"].get("NSE", {})
    return {"symbols": len(calls.symbols("ltp")), "cached": len(cached)}


def unsubscribe(client: Any) -> dict[str, Any]:
    """``unsubscribe_ltp`` stops that symbol's LTP callbacks and leaves another symbol's
    Quote running; ``unsubscribe_quote`` then stops that too. The polling caches fill from
    the same messages."""
    calls = Calls()
    assert client.subscribe_ltp([instrument("RELIANCE")], calls.on("ltp"))
    assert client.subscribe_quote([instrument("NIFTY", "NSE_INDEX")], calls.on("quote"))
    assert client.subscribe_depth([instrument("INFY")], calls.on("depth"))
    wait_for(lambda: min(calls.count().values()) >= 2, lambda: f"callbacks {calls.count()}")
    assert client.get_ltp()["ltp"]["NSE"]["RELIANCE"]["ltp"] > 0
    assert client.get_depth()["depth"]["NSE"]["INFY"]["buyBook"]["1"]["price"] > 0
    assert client.unsubscribe_ltp([instrument("RELIANCE")])
    assert client.unsubscribe_depth([instrument("INFY")])
    time.sleep(QUIET / 2)
    before = calls.count()
    wait_for(lambda: calls.count()["quote"] > before["quote"] + 2, lambda: f"Quote to go on: {calls.count()}")
    after = calls.count()
    assert after["ltp"] == before["ltp"], f"LTP callbacks after unsubscribe_ltp: {after['ltp'] - before['ltp']}"
    assert after["depth"] == before["depth"], (
        f"Depth callbacks after unsubscribe_depth: {after['depth'] - before['depth']}"
    )
    assert client.unsubscribe_quote([instrument("NIFTY", "NSE_INDEX")])
    time.sleep(QUIET / 2)
    quote = calls.count()["quote"]
    time.sleep(QUIET)
    assert calls.count()["quote"] == quote, "Quote callbacks after unsubscribe_quote"
    return calls.count()


def place_order() -> str:
    """Place a market order on the server's simulated market with ``oaws sim order`` (the
    command line the test hands over in ``OAWS_ORDER_COMMAND``, a JSON list); its id."""
    out = subprocess.run(json.loads(os.environ["OAWS_ORDER_COMMAND"]), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"oaws sim order failed: {out.stderr.strip()}"
    return json.loads(out.stdout.splitlines()[-1])["orderid"]


def subscribe_orders(client: Any) -> dict[str, Any]:
    """``subscribe_orders`` calls back with each ``order_update`` of a simulated order (open,
    then complete) and ``get_orders`` holds them; after ``unsubscribe_orders`` no more come."""
    updates: list[dict[str, Any]] = []
    assert client.subscribe_orders(updates.append)
    placed: list[str] = []
    for _ in range(5):  # until the proxy's subscription to the order topics reached the feed
        time.sleep(0.3)
        placed.append(place_order())
        try:
            wait_for(lambda: any(u["orderid"] == placed[-1] for u in list(updates)), lambda: "", timeout=2)
            break
        except AssertionError:
            continue
    orderid = placed[-1]
    wait_for(
        lambda: [u["order_status"] for u in list(updates) if u["orderid"] == orderid] == ["open", "complete"],
        lambda: f"open then complete for {orderid}, got {updates}",
    )
    mine = [u for u in updates if u["orderid"] == orderid]
    assert mine[1]["filled_quantity"] == mine[1]["quantity"] > 0 and mine[1]["average_price"] > 0, mine[1]
    assert [u["orderid"] for u in client.get_orders()["orders"][:2]] == [orderid, orderid]
    assert client.unsubscribe_orders()
    time.sleep(QUIET / 2)
    before = len(updates)
    place_order()
    time.sleep(QUIET)
    assert len(updates) == before, f"order updates after unsubscribe_orders: {updates[before:]}"
    return {"updates": len(mine), "keys": sorted(mine[0])}


def wrong_key(url: str) -> dict[str, Any]:
    """A refused key: ``connect`` answers False (the server's typeless error is no ``auth`` reply)."""
    import openalgo

    client = openalgo.api(api_key="wrong", host="http://127.0.0.1:5000", ws_url=url)
    try:
        assert client.connect() is False, "connect() with a wrong key should be False"
    finally:
        client.disconnect()
    return {"connected": False}


SCENARIOS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "ltp_and_quote": ltp_and_quote,
    "ltp_and_depth": ltp_and_depth,
    "three_modes": three_modes,
    "thousand_and_one": thousand_and_one,
    "unsubscribe": unsubscribe,
    "subscribe_orders": subscribe_orders,
}


def run(name: str, url: str, key: str) -> dict[str, Any]:
    import openalgo

    if name == "wrong_key":
        seen = wrong_key(url)
    else:
        client = connect(url, key)
        try:
            seen = SCENARIOS[name](client)
        finally:
            client.disconnect()
    return {"scenario": name, "sdk": openalgo.__version__, "python": sys.version.split()[0], **seen}


def main(argv: list[str]) -> int:
    if len(argv) != 4 or (argv[1] not in SCENARIOS and argv[1] != "wrong_key"):
        names = ", ".join([*SCENARIOS, "wrong_key"])
        print(f"usage: {argv[0]} SCENARIO WS_URL API_KEY (SCENARIO: {names})", file=sys.stderr)
        return 2
    try:
        seen = run(*argv[1:])
    except AssertionError as exc:
        print(f"{argv[1]}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
