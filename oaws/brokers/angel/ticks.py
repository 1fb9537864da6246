"""Angel packets to oaws ticks (SPEC §2), without I/O.

Client mode 1 (LTP) is served from Angel's LTP packets, 2 (Quote) from QUOTE, and 3
(Depth) from SNAP_QUOTE, whose best five entries become the five buy and five sell
levels. Prices arrive in paise (CDS in 1e-7 rupees) and leave in rupees; ``change`` and
``change_percent`` are computed against the previous close, which Angel sends as
``close``.
"""

from __future__ import annotations

from typing import Any

from oaws.brokers.angel.wire import LTP, QUOTE, SNAP_QUOTE, BestFiveEntry, Packet
from oaws.ticks import change, depth_book

#: Client mode -> the Angel subscription mode that serves it.
ANGEL_MODE = {1: LTP, 2: QUOTE, 3: SNAP_QUOTE}
#: Angel subscription mode -> the client mode its packets are published as.
CLIENT_MODE = {LTP: 1, QUOTE: 2, SNAP_QUOTE: 3}

_SECONDS_BEFORE = 10**11  # an epoch below this is in seconds (year 5138 in seconds, 1973 in ms)


def _epoch_ms(value: int) -> int:
    # Angel's docs do not give the unit of the last traded timestamp (unverified): accept both.
    return value * 1000 if 0 < value < _SECONDS_BEFORE else value


def _depth(best_five: tuple[BestFiveEntry, ...], divisor: float) -> dict[str, list[dict[str, Any]]]:
    buy: list[dict[str, Any]] = []
    sell: list[dict[str, Any]] = []
    for e in best_five:
        (buy if e.flag == 1 else sell).append({"price": e.price / divisor, "quantity": e.quantity, "orders": e.orders})
    return depth_book(buy, sell)


def tick(p: Packet, symbol: str, exchange: str, divisor: float, received_ms: int) -> dict[str, Any]:
    """The tick of ``p`` at the client mode its Angel mode serves (LTP, QUOTE or SNAP_QUOTE packets)."""
    ltp = p.ltp / divisor
    t: dict[str, Any] = {
        "symbol": symbol,
        "exchange": exchange,
        "mode": CLIENT_MODE[p.mode],
        "seq": p.sequence,
        "ltp": ltp,
        "ltt": p.exchange_timestamp,
        "timestamp": received_ms,
    }
    if p.mode == LTP:
        return t
    moved, percent = change(p.ltp, p.close)
    t.update(
        open=p.open / divisor,
        high=p.high / divisor,
        low=p.low / divisor,
        close=p.close / divisor,
        volume=p.volume,
        last_trade_quantity=p.last_traded_quantity,
        avg_trade_price=p.avg_traded_price / divisor,
        total_buy_quantity=int(p.total_buy_quantity),
        total_sell_quantity=int(p.total_sell_quantity),
        change=moved / divisor,
        change_percent=round(percent, 4),
    )
    if p.mode == QUOTE:
        return t
    if p.last_traded_timestamp:
        t["ltt"] = _epoch_ms(p.last_traded_timestamp)
    t.update(
        oi=p.open_interest,
        oi_change_percent=p.oi_change_percent,
        upper_circuit=p.upper_circuit / divisor,
        lower_circuit=p.lower_circuit / divisor,
        week_52_high=p.week52_high / divisor,
        week_52_low=p.week52_low / divisor,
        depth=_depth(p.best_five, divisor),
    )
    return t
