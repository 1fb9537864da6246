"""The simulated market (oaws.brokers.sim.feed): its prices, its ticks and its scheduling."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time

import orjson
import pytest
import zmq
import zmq.asyncio

from oaws.brokers.sim.feed import SimFeed, known_symbols, payload, reference_price
from oaws.brokers.sim.universe import NIFTY50
from oaws.instruments import DEPTH, LTP, QUOTE, Instrument, parse
from oaws.server.bus import FeedHub

RELIANCE = Instrument("RELIANCE", "NSE")
INFY = Instrument("INFY", "NSE")
TCS = Instrument("TCS", "NSE")
NIFTY = Instrument("NIFTY", "NSE_INDEX")
OPTION = Instrument("NIFTY25DEC25900CE", "NFO")
UNKNOWN = Instrument("ZZTOPTRADERS", "NSE")
VARIETY = (
    RELIANCE,
    NIFTY,
    OPTION,
    UNKNOWN,
    Instrument("MARUTI", "NSE"),
    Instrument("SENSEX", "BSE_INDEX"),
    Instrument("CRUDEOIL25DECFUT", "MCX"),
    Instrument("ETERNAL", "BSE"),
)

#: fields that depend on the wall clock or on what else the feed did
CLOCK_FIELDS = ("seq", "ltt", "timestamp", "ts_ns")

LTP_TYPES = {
    "symbol": str,
    "exchange": str,
    "mode": int,
    "seq": int,
    "ltp": float,
    "ltt": int,
    "timestamp": int,
    "ts_ns": int,
}
QUOTE_TYPES = LTP_TYPES | {
    "open": float,
    "high": float,
    "low": float,
    "close": float,
    "volume": int,
    "last_trade_quantity": int,
    "average_price": float,
    "total_buy_quantity": int,
    "total_sell_quantity": int,
    "change": float,
    "change_percent": float,
}
DEPTH_TYPES = QUOTE_TYPES | {
    "last_quantity": int,
    "oi": int,
    "upper_circuit": float,
    "lower_circuit": float,
    "depth": dict,
}
TYPES = {LTP: LTP_TYPES, QUOTE: QUOTE_TYPES, DEPTH: DEPTH_TYPES}
#: Depth's extras (oaws.ticks): the 52-week range of all but an index, the previous OI of a derivative
YEAR_TYPES = {"week_52_high": float, "week_52_low": float}
OI_TYPES = {"prev_oi": int, "oi_change_percent": float}


def types_of(instrument: Instrument, mode: int) -> dict[str, type]:
    if mode < DEPTH or instrument.exchange.endswith("_INDEX"):
        return TYPES[mode]
    return DEPTH_TYPES | YEAR_TYPES | (OI_TYPES if instrument.exchange in ("NFO", "BFO", "MCX", "CDS") else {})


def prices_of(tick: dict) -> list[float]:
    levels = tick["depth"]["buy"] + tick["depth"]["sell"]
    return [tick[k] for k in ("ltp", "open", "high", "low", "close", "upper_circuit", "lower_circuit")] + [
        level["price"] for level in levels
    ]


def on_grid(price: float) -> bool:
    paise = round(price * 100)
    return abs(price * 100 - paise) < 1e-6 and paise % 5 == 0


def path(feed: SimFeed, instrument: Instrument, steps: int) -> list[dict]:
    """The ticks of ``instrument`` without the fields that depend on the clock or on other instruments."""
    return [{k: v for k, v in feed.tick(instrument).items() if k not in CLOCK_FIELDS} for _ in range(steps)]


class Collector:
    """A Publisher that keeps every call."""

    def __init__(self) -> None:
        self.published: list[tuple[Instrument, int, dict]] = []
        self.rejected: list[tuple[Instrument, int, str, str]] = []

    def publish(self, instrument: Instrument, mode: int, payload: bytes) -> None:
        self.published.append((instrument, mode, orjson.loads(payload)))

    def reject(self, instrument: Instrument, mode: int, code: str, message: str) -> None:
        self.rejected.append((instrument, mode, code, message))

    def of(self, instrument: Instrument, mode: int | None = None) -> list[dict]:
        return [t for i, m, t in self.published if i == instrument and (mode is None or m == mode)]


# Prices ---------------------------------------------------------------------------------


def test_every_price_stays_on_the_tick_grid_and_json_has_two_decimals_at_most():
    feed = SimFeed(seed=3)
    for instrument in VARIETY:
        for _ in range(400):
            tick = feed.tick(instrument)
            assert all(on_grid(p) for p in prices_of(tick)), tick
            text = payload(tick, DEPTH).decode()
            body = orjson.loads(text)
            for price in prices_of(body) + [body["average_price"], body["change"], body["change_percent"]]:
                assert len(repr(price).partition(".")[2]) <= 2, (price, text)


def test_built_in_instruments_open_near_real_levels():
    feed = SimFeed(seed=1)
    for instrument, low, high in [
        (RELIANCE, 1300, 1700),
        (Instrument("HDFCBANK", "NSE"), 900, 2000),
        (TCS, 2800, 3500),
        (INFY, 1350, 1700),
        (Instrument("ICICIBANK", "NSE"), 1200, 1500),
        (Instrument("SBIN", "NSE"), 750, 1000),
        (NIFTY, 24000, 28000),
        (Instrument("BANKNIFTY", "NSE_INDEX"), 54000, 62000),
    ]:
        tick = feed.tick(instrument)
        assert low <= tick["close"] <= high, tick
        assert abs(tick["ltp"] / tick["close"] - 1) < 0.05


def test_known_symbols_lists_the_nifty_50_and_the_indices():
    names = known_symbols()
    stocks = [n for n in names if n.endswith(":NSE")]
    assert len(stocks) >= 130 and len(set(stocks)) == len(stocks)
    assert {f"{symbol}:NSE" for symbol in NIFTY50} <= set(stocks)
    assert {
        "NIFTY:NSE_INDEX",
        "BANKNIFTY:NSE_INDEX",
        "FINNIFTY:NSE_INDEX",
        "SENSEX:BSE_INDEX",
        "RELIANCE:NSE",
        "M&M:NSE",
        "BAJAJ-AUTO:NSE",
    } <= set(names)
    for name in names:  # every name is one the command line accepts
        assert str(parse(name)) == name


def test_unknown_symbol_opens_at_a_stable_name_derived_price_in_every_process():
    script = (
        "from oaws.instruments import Instrument; from oaws.brokers.sim.feed import SimFeed;"
        "print(SimFeed().tick(Instrument('ZZTOPTRADERS', 'NSE'))['close'])"
    )
    closes = set()
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        closes.add(float(out.stdout))
    closes.add(SimFeed(seed=5).tick(UNKNOWN)["close"])
    assert closes == {reference_price(UNKNOWN)}
    assert 50 <= reference_price(UNKNOWN) <= 5000
    assert reference_price(Instrument("ZZTOPTRADERS", "BSE")) == reference_price(UNKNOWN)
    assert reference_price(Instrument("OTHERNAME", "NSE")) != reference_price(UNKNOWN)


def test_circuits_are_the_band_around_the_previous_close_and_hold_the_price():
    feed = SimFeed(seed=11)
    for instrument, band in [(RELIANCE, 0.10), (UNKNOWN, 0.20), (OPTION, 0.20)]:
        for _ in range(300):
            tick = feed.tick(instrument)
            assert tick["upper_circuit"] == pytest.approx(tick["close"] * (1 + band), abs=0.05)
            assert tick["lower_circuit"] == pytest.approx(tick["close"] * (1 - band), abs=0.05)
            assert tick["lower_circuit"] <= tick["low"] <= tick["ltp"] <= tick["high"] <= tick["upper_circuit"]


def test_day_figures_add_up_over_trades():
    feed = SimFeed(seed=2)
    first = feed.tick(RELIANCE)
    previous = first
    for _ in range(300):
        tick = feed.tick(RELIANCE)
        assert tick["volume"] == previous["volume"] + tick["last_trade_quantity"]
        assert tick["last_trade_quantity"] >= 1
        assert tick["low"] <= tick["average_price"] <= tick["high"]
        assert tick["high"] >= previous["high"] and tick["low"] <= previous["low"]
        assert tick["open"] == first["open"] and tick["close"] == first["close"]
        assert tick["change"] == pytest.approx(tick["ltp"] - tick["close"], abs=0.005)
        assert tick["change_percent"] == pytest.approx(tick["change"] / tick["close"] * 100, abs=0.006)
        previous = tick
    assert len({t["ltp"] for t in path(feed, RELIANCE, 100)}) > 5  # it does move


# Determinism -----------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_path():
    assert path(SimFeed(seed=42), RELIANCE, 300) == path(SimFeed(seed=42), RELIANCE, 300)
    assert path(SimFeed(seed=42), RELIANCE, 300) != path(SimFeed(seed=43), RELIANCE, 300)


def test_a_path_does_not_depend_on_other_instruments():
    alone = path(SimFeed(seed=9), RELIANCE, 200)
    busy = SimFeed(seed=9)
    for instrument in (INFY, TCS, NIFTY):  # other instruments first, then interleaved
        busy.tick(instrument)
    mixed = []
    for n in range(200):
        for instrument in (INFY, TCS)[: n % 3]:
            busy.tick(instrument)
        mixed += path(busy, RELIANCE, 1)
    assert mixed == alone


def test_without_a_seed_each_feed_seeds_itself():
    a, b = SimFeed(), SimFeed()
    assert a.seed != b.seed
    assert path(SimFeed(seed=a.seed), INFY, 50) == path(a, INFY, 50)


def test_a_fixed_clock_makes_the_whole_tick_reproducible():
    ticks = [[SimFeed(seed=4).tick(RELIANCE, now_ns=1_750_000_000_000_000_000 + n) for n in range(3)] for _ in range(2)]
    assert ticks[0] == ticks[1]
    assert ticks[0][0]["timestamp"] == 1_750_000_000_000 and ticks[0][0]["ts_ns"] == 1_750_000_000_000_000_000
    assert ticks[0][0]["ltt"] < ticks[0][0]["timestamp"]


# The tick of each mode ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [LTP, QUOTE, DEPTH])
@pytest.mark.parametrize("instrument", [RELIANCE, NIFTY, OPTION], ids=str)
def test_each_mode_has_exactly_its_fields_with_the_right_types(instrument, mode):
    feed = SimFeed(seed=1)
    feed.tick(instrument)
    body = orjson.loads(payload(feed.tick(instrument), mode))
    assert set(body) == set(types_of(instrument, mode))
    for name, kind in types_of(instrument, mode).items():
        assert type(body[name]) is kind, (name, body[name])
    assert body["mode"] == mode and body["symbol"] == instrument.symbol and body["exchange"] == instrument.exchange
    assert abs(body["ts_ns"] // 1_000_000 - time.time() * 1000) < 5000
    if mode == DEPTH:
        for side in ("buy", "sell"):
            assert len(body["depth"][side]) == 5
            for level in body["depth"][side]:
                assert set(level) == {"price", "quantity", "orders"}
                assert type(level["price"]) is float and type(level["quantity"]) is int
                assert type(level["orders"]) is int


def test_open_interest_only_on_derivative_exchanges_and_indices_trade_no_volume():
    feed = SimFeed(seed=6)
    for _ in range(20):
        assert feed.tick(OPTION)["oi"] > 0
        assert feed.tick(Instrument("CRUDEOIL25DECFUT", "MCX"))["oi"] > 0
        assert feed.tick(Instrument("SENSEX25DECFUT", "BFO"))["oi"] > 0
        assert feed.tick(RELIANCE)["oi"] == 0
        index = feed.tick(NIFTY)
        assert index["oi"] == index["volume"] == index["last_trade_quantity"] == 0
        assert all(
            level == {"price": 0.0, "quantity": 0, "orders": 0}
            for level in index["depth"]["buy"] + index["depth"]["sell"]
        )


def test_depth_is_sorted_tick_spaced_and_around_the_price():
    feed = SimFeed(seed=8)
    for instrument in (RELIANCE, OPTION, UNKNOWN, Instrument("MARUTI", "NSE"), Instrument("ETERNAL", "NSE")):
        for _ in range(300):
            tick = feed.tick(instrument)
            buy = [level for level in tick["depth"]["buy"] if level["quantity"]]
            sell = [level for level in tick["depth"]["sell"] if level["quantity"]]
            assert buy and sell
            assert buy[0]["price"] < tick["ltp"] <= sell[0]["price"]
            buy_prices = [level["price"] for level in buy]
            sell_prices = [level["price"] for level in sell]
            assert buy_prices == sorted(buy_prices, reverse=True) and len(set(buy_prices)) == len(buy_prices)
            assert sell_prices == sorted(sell_prices) and len(set(sell_prices)) == len(sell_prices)
            assert sell_prices[-1] - buy_prices[-1] < tick["ltp"] * 0.01  # a book, not a spread of prices
            for level in buy + sell:
                assert on_grid(level["price"])
                assert 1 <= level["orders"] <= level["quantity"]


def test_lower_modes_are_a_subset_of_the_depth_tick():
    feed = SimFeed(seed=1)
    state = feed.tick(RELIANCE)
    full = orjson.loads(payload(state, DEPTH))
    assert full == orjson.loads(orjson.dumps(state))
    for mode in (LTP, QUOTE):
        body = orjson.loads(feed.payload(state, mode))
        assert {k: v for k, v in body.items() if k != "mode"} == {k: full[k] for k in body if k != "mode"}


def test_a_bad_rate_is_refused_in_one_sentence():
    for rate in (0, -1.0, float("nan"), "fast"):
        with pytest.raises(ValueError, match="positive number of ticks per second"):
            SimFeed(rate=rate)


# Scheduling --------------------------------------------------------------------------------


async def run_for(feed: SimFeed, seconds: float) -> None:
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_want_publishes_at_once_then_ticks_flow_only_for_wanted_instruments():
    feed, bus = SimFeed(seed=1, rate=200.0), Collector()
    feed.attach(bus)
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(0)
    feed.want(RELIANCE, LTP)
    opened = feed.latest(RELIANCE)
    assert bus.published == []  # not before the subscription is registered
    await asyncio.sleep(0)
    first = bus.of(RELIANCE)[0]
    assert first["seq"] == opened["seq"] and first["ltp"] == opened["ltp"]
    assert first["mode"] == LTP and "volume" not in first
    feed.want(INFY, QUOTE)
    feed.want(INFY, DEPTH)
    await asyncio.sleep(0.3)
    ticks = bus.of(RELIANCE, LTP)
    assert 20 <= len(ticks) <= 120  # ~60 expected at 200/s
    assert all(set(t) == set(LTP_TYPES) for t in ticks)
    assert [t["seq"] for t in ticks] == sorted({t["seq"] for t in ticks})
    quotes, depths = bus.of(INFY, QUOTE), bus.of(INFY, DEPTH)
    assert len(quotes) > 20 and [t["seq"] for t in quotes] == [t["seq"] for t in depths]  # one of each per trade
    assert "depth" in depths[-1] and "depth" not in quotes[-1]
    assert bus.of(TCS) == [] and {i for i, _, _ in bus.published} == {RELIANCE, INFY}

    feed.unwant(RELIANCE, LTP)
    assert feed.status() == {"adapter_status": "connected", "instruments": 1, "rate": 200.0}
    stopped = len(bus.of(RELIANCE))
    infy = len(bus.of(INFY))
    await asyncio.sleep(0.15)
    assert len(bus.of(RELIANCE)) == stopped
    assert len(bus.of(INFY)) > infy
    feed.unwant(INFY, QUOTE)
    feed.unwant(INFY, DEPTH)
    assert feed.wanted == {}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_arrivals_are_irregular_at_the_configured_rate():
    feed, bus = SimFeed(seed=2, rate=100.0), Collector()
    feed.attach(bus)
    feed.want(RELIANCE, LTP)  # before run: scheduled as soon as it starts
    before = time.monotonic()
    await run_for(feed, 0.5)
    stamps = [t["ts_ns"] for t in bus.of(RELIANCE)][1:]
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(stamps)]
    assert 20 <= len(stamps) <= 90  # ~50 expected
    assert max(gaps) > 3 * min(gaps)  # exponential, not a metronome
    assert time.monotonic() - before < 2


async def test_resend_publishes_the_latest_tick_again():
    feed, bus = SimFeed(seed=1, rate=0.01), Collector()  # effectively no trades during the test
    feed.attach(bus)
    feed.want(RELIANCE, QUOTE)
    await asyncio.sleep(0)
    feed.resend(RELIANCE, QUOTE)
    feed.resend(RELIANCE, QUOTE)  # both joiners are served by one publish
    await asyncio.sleep(0)
    first, again = bus.of(RELIANCE, QUOTE)
    assert first == again == orjson.loads(payload(feed.latest(RELIANCE), QUOTE))


async def test_want_then_unwant_before_the_loop_turns_publishes_nothing():
    feed, bus = SimFeed(seed=1), Collector()
    feed.attach(bus)
    feed.want(RELIANCE, LTP)
    feed.unwant(RELIANCE, LTP)
    await asyncio.sleep(0)
    assert bus.published == [] and feed.wanted == {}


async def test_resubscribing_continues_the_same_path_at_the_same_rate():
    feed, bus = SimFeed(seed=1, rate=100.0), Collector()
    feed.attach(bus)
    task = asyncio.create_task(feed.run())
    feed.want(RELIANCE, LTP)
    await asyncio.sleep(0.1)
    feed.unwant(RELIANCE, LTP)
    held = feed.latest(RELIANCE)
    for _ in range(200):  # churn must not leave extra schedules behind
        feed.want(RELIANCE, LTP)
        feed.unwant(RELIANCE, LTP)
    seen = len(bus.of(RELIANCE))
    feed.want(RELIANCE, LTP)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    again = bus.of(RELIANCE)[seen:]
    assert again[0]["seq"] == held["seq"] and again[0]["ltp"] == held["ltp"]  # the held tick, not a new day
    assert 10 <= len(again) <= 60  # ~30 expected at 100/s


async def test_churned_symbols_leave_at_most_a_bounded_number_of_books_behind():
    """Issue 14 item 5: every symbol ever wanted kept its book (about 8 KiB) for good. Books
    of instruments no longer wanted are kept only for the latest ``KEEP_IDLE`` of them (so a
    watchlist switched back goes on where it was); orders on unwanted symbols count too."""
    from oaws.brokers.sim.feed import KEEP_IDLE
    from oaws.protocol.orders import OrderRequest

    feed, bus = SimFeed(seed=1, rate=0.01), Collector()
    feed.attach(bus)
    bus.publish_order = lambda user_id, message: None  # type: ignore[attr-defined]
    for n in range(5_000):
        instrument = Instrument(f"CHURN{n}", "NSE")
        feed.want(instrument, LTP)
        feed.want(instrument, QUOTE)
        await asyncio.sleep(0)  # the held tick goes out
        feed.unwant(instrument, LTP)
        feed.unwant(instrument, QUOTE)
    for n in range(1_000):
        feed.order(OrderRequest("n", "BUY", Instrument(f"ORDERED{n}", "NSE"), 1, 1.0))
    assert len(bus.published) == 10_000
    assert feed.wanted == {} and feed._tokens == {} and len(feed._heap) <= 64
    assert len(feed._books) == len(feed._idle) == KEEP_IDLE
    # a symbol wanted throughout keeps its book whatever churns around it
    feed.want(RELIANCE, LTP)
    held = feed.latest(RELIANCE)
    for n in range(2 * KEEP_IDLE):
        feed.tick(Instrument(f"OTHER{n}", "NSE"))
    assert feed.latest(RELIANCE) is held and len(feed._books) == KEEP_IDLE + 1


async def test_five_hundred_instruments_all_tick_at_their_rate():
    feed, bus = SimFeed(seed=1, rate=2.0), Collector()
    feed.attach(bus)
    instruments = [Instrument(f"SYM{n}", "NSE") for n in range(500)]
    for instrument in instruments:
        feed.want(instrument, LTP)
    await asyncio.sleep(0)
    bus.published.clear()
    await run_for(feed, 1.0)
    assert 700 <= len(bus.published) <= 1300  # ~1000 expected
    assert len({i for i, _, _ in bus.published}) > 400


# Through the real bus ------------------------------------------------------------------------


async def test_a_real_subscriber_gets_ticks_through_the_feed_hub_until_it_unsubscribes():
    ctx = zmq.asyncio.Context()
    feed = SimFeed(seed=1, rate=50.0)
    hub = FeedHub(feed, "tcp://127.0.0.1:*", ctx=ctx)
    hub_task = asyncio.create_task(hub.run())
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    try:
        sub.connect(hub.endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, b"NSE_RELIANCE_LTP")
        async with asyncio.timeout(5):
            topic, body = await sub.recv_multipart()
        tick = orjson.loads(body)
        assert topic == b"NSE_RELIANCE_LTP"
        assert tick["symbol"] == "RELIANCE" and tick["exchange"] == "NSE" and type(tick["ltp"]) is float
        assert feed.wanted == {RELIANCE: {LTP}}

        sub.setsockopt(zmq.UNSUBSCRIBE, b"NSE_RELIANCE_LTP")
        async with asyncio.timeout(5):
            while feed.wanted:
                await asyncio.sleep(0.01)
        assert feed.status()["instruments"] == 0
        seq = feed.seq
        await asyncio.sleep(0.1)
        assert feed.seq == seq  # no more trades for nobody
    finally:
        hub_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hub_task
        sub.close(0)
        ctx.term()
