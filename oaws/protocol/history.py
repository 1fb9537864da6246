"""Broker history over the bus: the request, its answer, and the HTTP route's JSON (no I/O).

A proxy asks the feed for candles as ``oaws sim order`` asks for an order
(``oaws.protocol.orders``): a subscription to ``_oaws.history`` followed by the JSON of
``HistoryRequest``, after subscribing its answer's topic ``_oaws.history.<nonce>``. The
feed answers ``{"status": "success", "data": [...]}`` or ``{"status": "error",
"message": ...}``; ``data`` is OpenAlgo's history shape, one object per candle:
``timestamp`` (epoch seconds of the bucket's start), ``open``, ``high``, ``low``,
``close``, ``volume``, ``oi``. ``GET /history`` answers the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from oaws.bars.aggregator import DAY, IST_OFFSET, Bar, Interval, IntervalError, parse_interval
from oaws.instruments import Instrument, InstrumentError, make

HISTORY_REQUEST = b"_oaws.history"
HISTORY_REPLY = b"_oaws.history."
#: the bytes of a request that travel up the bus (a subscription is a short message)
MAX_REQUEST = 1024
#: the bytes of an answer a proxy reads (a year of 1-minute bars is about 6 MB)
MAX_REPLY = 16 * 1024 * 1024
#: the longest span asked in one request: a year and a bit
MAX_SPAN_MS = 400 * 86_400_000
IST = timezone(timedelta(seconds=IST_OFFSET), "IST")


class HistoryRequestError(ValueError):
    """A request that cannot be asked or answered; one sentence."""


@dataclass(frozen=True)
class HistoryRequest:
    """The candles of ``instrument`` at ``interval`` whose bucket starts in [start_ms, end_ms).
    ``nonce`` makes each request's bus message unique and names its answer's topic."""

    nonce: str
    instrument: Instrument
    interval: Interval
    start_ms: int
    end_ms: int

    def to_bytes(self) -> bytes:
        body = {
            "nonce": self.nonce,
            "symbol": self.instrument.symbol,
            "exchange": self.instrument.exchange,
            "interval": self.interval.name,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
        }
        return HISTORY_REQUEST + orjson.dumps(body)

    @property
    def reply_topic(self) -> bytes:
        return HISTORY_REPLY + self.nonce.encode()

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> HistoryRequest:
        """The request in ``body`` (another process's JSON); HistoryRequestError if it is not one."""
        nonce = body.get("nonce")
        if not isinstance(nonce, str) or not nonce.isalnum() or len(nonce) > 64:
            raise HistoryRequestError("the request has no nonce")
        symbol, exchange = body.get("symbol"), body.get("exchange")
        if not isinstance(symbol, str) or not isinstance(exchange, str):
            raise HistoryRequestError("the request names no symbol and exchange")
        try:
            instrument = make(symbol, exchange)
            interval = parse_interval(str(body.get("interval")))
        except (InstrumentError, IntervalError) as exc:
            raise HistoryRequestError(str(exc)) from None
        start, end = body.get("start_ms"), body.get("end_ms")
        if type(start) is not int or type(end) is not int or not 0 <= start < end:
            raise HistoryRequestError("the span is two times in epoch ms, the start before the end")
        if end - start > MAX_SPAN_MS:
            raise HistoryRequestError("the span is at most 400 days in one request")
        return cls(nonce, instrument, interval, start, end)


def candle(bar: Bar) -> dict[str, Any]:
    """One bar as OpenAlgo's history gives a candle."""
    return {
        "timestamp": bar.start_ms // 1000,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
        "oi": bar.oi if bar.oi is not None else 0,
    }


def success(bars: list[Bar]) -> dict[str, Any]:
    return {"status": "success", "data": [candle(b) for b in bars]}


def error(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message}


def bars_of_answer(answer: Any, instrument: Instrument, interval: Interval, now_ms: int) -> list[Bar]:
    """The bars in a success answer; HistoryRequestError when ``answer`` is an error or is
    not an answer. A bar is final once its bucket has ended by ``now_ms``."""
    if not isinstance(answer, dict):
        raise HistoryRequestError("the answer is not a JSON object")
    if answer.get("status") != "success":
        message = answer.get("message")
        raise HistoryRequestError(str(message)[:300] if message else "the server gave no history")
    data = answer.get("data")
    if not isinstance(data, list):
        raise HistoryRequestError("the answer has no list of candles")
    bars = []
    for row in data:
        try:
            start_ms = int(row["timestamp"]) * 1000
            _, start_ms, end_ms = interval.bucket(start_ms, instrument.exchange)
            oi = row.get("oi")
            bar = Bar(
                instrument.symbol, instrument.exchange, interval.name, start_ms, end_ms,
                float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]),
                int(row.get("volume") or 0), int(oi) if oi else None, 0, end_ms <= now_ms,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError):
            raise HistoryRequestError("the answer holds a candle that is not one") from None
        bars.append(bar)
    return bars


def parse_time(text: str, *, end: bool = False) -> int:
    """``start``/``end`` of a query: epoch ms, or an ISO date or time (IST when it names no
    zone). A date as ``end`` means the end of that day. HistoryRequestError otherwise."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        why = f"{text[:40]!r} is not a time: write 2026-12-01, 2026-12-01T09:15 or epoch ms"
        raise HistoryRequestError(why) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=IST)
    ms = int(at.timestamp() * 1000)
    if end and len(text) == 10:  # a date alone: through its last moment
        ms += DAY * 1000
    return ms


def span_of_days(days: int, now_ms: int) -> tuple[int, int]:
    """The last ``days`` calendar days in IST, today among them, up to now."""
    if not 1 <= days <= MAX_SPAN_MS // (DAY * 1000):
        raise HistoryRequestError("days is a whole number from 1 to 400")
    local_day = (now_ms // 1000 + IST_OFFSET) // DAY
    start = ((local_day - days + 1) * DAY - IST_OFFSET) * 1000
    return start, now_ms + 1
