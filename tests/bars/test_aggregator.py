"""The bar aggregator against bars worked out by hand.

Every expected number below was worked out on paper from the ticks above it (docs/bars.md
gives the definition): the times are IST wall-clock times, turned into epoch milliseconds
by ``ms`` with the standard library, never by the code under test.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oaws.bars import COLUMNS, Aggregator, Bar, IntervalError, bars_of, iso, parse_interval

IST = timezone(timedelta(hours=5, minutes=30))
DAY = "2026-12-02"
NEXT_DAY = "2026-12-03"


def ms(clock: str, day: str = DAY) -> int:
    """``09:15:20`` or ``09:15:20.250`` on ``day``, IST, as epoch ms."""
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in clock else "%Y-%m-%d %H:%M:%S"
    return int(datetime.strptime(f"{day} {clock}", fmt).replace(tzinfo=IST).timestamp() * 1000)


def tick(
    clock: str,
    ltp: float,
    volume: int | None = None,
    *,
    oi: int | None = None,
    day: str = DAY,
    symbol: str = "RELIANCE",
    exchange: str = "NSE",
    received: str | None = None,
) -> dict[str, Any]:
    """A tick traded at ``clock`` (its ``ltt``), received at ``received`` (default: the same time)."""
    t: dict[str, Any] = {"symbol": symbol, "exchange": exchange, "ltp": ltp, "ltt": ms(clock, day)}
    t["timestamp"] = ms(received, day) if received else t["ltt"]
    if volume is not None:
        t["volume"] = volume
    if oi is not None:
        t["oi"] = oi
    return t


def ohlc(bar: Bar) -> tuple[str, float, float, float, float, int, int]:
    """What a test compares of a bar: start (ISO), open, high, low, close, volume, ticks."""
    return (bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.ticks)


# Buckets, gaps, a day --------------------------------------------------------------------
def test_one_minute_bars_with_a_gap():
    ticks = [
        tick("09:15:05", 100.0, 1000),
        tick("09:15:20", 102.0, 1500),
        tick("09:15:40", 99.0, 1800),
        tick("09:15:59.900", 101.0, 2000),
        tick("09:16:10", 103.0, 2600),
        # nothing traded in 09:17: no bar for it
        tick("09:18:30", 104.0, 3000),
    ]
    bars = bars_of(ticks, "1m")
    assert [ohlc(b) for b in bars] == [
        ("2026-12-02T09:15:00+05:30", 100.0, 102.0, 99.0, 101.0, 2000, 4),
        ("2026-12-02T09:16:00+05:30", 103.0, 103.0, 103.0, 103.0, 600, 1),
        ("2026-12-02T09:18:00+05:30", 104.0, 104.0, 104.0, 104.0, 400, 1),
    ]
    assert all(b.final for b in bars)
    assert [(b.start_ms, b.end_ms) for b in bars] == [
        (ms("09:15:00"), ms("09:16:00")),
        (ms("09:16:00"), ms("09:17:00")),
        (ms("09:18:00"), ms("09:19:00")),
    ]


def test_a_tick_of_the_next_bucket_makes_the_bar_final():
    agg = Aggregator("1m")
    assert agg.add(tick("09:15:05", 100.0, 10)) is None
    assert agg.add(tick("09:15:59.999", 101.0, 25)) is None
    live = agg.live("RELIANCE", "NSE")
    assert live is not None and not live.final
    assert ohlc(live) == ("2026-12-02T09:15:00+05:30", 100.0, 101.0, 100.0, 101.0, 25, 2)
    done = agg.add(tick("09:16:00", 99.5, 40))  # the first millisecond of the next bucket
    assert done is not None and done.final
    assert ohlc(done) == ("2026-12-02T09:15:00+05:30", 100.0, 101.0, 100.0, 101.0, 25, 2)
    forming = agg.live("RELIANCE", "NSE")
    assert forming is not None and not forming.final
    assert ohlc(forming) == ("2026-12-02T09:16:00+05:30", 99.5, 99.5, 99.5, 99.5, 15, 1)


def test_volume_restarts_from_zero_on_a_new_day():
    ticks = [
        tick("15:29:00", 100.0, 4000),
        tick("15:29:50", 100.5, 5000),
        tick("09:15:03", 105.0, 300, day=NEXT_DAY),
        tick("09:15:30", 106.0, 700, day=NEXT_DAY),
    ]
    assert [ohlc(b) for b in bars_of(ticks, "1m")] == [
        ("2026-12-02T15:29:00+05:30", 100.0, 100.5, 100.0, 100.5, 5000, 2),
        ("2026-12-03T09:15:00+05:30", 105.0, 106.0, 105.0, 106.0, 700, 2),
    ]
    assert [ohlc(b) for b in bars_of(ticks, "1d")] == [
        ("2026-12-02T00:00:00+05:30", 100.0, 100.5, 100.0, 100.5, 5000, 2),
        ("2026-12-03T00:00:00+05:30", 105.0, 106.0, 105.0, 106.0, 700, 2),
    ]


def test_volume_is_the_rise_of_the_cumulative_volume_never_negative():
    ticks = [
        tick("09:15:10", 100.0, 1000),
        tick("09:16:10", 100.0, 1200),
        tick("09:16:20", 100.0, 1100),  # a broker's stale cumulative figure: ignored, not subtracted
        tick("09:17:10", 100.0, 1150),  # below what 09:16 reached: the bar traded nothing
        tick("09:18:10", 100.0),  # no volume at all (an LTP tick)
        tick("09:18:20", 100.0, 1500),
    ]
    assert [(b.start, b.volume) for b in bars_of(ticks, "1m")] == [
        ("2026-12-02T09:15:00+05:30", 1000),
        ("2026-12-02T09:16:00+05:30", 200),
        ("2026-12-02T09:17:00+05:30", 0),
        ("2026-12-02T09:18:00+05:30", 300),
    ]


def test_ticks_without_volume_make_bars_of_zero_volume():
    bars = bars_of([tick("09:15:01", 24000.5, exchange="NSE_INDEX", symbol="NIFTY")], "5m")
    assert [(b.symbol, b.exchange, b.volume, b.oi) for b in bars] == [("NIFTY", "NSE_INDEX", 0, None)]


def test_seed_volume_counts_from_what_the_day_traded_before():
    agg = Aggregator("5m")
    agg.seed_volume("RELIANCE", "NSE", ms("10:00:00"), 10_000)
    agg.add(tick("10:01:00", 100.0, 10_400))
    agg.add(tick("10:02:00", 100.0, 10_650))
    (bar,) = agg.flush()
    assert (bar.start, bar.volume) == ("2026-12-02T10:00:00+05:30", 650)


def test_cumulative_volume_given_as_a_float_counts():
    bars = bars_of([tick("09:15:01", 10.0, 100.0), tick("09:15:02", 10.0, 250.0)], "1m")  # type: ignore[arg-type]
    assert [b.volume for b in bars] == [250]


# Order ------------------------------------------------------------------------------------
def test_an_out_of_order_tick_takes_its_place_by_exchange_time():
    agg = Aggregator("1m")
    agg.add(tick("09:15:10", 100.0, 100))
    agg.add(tick("09:15:30", 101.0, 300))
    agg.add(tick("09:15:05", 98.0, 50, received="09:15:31"))  # traded first, arrived third
    bar = agg.live("RELIANCE", "NSE")
    assert bar is not None
    # open is the 09:15:05 trade, close still the 09:15:30 one; volume the highest cumulative figure
    assert ohlc(bar) == ("2026-12-02T09:15:00+05:30", 98.0, 101.0, 98.0, 101.0, 300, 3)
    agg.add(tick("09:15:20", 105.0, 200, received="09:15:32"))
    assert ohlc(bar) == ("2026-12-02T09:15:00+05:30", 98.0, 105.0, 98.0, 101.0, 300, 4)
    assert agg.late == 0


def test_on_equal_exchange_times_the_later_arrival_is_the_later_trade():
    agg = Aggregator("1m")
    agg.add(tick("09:15:10", 100.0))
    agg.add(tick("09:15:10", 97.0))
    (bar,) = agg.flush()
    assert (bar.open, bar.close, bar.low, bar.high) == (100.0, 97.0, 97.0, 100.0)


def test_a_late_tick_changes_nothing_and_is_counted():
    agg = Aggregator("1m")
    agg.add(tick("09:15:10", 100.0, 100))
    done = agg.add(tick("09:16:05", 101.0, 150))
    assert done is not None
    before = ohlc(done)
    assert agg.add(tick("09:15:50", 120.0, 400, received="09:16:06")) is None  # its bar is final
    assert agg.late == 1
    assert ohlc(done) == before == ("2026-12-02T09:15:00+05:30", 100.0, 100.0, 100.0, 100.0, 100, 1)
    live = agg.live("RELIANCE", "NSE")
    assert live is not None
    assert ohlc(live) == ("2026-12-02T09:16:00+05:30", 101.0, 101.0, 101.0, 101.0, 50, 1)


def test_a_tick_of_a_bucket_the_feed_has_moved_past_is_late():
    agg = Aggregator("1m")
    agg.add(tick("09:15:10", 100.0))
    agg.add(tick("09:17:10", 101.0))
    agg.add(tick("09:16:30", 99.0, received="09:17:11"))  # 09:16 had no bar, and 09:17 has begun
    assert agg.late == 1
    assert [b.start for b in [*agg.flush()]] == ["2026-12-02T09:17:00+05:30"]


def test_ticks_without_a_price_or_a_time_are_skipped():
    agg = Aggregator("1m")
    agg.add({"symbol": "RELIANCE", "exchange": "NSE", "ltt": ms("09:15:00")})
    agg.add({"symbol": "RELIANCE", "exchange": "NSE", "ltp": 0.0, "ltt": ms("09:15:00")})  # not traded yet
    agg.add({"symbol": "RELIANCE", "exchange": "NSE", "ltp": 100.0})
    agg.add({"exchange": "NSE", "ltp": 100.0, "ltt": ms("09:15:00")})
    agg.add({"symbol": "RELIANCE", "exchange": "NSE", "ltp": True, "ltt": ms("09:15:00")})
    assert agg.skipped == 5
    assert agg.flush() == []


def test_a_tick_without_ltt_is_bucketed_by_its_receive_time():
    bars = bars_of([{"symbol": "NIFTY", "exchange": "NSE_INDEX", "ltp": 1.0, "timestamp": ms("09:20:30")}], "5m")
    assert [b.start for b in bars] == ["2026-12-02T09:20:00+05:30"]


# OI -----------------------------------------------------------------------------------------
def test_oi_is_the_last_ticks_by_exchange_time():
    kw = {"symbol": "NIFTY26DECFUT", "exchange": "NFO"}
    agg = Aggregator("1m")
    agg.add(tick("09:15:10", 100.0, 10, oi=5000, **kw))
    agg.add(tick("09:15:20", 100.0, 20, oi=5200, **kw))
    agg.add(tick("09:15:15", 100.0, 15, oi=4800, received="09:15:21", **kw))  # earlier trade: not the last
    agg.add(tick("09:15:30", 100.0, 30, oi=5100, **kw))
    agg.add(tick("09:15:40", 100.0, 40, **kw))  # no OI in this one: the last known stays
    (bar,) = agg.flush()
    assert bar.oi == 5100


# Alignment ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("interval", "exchange", "clock", "start", "end"),
    [
        ("1m", "NSE", "09:15:59.999", "09:15:00", "09:16:00"),
        ("3m", "NSE", "09:17:59", "09:15:00", "09:18:00"),
        ("3m", "NSE", "09:18:00", "09:18:00", "09:21:00"),
        ("5m", "NSE", "09:19:59", "09:15:00", "09:20:00"),
        ("10m", "NSE", "09:25:00", "09:25:00", "09:35:00"),
        ("15m", "NFO", "15:29:59", "15:15:00", "15:30:00"),
        ("30m", "BSE", "09:44:59", "09:15:00", "09:45:00"),
        # 60-minute bars of NSE run from the open: 09:15-10:15, ... and 15:15-16:15 holds the close
        ("60m", "NSE", "09:15:00", "09:15:00", "10:15:00"),
        ("60m", "NSE", "10:14:59", "09:15:00", "10:15:00"),
        ("60m", "NSE", "10:15:00", "10:15:00", "11:15:00"),
        ("60m", "NSE", "15:29:00", "15:15:00", "16:15:00"),
        # before the origin: cut at midnight, never reaching into the day before
        ("60m", "NSE", "00:10:00", "00:00:00", "00:15:00"),
        ("60m", "NSE", "08:30:00", "08:15:00", "09:15:00"),
        # MCX, CDS and NCDEX open at 09:00
        ("60m", "MCX", "09:59:59", "09:00:00", "10:00:00"),
        ("60m", "MCX", "23:29:00", "23:00:00", "00:00:00"),
        ("15m", "MCX", "09:14:00", "09:00:00", "09:15:00"),
        ("30m", "CDS", "09:31:00", "09:30:00", "10:00:00"),
        ("60m", "NCDEX", "16:59:00", "16:00:00", "17:00:00"),
        # around the clock: from midnight
        ("60m", "CRYPTO", "00:30:00", "00:00:00", "01:00:00"),
        # the day bar is the calendar day in IST
        ("1d", "NSE", "15:29:00", "00:00:00", "00:00:00"),
        ("1d", "MCX", "23:54:00", "00:00:00", "00:00:00"),
    ],
)
def test_buckets_are_aligned_to_the_session_open(interval, exchange, clock, start, end):
    parsed = parse_interval(interval)
    day, lo, hi = parsed.bucket(ms(clock), exchange)
    assert lo == ms(start)
    assert hi == (ms(end, NEXT_DAY) if end == "00:00:00" else ms(end))
    assert day == (datetime(2026, 12, 2) - datetime(1970, 1, 1)).days
    bar = bars_of([tick(clock, 1.0, exchange=exchange)], interval)[0]
    assert bar.start == f"{DAY}T{start}+05:30"


def test_the_day_bar_of_midnight_belongs_to_the_new_day():
    ticks = [tick("23:59:59", 1.0, 10, exchange="CRYPTO"), tick("00:00:00", 2.0, 3, exchange="CRYPTO", day=NEXT_DAY)]
    assert [(b.start, b.volume) for b in bars_of(ticks, "1d")] == [
        ("2026-12-02T00:00:00+05:30", 10),
        ("2026-12-03T00:00:00+05:30", 3),
    ]


# Finality ------------------------------------------------------------------------------------
def test_the_clock_makes_a_bar_final_after_the_grace():
    agg = Aggregator("1m")  # grace: one second
    agg.add(tick("09:15:10", 100.0, 10))
    assert agg.advance(ms("09:16:00.999")) == []
    (done,) = agg.advance(ms("09:16:01"))
    assert done.final and ohlc(done) == ("2026-12-02T09:15:00+05:30", 100.0, 100.0, 100.0, 100.0, 10, 1)
    assert agg.live("RELIANCE", "NSE") is None
    assert agg.advance(ms("09:20:00")) == []  # once only
    agg.add(tick("09:15:59", 90.0, 20, received="09:16:02"))  # its bucket is final: late
    assert agg.late == 1 and done.low == 100.0


def test_advance_finalises_every_instrument_oldest_first():
    agg = Aggregator("1m", grace_ms=0)
    agg.add(tick("09:16:10", 50.0, symbol="TCS"))
    agg.add(tick("09:15:10", 100.0, symbol="INFY", received="09:15:10"))
    agg.add(tick("09:16:30", 70.0, symbol="SBIN"))
    done = agg.advance(ms("09:17:00"))
    assert [(b.symbol, b.start) for b in done] == [
        ("INFY", "2026-12-02T09:15:00+05:30"),
        ("TCS", "2026-12-02T09:16:00+05:30"),
        ("SBIN", "2026-12-02T09:16:00+05:30"),
    ]


def test_a_tick_received_after_the_grace_finalises_the_bar_it_would_have_joined():
    agg = Aggregator("1m")
    agg.add(tick("09:15:10", 100.0, 10))
    # a quote whose last trade is still the 09:15:10 one, received two minutes on
    done = agg.add(tick("09:15:10", 100.0, 10, received="09:17:10"))
    assert done is not None and done.final and done.ticks == 1
    assert agg.late == 1
    assert agg.live("RELIANCE", "NSE") is None


def test_flush_finalises_what_is_left():
    agg = Aggregator("5m")
    agg.add(tick("09:15:10", 100.0, symbol="A"))
    agg.add(tick("09:21:10", 100.0, symbol="B"))
    done = agg.flush()
    assert [(b.symbol, b.final) for b in done] == [("A", True), ("B", True)]
    assert list(agg.forming()) == []


def test_instruments_are_independent():
    ticks = [
        tick("09:15:10", 100.0, 10, symbol="A"),
        tick("09:15:20", 200.0, 5, symbol="B"),
        tick("09:16:10", 101.0, 30, symbol="A"),  # final: A's 09:15, not B's
        tick("09:15:50", 199.0, 8, symbol="B"),
    ]
    bars = bars_of(ticks, "1m")
    assert [(b.symbol, b.start[11:16], b.close, b.volume) for b in bars] == [
        ("A", "09:15", 100.0, 10),
        ("B", "09:15", 199.0, 8),  # flush: the oldest first
        ("A", "09:16", 101.0, 20),
    ]


# Intervals and output ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "name", "seconds"),
    [
        ("1m", "1m", 60),
        (" 5M ", "5m", 300),
        ("minute", "1m", 60),
        ("15min", "15m", 900),
        ("1h", "60m", 3600),
        ("60m", "60m", 3600),
        ("D", "1d", 86400),
        ("day", "1d", 86400),
    ],
)
def test_intervals_by_any_of_their_names(text, name, seconds):
    parsed = parse_interval(text)
    assert (parsed.name, parsed.seconds, str(parsed)) == (name, seconds, name)
    assert parse_interval(parsed) is parsed


@pytest.mark.parametrize("text", ["7m", "", "1w", "2h", "5 m", "-1m", "one minute"])
def test_an_interval_oaws_does_not_make_is_one_sentence(text):
    with pytest.raises(IntervalError) as caught:
        parse_interval(text)
    message = str(caught.value)
    assert message.startswith("the interval is one of 1m, 3m, 5m, 10m, 15m, 30m, 60m, 1d")
    assert repr(text) in message and "\n" not in message
    with pytest.raises(IntervalError):
        Aggregator(text)


def test_iso_is_exchange_time_with_its_offset():
    assert iso(ms("09:15:00")) == "2026-12-02T09:15:00+05:30"
    assert iso(ms("09:15:00.250")) == "2026-12-02T09:15:00.250+05:30"


def test_the_row_of_a_bar():
    (bar,) = bars_of([tick("09:15:10", 100.0, 10, oi=7, symbol="NIFTY26DECFUT", exchange="NFO")], "1m")
    row = bar.as_dict()
    assert row == {
        "instrument": "NIFTY26DECFUT",
        "exchange": "NFO",
        "interval": "1m",
        "start": "2026-12-02T09:15:00+05:30",
        "open": 100.0,
        "high": 100.0,
        "low": 100.0,
        "close": 100.0,
        "volume": 10,
        "oi": 7,
        "ticks": 1,
        "final": True,
    }
    assert set(COLUMNS) <= set(row)
    assert COLUMNS == ("instrument", "exchange", "start", "open", "high", "low", "close", "volume", "oi", "ticks")


# Properties ----------------------------------------------------------------------------------
#: a trading day of ticks in order: (seconds after 09:15 of the tick, its LTP, the volume it traded)
day_of_ticks = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=6 * 3600),
        st.floats(min_value=1, max_value=1e5, allow_nan=False),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=60,
)
intervals = st.sampled_from(["1m", "3m", "5m", "10m", "15m", "30m", "60m", "1d"])


def _in_order(raw: list[tuple[int, float, int]], days: int = 1) -> list[dict[str, Any]]:
    """``raw`` as ticks in exchange-time order, with a cumulative volume that restarts each day."""
    out = []
    open_ms = ms("09:15:00")
    for d in range(days):
        cum = 0
        for offset, ltp, traded in sorted(raw, key=lambda r: r[0]):
            cum += traded
            at = open_ms + d * 86_400_000 + offset * 1000
            out.append({"symbol": "X", "exchange": "NSE", "ltp": ltp, "ltt": at, "timestamp": at, "volume": cum})
    return out


@settings(max_examples=150, deadline=None)
@given(raw=day_of_ticks, interval=intervals, days=st.integers(min_value=1, max_value=3))
def test_the_bars_of_a_day_add_up_to_its_cumulative_volume(raw, interval, days):
    ticks = _in_order(raw, days)
    bars = bars_of(ticks, interval)
    day_volume = ticks[len(ticks) // days - 1]["volume"]
    by_day: dict[str, int] = {}
    for bar in bars:
        by_day[bar.start[:10]] = by_day.get(bar.start[:10], 0) + bar.volume
    assert list(by_day.values()) == [day_volume] * days
    assert sum(b.ticks for b in bars) == len(ticks)
    starts = [b.start_ms for b in bars]
    assert starts == sorted(set(starts))  # one bar a bucket, none repeated
    for bar in bars:
        assert bar.high >= max(bar.open, bar.close) and bar.low <= min(bar.open, bar.close)
        inside = [t["ltp"] for t in ticks if bar.start_ms <= t["ltt"] < bar.end_ms]
        assert (bar.open, bar.close, bar.high, bar.low) == (inside[0], inside[-1], max(inside), min(inside))


@settings(max_examples=150, deadline=None)
@given(raw=day_of_ticks, interval=intervals, data=st.data())
def test_arrival_order_within_a_bucket_does_not_matter(raw, interval, data):
    # distinct exchange times, so that "first" and "last" by ltt are unambiguous
    unique = list({offset: (offset, ltp, traded) for offset, ltp, traded in raw}.values())
    ticks = _in_order(unique)
    parsed = parse_interval(interval)
    buckets: dict[int, list[dict[str, Any]]] = {}
    for t in ticks:
        buckets.setdefault(parsed.bucket(t["ltt"], "NSE")[1], []).append(t)
    shuffled = []
    for start in sorted(buckets):
        shuffled.extend(data.draw(st.permutations(buckets[start])))

    def rows(stream: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # no receive time: only a tick of a later bucket (or the end) makes a bar final
        return [
            b.as_dict() for b in bars_of([{k: v for k, v in t.items() if k != "timestamp"} for t in stream], parsed)
        ]

    assert rows(shuffled) == rows(ticks)
