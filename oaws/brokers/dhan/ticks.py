"""Dhan responses to oaws ticks (SPEC §2 with OpenAlgo's names), without I/O.

Client mode 1 (LTP) is served from Dhan's ticker (request 15), 2 (Quote) from its quote
packet (17), 3 (Depth) from its full packet (21) and its five levels; Depth with
``depth: 20`` from the separate 20-level depth stream (23). One Dhan subscription serves
every lower mode of an instrument: its tick is cut with ``oaws.ticks.at_mode``.

What Dhan sends in separate responses is joined per instrument (``Book``):

- ``close`` is the **previous** close, as SPEC §2 means it, from response 6 (sent once per
  subscription). Dhan's own ``close`` field of quote and full packets is today's close, 0
  while the market is open, and is not published. ``change`` and ``change_percent`` are
  ``ltp`` against the previous close; both 0 until response 6 has come.
- ``oi`` is the full packet's own, else the latest response 5.
- When response 6 (or 5) arrives after a quote or full packet, the instrument's tick is
  built again from the latest packet so the change shows without waiting for a trade.

Times: Dhan's LTT is the India clock's seconds counted as if they were UTC (dhanhq prints
them with ``datetime.fromtimestamp(ltt, timezone.utc)`` and shows the India time of day),
so ``ltt`` is ``(LTT - 19800) * 1000``, epoch milliseconds; 0 when Dhan sends 0.

What Dhan does not send: circuit limits, 52-week high and low (``upper_circuit`` and
``lower_circuit`` of Depth ticks are 0.0); a 20-level book carries no price or time, so
its tick takes ``ltp`` and ``ltt`` from the instrument's latest market-feed packet when
there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oaws.brokers.dhan import wire
from oaws.instruments import DEFAULT_DEPTH, DEPTH, LTP, QUOTE
from oaws.ticks import change, depth_book

#: Dhan counts India's clock (UTC+05:30) as if it were UTC
IST_OFFSET_S = 19_800
DEPTH_20 = 20
#: client mode -> the Dhan request code that serves it, at five levels
DHAN_MODE = {LTP: wire.SUB_TICKER, QUOTE: wire.SUB_QUOTE, DEPTH: wire.SUB_FULL}
#: Dhan request code -> the highest client mode its packets serve
CLIENT_MODE = {wire.SUB_TICKER: LTP, wire.SUB_QUOTE: QUOTE, wire.SUB_FULL: DEPTH, wire.SUB_DEPTH_20: DEPTH}
#: response code -> the client mode its tick is
RESPONSE_MODE = {wire.TICKER: LTP, wire.QUOTE: QUOTE, wire.FULL: DEPTH}


def dhan_mode(mode: int, depth: int = DEFAULT_DEPTH) -> int | None:
    """The Dhan request code that serves client ``mode`` at ``depth``; None if none does."""
    if depth == DEFAULT_DEPTH:
        return DHAN_MODE.get(mode)
    return wire.SUB_DEPTH_20 if (mode, depth) == (DEPTH, DEPTH_20) else None


def ltt_ms(ltt: int) -> int:
    """Dhan's LTT (India-clock seconds counted as UTC) as epoch milliseconds; 0 stays 0."""
    return (ltt - IST_OFFSET_S) * 1000 if ltt else 0


@dataclass(slots=True)
class Book:
    """What is known of one instrument across Dhan's responses (joined onto its ticks)."""

    prev_close: float = 0.0
    prev_oi: int = 0
    oi: int = 0
    #: the latest ticker, quote or full packet
    last: wire.Response | None = None
    #: the latest response of each depth-20 side, and which side waits for its other half
    sides: dict[str, wire.DepthSide] = field(default_factory=dict)
    pending: str | None = None

    def update(self, r: wire.Response) -> bool:
        """Take one response in; True when it is a data packet or changes the joined fields of one."""
        if r.code == wire.PREV_CLOSE:
            self.prev_close, self.prev_oi = r.prev_close, r.prev_oi
            return self.last is not None and self.last.code != wire.TICKER
        if r.code == wire.OI:
            self.oi = r.oi
            return False  # OI is a Depth field, and the full packet carries its own
        if r.code in RESPONSE_MODE:
            if r.code == wire.FULL:
                self.oi = r.oi
            self.last = r
            return True
        return False

    def depth_side(self, side: wire.DepthSide) -> bool:
        """Take one 20-depth side in; True when a book is ready to publish.

        Dhan sends an instrument's bids (41) and asks (51) as two responses: a book is
        published when the second of a pair comes, or when a side comes again before its
        other half did (the other side's latest, or empty, is used).
        """
        name = side.side
        self.sides[name] = side
        if self.pending is not None and self.pending != name:
            self.pending = None
            return True
        if self.pending == name:
            return True  # the other half never came: publish with what is known of it
        self.pending = name
        return False


def tick(r: wire.Response, book: Book, symbol: str, exchange: str, received_ms: int) -> dict[str, Any]:
    """The tick of data packet ``r`` (ticker, quote or full) with ``book``'s joins, at the mode ``r`` serves."""
    mode = RESPONSE_MODE[r.code]
    t: dict[str, Any] = {
        "symbol": symbol,
        "exchange": exchange,
        "mode": mode,
        "ltp": r.ltp,
        "ltt": ltt_ms(r.ltt),
        "timestamp": received_ms,
    }
    if mode == LTP:
        return t
    moved, percent = change(r.ltp, book.prev_close)
    t.update(
        open=r.open,
        high=r.high,
        low=r.low,
        close=book.prev_close,
        volume=r.volume,
        last_trade_quantity=r.last_quantity,
        average_price=r.average_price,
        total_buy_quantity=r.total_buy_quantity,
        total_sell_quantity=r.total_sell_quantity,
        change=round(moved, 2),
        change_percent=round(percent, 4),
    )
    if mode == QUOTE:
        return t
    buy = [{"price": lv.bid_price, "quantity": lv.bid_quantity, "orders": lv.bid_orders} for lv in r.depth]
    sell = [{"price": lv.ask_price, "quantity": lv.ask_quantity, "orders": lv.ask_orders} for lv in r.depth]
    t.update(
        last_quantity=r.last_quantity,
        oi=r.oi,
        upper_circuit=0.0,
        lower_circuit=0.0,
        depth=depth_book(buy, sell),
    )
    return t


def depth_20_tick(
    book: Book, symbol: str, exchange: str, received_ms: int, last: wire.Response | None = None
) -> dict[str, Any]:
    """The Depth tick of an instrument's twenty-level book (its latest bids and asks); ``ltp`` and
    ``ltt`` from ``last``, the instrument's latest market-feed packet, when there is one."""
    sides = {
        name: [{"price": lv.price, "quantity": lv.quantity, "orders": lv.orders} for lv in side.levels]
        for name, side in book.sides.items()
    }
    t: dict[str, Any] = {"symbol": symbol, "exchange": exchange, "mode": DEPTH}
    if last is not None:
        t["ltp"] = last.ltp
        t["ltt"] = ltt_ms(last.ltt)
    t["timestamp"] = received_ms
    t["depth"] = depth_book(sides.get("buy", ()), sides.get("sell", ()), DEPTH_20)
    t["depth_level"] = DEPTH_20
    return t
