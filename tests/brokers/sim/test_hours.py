"""The simulated market's hours: quiet while an exchange is closed, a new day when it opens;
its 52-week range and previous OI (Depth's extras)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from oaws.brokers import sim
from oaws.brokers.api import FeedError
from oaws.brokers.sim.feed import SimFeed
from oaws.config import IST
from oaws.instruments import DEPTH, Instrument
from tests.brokers.sim.test_feed import Collector
from tests.helpers import eventually

RELIANCE = Instrument("RELIANCE", "NSE")
NIFTY = Instrument("NIFTY", "NSE_INDEX")
OPTION = Instrument("NIFTY26DEC26000CE", "NFO")
FUTURE = Instrument("CRUDEOIL26DECFUT", "MCX")
BITCOIN = Instrument("BTCUSD", "CRYPTO")  # trades around the clock: the test's pacemaker


class Clock:
    """A wall clock that stands still until a test moves it."""

    def __init__(self, *when: int) -> None:
        self.now = 0.0
        self.set(*when)

    def set(self, *when: int) -> None:
        self.now = datetime(*when, tzinfo=IST).timestamp()

    def __call__(self) -> float:
        return self.now


def ms(*when: int) -> int:
    return int(datetime(*when, tzinfo=IST).timestamp() * 1000)


def test_a_closed_exchange_gives_its_last_session_with_that_sessions_close_as_ltt():
    clock = Clock(2026, 12, 6, 2, 0)  # Sunday night
    feed = SimFeed(seed=1, hours="exchange", clock=clock)
    tick = feed.tick(RELIANCE)
    assert tick["ltt"] == ms(2026, 12, 4, 15, 30)  # Friday's close: a client sees that date
    assert tick["timestamp"] == ms(2026, 12, 6, 2, 0)
    assert feed.tick(BITCOIN)["ltt"] > ms(2026, 12, 6, 1, 59)
    # on Christmas morning MCX's last session is Thursday's evening one
    clock.set(2026, 12, 25, 10, 0)
    assert SimFeed(seed=1, hours="exchange", clock=clock).tick(FUTURE)["ltt"] == ms(2026, 12, 24, 23, 55)


def test_when_the_session_opens_a_new_day_starts_from_the_last_close():
    clock = Clock(2026, 12, 24, 20, 0)  # Thursday evening; Christmas, then the weekend
    feed, bus = SimFeed(seed=2, hours="exchange", clock=clock), Collector()
    feed.attach(bus)
    for instrument in (RELIANCE, OPTION, NIFTY):
        feed.want(instrument, DEPTH)
    last = {i: feed.latest(i) for i in (RELIANCE, OPTION, NIFTY)}
    feed._fire_due(1e9)  # every instrument is due: closed, each waits for its open instead of trading
    assert feed.latest(RELIANCE)["seq"] == last[RELIANCE]["seq"]
    assert feed.follow_session() == 0
    clock.set(2026, 12, 28, 9, 5)  # Monday's pre-open: still quiet
    assert feed.follow_session() == 0
    clock.set(2026, 12, 28, 9, 15)
    assert feed.follow_session() == 3
    for instrument in (RELIANCE, OPTION, NIFTY):
        day = bus.of(instrument, DEPTH)[-1]
        assert day["close"] == last[instrument]["ltp"]  # the previous close is the last price
        assert day["ltp"] == day["open"] == day["high"] == day["low"]
        assert day["ltt"] >= ms(2026, 12, 28, 9, 15) - 40
        if instrument != NIFTY:
            assert day["volume"] < last[instrument]["volume"]  # a day that has just begun
            assert day["week_52_low"] <= day["low"] <= day["high"] <= day["week_52_high"]
    option = bus.of(OPTION, DEPTH)[-1]
    assert option["prev_oi"] == last[OPTION]["oi"] and option["oi_change_percent"] == 0.0


async def test_a_closed_market_sends_one_snapshot_then_ticks_again_when_it_opens():
    clock = Clock(2026, 12, 28, 8, 0)  # Monday before the pre-open
    feed, bus = SimFeed(seed=3, rate=200.0, hours="exchange", clock=clock), Collector()
    feed.attach(bus)
    task = asyncio.create_task(feed.run())
    try:
        feed.want(RELIANCE, DEPTH)
        feed.want(BITCOIN, DEPTH)

        async def quiet_while_bitcoin_trades(what: str) -> int:
            held, paced = len(bus.of(RELIANCE)), len(bus.of(BITCOIN))
            await eventually(lambda: len(bus.of(BITCOIN)) > paced + 20, what="bitcoin's ticks")
            assert len(bus.of(RELIANCE)) == held, what
            return held

        await eventually(lambda: bus.of(RELIANCE), what="RELIANCE's snapshot")
        assert await quiet_while_bitcoin_trades("closed") == 1
        assert bus.of(RELIANCE)[0]["ltt"] == ms(2026, 12, 24, 15, 30)
        clock.set(2026, 12, 28, 9, 10)
        await quiet_while_bitcoin_trades("pre-open")
        clock.set(2026, 12, 28, 9, 15)
        await eventually(lambda: len(bus.of(RELIANCE)) > 20, what="RELIANCE's ticks after the open")
        assert bus.of(RELIANCE)[1]["close"] == bus.of(RELIANCE)[0]["ltp"]
        clock.set(2026, 12, 28, 15, 30)
        await quiet_while_bitcoin_trades("after the close")  # the first tick due sees the close
        await quiet_while_bitcoin_trades("after the close, still")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_the_52_week_range_holds_the_days_range_and_oi_change_is_against_the_previous_oi():
    feed = SimFeed(seed=5)
    for instrument in (RELIANCE, OPTION, FUTURE, Instrument("ZZTOP", "BSE")):
        for _ in range(500):
            tick = feed.tick(instrument)
            assert tick["week_52_low"] <= tick["low"] <= tick["high"] <= tick["week_52_high"]
            assert tick["week_52_low"] < tick["close"] < tick["week_52_high"]
        if instrument.exchange in ("NFO", "MCX"):
            assert tick["prev_oi"] > 0
            assert tick["oi_change_percent"] == round((tick["oi"] - tick["prev_oi"]) / tick["prev_oi"] * 100, 2)
        else:
            assert "prev_oi" not in tick and "oi_change_percent" not in tick
    index = feed.tick(NIFTY)
    assert not {"week_52_high", "week_52_low", "prev_oi"} & set(index)


def test_the_price_path_is_the_one_it_was_before_the_new_fields():
    # the 52-week range and previous OI come from a generator of their own: a seed gives the
    # same market as before they existed (the figures are those of the feed without them)
    for instrument, ltp, oi in ((RELIANCE, 1464.05, 0), (OPTION, 736.6, 657157)):
        feed = SimFeed(seed=42)
        for _ in range(100):
            tick = feed.tick(instrument, now_ns=10**18)
        assert (tick["ltp"], tick["oi"]) == (ltp, oi)


def test_the_hours_come_from_the_option_the_environment_or_the_config_file(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(config))
    monkeypatch.delenv("OAWS_SIM_HOURS")
    assert sim.hours({}) == "exchange"  # the default: the exchanges' sessions
    config.write_text('sim_hours = "always"\n')
    assert sim.hours({}) == "always"
    monkeypatch.setenv("OAWS_SIM_HOURS", "exchange")
    assert sim.hours({}) == "exchange"
    assert sim.hours({"hours": "always"}) == "always"  # --always-open
    assert sim.make_feed({"hours": None}).hours == "exchange"
    monkeypatch.setenv("OAWS_SIM_HOURS", "weekends")
    with pytest.raises(FeedError, match="exchange or always, not 'weekends'"):
        sim.make_feed({})
    with pytest.raises(ValueError, match="hours"):
        SimFeed(hours="sometimes")
