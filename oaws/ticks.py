"""The tick (SPEC §2 as amended by issue 13): the fields of each mode, a tick cut down to a
mode, depth levels, change against the previous close, which exchanges are indices.

Every feed builds its ticks with these names, replay and record cut them down with
``at_mode``, and the screens read them with ``change_of`` and ``is_index``; nothing else
lists tick fields. A tick is a plain dict on its way to JSON: the hot paths (a feed's
encoder, the proxy's fan-out) never pay for a class.

The names are OpenAlgo's, as its Angel adapter publishes them
(``broker/angel/streaming/angel_adapter.py``, ``_normalize_market_data``), so that a
strategy written for OpenAlgo reads an oaws tick unchanged: ``average_price`` in Quote,
``last_quantity`` in Depth (where OpenAlgo's Quote says ``last_trade_quantity`` for the
same number). oaws's ticks nest (each mode has every field of the modes below it), so a
Depth tick carries both quantity names; what OpenAlgo lacks (``change``,
``change_percent``, ``seq``, ``ts_ns``...) rides along as extra fields.

Prices are rupees (floats), quantities integers, times epoch milliseconds: ``ltt`` the
exchange's time of the tick, ``timestamp`` when the feed received it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from oaws.instruments import DEFAULT_DEPTH, DEPTH, LTP, QUOTE, Instrument

Tick = dict[str, Any]

#: what every tick carries (mode 1, LTP)
LTP_FIELDS: tuple[str, ...] = ("symbol", "exchange", "ltp", "ltt", "timestamp")
#: what mode 2 (Quote) adds; ``close`` is the previous day's close
QUOTE_FIELDS: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "last_trade_quantity",
    "average_price",
    "total_buy_quantity",
    "total_sell_quantity",
    "change",
    "change_percent",
)
#: what mode 3 (Depth) adds; ``last_quantity`` is ``last_trade_quantity`` under the name
#: OpenAlgo's Depth data gives it
DEPTH_FIELDS: tuple[str, ...] = ("last_quantity", "oi", "upper_circuit", "lower_circuit", "depth")
#: fields a feed may add at a mode (SPEC §2: the proxy passes them through); cut with that mode's
EXTRA_FIELDS: dict[int, tuple[str, ...]] = {
    # mode, the feed's sequence number, its receive time in ns, the bus's per-topic count
    LTP: ("mode", "seq", "ts_ns", "fseq"),
    QUOTE: (),
    # OI's change on the day as the broker gives it (a percentage, or the previous
    # session's closing OI), the 52-week range, and how many levels the depth has
    DEPTH: ("oi_change_percent", "prev_oi", "week_52_high", "week_52_low", "depth_level"),
}
#: the fields a mode adds to the one below it, extras included
ADDED: dict[int, tuple[str, ...]] = {
    LTP: LTP_FIELDS + EXTRA_FIELDS[LTP],
    QUOTE: QUOTE_FIELDS + EXTRA_FIELDS[QUOTE],
    DEPTH: DEPTH_FIELDS + EXTRA_FIELDS[DEPTH],
}
#: every field of a tick at each mode (the modes below included), in SPEC order
FIELDS: dict[int, tuple[str, ...]] = {
    LTP: LTP_FIELDS,
    QUOTE: LTP_FIELDS + QUOTE_FIELDS,
    DEPTH: LTP_FIELDS + QUOTE_FIELDS + DEPTH_FIELDS,
}
#: fields that belong to a mode above each mode: what ``at_mode`` drops
_ABOVE: dict[int, frozenset[str]] = {
    LTP: frozenset(ADDED[QUOTE] + ADDED[DEPTH]),
    QUOTE: frozenset(ADDED[DEPTH]),
    DEPTH: frozenset(),
}

#: levels of a depth tick on each side, unless a client asked for more (``depth: 20``)
DEPTH_LEVELS = DEFAULT_DEPTH
EMPTY_LEVEL: Mapping[str, Any] = {"price": 0.0, "quantity": 0, "orders": 0}

#: OpenAlgo's index exchanges (its ``utils/constants.py``): no volume, no order book
INDEX_EXCHANGES = frozenset({"NSE_INDEX", "BSE_INDEX", "MCX_INDEX", "GLOBAL_INDEX"})
#: exchanges that trade futures and options, so their ticks carry open interest (OpenAlgo's
#: ``FNO_EXCHANGES``, crypto perpetuals included)
DERIVATIVE_EXCHANGES = frozenset({"NFO", "BFO", "CDS", "BCD", "MCX", "NCDEX", "NCO", "CRYPTO"})

#: names of fields in ticks recorded before oaws took OpenAlgo's, and the names now
RENAMED: Mapping[str, str] = {"avg_trade_price": "average_price"}


def is_index(instrument: Instrument | str) -> bool:
    """Indices have no volume and no order book: their empty fields stay blank, not zero."""
    exchange = instrument if isinstance(instrument, str) else instrument.exchange
    return exchange in INDEX_EXCHANGES


def at_mode(tick: Mapping[str, Any], mode: int, recorded: int = DEPTH) -> Tick:
    """``tick`` (one of mode ``recorded``) as a client of ``mode`` receives it.

    At ``recorded`` or above the tick is returned as it is (a feed cannot invent the
    depth it never had); below, the fields of the higher modes go and ``mode`` says
    which mode the tick now is (when it said one before).
    """
    if mode >= recorded:
        return tick if isinstance(tick, dict) else dict(tick)
    dropped = _ABOVE[mode]
    body = {k: v for k, v in tick.items() if k not in dropped}
    if "mode" in tick:
        body["mode"] = mode
    return body


def upgrade(tick: dict[str, Any]) -> dict[str, Any]:
    """A tick recorded before oaws took OpenAlgo's names, in place, with today's names.

    ``avg_trade_price`` becomes ``average_price``, and a Depth tick (one with ``depth``)
    gains ``last_quantity``. A tick that has them already is left alone, so this is cheap
    and safe on every replayed tick.
    """
    for old, new in RENAMED.items():
        if old in tick:
            value = tick.pop(old)
            tick.setdefault(new, value)
    if "depth" in tick and "last_quantity" not in tick and "last_trade_quantity" in tick:
        tick["last_quantity"] = tick["last_trade_quantity"]
    return tick


def empty_level() -> Tick:
    return dict(EMPTY_LEVEL)


def depth_book(buy: Iterable[Mapping[str, Any]], sell: Iterable[Mapping[str, Any]], levels: int = DEPTH_LEVELS) -> Tick:
    """``{"buy": [...], "sell": [...]}`` with exactly ``levels`` levels a side: cut, or padded with empty ones."""
    book: Tick = {}
    for side, given in (("buy", buy), ("sell", sell)):
        kept = [dict(level) for level in given][:levels]
        kept.extend(empty_level() for _ in range(levels - len(kept)))
        book[side] = kept
    return book


def change(ltp: float, close: float, digits: int | None = None) -> tuple[float, float]:
    """(change, change %) of ``ltp`` against the previous close; (0, 0) without a close."""
    if not close:
        return 0.0, 0.0
    moved = ltp - close
    pct = moved * 100 / close
    if digits is None:
        return moved, pct
    return round(moved, digits), round(pct, digits)


def change_of(data: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(change, change %) as the tick says, else computed from ``ltp`` and ``close``; None when unknown."""
    moved, pct = data.get("change"), data.get("change_percent")
    if moved is None:
        ltp, close = data.get("ltp"), data.get("close")
        if isinstance(ltp, (int, float)) and isinstance(close, (int, float)) and close:
            moved, pct = change(ltp, close)
    return moved, pct
