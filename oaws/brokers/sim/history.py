"""The simulated market's past: candles consistent with its live prices (no I/O).

Each trading day of an instrument (``oaws.sessions``: no bars on weekends or holidays) is a
walk of one-minute bars from its open to its close, drawn from a ``random.Random`` seeded by
the feed's seed, the instrument and the date, so the same question always gets the same
answer. The days are chained backwards from the live book: the last session before the
current one closes at the live tick's ``close`` (the previous close), each earlier day closes
where the next one's overnight gap says, and each day opens near the close before it. The
current session starts at the live book's ``open`` and runs up to now. Longer intervals are
the one-minute bars aggregated in buckets aligned to the session's open (``Interval.bucket``).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from dataclasses import replace
from datetime import date, datetime, timedelta

from oaws import sessions
from oaws.bars.aggregator import Bar, Interval
from oaws.config import IST

#: the intervals the simulated market has candles of
INTERVALS = ("1m", "3m", "5m", "10m", "15m", "30m", "60m", "1d")
#: the tick grid: prices are whole multiples of 0.05
TICKS_PER_RUPEE = 20
#: a day's overnight gap and its intraday volatility (log-returns)
GAP_SIGMA = 0.004
DAY_SIGMA = 0.012
#: how far back a question may reach (days): beyond it there are no candles
MAX_DAYS = 4000
#: how many past days' one-minute bars a history keeps (about 90 KB each)
CACHED_DAYS = 64


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _rng(seed: int, exchange: str, symbol: str, day: date) -> random.Random:
    return random.Random(_digest(f"{seed}|history|{exchange}|{symbol}|{day.isoformat()}"))


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def current_day(exchange: str, now_ms: int) -> date:
    """The day of the session the live market is in or last had (its open at or before now)."""
    now = datetime.fromtimestamp(now_ms / 1000, IST)
    d = now.date()
    for _ in range(400):
        hours = sessions.session_hours(exchange, d)
        if hours is not None and hours[0] <= now:
            return d
        d -= timedelta(days=1)
    return now.date()  # pragma: no cover - a calendar without a trading day in a year


class History:
    """Candles of one instrument, anchored at its live book's previous close and open (in ticks
    of 0.05). ``volume_scale`` sets a typical one-minute volume (0: an index, no volume)."""

    def __init__(
        self, symbol: str, exchange: str, seed: int, close: int, open_: int, now_ms: int, volume_scale: float
    ) -> None:
        self.symbol, self.exchange, self.seed = symbol, exchange, seed
        self.anchor_close, self.anchor_open, self.now_ms = close, open_, now_ms
        self.volume_scale = volume_scale
        self.today = current_day(exchange, now_ms)
        #: the close (ticks) of each past trading day, filled backwards from the anchor
        self._closes: dict[date, int] = {}
        self._oldest = self._previous_trading_day(self.today) or self.today
        self._oldest_close = close
        self._closes[self._oldest] = close
        self._minutes: dict[date, list[Bar]] = {}
        #: ``history`` runs in worker threads: one question at a time extends the chain
        self._lock = threading.Lock()

    # The days ------------------------------------------------------------------------
    def _previous_trading_day(self, d: date) -> date | None:
        for _ in range(30):
            d -= timedelta(days=1)
            if sessions.session_hours(self.exchange, d) is not None:
                return d
        return None

    def close_of(self, d: date) -> int:
        """The close (ticks) of the past trading day ``d`` (``d`` before the current day)."""
        while d < self._oldest:
            before = self._previous_trading_day(self._oldest)
            if before is None:
                break
            # the day after ``before`` opened near ``before``'s close and closed where we know
            rng = _rng(self.seed, self.exchange, self.symbol, self._oldest)
            gap, move = rng.gauss(0.0, GAP_SIGMA), rng.gauss(0.0, DAY_SIGMA)
            close = max(1, round(self._oldest_close / math.exp(gap + move)))
            self._closes[before] = close
            self._oldest, self._oldest_close = before, close
        return self._closes.get(d, self._oldest_close)

    def minutes(self, d: date) -> list[Bar]:
        """The one-minute bars of the trading day ``d`` (none on a day without a session)."""
        if d < self.today:  # a past day never changes: drawn once
            known = self._minutes.pop(d, None)
            if known is None:
                known = self._draw(d)
            self._minutes[d] = known  # the most recent last; the oldest goes beyond CACHED_DAYS
            if len(self._minutes) > CACHED_DAYS:
                del self._minutes[next(iter(self._minutes))]
            return known
        return self._draw(d)

    def _draw(self, d: date) -> list[Bar]:
        hours = sessions.session_hours(self.exchange, d)
        if hours is None or d > self.today:
            return []
        start, end = _ms(hours[0]), _ms(hours[1])
        rng = _rng(self.seed, self.exchange, self.symbol, d)
        _gap, move = rng.gauss(0.0, GAP_SIGMA), rng.gauss(0.0, DAY_SIGMA)
        count = (end - start) // 60000
        if d == self.today:
            open_ = self.anchor_open
            target = None
            count = min(count, max(0, (self.now_ms - start) // 60000 + 1))
        else:
            close = self.close_of(d)
            open_ = max(1, round(close / math.exp(move)))
            target = close
        if count <= 0:
            return []
        sigma = DAY_SIGMA / math.sqrt(max(1, (end - start) // 60000))
        walk = [0.0]
        for _ in range(count):
            walk.append(walk[-1] + rng.gauss(0.0, sigma))
        if target is not None:  # a bridge: the day ends exactly at its close
            total = math.log(target / open_)
            walk = [w + (total - walk[-1]) * i / count for i, w in enumerate(walk)]
        bars = []
        for i in range(count):
            o = max(1, round(open_ * math.exp(walk[i])))
            c = max(1, round(open_ * math.exp(walk[i + 1])))
            if i == 0:
                o = open_
            if target is not None and i == count - 1:
                c = target
            wiggle = abs(rng.gauss(0.0, sigma * 0.6))
            h = max(o, c, round(max(o, c) * (1 + wiggle)))
            low = min(o, c, max(1, round(min(o, c) * (1 - abs(rng.gauss(0.0, sigma * 0.6))))))
            u = i / max(1, count - 1)  # the U shape of a day's volume: busy at open and close
            shape = 1.0 + 2.0 * (1.0 - u) ** 6 + 1.5 * u**6
            volume = int(self.volume_scale * shape * rng.lognormvariate(0.0, 0.5)) if self.volume_scale else 0
            at = start + i * 60000
            bars.append(
                Bar(self.symbol, self.exchange, "1m", at, at + 60000, o / TICKS_PER_RUPEE, h / TICKS_PER_RUPEE,
                    low / TICKS_PER_RUPEE, c / TICKS_PER_RUPEE, volume, None, 1, True)
            )  # fmt: skip
        return bars

    def reusable(self, close: int, open_: int, now_ms: int) -> bool:
        """Whether this history still fits the live book (same anchors, same current day);
        if so it moves its clock to ``now_ms``."""
        if (close, open_) != (self.anchor_close, self.anchor_open) or current_day(self.exchange, now_ms) != self.today:
            return False
        self.now_ms = now_ms
        return True

    # The question --------------------------------------------------------------------
    def candles(self, interval: Interval, start_ms: int, end_ms: int) -> list[Bar]:
        """The bars at ``interval`` whose bucket starts in [start_ms, end_ms), oldest first;
        the one still forming (now inside it) is not final."""
        first = datetime.fromtimestamp(max(start_ms, self.now_ms - MAX_DAYS * 86400000) / 1000, IST).date()
        last = min(datetime.fromtimestamp((end_ms - 1) / 1000, IST).date(), self.today)
        with self._lock:
            return self._candles(interval, start_ms, end_ms, first, last)

    def _candles(self, interval: Interval, start_ms: int, end_ms: int, first: date, last: date) -> list[Bar]:
        found: list[Bar] = []
        d = first - timedelta(days=1)  # a daily bucket starts at midnight: the day itself counts
        while d <= last:
            for bar in self._aggregate(self.minutes(d), interval):
                if start_ms <= bar.start_ms < end_ms:
                    found.append(bar)
            d += timedelta(days=1)
        return found

    def _aggregate(self, minutes: list[Bar], interval: Interval) -> list[Bar]:
        if interval.seconds == 60:
            out = [replace(bar) for bar in minutes]
        else:
            out = []
            for bar in minutes:
                _, start, end = interval.bucket(bar.start_ms, self.exchange)
                if out and out[-1].start_ms == start:
                    last = out[-1]
                    last.high, last.low = max(last.high, bar.high), min(last.low, bar.low)
                    last.close = bar.close
                    last.volume += bar.volume
                    last.ticks += 1
                else:
                    out.append(
                        Bar(self.symbol, self.exchange, interval.name, start, end, bar.open, bar.high, bar.low,
                            bar.close, bar.volume, None, 1, True)
                    )  # fmt: skip
        for bar in out:
            bar.final = bar.end_ms <= self.now_ms
        return out
