"""Angel One's WebSocket V2 wire format, without I/O (docs/brokers/angel.md, sections 5 and 6).

Both ends use this module: the adapter decodes what Angel sends, the simulator encodes
what a test expects to read back. Keeping one definition of each layout, built from
``struct`` formats that a test checks against the offsets of docs/brokers/angel.md, is
what makes "the simulator encoded X, the adapter decoded X" a meaningful test.

Decoding is strict on purpose. A frame is accepted only if re-encoding the decoded
packet gives the same bytes back (exact length for its mode, a known exchange type, an
ASCII digit token padded with NUL, best-five flags of 0 or 1, finite floats); anything
else raises ``MalformedFrame``, which the feed counts and skips. So a corrupted frame can
never turn into a plausible but wrong tick.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

# Subscription modes of the wire protocol (not the client protocol's 1/2/3).
LTP, QUOTE, SNAP_QUOTE, DEPTH = 1, 2, 3, 4
MODES = (LTP, QUOTE, SNAP_QUOTE, DEPTH)

# Exchange types (SmartWebSocketV2's enum).
NSE_CM, NSE_FO, BSE_CM, BSE_FO, MCX_FO, NCX_FO, CDE_FO = 1, 2, 3, 4, 5, 7, 13
EXCHANGE_TYPES = (NSE_CM, NSE_FO, BSE_CM, BSE_FO, MCX_FO, NCX_FO, CDE_FO)

SUBSCRIBE, UNSUBSCRIBE = 1, 0

TOKEN_SIZE = 25
#: Largest total buy/sell quantity accepted: beyond 2**53 a float no longer holds a whole count.
MAX_QUANTITY = float(2**53)

_HEAD = "<BB25s"
_LTP = struct.Struct(_HEAD + "qqq")  # sequence, exchange timestamp, ltp
_QUOTE_TAIL = "qqqddqqqq"  # ltq, atp, volume, total buy, total sell, open, high, low, close
_QUOTE = struct.Struct(_HEAD + "qqq" + _QUOTE_TAIL)
# ltt, oi, oi change %, 10 x (flag u16, quantity i64, price i64, orders u16), upper, lower, 52w high, 52w low
_SNAP = struct.Struct(_HEAD + "qqq" + _QUOTE_TAIL + "qqd" + "Hqq H" * 10 + "qqqq")
# exchange timestamp, packet received time, 20 buy then 20 sell x (quantity i32, price i32, orders i16)
_DEPTH = struct.Struct(_HEAD + "qq" + "iih" * 40)

# the best five's ten entries and the depth's forty levels, each unpacked on its own
_FIVE = struct.Struct("<Hqq H")
_FIVE_AT = _SNAP.size - 4 * 8 - 10 * _FIVE.size  # 147: after the quote, ltt, oi and oi change
_LEVEL = struct.Struct("<iih")
_LEVELS_AT = _DEPTH.size - 40 * _LEVEL.size  # 43

STRUCTS = {LTP: _LTP, QUOTE: _QUOTE, SNAP_QUOTE: _SNAP, DEPTH: _DEPTH}
SIZES = {mode: s.size for mode, s in STRUCTS.items()}  # 51, 123, 379, 443


class MalformedFrame(ValueError):
    """A binary frame that is not a well-formed tick of its mode."""


class BestFiveEntry(NamedTuple):
    """One of SnapQuote's ten best-five entries, in wire order (paise)."""

    flag: int  # 1 buy, 0 sell
    quantity: int
    price: int
    orders: int


class DepthLevel(NamedTuple):
    """One of the twenty levels of a depth-20 packet (paise)."""

    quantity: int
    price: int
    orders: int


#: named tuples of unpacked tuples, in C (``_make`` is Python and checks a length unpack fixes)
_five = partial(tuple.__new__, BestFiveEntry)
_level = partial(tuple.__new__, DepthLevel)


@dataclass(slots=True)
class Packet:
    """One decoded tick, prices in paise exactly as on the wire.

    Fields beyond a mode's layout keep their defaults. DEPTH packets carry no sequence
    number and no last traded price. (Not frozen: a frozen dataclass's ``__init__`` costs
    more than the rest of decoding, and nothing mutates a packet.)
    """

    mode: int
    exchange_type: int
    token: str
    sequence: int = 0
    exchange_timestamp: int = 0
    ltp: int = 0
    # QUOTE
    last_traded_quantity: int = 0
    avg_traded_price: int = 0
    volume: int = 0
    total_buy_quantity: float = 0.0
    total_sell_quantity: float = 0.0
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    # SNAP_QUOTE
    last_traded_timestamp: int = 0
    open_interest: int = 0
    oi_change_percent: float = 0.0
    best_five: tuple[BestFiveEntry, ...] = ()
    upper_circuit: int = 0
    lower_circuit: int = 0
    week52_high: int = 0
    week52_low: int = 0
    # DEPTH (20 levels)
    packet_received_time: int = 0
    depth_buy: tuple[DepthLevel, ...] = ()
    depth_sell: tuple[DepthLevel, ...] = ()


def _token(raw: bytes) -> str:
    text = raw.rstrip(b"\x00")
    if not text.isdigit():  # ASCII digits only; also false when empty or NUL-ridden
        raise MalformedFrame(f"token field {raw!r} is not a NUL-padded number")
    return text.decode("ascii")


def _quantity(value: float) -> float:
    if not (0.0 <= value <= MAX_QUANTITY):  # also false for NaN
        raise MalformedFrame(f"total quantity {value!r} is not a count")
    return value


def decode(frame: bytes) -> Packet:
    """The packet in ``frame``; raises MalformedFrame for anything but a well-formed tick."""
    if not frame:
        raise MalformedFrame("empty frame")
    mode = frame[0]
    layout = STRUCTS.get(mode)
    if layout is None:
        raise MalformedFrame(f"unknown subscription mode {mode}")
    if len(frame) != layout.size:
        raise MalformedFrame(f"mode {mode} frame of {len(frame)} bytes, expected {layout.size}")
    v = layout.unpack(frame)
    exchange_type = v[1]
    if exchange_type not in EXCHANGE_TYPES:
        raise MalformedFrame(f"unknown exchange type {exchange_type}")
    token = _token(v[2])
    if mode == DEPTH:
        levels = tuple(map(_level, _LEVEL.iter_unpack(frame[_LEVELS_AT:])))
        return Packet(
            mode,
            exchange_type,
            token,
            exchange_timestamp=v[3],
            packet_received_time=v[4],
            depth_buy=tuple(levels[:20]),
            depth_sell=tuple(levels[20:]),
        )
    if mode == LTP:
        return Packet(mode, exchange_type, token, v[3], v[4], v[5])
    buy, sell = _quantity(v[9]), _quantity(v[10])
    if mode == QUOTE:
        return Packet(
            mode, exchange_type, token, v[3], v[4], v[5], v[6], v[7], v[8], buy, sell, v[11], v[12], v[13], v[14]
        )
    oi_change = v[17]
    if not math.isfinite(oi_change):
        raise MalformedFrame(f"open interest change {oi_change!r} is not a number")
    flags = v[18:58:4]
    if max(flags) > 1:  # unsigned: 0 (sell) and 1 (buy) only
        flag = next(f for f in flags if f > 1)
        raise MalformedFrame(f"best-five flag {flag} is neither 1 (buy) nor 0 (sell)")
    entries = tuple(map(_five, _FIVE.iter_unpack(frame[_FIVE_AT : _FIVE_AT + 10 * _FIVE.size])))
    return Packet(
        mode,
        exchange_type,
        token,
        v[3],
        v[4],
        v[5],
        v[6],
        v[7],
        v[8],
        buy,
        sell,
        v[11],
        v[12],
        v[13],
        v[14],
        v[15],
        v[16],
        oi_change,
        entries,
        v[58],
        v[59],
        v[60],
        v[61],
    )


def encode(p: Packet) -> bytes:
    """The frame Angel would send for ``p`` (the simulator's side, and the decoder's test oracle)."""
    head = (p.mode, p.exchange_type, p.token.encode("ascii"))
    if p.mode == DEPTH:
        if len(p.depth_buy) != 20 or len(p.depth_sell) != 20:
            raise ValueError("a depth packet needs 20 buy and 20 sell levels")
        flat = [x for lv in (*p.depth_buy, *p.depth_sell) for x in (lv.quantity, lv.price, lv.orders)]
        return _DEPTH.pack(*head, p.exchange_timestamp, p.packet_received_time, *flat)
    base = (*head, p.sequence, p.exchange_timestamp, p.ltp)
    if p.mode == LTP:
        return _LTP.pack(*base)
    quote = (
        *base,
        p.last_traded_quantity,
        p.avg_traded_price,
        p.volume,
        p.total_buy_quantity,
        p.total_sell_quantity,
        p.open,
        p.high,
        p.low,
        p.close,
    )
    if p.mode == QUOTE:
        return _QUOTE.pack(*quote)
    if p.mode != SNAP_QUOTE:
        raise ValueError(f"unknown subscription mode {p.mode}")
    if len(p.best_five) != 10:
        raise ValueError("a snap quote packet needs 10 best-five entries")
    five = [x for e in p.best_five for x in (e.flag, e.quantity, e.price, e.orders)]
    return _SNAP.pack(
        *quote,
        p.last_traded_timestamp,
        p.open_interest,
        p.oi_change_percent,
        *five,
        p.upper_circuit,
        p.lower_circuit,
        p.week52_high,
        p.week52_low,
    )


def request(action: int, mode: int, token_list: dict[int, list[str]], correlation_id: str) -> dict[str, object]:
    """A subscribe (action 1) or unsubscribe (action 0) request, as JSON-ready dict."""
    return {
        "correlationID": correlation_id,
        "action": action,
        "params": {
            "mode": mode,
            "tokenList": [{"exchangeType": et, "tokens": tokens} for et, tokens in token_list.items()],
        },
    }
