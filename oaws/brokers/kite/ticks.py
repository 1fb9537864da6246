"""Kite packets to oaws ticks (SPEC §2 with OpenAlgo's names), without I/O.

Modes: oaws mode 1 is Kite's ``ltp``, 2 ``quote``, 3 ``full`` (as OpenAlgo's Kite adapter
maps them). Kite streams one mode per token, so a token is subscribed at the highest mode
any client wants and each wanted mode is published from its packets, cut down with
``cut`` (``oaws.ticks.at_mode`` and Kite's own extra fields).

Fields:

- Prices in rupees: the packet's integers over the segment's divisor (``wire.divisor``).
- ``change`` is in rupees, ``ltp - close`` (close is the previous day's), and
  ``change_percent`` against the close, rounded to 4 places; for indices too, so that every
  tick computes them alike (the index packets' own net change field is not used).
  Zerodha's library calls the percentage ``change``; oaws does not.
- Times are epoch milliseconds. A full packet carries the last trade time (``ltt``) and
  the exchange's time (``exchange_timestamp``); an index full packet only the exchange's
  time, which becomes its ``ltt``. LTP and quote packets carry no time at all: their
  ``ltt`` is the time the feed received them, the same as ``timestamp``.
- Indices have no volume, quantities, average price, OI or book: those fields are left out,
  not zeroed (``oaws.ticks.is_index``).
- Full ticks add ``oi``, ``oi_day_high``, ``oi_day_low``, ``last_quantity`` and the five
  levels a side of ``depth``. Kite's ticker has no circuit limits (``upper_circuit``,
  ``lower_circuit``: only its REST ``/quote`` has them), no 52-week range, no sequence number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from oaws.brokers.kite.wire import FULL, LTP, QUOTE, Packet
from oaws.instruments import DEPTH
from oaws.ticks import at_mode, change, depth_book

#: oaws mode -> Kite's mode that serves it
KITE_MODE = {1: LTP, 2: QUOTE, 3: FULL}
#: Kite's mode -> the oaws mode its packets are
CLIENT_MODE = {LTP: 1, QUOTE: 2, FULL: 3}
#: fields of Kite's full ticks beyond SPEC §2's Depth, dropped below mode 3
FULL_EXTRAS = ("oi_day_high", "oi_day_low", "exchange_timestamp")


def kite_mode(modes: Iterable[int]) -> str:
    """The Kite mode to subscribe a token at for the oaws ``modes`` wanted of it: the highest."""
    return KITE_MODE[max(modes)]


def _ms(seconds: int) -> int:
    return seconds * 1000


def tick(p: Packet, symbol: str, exchange: str, received_ms: int) -> dict[str, Any]:
    """The tick of ``p`` at its own mode (an index quote is mode 2, an index full mode 3)."""
    d = p.divisor
    mode = CLIENT_MODE[p.mode]
    ltt = received_ms
    if p.size == 184 and p.last_trade_time is not None:
        ltt = _ms(p.last_trade_time)
    elif p.index and p.exchange_time is not None:
        ltt = _ms(p.exchange_time)
    t: dict[str, Any] = {
        "symbol": symbol,
        "exchange": exchange,
        "mode": mode,
        "ltp": p.ltp / d,
        "ltt": ltt,
        "timestamp": received_ms,
    }
    if mode == 1:
        return t
    assert p.open is not None and p.high is not None and p.low is not None and p.close is not None
    moved, percent = change(p.ltp, p.close)
    t.update(open=p.open / d, high=p.high / d, low=p.low / d, close=p.close / d)
    if not p.index:
        assert p.average_price is not None
        t.update(
            volume=p.volume,
            last_trade_quantity=p.last_quantity,
            average_price=p.average_price / d,
            total_buy_quantity=p.total_buy_quantity,
            total_sell_quantity=p.total_sell_quantity,
        )
    t.update(change=moved / d, change_percent=round(percent, 4))
    if mode == 2 or p.index:
        return t
    assert p.exchange_time is not None
    t.update(
        last_quantity=p.last_quantity,
        oi=p.oi,
        oi_day_high=p.oi_day_high,
        oi_day_low=p.oi_day_low,
        exchange_timestamp=_ms(p.exchange_time),
        depth=depth_book(
            ({"price": e.price / d, "quantity": e.quantity, "orders": e.orders} for e in p.bids),
            ({"price": e.price / d, "quantity": e.quantity, "orders": e.orders} for e in p.offers),
        ),
    )
    return t


def cut(t: Mapping[str, Any], mode: int) -> dict[str, Any]:
    """The tick ``t`` as a client of oaws ``mode`` receives it (``mode`` at most the tick's own)."""
    body = at_mode(t, mode, DEPTH)
    if mode < DEPTH:
        for name in FULL_EXTRAS:
            body.pop(name, None)
    return body
