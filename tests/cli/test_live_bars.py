"""``oaws tail --bars``: the feed's clock that finalises quiet bars, and its mistakes."""

from __future__ import annotations

from oaws.bars.aggregator import Aggregator
from oaws.cli.live_bars import FeedClock, _seed


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_feed_clock_is_the_newest_ticks_time_moved_on_by_the_time_since():
    mono = Monotonic()
    clock = FeedClock(mono)
    assert clock.now_ms() is None
    clock.saw({"timestamp": 1_000_000, "ltt": 999_000})
    assert clock.now_ms() == 1_000_000
    mono.now += 2.5
    assert clock.now_ms() == 1_002_500
    clock.saw({"timestamp": 1_001_000})  # an older tick (another instrument's, late) does not turn it back
    assert clock.now_ms() == 1_002_500
    clock.saw({"ltt": 1_010_000})  # no timestamp: the exchange's time
    assert clock.now_ms() == 1_010_000


def test_a_quiet_instruments_bar_is_final_by_the_clock():
    agg = Aggregator("1m")
    mono = Monotonic()
    clock = FeedClock(mono)
    at = 1_764_560_100_000
    tick = {"symbol": "RELIANCE", "exchange": "NSE", "ltp": 100.0, "ltt": at, "timestamp": at, "volume": 5000}
    _seed(agg, tick)  # joined in the middle of the day: the first bar counts from here
    clock.saw(tick)
    assert agg.add(tick) is None and agg.add({**tick, "ltp": 101.0, "volume": 5300}) is None
    start = agg.live("RELIANCE", "NSE").start_ms
    mono.now += (start + 60_000 - tick["ltt"]) / 1000  # the bucket's end, not its grace yet
    assert agg.advance(clock.now_ms()) == []
    mono.now += 1.0
    (bar,) = agg.advance(clock.now_ms())
    assert (bar.open, bar.close, bar.volume, bar.final) == (100.0, 101.0, 300, True)


def test_bars_mistakes_are_usage_errors(run):
    code, _, err = run("tail", "RELIANCE:NSE", "--bars", "2m", "--no-autostart", "--url", "ws://127.0.0.1:9")
    assert (
        code == 2
        and err == "oaws: --bars: the interval is one of 1m, 3m, 5m, 10m, 15m, 30m, 60m, 1d (or 1h, D), not '2m'\n"
    )
    code, _, err = run("tail", "RELIANCE:NSE", "--live", "--no-autostart", "--url", "ws://127.0.0.1:9")
    assert code == 2 and err == "oaws: --live goes with --bars INTERVAL (the forming bar of each tick)\n"
    code, _, err = run("tail", "--bars", "1m", "--orders", "--no-autostart", "--url", "ws://127.0.0.1:9")
    assert code == 2 and err == "oaws: --bars prints bars only, not with --orders\n"
