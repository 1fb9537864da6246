"""The chart's model: history joined to live bars, the first live bar's volume, a new interval,
the bars that fit a width, the previous-close line and how prices map to rows (worked out by hand)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from oaws.bars.aggregator import Bar, parse_interval
from oaws.config import IST
from oaws.instruments import Instrument
from oaws.tui.models.chart import (
    PREV_LINE,
    READY,
    UNAVAILABLE,
    ChartModel,
    Drawing,
    Scale,
    candle_column,
    join,
    time_labels,
    volume_column,
)

REL = Instrument("RELIANCE", "NSE")


def at(hhmm: str, second: int = 0) -> int:
    """Epoch ms of 25 Nov 2025 at ``hhmm`` IST."""
    h, m = map(int, hhmm.split(":"))
    return int(datetime(2025, 11, 25, h, m, second, tzinfo=IST).timestamp() * 1000)


def bar(hhmm: str, o: float, h: float, low: float, c: float, volume: int = 0, interval: str = "5m") -> Bar:
    start = at(hhmm)
    return Bar(
        "RELIANCE", "NSE", interval, start, start + parse_interval(interval).seconds * 1000, o, h, low, c, volume
    )


def tick(hhmm: str, second: int, ltp: float, volume: int, close: float = 100.0) -> dict:
    ms = at(hhmm, second)
    return {"symbol": "RELIANCE", "exchange": "NSE", "ltp": ltp, "ltt": ms, "timestamp": ms + 20,
            "volume": volume, "close": close}  # fmt: skip


HISTORY = [
    bar("09:15", 100, 102, 99, 101, 1000),
    bar("09:20", 101, 103, 100, 102, 2000),
    bar("09:25", 102, 104, 101.5, 103, 500),  # the bucket the chart opened in: as far as the broker had it
]


def test_history_is_kept_up_to_the_first_live_bucket_and_that_bar_takes_its_open():
    live = [bar("09:25", 103.5, 103.8, 101.0, 103.2, 900), bar("09:30", 103.2, 105, 103, 104.5, 300)]
    joined = join(HISTORY, live)
    assert [(b.start_ms, b.open, b.high, b.low, b.close, b.volume) for b in joined] == [
        (at("09:15"), 100, 102, 99, 101, 1000),
        (at("09:20"), 101, 103, 100, 102, 2000),
        (at("09:25"), 102, 104, 101.0, 103.2, 900),  # open of the history, high and low the wider, the live close
        (at("09:30"), 103.2, 105, 103, 104.5, 300),
    ]
    assert join(HISTORY, []) == HISTORY


def live_model(history_first: bool) -> ChartModel:
    model = ChartModel(REL, "5m")
    ticks = [tick("09:26", 0, 103.5, 3700), tick("09:27", 0, 103.8, 3900), tick("09:31", 0, 104.0, 4100)]
    if history_first:
        model.history_arrived("5m", HISTORY)
    for t in ticks:
        model.add(t)
    if not history_first:
        model.history_arrived("5m", HISTORY)
    return model


def test_the_first_live_bar_counts_its_volume_from_the_days_history_before_it():
    # 1000 + 2000 traded before 09:25 by the history; the day's total was 3900 at 09:27: 900 in the bar
    for history_first in (True, False):  # history that comes after the ticks rebuilds the bars
        bars = live_model(history_first).bars()
        assert [(b.start_ms, b.volume) for b in bars] == [
            (at("09:15"), 1000),
            (at("09:20"), 2000),
            (at("09:25"), 900),
            (at("09:30"), 200),
        ], history_first
        assert (bars[2].open, bars[2].high, bars[2].low, bars[2].close) == (102, 104, 101.5, 103.8)


def test_without_history_the_first_bar_counts_from_the_charts_first_tick():
    model = ChartModel(REL, "5m")
    for t in (tick("09:26", 0, 103.5, 3700), tick("09:27", 0, 103.8, 3900)):
        model.add(t)
    model.history_failed("5m", "the broker keeps no history")
    (only,) = model.bars()
    assert (only.open, only.close, only.volume) == (103.5, 103.8, 200)
    assert model.state == UNAVAILABLE and model.reason == "the broker keeps no history"


def test_history_that_ends_a_session_before_the_ticks_day_does_not_seed_their_first_bar():
    # the history is of the day before (a chart opened before the day's history exists): the
    # first live bar counts from the chart's first tick, not the day's 3700 from its start
    yesterday = [replace(b, start_ms=b.start_ms - 86_400_000, end_ms=b.end_ms - 86_400_000) for b in HISTORY]
    model = ChartModel(REL, "5m")
    model.history_arrived("5m", yesterday)
    for t in (tick("09:26", 0, 103.5, 3700), tick("09:27", 0, 103.8, 3900)):
        model.add(t)
    assert [b.volume for b in model.bars()] == [1000, 2000, 500, 200]


def test_a_new_interval_buckets_the_ticks_seen_again():
    model = ChartModel(REL, "5m")
    for t in (
        tick("09:16", 0, 100, 10),
        tick("09:18", 0, 101, 20),
        tick("09:21", 0, 99, 30),
        tick("09:26", 0, 102, 45),
    ):
        model.add(t)
    assert [(b.start_ms, b.open, b.close) for b in model.bars()] == [
        (at("09:15"), 100, 101), (at("09:20"), 99, 99), (at("09:25"), 102, 102)
    ]  # fmt: skip
    version = model.version
    assert model.set_interval("1m") and model.version > version
    assert [b.start_ms for b in model.bars()] == [at("09:16"), at("09:18"), at("09:21"), at("09:26")]
    assert model.set_interval("15m")
    (one,) = model.bars()
    assert (one.start_ms, one.open, one.high, one.low, one.close, one.volume) == (at("09:15"), 100, 102, 99, 102, 35)
    assert not model.set_interval("15m")
    assert model.step(1) == "30m" and model.step(-1) == "10m"
    model.set_interval("1d")
    assert model.step(1) == "1d"  # the end stays the end


def test_history_of_another_interval_is_kept_for_it_alone():
    model = ChartModel(REL, "5m")
    model.history_arrived("15m", [bar("09:15", 1, 2, 0.5, 1.5, interval="15m")])
    assert model.history == [] and model.state != READY
    model.set_interval("15m")
    assert model.state == READY and len(model.history) == 1


def test_the_previous_close_is_the_ticks_close():
    model = ChartModel(REL)
    assert model.previous_close is None
    model.add(tick("09:16", 0, 101, 10, close=99.5))
    assert model.previous_close == 99.5


def test_prices_map_to_half_rows_top_down():
    scale = Scale(100.0, 110.0, 10)
    assert scale.half(110) == 0 and scale.row(110) == 0
    assert scale.half(100) == 19 and scale.row(100) == 9  # the lowest price in the bottom half of the last row
    assert scale.half(105) == 10 and scale.row(105) == 5
    assert scale.half(107.5) == 5 and scale.row(107.5) == 2
    assert scale.half(120) == 0 and scale.half(90) == 19  # clamped


def test_a_candle_is_a_heavy_body_between_light_wicks_to_half_a_row():
    scale = Scale(100.0, 110.0, 5)  # each half row is 1.0
    # high 110 -> half 0, close 108 -> 2, open 102 -> 8, low 100 -> 9
    assert candle_column(bar("09:15", 102, 110, 100, 108), scale) == ["│", "┃", "┃", "┃", "╿"]
    # a body from a lower half: 109.5 -> half 0, close 107 -> 3 (row 1's lower), open 105 -> 5 (row 2's lower)
    assert candle_column(bar("09:15", 105, 109.5, 105, 107), scale) == ["│", "╽", "┃", " ", " "]
    # and to an upper half: open 106 -> 4 (row 2's upper)
    assert candle_column(bar("09:15", 106, 107, 106, 107), scale) == [" ", "╻", "╹", " ", " "]
    assert candle_column(bar("09:15", 101, 101, 101, 101), scale)[-1] == "╻"  # a doji: half a row of body


def test_volume_bars_are_eighths_and_any_volume_shows():
    assert volume_column(50, 100, 2) == [" ", "█"]
    assert volume_column(100, 100, 2) == ["█", "█"]
    assert volume_column(75, 100, 2) == ["▄", "█"]
    assert volume_column(1, 1000, 2) == [" ", "▁"]
    assert volume_column(0, 1000, 2) == [" ", " "]


def test_the_time_axis_labels_round_times_from_the_open_in_exchange_time():
    bars = [bar(f"{9 + (15 + 5 * i) // 60:02d}:{(15 + 5 * i) % 60:02d}", 1, 1, 1, 1) for i in range(14)]
    assert time_labels(bars, parse_interval("5m"), "NSE") == [(0, "09:15"), (12, "10:15")]


def many(n: int) -> list[Bar]:
    """``n`` one-minute bars from 09:15, a column each."""
    out = []
    for i in range(n):
        p = 100 + i % 7
        start = at("09:15") + i * 60_000
        out.append(Bar("RELIANCE", "NSE", "1m", start, start + 60_000, p, p + 1, p - 1, p + 0.5, 10 + i))
    return out


def test_more_bars_than_columns_shows_the_latest_that_fit():
    bars = many(100)
    frame = Drawing().draw(bars, 40, 20)
    # prices of 6 characters (107.00) and 3 for the axis's line and margin: 31 columns of bars
    assert frame.shown == bars[-31:]
    assert all(sum(len(text) for text, _ in line) == 40 for line in frame.lines)
    assert len(frame.lines) == 20


def test_the_previous_close_is_a_labelled_line_across_the_empty_cells():
    bars = [bar("09:15", 102, 110, 100, 108)]
    frame = Drawing().draw(bars, 20, 12, previous_close=104.0)
    row = frame.scale.row(104.0)
    line = frame.lines[row]
    text = "".join(t for t, _ in line)
    assert text.startswith(PREV_LINE * 5) and "104.00" in text
    assert ("104.00", "prev") in [(t.strip(), s) for t, s in line]
    # 6-character prices: an axis of 9, 11 columns, the one bar in the last: its cell is the candle's
    assert text[10] == "┃" and text[:10] == PREV_LINE * 10


def test_only_the_changed_bar_is_worked_out_again_while_the_scale_holds():
    bars = many(20)
    drawing = Drawing()
    drawing.draw(bars, 60, 20)
    first = drawing.computed
    assert first == 20
    bars[-1].close = bars[-1].open  # the forming bar moved within the range
    drawing.draw(bars, 60, 20)
    assert drawing.computed == first + 1


def test_a_day_bar_takes_the_days_figures_and_volume_from_the_ticks():
    model = ChartModel(REL, "1d")
    first = {**tick("11:00", 0, 103.0, 50_000), "open": 100.0, "high": 104.0, "low": 99.0}
    model.add(first)
    model.add({**tick("11:01", 0, 104.5, 51_000), "open": 100.0, "high": 104.5, "low": 99.0})
    model.history_failed("1d", "none")
    (today,) = model.bars()
    # the day's open, high and low since 09:15, and the day's whole volume (a day bar starts at midnight)
    assert (today.open, today.high, today.low, today.close, today.volume) == (100.0, 104.5, 99.0, 104.5, 51_000)
