"""Angel One's historical candles (``getCandleData``) as oaws bars.

The API (SmartAPI's ``/rest/secure/angelbroking/historical/v1/getCandleData``) takes
``exchange``, ``symboltoken``, ``interval`` (``ONE_MINUTE`` ... ``ONE_DAY``) and ``fromdate``
/ ``todate`` as ``YYYY-MM-DD HH:MM`` in IST, and answers rows ``[time, open, high, low, close,
volume]`` with the time as ISO 8601 in +05:30 (day candles at midnight). One request may
span at most so many days per interval (``MAX_DAYS``): longer spans are split into chunks,
asked at most ``PACE`` per second (Angel allows 3; OpenAlgo keeps to 2). A refusal for the
rate ("Access denied because of exceeding access rate", HTTP 403, which smartapi raises as
``DataException``) is retried a few times after a pause; an expired session (``AG8001``)
says to log in again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from oaws.bars.aggregator import Bar, Interval
from oaws.brokers.api import HistoryError
from oaws.config import IST

#: oaws interval -> Angel's name
ANGEL_INTERVALS: dict[str, str] = {
    "1m": "ONE_MINUTE", "3m": "THREE_MINUTE", "5m": "FIVE_MINUTE", "10m": "TEN_MINUTE",
    "15m": "FIFTEEN_MINUTE", "30m": "THIRTY_MINUTE", "60m": "ONE_HOUR", "1d": "ONE_DAY",
}  # fmt: skip
#: Angel's name -> the most days one request may span
MAX_DAYS: dict[str, int] = {
    "ONE_MINUTE": 30, "THREE_MINUTE": 60, "FIVE_MINUTE": 100, "TEN_MINUTE": 100, "FIFTEEN_MINUTE": 200,
    "THIRTY_MINUTE": 200, "ONE_HOUR": 400, "ONE_DAY": 2000,
}  # fmt: skip
#: requests per second oaws sends (Angel allows 3)
PACE = 2.0
#: how often a rate refusal is retried, and the first pause (doubling)
RETRIES = 3
RETRY_PAUSE = 1.0
RATE_TEXT = "exceeding access rate"
DATE_FORMAT = "%Y-%m-%d %H:%M"

#: one limiter per process: Angel counts the requests of an account, not of a feed
_pace_lock = threading.Lock()
_last_request = [0.0]


def _paced(min_gap: float) -> None:
    with _pace_lock:
        wait = _last_request[0] + min_gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        _last_request[0] = time.monotonic()


def chunks(angel_interval: str, start_ms: int, end_ms: int) -> list[tuple[str, str]]:
    """(fromdate, todate) pairs covering [start_ms, end_ms), each within Angel's span for the interval."""
    span = timedelta(days=MAX_DAYS[angel_interval])
    start = datetime.fromtimestamp(start_ms / 1000, IST).replace(second=0, microsecond=0)
    end = datetime.fromtimestamp(end_ms / 1000, IST).replace(second=0, microsecond=0)
    pairs = []
    while start < end:
        stop = min(end, start + span - timedelta(minutes=1))
        if stop <= start:
            stop = end
        pairs.append((start.strftime(DATE_FORMAT), stop.strftime(DATE_FORMAT)))
        start = stop + timedelta(minutes=1)
    return pairs


def _message(reply: Any) -> str:
    if isinstance(reply, dict):
        return str(reply.get("message") or reply.get("errorcode") or reply.get("errorCode") or "no message")
    return "an unexpected reply"


def candles(
    request: Callable[[dict[str, Any]], Any],
    instrument_name: tuple[str, str],
    exchange: str,
    token: str,
    interval: Interval,
    start_ms: int,
    end_ms: int,
    *,
    pace: float = PACE,
    retry_pause: float = RETRY_PAUSE,
    now_ms: int | None = None,
) -> list[Bar]:
    """Ask ``request`` (``SmartConnect.getCandleData``) for the candles of [start_ms, end_ms) in chunks."""
    name = ANGEL_INTERVALS.get(interval.name)
    if name is None:
        raise HistoryError(f"Angel One has no {interval} candles (it has {', '.join(ANGEL_INTERVALS)})")
    symbol, oaws_exchange = instrument_name
    now = int(time.time() * 1000) if now_ms is None else now_ms
    bars: dict[int, Bar] = {}
    for fromdate, todate in chunks(name, start_ms, end_ms):
        params = {"exchange": exchange, "symboltoken": token, "interval": name, "fromdate": fromdate, "todate": todate}
        reply = _ask(request, params, pace, retry_pause)
        for row in reply.get("data") or []:
            bar = _bar(row, symbol, oaws_exchange, interval, now)
            if start_ms <= bar.start_ms < end_ms:
                bars[bar.start_ms] = bar
    return [bars[k] for k in sorted(bars)]


def _ask(request: Callable[[dict[str, Any]], Any], params: dict[str, Any], pace: float, pause: float) -> dict:
    for attempt in range(RETRIES + 1):
        _paced(1.0 / pace)
        try:
            reply = request(dict(params))
        except Exception as exc:  # smartapi raises DataException for a 403 text reply, requests' errors
            text = str(exc)
            if RATE_TEXT in text and attempt < RETRIES:
                time.sleep(pause * 2**attempt)
                continue
            if RATE_TEXT in text:
                raise HistoryError("Angel One refused the candles: too many requests; try again in a minute") from None
            raise HistoryError(f"Angel One's candle request failed ({exc.__class__.__name__})") from None
        if not isinstance(reply, dict):
            raise HistoryError("Angel One answered the candle request with something that is not JSON")
        code = str(reply.get("errorCode") or reply.get("errorcode") or "")
        if code == "AG8001" or "Invalid Token" in _message(reply):
            raise HistoryError("the Angel One session has expired; log in again with `oaws login angel`")
        if reply.get("status") is False or reply.get("success") is False:
            raise HistoryError(f"Angel One refused the candles: {_message(reply)}")
        return reply
    raise HistoryError("Angel One refused the candles: too many requests")  # pragma: no cover


def _bar(row: Any, symbol: str, exchange: str, interval: Interval, now_ms: int) -> Bar:
    try:
        stamp, o, h, low, c, v = row[:6]
        start = int(datetime.fromisoformat(str(stamp)).timestamp() * 1000)
        _, bucket_start, bucket_end = interval.bucket(start, exchange)
        return Bar(symbol, exchange, interval.name, bucket_start, bucket_end, float(o), float(h), float(low),
                   float(c), int(v or 0), None, 0, bucket_end <= now_ms)  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise HistoryError(f"Angel One sent a candle oaws cannot read: {str(row)[:80]}") from exc
