"""Bars from ticks: the one definition every part of oaws uses (no I/O).

``oaws bars``, ``oaws tail --bars``, the watch's chart and ``oaws.bars.from_recording`` all
build their bars here, so any two of them agree on the same ticks. The definition
(docs/bars.md):

- **Buckets.** Time bars of 1, 3, 5, 10, 15, 30 and 60 minutes and 1 day, bucketed by the
  tick's exchange time (``ltt``; its receive ``timestamp`` when it has none) in exchange
  time (IST). Intraday buckets are aligned to the session's open
  (``oaws.sessions.bar_origin``: 09:15 for NSE and BSE equities and F&O, 09:00 for MCX,
  CDS and NCDEX, midnight for around-the-clock markets), so a 60-minute NSE bar runs
  09:15-10:15 and the last one of the day 15:15-16:15, which holds the quarter hour to
  the close (the session's end does not cut a bucket; it is final by the clock at 16:15).
  A bucket never crosses midnight IST: one before the origin is cut at 00:00. A
  day bar is the IST calendar day and starts at 00:00 (as the brokers' day candles do).
- **Prices.** open = the first LTP in the bucket, high = the highest, low = the lowest,
  close = the last, first and last by exchange time (a tick that arrives late but within
  its bucket takes its place by ``ltt``; on equal times the later arrival is the later).
- **Volume** = the increase of the day's cumulative ``volume`` from the last tick before
  the bucket to the last tick in it; the first bucket of a day counts from zero (unless
  ``seed_volume`` says what the day had traded before it). It is never negative.
  ``oi`` = the last tick's open interest (None when the ticks carry none).
- **Gaps.** A bucket with no tick is absent, not a repeated bar.
- **Final.** A bar is final when a tick of a later bucket of its instrument arrives, or
  when the feed's clock (a tick's ``timestamp``, or ``advance``) passes the bucket's end by
  ``grace_ms`` (a second: exchange times lag the receive time by a few tens of
  milliseconds); before that it is live and may still change. A tick of a bucket already
  final is late: it changes nothing and is counted in ``late``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from oaws.sessions import bar_origin

#: IST's offset from UTC in seconds (India keeps no daylight saving time)
IST_OFFSET = 19800
DAY = 86400
_IST = timezone(timedelta(seconds=IST_OFFSET), "IST")

#: the intervals, by their canonical names, in seconds
INTERVALS: dict[str, int] = {
    "1m": 60, "3m": 180, "5m": 300, "10m": 600, "15m": 900, "30m": 1800, "60m": 3600, "1d": DAY,
}  # fmt: skip
#: other spellings a user may give (OpenAlgo's ``1h`` and ``D``, Kite's ``minute`` and ``day``...)
ALIASES: dict[str, str] = {
    "1h": "60m", "1hr": "60m", "60min": "60m", "hour": "60m", "d": "1d", "day": "1d", "1day": "1d",
    "minute": "1m", "1min": "1m", "3min": "3m", "5min": "5m", "10min": "10m", "15min": "15m", "30min": "30m",
}  # fmt: skip
#: how long after a bucket's end (by the feed's clock) its bar is final
GRACE_MS = 1000


class IntervalError(ValueError):
    """Not an interval oaws makes bars of; the message is one sentence for the user."""


@dataclass(frozen=True, slots=True)
class Interval:
    #: the canonical name: ``1m`` ... ``60m``, ``1d``
    name: str
    seconds: int

    @property
    def daily(self) -> bool:
        return self.seconds >= DAY

    def bucket(self, ms: float, exchange: str) -> tuple[int, int, int]:
        """(IST day number, start ms, end ms) of the bucket holding the time ``ms`` on ``exchange``."""
        local = int(ms // 1000) + IST_OFFSET
        day, t = divmod(local, DAY)
        if self.seconds >= DAY:
            start, end = 0, DAY
        else:
            origin = bar_origin(exchange)
            k = (t - origin) // self.seconds
            start = max(0, origin + k * self.seconds)
            end = min(DAY, origin + (k + 1) * self.seconds)
        base = (day * DAY - IST_OFFSET) * 1000
        return day, base + start * 1000, base + end * 1000

    def __str__(self) -> str:
        return self.name


def parse_interval(text: str | Interval) -> Interval:
    """``5m``, ``1h``, ``D``... as an Interval; IntervalError (one sentence) for anything else."""
    if isinstance(text, Interval):
        return text
    key = str(text).strip().lower()
    key = ALIASES.get(key, key)
    seconds = INTERVALS.get(key)
    if seconds is None:
        raise IntervalError(f"the interval is one of {', '.join(INTERVALS)} (or 1h, D), not {text!r}")
    return Interval(key, seconds)


def iso(ms: int) -> str:
    """A time (epoch ms) as ISO 8601 in exchange time: ``2026-12-02T09:15:00+05:30``."""
    at = datetime.fromtimestamp(ms / 1000, _IST)
    return at.isoformat(timespec="seconds" if ms % 1000 == 0 else "milliseconds")


@dataclass(slots=True)
class Bar:
    """One bar of one instrument. ``start_ms`` and ``end_ms`` bound its bucket (epoch ms)."""

    symbol: str
    exchange: str
    interval: str
    start_ms: int
    end_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: int = 0
    oi: int | None = None
    ticks: int = 0
    final: bool = False

    @property
    def start(self) -> str:
        return iso(self.start_ms)

    def as_dict(self) -> dict[str, Any]:
        """The row of ``oaws bars`` and the JSON line of ``oaws tail --bars``."""
        return {
            "instrument": self.symbol,
            "exchange": self.exchange,
            "interval": self.interval,
            "start": iso(self.start_ms),
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "oi": self.oi,
            "ticks": self.ticks,
            "final": self.final,
        }


#: the columns of ``oaws bars`` (csv, parquet), in order
COLUMNS: tuple[str, ...] = (
    "instrument", "exchange", "start", "open", "high", "low", "close", "volume", "oi", "ticks",
)  # fmt: skip


class _Forming:
    """An instrument's bar in the making, and what the next bucket needs of the day."""

    __slots__ = ("bar", "base", "close_ltt", "cum", "day", "final_end", "open_ltt")

    def __init__(self) -> None:
        self.bar: Bar | None = None
        self.day = -1
        #: the day's cumulative volume at the last tick before the live bucket
        self.base = 0
        #: the highest cumulative volume seen in the live bucket (it only grows in a day)
        self.cum = 0
        self.open_ltt = 0.0
        self.close_ltt = 0.0
        #: where the last final bar's bucket ended (ms): a tick before it is late
        self.final_end = 0


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


def _count(value: Any) -> int | None:
    """A quantity (cumulative volume, OI) as an int: JSON's ``1234`` or ``1234.0``; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return int(value)
    return None


class Aggregator:
    """Bars of one interval for any number of instruments, tick by tick.

    ``add(tick)`` takes a tick (SPEC §2's dict, any mode) and returns the bar of its
    instrument it made final, if any; ``live(symbol, exchange)`` is the bar still forming;
    ``advance(now_ms)`` finalises the bars whose bucket the clock has passed; ``flush()``
    finalises the rest (the end of a recording).
    """

    def __init__(self, interval: str | Interval, grace_ms: int = GRACE_MS) -> None:
        self.interval = parse_interval(interval)
        self.grace_ms = grace_ms
        self._forming: dict[tuple[str, str], _Forming] = {}
        #: ticks that came after their bucket's bar was final (changed nothing)
        self.late = 0
        #: ticks without a usable price (none, or 0: not traded yet) or time (changed nothing)
        self.skipped = 0

    def seed_volume(self, symbol: str, exchange: str, day_ms: float, cumulative: int) -> None:
        """What ``symbol`` had traded on the day of ``day_ms`` before the first tick to come
        (the sum of its history's bars), so that a live bar joined to history counts from there."""
        state = self._forming.setdefault((symbol, exchange), _Forming())
        day, _, _ = self.interval.bucket(day_ms, exchange)
        if state.bar is None or state.day != day:
            state.day, state.base, state.cum = day, int(cumulative), int(cumulative)

    def live(self, symbol: str, exchange: str) -> Bar | None:
        state = self._forming.get((symbol, exchange))
        return state.bar if state is not None else None

    def add(self, tick: Mapping[str, Any]) -> Bar | None:
        ltp = _number(tick.get("ltp"))
        at = _number(tick.get("ltt")) or _number(tick.get("timestamp"))
        symbol, exchange = tick.get("symbol"), tick.get("exchange")
        # an LTP of 0 is a contract that has not traded yet (brokers send it so), not a price
        if not ltp or not at or not isinstance(symbol, str) or not isinstance(exchange, str):
            self.skipped += 1
            return None
        key = (symbol, exchange)
        state = self._forming.get(key)
        if state is None:
            state = self._forming[key] = _Forming()
        done: Bar | None = None
        bar = state.bar
        if bar is not None:
            now = _number(tick.get("timestamp"))
            if now is not None and now >= bar.end_ms + self.grace_ms:
                done = self._finish(state)
                bar = None
        day, start, end = self.interval.bucket(at, exchange)
        if start < (bar.start_ms if bar is not None else state.final_end):
            self.late += 1
            return done
        cum = _count(tick.get("volume"))
        oi = _count(tick.get("oi"))
        if bar is not None and start > bar.start_ms:
            done = self._finish(state)
            bar = None
        if bar is None:
            if day != state.day:
                state.day, state.base, state.cum = day, 0, 0
            else:
                state.base = state.cum
            bar = state.bar = Bar(symbol, exchange, self.interval.name, start, end, ltp, ltp, ltp, ltp, 0, oi, 0)
            state.open_ltt = state.close_ltt = at
        else:
            if ltp > bar.high:
                bar.high = ltp
            elif ltp < bar.low:
                bar.low = ltp
            if at < state.open_ltt:
                bar.open, state.open_ltt = ltp, at
            if at >= state.close_ltt:
                bar.close, state.close_ltt = ltp, at
                if oi is not None:
                    bar.oi = oi
        bar.ticks += 1
        if cum is not None and cum > state.cum:
            state.cum = cum
        bar.volume = max(0, state.cum - state.base)
        return done

    def _finish(self, state: _Forming) -> Bar:
        bar = state.bar
        assert bar is not None
        bar.final = True
        state.bar = None
        state.final_end = bar.end_ms
        return bar

    def advance(self, now_ms: float) -> list[Bar]:
        """Finalise every bar whose bucket ended at least ``grace_ms`` before ``now_ms`` (the
        feed's clock); the bars made final, oldest first."""
        done = [
            self._finish(state)
            for state in self._forming.values()
            if state.bar is not None and now_ms >= state.bar.end_ms + self.grace_ms
        ]
        done.sort(key=lambda b: b.start_ms)
        return done

    def flush(self) -> list[Bar]:
        """Finalise every live bar (the data has ended); oldest first."""
        done = [self._finish(state) for state in self._forming.values() if state.bar is not None]
        done.sort(key=lambda b: b.start_ms)
        return done

    def forming(self) -> Iterator[Bar]:
        """Every live bar."""
        return (s.bar for s in self._forming.values() if s.bar is not None)


def bars_of(ticks: Iterable[Mapping[str, Any]], interval: str | Interval, grace_ms: int = GRACE_MS) -> list[Bar]:
    """Every bar of ``ticks`` (a finished stream: the last bars are final too), in the order they became final."""
    agg = Aggregator(interval, grace_ms)
    out: list[Bar] = []
    for tick in ticks:
        done = agg.add(tick)
        if done is not None:
            out.append(done)
    out.extend(agg.flush())
    return out
