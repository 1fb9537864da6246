"""Angel packets to oaws ticks (SPEC §2 with OpenAlgo's names), without I/O.

Client mode 1 (LTP) is served from Angel's LTP packets, 2 (Quote) from QUOTE, and 3
(Depth) from SNAP_QUOTE, whose best five entries become the five buy and five sell
levels; Depth with ``depth: 20`` is served from Angel's DEPTH packets (mode 4), twenty
levels a side. Prices arrive in paise (CDS in 1e-7 rupees) and leave in rupees;
``change`` and ``change_percent`` are computed against the previous close, which Angel
sends as ``close``.

The fields and their names are those OpenAlgo's Angel adapter publishes
(``_normalize_market_data`` of its ``broker/angel/streaming/angel_adapter.py``): ``ltt`` is
the packet's exchange timestamp in every mode, ``average_price`` and ``last_quantity`` are
OpenAlgo's names. Unlike OpenAlgo's adapter, a Depth tick reads its open, high, low and
close from the packet (OpenAlgo's looks them up under keys its decoder never writes, so
they are always 0 there), and CDS prices are scaled by their own divisor.

A DEPTH packet carries the book and the exchange's time, nothing else (no price, no
sequence number): its tick is the book alone, with ``depth_level`` 20, as OpenAlgo's own
20-level ticks are (its Dhan adapter's).
"""

from __future__ import annotations

from typing import Any

from oaws.brokers.angel.wire import DEPTH, LTP, QUOTE, SNAP_QUOTE, BestFiveEntry, DepthLevel, Packet
from oaws.instruments import DEFAULT_DEPTH
from oaws.ticks import change, depth_book

#: Levels a side of Angel's DEPTH packets.
DEPTH_20 = 20
#: Client mode -> the Angel subscription mode that serves it, at the default five levels.
ANGEL_MODE = {1: LTP, 2: QUOTE, 3: SNAP_QUOTE}
#: Angel subscription mode -> the client mode its packets are published as.
CLIENT_MODE = {LTP: 1, QUOTE: 2, SNAP_QUOTE: 3, DEPTH: 3}
#: Angel subscription mode -> the depth (levels a side) of the stream its ticks make.
STREAM_DEPTH = {LTP: DEFAULT_DEPTH, QUOTE: DEFAULT_DEPTH, SNAP_QUOTE: DEFAULT_DEPTH, DEPTH: DEPTH_20}


def angel_mode(mode: int, depth: int = DEFAULT_DEPTH) -> int | None:
    """The Angel subscription mode that serves client ``mode`` at ``depth``; None if none does."""
    if depth == DEFAULT_DEPTH:
        return ANGEL_MODE.get(mode)
    return DEPTH if (mode, depth) == (3, DEPTH_20) else None


def _depth(best_five: tuple[BestFiveEntry, ...], divisor: float) -> dict[str, list[dict[str, Any]]]:
    buy: list[dict[str, Any]] = []
    sell: list[dict[str, Any]] = []
    for e in best_five:
        (buy if e.flag == 1 else sell).append({"price": e.price / divisor, "quantity": e.quantity, "orders": e.orders})
    return depth_book(buy, sell)


def _levels(levels: tuple[DepthLevel, ...], divisor: float) -> list[dict[str, Any]]:
    return [{"price": lv.price / divisor, "quantity": lv.quantity, "orders": lv.orders} for lv in levels]


def tick(p: Packet, symbol: str, exchange: str, divisor: float, received_ms: int) -> dict[str, Any]:
    """The tick of ``p`` at the client mode its Angel mode serves (any packet)."""
    if p.mode == DEPTH:
        return depth_20_tick(p, symbol, exchange, divisor, received_ms)
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
        average_price=p.avg_traded_price / divisor,
        total_buy_quantity=int(p.total_buy_quantity),
        total_sell_quantity=int(p.total_sell_quantity),
        change=moved / divisor,
        change_percent=round(percent, 4),
    )
    if p.mode == QUOTE:
        return t
    t.update(
        last_quantity=p.last_traded_quantity,
        oi=p.open_interest,
        oi_change_percent=p.oi_change_percent,
        upper_circuit=p.upper_circuit / divisor,
        lower_circuit=p.lower_circuit / divisor,
        week_52_high=p.week52_high / divisor,
        week_52_low=p.week52_low / divisor,
        depth=_depth(p.best_five, divisor),
    )
    return t


def depth_20_tick(p: Packet, symbol: str, exchange: str, divisor: float, received_ms: int) -> dict[str, Any]:
    """The Depth tick of a DEPTH packet: its twenty levels a side and the exchange's time."""
    return {
        "symbol": symbol,
        "exchange": exchange,
        "mode": 3,
        "ltt": p.exchange_timestamp,
        "timestamp": received_ms,
        "depth": {"buy": _levels(p.depth_buy, divisor), "sell": _levels(p.depth_sell, divisor)},
        "depth_level": DEPTH_20,
    }
