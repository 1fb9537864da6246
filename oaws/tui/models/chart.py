"""The chart view's model: one instrument's bars (history joined to live ones) and their drawing.

No Textual here, as in the rest of ``oaws.tui.models``: the chart is described as rows of
``(text, style name)`` pieces that ``oaws.tui.chart`` turns into strips, so every decision
(which bars, which rows, which characters) is tested without a terminal.

The bars are ``oaws.bars.aggregator``'s, the one definition of a bar in oaws:

- **History** (the broker's candles, fetched in the background) is kept up to the first
  bucket the live ticks reached; from that bucket on, the bars built from the ticks seen
  since the chart opened replace it and extend it. The first live bucket began before the
  chart opened, so its bar takes the history's open and the wider of the two ranges, and
  its volume counts from the day's history volume before it (``seed_volume``): what the
  day had traded by then, not zero.
- **Live**: every tick of the instrument goes to an ``Aggregator`` (a few operations); only
  the forming bar changes per tick. The ticks are kept (compactly), so a new interval
  buckets them again at once.

**Drawing** (``draw``): one bar a column, the technique of terminal candlestick tools: a
heavy vertical line for the body, a light one for the wicks, each cell split in an upper
and a lower half (``╽ ╿ ╻ ╹ ╷ ╵``), so prices resolve to half a row. Up bars (close at or
above open) in one colour, down bars in the other; the volume histogram below in eighths of
a cell (``▁▂▃▄▅▆▇█``); a price axis on the right with a few round values, the last price and
the previous close (a dashed line across the chart); a time axis in exchange time (IST).
The columns of bars that did not change are reused while the scale stays the same.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from oaws.bars.aggregator import INTERVALS, IST_OFFSET, Aggregator, Bar, Interval, parse_interval
from oaws.config import IST
from oaws.instruments import Instrument
from oaws.sessions import bar_origin
from oaws.tui.models.columns import Piece, group_digits, price_text

#: the intervals the chart offers, in order: keys 1..8 choose them, [ and ] step through them
CHART_INTERVALS: tuple[str, ...] = tuple(INTERVALS)
DEFAULT_INTERVAL = "5m"
#: days of history asked for: for intraday bars the last few calendar days, so that a chart
#: opened before the open, on a weekend or a holiday shows the last session rather than
#: nothing (the drawing keeps the newest bars that fit); about half a year of day bars
INTRADAY_DAYS = 5
DAILY_DAYS = 120
#: ticks kept for re-bucketing on an interval change (about a day of a busy instrument)
KEPT_TICKS = 200_000

LOADING, READY, UNAVAILABLE = "loading", "ready", "unavailable"

#: a cell's (upper half, lower half) -> its character; 0 nothing, 1 wick, 2 body
CANDLE = {
    (0, 0): " ", (2, 2): "┃", (0, 2): "╻", (2, 0): "╹", (1, 1): "│",
    (1, 2): "╽", (2, 1): "╿", (0, 1): "╷", (1, 0): "╵",
}  # fmt: skip
#: eighths of a cell, for the volume histogram
EIGHTHS = " ▁▂▃▄▅▆▇█"
PREV_LINE = "╌"


def days_for(interval: Interval) -> int:
    return DAILY_DAYS if interval.daily else INTRADAY_DAYS


def join(history: list[Bar], live: list[Bar]) -> list[Bar]:
    """History up to the first live bucket, then the live bars. The first live bar began
    before the ticks seen: it takes the history's open of that bucket and the wider range."""
    if not live:
        return list(history)
    first = live[0]
    kept = [b for b in history if b.start_ms < first.start_ms]
    same = next((b for b in history if b.start_ms == first.start_ms), None)
    if same is not None:
        first = replace(first, open=same.open, high=max(first.high, same.high), low=min(first.low, same.low))
    return [*kept, first, *live[1:]]


def seed_of(history: list[Bar], first_ms: float, interval: Interval, exchange: str) -> int:
    """What the day of ``first_ms`` traded before its bucket, by the history: the volume the
    first live bar counts from."""
    day, start, _ = interval.bucket(first_ms, exchange)
    return sum(b.volume for b in history if b.start_ms < start and interval.bucket(b.start_ms, exchange)[0] == day)


class ChartModel:
    """The bars of one instrument at one interval, and what the view says about them.

    ``version`` grows on every change the view must show; the view redraws only then.
    """

    def __init__(self, instrument: Instrument, interval: str = DEFAULT_INTERVAL) -> None:
        self.instrument = instrument
        self.interval = parse_interval(interval)
        #: (ltp, ltt, timestamp, volume, oi) of every tick seen, for re-bucketing
        self.ticks: deque[tuple[Any, Any, Any, Any, Any]] = deque(maxlen=KEPT_TICKS)
        #: history by interval name, as the broker gave it (oldest first)
        self.histories: dict[str, list[Bar]] = {}
        #: the history's state by interval name: LOADING, READY or UNAVAILABLE
        self.states: dict[str, str] = {}
        #: why there is no history, by interval name (one sentence)
        self.reasons: dict[str, str] = {}
        #: the latest tick's figures
        self.last: dict[str, Any] = {}
        self.version = 0
        self._agg = Aggregator(self.interval)
        #: final live bars, oldest first
        self._final: list[Bar] = []
        self._seeded = False

    # Data ------------------------------------------------------------------------
    @property
    def history(self) -> list[Bar]:
        return self.histories.get(self.interval.name, [])

    @property
    def state(self) -> str:
        return self.states.get(self.interval.name, LOADING)

    @property
    def reason(self) -> str:
        return self.reasons.get(self.interval.name, "")

    def add(self, data: Mapping[str, Any]) -> None:
        """One tick of the instrument (the hot path: a tuple kept, the aggregator fed)."""
        self.ticks.append((data.get("ltp"), data.get("ltt"), data.get("timestamp"), data.get("volume"), data.get("oi")))
        self.last = data  # type: ignore[assignment]
        self._feed(data)
        self.version += 1

    def _feed(self, data: Mapping[str, Any]) -> None:
        if not self._seeded:
            self._seed(data)
        done = self._agg.add(data)
        if done is not None:
            self._final.append(done)

    def _seed(self, data: Mapping[str, Any]) -> None:
        """Before the first tick goes in: what the day had traded before its bucket (by the history)."""
        at = data.get("ltt") or data.get("timestamp")
        if not isinstance(at, (int, float)):
            return
        self._seeded = True
        exchange = self.instrument.exchange
        day = self.interval.bucket(at, exchange)[0]
        has_day = self.state == READY and any(
            self.interval.bucket(b.start_ms, exchange)[0] == day for b in self.history
        )
        if has_day or self.interval.daily:  # a day bar's volume is the day's, known from any tick
            seed = seed_of(self.history, at, self.interval, exchange)
        else:
            # no history of the ticks' day (none yet, or the history ends a session before):
            # the first bar counts from the chart's first tick, not from the day's start, which
            # would dwarf every other bar (the history's arrival rebuilds it)
            volume = data.get("volume")
            seed = volume if isinstance(volume, int) and not isinstance(volume, bool) else 0
        self._agg.seed_volume(self.instrument.symbol, self.instrument.exchange, at, seed)

    def _rebuild(self) -> None:
        """The live bars again from the ticks kept: after a new interval or newly arrived history."""
        self._agg = Aggregator(self.interval)
        self._final = []
        self._seeded = False
        symbol, exchange = self.instrument.symbol, self.instrument.exchange
        for ltp, ltt, ts, volume, oi in self.ticks:
            self._feed({"symbol": symbol, "exchange": exchange, "ltp": ltp, "ltt": ltt, "timestamp": ts,
                        "volume": volume, "oi": oi})  # fmt: skip
        self.version += 1

    def set_interval(self, name: str) -> bool:
        """Bucket at ``name`` from now on; False when it is the interval already."""
        interval = parse_interval(name)
        if interval == self.interval:
            return False
        self.interval = interval
        self._rebuild()
        return True

    def step(self, delta: int) -> str:
        """The next coarser (+1) or finer (-1) interval's name, at the ends the end one."""
        at = CHART_INTERVALS.index(self.interval.name)
        return CHART_INTERVALS[max(0, min(len(CHART_INTERVALS) - 1, at + delta))]

    def loading(self, name: str) -> None:
        self.states[name] = LOADING
        self.version += 1

    def history_arrived(self, name: str, bars: Iterable[Bar]) -> None:
        self.histories[name] = sorted(bars, key=lambda b: b.start_ms)
        self.states[name] = READY
        self.reasons.pop(name, None)
        if name == self.interval.name:
            self._rebuild()  # the first live bar now counts its volume from the day's history
        self.version += 1

    def history_failed(self, name: str, reason: str) -> None:
        self.states[name] = UNAVAILABLE
        self.reasons[name] = reason
        self.version += 1

    def live(self) -> list[Bar]:
        """The bars built from ticks, the forming one last."""
        forming = self._agg.live(self.instrument.symbol, self.instrument.exchange)
        if forming is None:
            return list(self._final)
        if self.interval.daily:
            forming = self._whole_day(forming)
        return [*self._final, forming]

    def _whole_day(self, bar: Bar) -> Bar:
        """Today's bar as the ticks' day figures say (open, high, low since the open), not only
        since the chart opened."""
        day = self.last
        o, h, low = day.get("open"), day.get("high"), day.get("low")
        if not all(isinstance(v, (int, float)) and v > 0 for v in (o, h, low)):
            return bar
        return replace(bar, open=float(o), high=max(bar.high, float(h)), low=min(bar.low, float(low)))  # type: ignore[arg-type]

    def bars(self) -> list[Bar]:
        return join(self.history, self.live())

    @property
    def previous_close(self) -> float | None:
        close = self.last.get("close")
        return float(close) if isinstance(close, (int, float)) and close > 0 else None


# Drawing -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Scale:
    """Prices ``low``..``high`` over ``rows`` rows, each of two halves."""

    low: float
    high: float
    rows: int

    def half(self, value: float) -> int:
        """The half-row of ``value``: 0 the top half of the top row, ``2 * rows - 1`` the bottom one's lower half."""
        span = self.high - self.low
        at = math.floor((self.high - value) / span * 2 * self.rows) if span > 0 else self.rows
        return max(0, min(2 * self.rows - 1, at))

    def row(self, value: float) -> int:
        return self.half(value) // 2


def scale_for(bars: list[Bar], rows: int, previous_close: float | None = None) -> Scale:
    """The price range of ``bars`` (and the previous close, so that its line is on the chart)."""
    lows = [b.low for b in bars]
    highs = [b.high for b in bars]
    if previous_close is not None:
        lows.append(previous_close)
        highs.append(previous_close)
    if not lows:
        return Scale(0.0, 1.0, max(1, rows))
    low, high = min(lows), max(highs)
    if high <= low:  # one price only: a little room either side
        pad = max(0.05, abs(low) * 0.001)
        low, high = low - pad, high + pad
    return Scale(low, high, max(1, rows))


def candle_column(bar: Bar, scale: Scale) -> list[str]:
    """The characters of ``bar``'s column, top row first."""
    wick_top, wick_bottom = scale.half(bar.high), scale.half(bar.low)
    body_top, body_bottom = scale.half(max(bar.open, bar.close)), scale.half(min(bar.open, bar.close))
    out = []
    for row in range(scale.rows):
        halves = []
        for h in (2 * row, 2 * row + 1):
            halves.append(2 if body_top <= h <= body_bottom else 1 if wick_top <= h <= wick_bottom else 0)
        out.append(CANDLE[halves[0], halves[1]])
    return out


def volume_column(volume: int, most: int, rows: int) -> list[str]:
    """The volume histogram's column, top row first: eighths of a cell, at least one for any volume."""
    if rows <= 0:
        return []
    level = round(volume / most * rows * 8) if most > 0 else 0
    if volume > 0:
        level = max(1, level)
    return [EIGHTHS[max(0, min(8, level - 8 * k))] for k in range(rows - 1, -1, -1)]


def nice_step(span: float, count: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``count`` labels over ``span``."""
    if span <= 0 or count <= 0:
        return 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def time_labels(bars: list[Bar], interval: Interval, exchange: str, gap: int = 8) -> list[tuple[int, str]]:
    """(column, text) of the time axis, exchange time: a round time every ``gap`` columns or
    more, the date where a new day starts (for day bars: the month where one starts)."""
    out: list[tuple[int, str]] = []
    free = 0
    minutes = interval.seconds // 60
    steps = [s for s in (5, 10, 15, 30, 60, 75, 90, 120, 150, 180, 375) if s % minutes == 0]
    step = next((s for s in steps if s // minutes >= gap), None)
    origin = bar_origin(exchange)
    previous: datetime | None = None
    for column, bar in enumerate(bars):
        at = datetime.fromtimestamp(bar.start_ms / 1000, IST)
        if interval.daily:
            new = previous is None or at.month != previous.month
            text = at.strftime("%Y" if at.month == 1 else "%b")
        else:
            new_day = previous is not None and at.date() != previous.date()
            since = ((bar.start_ms // 1000 + IST_OFFSET) % 86400 - origin) // 60
            new = new_day or previous is None or (step is not None and since % step == 0)
            text = at.strftime("%d %b") if new_day else at.strftime("%H:%M")
        previous = at
        if new and column >= free:
            out.append((column, text))
            free = column + len(text) + 2
    return out


@dataclass(slots=True)
class Frame:
    """What ``draw`` made: the rows of pieces, and the facts the tests and the title use."""

    lines: list[list[Piece]]
    shown: list[Bar]
    scale: Scale | None
    volume_rows: int


class Drawing:
    """``draw`` with a memory: the columns of bars that did not change are reused while the scale holds."""

    def __init__(self, grouping: str = "indian") -> None:
        self.grouping = grouping
        self._scale: Scale | None = None
        self._candles: dict[tuple, list[str]] = {}
        #: columns worked out (not reused) since made: for the tests of the cache
        self.computed = 0

    def _candle(self, bar: Bar, scale: Scale) -> list[str]:
        if scale != self._scale:
            self._scale, self._candles = scale, {}
        key = (bar.start_ms, bar.open, bar.high, bar.low, bar.close)
        column = self._candles.get(key)
        if column is None:
            column = self._candles[key] = candle_column(bar, scale)
            self.computed += 1
        return column

    def draw(
        self,
        bars: list[Bar],
        width: int,
        height: int,
        *,
        previous_close: float | None = None,
        last: float | None = None,
        interval: Interval | None = None,
        exchange: str = "NSE",
    ) -> Frame:
        """The chart of ``bars`` in ``width`` x ``height`` cells: price rows, a volume
        histogram under them and the time axis at the bottom; the latest bars that fit."""
        g = self.grouping
        prices = [b.high for b in bars[-max(1, width) :]] + [b.low for b in bars[-max(1, width) :]]
        if previous_close is not None:
            prices.append(previous_close)
        axis = max([len(price_text(p, g)) for p in prices] or [6]) + 3
        columns = max(1, width - axis)
        shown = bars[-columns:]
        volume_rows = max(2, height // 5) if height >= 10 else (1 if height >= 6 else 0)
        rows = max(1, height - volume_rows - 1 - (1 if volume_rows else 0))
        scale = scale_for(shown, rows, previous_close)
        lines: list[list[Piece]] = []
        candles = [self._candle(b, scale) for b in shown]
        styles = ["up" if b.close >= b.open else "down" for b in shown]
        prev_row = scale.row(previous_close) if previous_close is not None else None
        labels = self._price_labels(scale, previous_close, last)
        pad = columns - len(shown)
        for y in range(rows):
            pieces: list[Piece] = []
            line = prev_row == y
            blank = PREV_LINE if line else " "
            if pad:
                pieces.append((blank * pad, "prev" if line else "plain"))
            for column, style in zip(candles, styles, strict=True):
                ch = column[y]
                if ch == " ":
                    _append(pieces, blank, "prev" if line else "plain")
                else:
                    _append(pieces, ch, style)
            text, style = labels.get(y, ("", "axis"))
            pieces.append(("┤" if text else "│", "axis"))
            pieces.append(((" " + text).ljust(axis - 1)[: axis - 1], style))
            lines.append(pieces)
        if volume_rows:
            most = max((b.volume for b in shown), default=0)
            volumes = [volume_column(b.volume, most, volume_rows) for b in shown]
            lines.append([("─" * columns, "axis"), ("┤", "axis"), (" vol".ljust(axis - 1), "label")])
            for y in range(volume_rows):
                pieces = [(" " * pad, "plain")] if pad else []
                for column, style in zip(volumes, styles, strict=True):
                    _append(pieces, column[y], f"vol-{style}")
                top = y == 0 and most > 0
                pieces.append(("│", "axis"))
                pieces.append(
                    ((" " + _count(most, g)).ljust(axis - 1)[: axis - 1] if top else " " * (axis - 1), "axis")
                )
                lines.append(pieces)
        axis_line = [" "] * (columns + axis)  # a label of the last bars may reach under the price axis
        if interval is not None:
            for column, text in time_labels(shown, interval, exchange):
                at = pad + column
                if at + len(text) <= len(axis_line):
                    axis_line[at : at + len(text)] = text
        lines.append([("".join(axis_line), "axis")])
        return Frame(lines[:height], shown, scale, volume_rows)

    def _price_labels(self, scale: Scale, previous_close: float | None, last: float | None) -> dict[int, Piece]:
        """Row -> (text, style) of the price axis: round values, the previous close and the last price over them."""
        g = self.grouping
        labels: dict[int, Piece] = {}
        step = nice_step(scale.high - scale.low, max(1, scale.rows // 3))
        value = math.ceil(scale.low / step) * step
        while value <= scale.high + 1e-9:
            row = scale.row(value)
            if all(abs(row - r) > 1 for r in labels):
                labels[row] = (price_text(value, g), "axis")
            value += step
        if previous_close is not None:
            row = scale.row(previous_close)
            for r in (row - 1, row + 1):
                labels.pop(r, None)
            labels[row] = (price_text(previous_close, g), "prev")
        if last is not None:
            row = scale.row(last)
            for r in (row - 1, row + 1):
                if labels.get(r, ("", ""))[1] == "axis":
                    labels.pop(r)
            style = "last-up" if previous_close is None or last >= previous_close else "last-down"
            labels[row] = (price_text(last, g), style)
        return labels


def _append(pieces: list[Piece], text: str, style: str) -> None:
    """Add a character to the row, joining it to the last piece when the style is the same."""
    if pieces and pieces[-1][1] == style:
        pieces[-1] = (pieces[-1][0] + text, style)
    else:
        pieces.append((text, style))


def _count(value: int, grouping: str) -> str:
    return group_digits(int(value), grouping)
