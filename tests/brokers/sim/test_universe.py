"""The simulated market serves what it lists and refuses the rest (issue 19, defect 2): a
typo or an index on the wrong exchange is SYMBOL_NOT_FOUND, an index's other names price as
the index, and ``--any-symbol`` brings back a market of every symbol."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from oaws.brokers.api import Rejection
from oaws.brokers.sim import make_feed
from oaws.brokers.sim.feed import SimFeed
from oaws.brokers.sim.options import option_contracts
from oaws.brokers.sim.universe import black_scholes, canonical, listed, reference
from oaws.instruments import DEPTH, QUOTE, Instrument
from oaws.names import today
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from tests.brokers.sim.test_feed import Collector

#: an option of each kind the calendar lists today (the nearest expiry, a strike near the money)
LISTED = {
    u: next(f"{c.symbol}:{c.exchange}" for c in option_contracts(u, today()) if c.right == r and c.strike == k)
    for u, r, k in (("NIFTY", "CE", 26000), ("RELIANCE", "PE", 1500), ("SENSEX", "CE", 84000))
}
NIFTY = Instrument("NIFTY", "NSE_INDEX")
NIFTY_50 = Instrument("NIFTY 50", "NSE_INDEX")


@pytest.mark.parametrize(
    "name",
    [
        "RELIANCE:NSE",
        "RELIANCE:BSE",
        "IRCTC:NSE",
        "NIFTY:NSE_INDEX",
        "NIFTY 50:NSE_INDEX",
        "INDIA VIX:NSE_INDEX",
        "SENSEX:BSE_INDEX",
        "NIFTY30DEC25FUT:NFO",
        LISTED["NIFTY"],
        LISTED["RELIANCE"],
        LISTED["SENSEX"],
        "CRUDEOIL19DEC25FUT:MCX",
        "USDINR26DEC2588.5CE:CDS",
        "GUARSEED10:NCDEX",
        "BTCUSDT:CRYPTO",
    ],
)
def test_the_market_lists_its_stocks_indices_and_their_derivatives(name):
    symbol, exchange = name.rsplit(":", 1)
    assert listed(Instrument(symbol, exchange))


@pytest.mark.parametrize(
    "name",
    [
        "FOOBAR:NSE",
        "NIFTY:NSE",
        "RELIANCE:NSE_INDEX",
        "FOOBAR30DEC25FUT:NFO",
        "RELIANCE:MCX",
        "GOLD:NSE",
        # options the calendar does not list: expired, not an expiry day, off the strike grid,
        # on the wrong exchange, a stock without options here
        "NIFTY30DEC2526000CE:NFO",
        "RELIANCE30DEC251500PE:NFO",
        "SENSEX24DEC2580000CE:BFO",
        LISTED["NIFTY"].replace("26000CE", "26010CE"),
        LISTED["NIFTY"].replace(":NFO", ":BFO"),
        LISTED["NIFTY"].replace("NIFTY", "IRCTC").replace("26000CE", "700CE"),
    ],
)
def test_a_typo_or_an_instrument_on_the_wrong_exchange_is_not_listed(name):
    symbol, exchange = name.rsplit(":", 1)
    assert not listed(Instrument(symbol, exchange))


def test_check_refuses_what_is_not_listed_with_symbol_not_found():
    feed = SimFeed(seed=1, any_symbol=False)
    feed.check(Instrument("RELIANCE", "NSE"))
    with pytest.raises(Rejection) as refused:
        feed.check(Instrument("NIFTY", "NSE"))
    assert refused.value.code == "SYMBOL_NOT_FOUND"
    assert "does not list NIFTY:NSE" in refused.value.message and "--any-symbol" in refused.value.message
    SimFeed(seed=1, any_symbol=True).check(Instrument("FOOBAR", "NSE"))  # any symbol: no refusal


def test_the_product_refuses_unlisted_symbols_unless_told(monkeypatch):
    monkeypatch.delenv("OAWS_SIM_ANY_SYMBOL", raising=False)
    monkeypatch.setenv("OAWS_CONFIG", "/nonexistent/config.toml")
    assert make_feed({"rate": 3.0, "hours": "always"}).any_symbol is False
    assert make_feed({"rate": 3.0, "hours": "always", "any_symbol": True}).any_symbol is True
    monkeypatch.setenv("OAWS_SIM_ANY_SYMBOL", "1")
    assert make_feed({"rate": 3.0, "hours": "always"}).any_symbol is True


def test_an_index_alias_is_the_index_and_mirrors_its_ticks():
    assert canonical(NIFTY_50) == NIFTY and canonical(Instrument("nifty  bank", "NSE_INDEX")).symbol == "BANKNIFTY"
    assert reference(NIFTY_50) == reference(NIFTY)
    feed = SimFeed(seed=5)
    bus = Collector()
    feed.attach(bus)
    feed.want(NIFTY, QUOTE)
    feed.want(NIFTY_50, QUOTE)
    for now in range(1, 40):
        feed._fire_due(float(now))
    index = [t["ltp"] for t in bus.of(NIFTY, QUOTE)]
    alias = [t for t in bus.of(NIFTY_50, QUOTE)]
    assert len(index) > 10
    assert all(t["symbol"] == "NIFTY 50" for t in alias)
    # the alias gets the index's every tick (after the latest one it was sent on subscribing)
    assert [t["ltp"] for t in alias][-len(index) + 1 :] == index[1:]
    # the alias alone keeps the index ticking; with neither, nothing is wanted
    feed.unwant(NIFTY, QUOTE)
    assert QUOTE in feed.wanted[NIFTY]
    feed.unwant(NIFTY_50, QUOTE)
    assert NIFTY not in feed.wanted


def test_an_alias_wanted_at_another_mode_does_not_drop_the_index_s_own():
    feed = SimFeed(seed=5)
    feed.attach(Collector())
    feed.want(NIFTY, QUOTE)
    feed.want(NIFTY_50, DEPTH)
    feed.unwant(NIFTY_50, DEPTH)
    assert feed.wanted[NIFTY] == {QUOTE}


def test_options_open_at_black_scholes_prices_that_keep_put_call_parity():
    symbol = LISTED["NIFTY"].removesuffix("CE:NFO")
    call = reference(Instrument(f"{symbol}CE", "NFO"))
    put = reference(Instrument(f"{symbol}PE", "NFO"))
    assert call is not None and put is not None and call > 0 and put > 0
    # a textbook value: S = K = 100, a year, 20 % volatility, 5 %: the call is 10.45
    assert black_scholes("CE", 100, 100, 1.0, 0.2, 0.05) == pytest.approx(10.4506, abs=1e-3)
    assert black_scholes("PE", 100, 100, 1.0, 0.2, 0.05) == pytest.approx(5.5735, abs=1e-3)


async def test_a_client_of_the_sim_gets_symbol_not_found_for_a_typo_and_prices_for_the_rest(monkeypatch):
    monkeypatch.delenv("OAWS_SIM_ANY_SYMBOL", raising=False)
    service = Service(ServeSettings(port=0, bus="tcp://127.0.0.1:*", feed={"seed": 7, "rate": 20.0, "hours": "always"}))
    await service.start()
    try:
        async with connect(service.url) as ws:
            await ws.send(json.dumps({"action": "authenticate", "api_key": "any"}))
            symbols = [{"symbol": "FOOBAR", "exchange": "NSE"}, {"symbol": "NIFTY 50", "exchange": "NSE_INDEX"}]
            await ws.send(json.dumps({"action": "subscribe", "symbols": symbols, "mode": "Quote"}))
            refused, priced = None, None
            async with asyncio.timeout(10):
                while refused is None or priced is None:
                    message = json.loads(await ws.recv())
                    if message.get("code") == "SYMBOL_NOT_FOUND" or (
                        message.get("type") == "subscribe"
                        and "FOOBAR" in json.dumps(message)
                        and "error" in json.dumps(message)
                    ):
                        refused = message
                    if message.get("type") == "market_data" and message["symbol"] == "NIFTY 50":
                        priced = message["data"]["ltp"]
        assert "FOOBAR" in json.dumps(refused)
        assert abs(priced - reference(NIFTY)) / reference(NIFTY) < 0.05
    finally:
        await service.stop()
