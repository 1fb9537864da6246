"""The simulated market's history against its live ticks, on a fixed clock (no I/O)."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from oaws import sessions
from oaws.bars.aggregator import Bar, Interval, parse_interval
from oaws.brokers.api import HistoryError
from oaws.brokers.sim.feed import SimFeed
from oaws.config import IST
from oaws.instruments import Instrument

RELIANCE = Instrument("RELIANCE", "NSE")
DAY_MS = 86400000


def at(*fields: int) -> float:
    return datetime(*fields, tzinfo=IST).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def feed(now: float, seed: int = 7) -> tuple[SimFeed, Clock]:
    clock = Clock(now)
    return SimFeed(seed=seed, hours="exchange", clock=clock), clock


def day_of(bar: Bar) -> str:
    return bar.start[:10]


@pytest.fixture(autouse=True, scope="module")
def calendar() -> None:
    sessions.load()


def test_yesterdays_daily_close_is_the_live_ticks_previous_close_and_today_opens_at_its_open():
    # Monday 28 December 2026, 11:00 IST: Friday was Christmas, a holiday; Thursday the last session
    sim, clock = feed(at(2026, 12, 28, 11, 0))
    tick = sim.tick(RELIANCE)
    days = sim.history(RELIANCE, parse_interval("1d"), int(at(2026, 12, 14) * 1000), int(clock.now * 1000))
    assert [day_of(b) for b in days][-3:] == ["2026-12-23", "2026-12-24", "2026-12-28"]
    yesterday, today = days[-2], days[-1]
    assert yesterday.close == tick["close"]
    assert yesterday.final and not today.final
    assert today.open == tick["open"]
    # no bars on weekends or the holiday
    assert not {"2026-12-19", "2026-12-20", "2026-12-25", "2026-12-26", "2026-12-27"} & {day_of(b) for b in days}
    # each day opens near the close before it (an overnight gap, not a jump)
    for before, after in itertools.pairwise(days):
        assert abs(after.open / before.close - 1) < 0.03


def test_intraday_bars_are_aligned_to_the_session_open_and_stop_at_now():
    sim, clock = feed(at(2026, 12, 28, 11, 0))
    sim.tick(RELIANCE)
    start = int(at(2026, 12, 24) * 1000)
    hours = sim.history(RELIANCE, parse_interval("60m"), start, int(clock.now * 1000) + 1)
    thursday = [b.start[11:16] for b in hours if day_of(b) == "2026-12-24"]
    assert thursday == ["09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"]
    monday = [b for b in hours if day_of(b) == "2026-12-28"]
    assert [b.start[11:16] for b in monday] == ["09:15", "10:15"]
    assert monday[0].final and not monday[-1].final
    fives = sim.history(RELIANCE, parse_interval("5m"), start, int(clock.now * 1000) + 1)
    assert all(b.start_ms % 300000 == 15 * 60000 % 300000 for b in fives)
    assert max(b.start_ms for b in fives) <= clock.now * 1000
    # the bars of every interval agree: an hour is its twelve five-minute bars
    first_hour = [b for b in fives if b.start_ms < hours[0].end_ms and day_of(b) == "2026-12-24"]
    assert len(first_hour) == 12
    assert hours[0].open == first_hour[0].open and hours[0].close == first_hour[-1].close
    assert hours[0].high == max(b.high for b in first_hour) and hours[0].low == min(b.low for b in first_hour)
    assert hours[0].volume == sum(b.volume for b in first_hour)
    for bar in fives:
        assert isinstance(bar.volume, int) and bar.volume > 0
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert round(bar.close * 20, 6) == round(bar.close * 20)  # on the 0.05 grid


def test_history_is_the_same_for_the_same_seed_and_differs_for_another():
    one, clock = feed(at(2026, 12, 28, 11, 0))
    two, _ = feed(at(2026, 12, 28, 11, 0))
    other, _ = feed(at(2026, 12, 28, 11, 0), seed=8)
    span = (int(at(2026, 11, 1) * 1000), int(clock.now * 1000))
    first = [b.as_dict() for b in one.history(RELIANCE, parse_interval("15m"), *span)]
    assert first == [b.as_dict() for b in two.history(RELIANCE, parse_interval("15m"), *span)]
    assert first != [b.as_dict() for b in other.history(RELIANCE, parse_interval("15m"), *span)]


def test_when_a_new_session_opens_the_day_before_closes_at_the_new_previous_close():
    sim, clock = feed(at(2026, 12, 28, 11, 0))
    for _ in range(50):
        sim.tick(RELIANCE)
    clock.now = at(2026, 12, 29, 9, 20)
    sim.follow_session(clock.now)
    tick = sim.tick(RELIANCE)
    days = sim.history(RELIANCE, parse_interval("1d"), int(at(2026, 12, 20) * 1000), int(clock.now * 1000))
    assert [day_of(b) for b in days][-2:] == ["2026-12-28", "2026-12-29"]
    assert days[-2].close == tick["close"]
    assert days[-1].open == tick["open"]


def test_an_index_has_candles_without_volume_and_a_missing_interval_is_one_sentence():
    sim, clock = feed(at(2026, 12, 28, 11, 0))
    nifty = Instrument("NIFTY", "NSE_INDEX")
    bars = sim.history(nifty, parse_interval("30m"), int(at(2026, 12, 28) * 1000), int(clock.now * 1000))
    assert [b.start[11:16] for b in bars] == ["09:15", "09:45", "10:15", "10:45"]
    assert all(b.volume == 0 for b in bars)
    with pytest.raises(HistoryError, match="no 2m candles"):
        sim.history(nifty, Interval("2m", 120), 0, 1)


def test_an_instrument_the_market_does_not_list_is_one_sentence():
    sim = SimFeed(seed=1, any_symbol=False)
    with pytest.raises(HistoryError, match="does not list NOSUCH"):
        sim.history(Instrument("NOSUCH", "NSE"), parse_interval("1d"), 0, DAY_MS)
