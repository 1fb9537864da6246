"""Dhan's v2 market feed and 20-level depth stream on the wire, without I/O.

Requests are JSON text frames; responses are little-endian binary. The layouts below were
checked against Dhan's own client (dhanhq 2.3.0: ``marketfeed.MarketFeed.process_*`` and
``fulldepth.FullDepth.process_20_depth_data``), which ``tests/brokers/dhan/test_wire.py``
uses as an oracle on generated packets.

The market feed (``wss://api-feed.dhan.co?version=2&token=…&clientId=…&authType=2``):
every response starts with an 8-byte header ``<BHBI`` (response code, the response's
length in bytes including the header, the exchange-segment byte, the security id), and one
WebSocket message may hold several responses one after another: ``decode`` walks them by
that length.

======  ================  ======  ==================================================================
code    response          bytes   after the header
======  ================  ======  ==================================================================
2       ticker            16      LTP f32, LTT u32
4       quote             50      LTP f32, LTQ u16, LTT u32, ATP f32, volume u32, total **sell** u32,
                                  total buy u32, open f32, close f32, high f32, low f32
5       OI                12      OI u32
6       previous close    16      previous close f32, previous OI u32
7       market status     8       (nothing)
8       full              162     as quote up to total buy, then OI, OI day high, OI day low (u32),
                                  open, close, high, low (f32), 5 depth levels of 20 B
50      disconnect        10      reason u16
======  ================  ======  ==================================================================

A depth level (``<IIHHff``) mixes both sides: bid qty, ask qty, bid orders, ask orders, bid
price, ask price. ``close`` in quote and full is *today's* close (0 while the market is
open); the previous close arrives once per subscription as response 6.

The 20-level depth stream (``wss://depth-api-feed.dhan.co/twentydepth?token=…``) has a
12-byte header ``<hBBiI`` (length, code, segment, security id, a sequence number) and
twenty levels of 16 bytes (price f64, quantity u32, orders u32); code 41 carries the bids
and 51 the asks of one instrument as two separate responses, 50 a disconnect (its reason
in the sequence field).

Prices are rupees, rounded to two decimals (a float32 ``2456.55`` reads back as
``2456.550048828125``). Decoding never raises: a response that is truncated, has an
unknown code, a length that is not its code's size, an unknown segment or a price that is
not finite is counted in ``Decoded.bad`` and skipped, so a corrupt message can never
become a plausible tick. A length that cannot be trusted stops the walk of that message.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Response codes of the market feed
TICKER, QUOTE, OI, PREV_CLOSE, MARKET_STATUS, FULL, DISCONNECT = 2, 4, 5, 6, 7, 8, 50
# Response codes of the 20-level depth stream
DEPTH_BID, DEPTH_ASK = 41, 51

# Request codes (Dhan's annexure "Feed Request Code")
CONNECT, DISCONNECT_REQUEST = 11, 12
SUB_TICKER, UNSUB_TICKER = 15, 16
SUB_QUOTE, UNSUB_QUOTE = 17, 18
SUB_FULL, UNSUB_FULL = 21, 22
#: 20-level depth: 23 subscribes; the annexure lists 25 as its unsubscribe (dhanhq sends 24)
SUB_DEPTH_20, UNSUB_DEPTH_20 = 23, 25
UNSUBSCRIBE_CODE = {
    SUB_TICKER: UNSUB_TICKER,
    SUB_QUOTE: UNSUB_QUOTE,
    SUB_FULL: UNSUB_FULL,
    SUB_DEPTH_20: UNSUB_DEPTH_20,
}
#: instruments one subscribe message may carry (Dhan: 100; the depth stream: 50 a connection)
MAX_PER_REQUEST = 100
#: Dhan's documented limits (the plugin declares the same in oaws/brokers/dhan/__init__.py):
#: connections a user, instruments on a market-feed connection, on a 20-depth connection
CONNECTIONS, INSTRUMENTS_PER_CONNECTION, DEPTH_PER_CONNECTION = 5, 5000, 50

#: segment byte -> Dhan's segment name (the annexure's "Exchange Segment")
SEGMENTS: dict[int, str] = {
    0: "IDX_I",
    1: "NSE_EQ",
    2: "NSE_FNO",
    3: "NSE_CURRENCY",
    4: "BSE_EQ",
    5: "MCX_COMM",
    7: "BSE_CURRENCY",
    8: "BSE_FNO",
}
SEGMENT_CODES: dict[str, int] = {name: code for code, name in SEGMENTS.items()}
#: the segments Dhan serves 20-level depth for
DEPTH_20_SEGMENTS = frozenset({1, 2})

HEADER = struct.Struct("<BHBI")
_TICKER = struct.Struct("<BHBIfI")
_QUOTE = struct.Struct("<BHBIfHIfIIIffff")
_OI = struct.Struct("<BHBII")
_PREV_CLOSE = struct.Struct("<BHBIfI")
_FULL = struct.Struct("<BHBIfHIfIIIIIIffff")
_LEVEL = struct.Struct("<IIHHff")
_DISCONNECT = struct.Struct("<BHBIH")
#: exact size of each response code
SIZES: dict[int, int] = {
    TICKER: _TICKER.size,  # 16
    QUOTE: _QUOTE.size,  # 50
    OI: _OI.size,  # 12
    PREV_CLOSE: _PREV_CLOSE.size,  # 16
    MARKET_STATUS: HEADER.size,  # 8
    FULL: _FULL.size + 5 * _LEVEL.size,  # 162
    DISCONNECT: _DISCONNECT.size,  # 10
}

DEPTH_HEADER = struct.Struct("<hBBiI")
_DEPTH_LEVEL = struct.Struct("<dII")
DEPTH_LEVELS = 20
DEPTH_SIZE = DEPTH_HEADER.size + DEPTH_LEVELS * _DEPTH_LEVEL.size  # 332

#: reason codes of a disconnect (response 50), Dhan's annexure "Data API Error"
REASONS: dict[int, str] = {
    800: "Dhan's feed had an internal error",
    804: "the instruments asked for exceed Dhan's limit",
    805: "too many connections or requests: Dhan allows 5 WebSocket connections a user",
    806: "this Dhan account has not subscribed to the Data APIs",
    807: "the Dhan access token has expired",
    808: "Dhan refused the client id (check DHAN_CLIENT_ID)",
    809: "Dhan refused the access token (authentication failed)",
    810: "Dhan refused the client id as invalid",
    811: "Dhan refused an invalid expiry date",
    812: "Dhan refused an invalid date format",
    813: "Dhan refused an invalid security id",
    814: "Dhan refused an invalid request",
}
#: reasons that mean the credentials are refused: a reconnect with the same token cannot help
AUTH_REASONS = frozenset({807, 808, 809, 810})


def reason_text(code: int) -> str:
    """One sentence (without the full stop) for a disconnect reason code."""
    return REASONS.get(code, f"Dhan closed the feed with reason code {code}")


class Level(NamedTuple):
    """One of the five levels of a full packet: both sides at once, as on the wire."""

    bid_quantity: int
    ask_quantity: int
    bid_orders: int
    ask_orders: int
    bid_price: float
    ask_price: float


class DepthLevel(NamedTuple):
    """One of the twenty levels of a depth-20 side."""

    price: float
    quantity: int
    orders: int


@dataclass(slots=True)
class Response:
    """One decoded response; fields beyond its code's layout keep their defaults."""

    code: int
    segment: int
    security_id: int
    ltp: float = 0.0
    ltt: int = 0  # seconds, India time counted as if UTC (see ticks.ltt_ms)
    last_quantity: int = 0
    average_price: float = 0.0
    volume: int = 0
    total_sell_quantity: int = 0
    total_buy_quantity: int = 0
    open: float = 0.0
    close: float = 0.0  # today's close: 0 until the market closes
    high: float = 0.0
    low: float = 0.0
    oi: int = 0
    oi_high: int = 0
    oi_low: int = 0
    prev_close: float = 0.0
    prev_oi: int = 0
    depth: tuple[Level, ...] = ()
    reason: int = 0  # DISCONNECT


@dataclass(slots=True)
class DepthSide:
    """One side (bids: code 41, asks: 51) of an instrument's twenty-level book."""

    code: int
    segment: int
    security_id: int
    sequence: int
    levels: tuple[DepthLevel, ...]

    @property
    def side(self) -> str:
        return "buy" if self.code == DEPTH_BID else "sell"


@dataclass(slots=True)
class Decoded:
    """What one WebSocket message held: the good responses in order, how many were bad and why."""

    responses: list[Any] = field(default_factory=list)
    bad: int = 0
    problems: list[str] = field(default_factory=list)

    def _bad(self, problem: str) -> None:
        self.bad += 1
        if len(self.problems) < 4:
            self.problems.append(problem)


def _price(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"price {value!r} is not a number")
    return round(value, 2)


def _response(code: int, chunk: bytes) -> Response:
    """The response of ``code`` in ``chunk`` (exactly its size); ValueError for a bad value."""
    if code == TICKER:
        _, _, seg, sid, ltp, ltt = _TICKER.unpack(chunk)
        return Response(code, seg, sid, ltp=_price(ltp), ltt=ltt)
    if code == QUOTE:
        _, _, seg, sid, ltp, ltq, ltt, atp, vol, sell, buy, o, c, h, lo = _QUOTE.unpack(chunk)
        return Response(
            code,
            seg,
            sid,
            ltp=_price(ltp),
            last_quantity=ltq,
            ltt=ltt,
            average_price=_price(atp),
            volume=vol,
            total_sell_quantity=sell,
            total_buy_quantity=buy,
            open=_price(o),
            close=_price(c),
            high=_price(h),
            low=_price(lo),
        )
    if code == FULL:
        return _full(chunk)
    return _other(code, chunk)


#: round(price, 2) of the prices seen: a CPython round() to two places costs more than the
#: rest of decoding a full packet, and a feed's prices (its book's levels most) recur
_ROUNDED: dict[float, float] = {}
_ROUNDED_MAX = 65_536


def _round2(value: float) -> float:
    """``round(value, 2)`` for a finite ``value``, remembered."""
    rounded = _ROUNDED.get(value)
    if rounded is None:
        rounded = round(value, 2)
        if value == 0.0:  # 0.0 and -0.0 are one key; each rounds to itself
            return rounded
        if len(_ROUNDED) >= _ROUNDED_MAX:
            _ROUNDED.clear()
        _ROUNDED[value] = rounded
    return rounded


def _full(chunk: bytes) -> Response:
    """A full packet: the hot path. Its sixteen prices are checked at once (a sum of float32s
    is finite exactly when each is), and ``_full_checked`` says which one is bad."""
    _, _, seg, sid, ltp, ltq, ltt, atp, vol, sell, buy, oi, oi_high, oi_low, o, c, h, lo = _FULL.unpack_from(chunk)
    raw = _LEVEL.iter_unpack(chunk[_FULL.size :])
    levels = tuple(raw)
    total = ltp + atp + o + c + h + lo
    for level in levels:
        total += level[4] + level[5]
    if not math.isfinite(total):
        return _full_checked(chunk)
    return Response(
        FULL,
        seg,
        sid,
        _round2(ltp),
        ltt,
        ltq,
        _round2(atp),
        vol,
        sell,
        buy,
        _round2(o),
        _round2(c),
        _round2(h),
        _round2(lo),
        oi,
        oi_high,
        oi_low,
        depth=tuple(Level(bq, aq, bo, ao, _round2(bp), _round2(ap)) for bq, aq, bo, ao, bp, ap in levels),
    )


def _full_checked(chunk: bytes) -> Response:
    """A full packet, each price checked in turn (ValueError names the first bad one)."""
    v = _FULL.unpack_from(chunk)
    _, _, seg, sid, ltp, ltq, ltt, atp, vol, sell, buy, oi, oi_high, oi_low, o, c, h, lo = v
    levels = []
    for i in range(5):
        bq, aq, bo, ao, bp, ap = _LEVEL.unpack_from(chunk, _FULL.size + i * _LEVEL.size)
        levels.append(Level(bq, aq, bo, ao, _price(bp), _price(ap)))
    return Response(
        FULL,
        seg,
        sid,
        ltp=_price(ltp),
        last_quantity=ltq,
        ltt=ltt,
        average_price=_price(atp),
        volume=vol,
        total_sell_quantity=sell,
        total_buy_quantity=buy,
        oi=oi,
        oi_high=oi_high,
        oi_low=oi_low,
        open=_price(o),
        close=_price(c),
        high=_price(h),
        low=_price(lo),
        depth=tuple(levels),
    )


def _other(code: int, chunk: bytes) -> Response:
    if code == OI:
        _, _, seg, sid, oi = _OI.unpack(chunk)
        return Response(code, seg, sid, oi=oi)
    if code == PREV_CLOSE:
        _, _, seg, sid, prev, prev_oi = _PREV_CLOSE.unpack(chunk)
        return Response(code, seg, sid, prev_close=_price(prev), prev_oi=prev_oi)
    if code == DISCONNECT:
        _, _, seg, sid, reason = _DISCONNECT.unpack(chunk)
        return Response(code, seg, sid, reason=reason)
    _, _, seg, sid = HEADER.unpack(chunk)  # MARKET_STATUS
    return Response(code, seg, sid)


def decode(message: bytes) -> Decoded:
    """Every response of one market-feed message, in order; never raises (see the module docstring)."""
    out = Decoded()
    if not isinstance(message, (bytes, bytearray, memoryview)):
        out._bad("a text frame where binary was expected")
        return out
    data = bytes(message)
    offset, end = 0, len(data)
    if end == 0:
        out._bad("an empty message")
    while offset < end:
        if end - offset < HEADER.size:
            out._bad(f"{end - offset} trailing bytes, shorter than a header")
            break
        code, length, segment, _ = HEADER.unpack_from(data, offset)
        size = SIZES.get(code)
        if size is None:
            out._bad(f"unknown response code {code}")
            break  # nothing says where the next response starts
        if length != size:
            out._bad(f"response {code} says {length} bytes, its size is {size}")
            break
        if offset + size > end:
            out._bad(f"response {code} truncated at {end - offset} of {size} bytes")
            break
        if segment not in SEGMENTS and code != DISCONNECT:
            out._bad(f"response {code} with unknown segment {segment}")
            offset += size
            continue
        try:
            out.responses.append(_response(code, data[offset : offset + size]))
        except (ValueError, struct.error) as exc:
            out._bad(f"response {code}: {exc}")
        offset += size
    return out


def decode_depth(message: bytes) -> Decoded:
    """Every side (``DepthSide``) and disconnect (``Response``) of one 20-depth message; never raises."""
    out = Decoded()
    if not isinstance(message, (bytes, bytearray, memoryview)):
        out._bad("a text frame where binary was expected")
        return out
    data = bytes(message)
    offset, end = 0, len(data)
    if end == 0:
        out._bad("an empty message")
    while offset < end:
        if end - offset < DEPTH_HEADER.size:
            out._bad(f"{end - offset} trailing bytes, shorter than a depth header")
            break
        length, code, segment, security_id, sequence = DEPTH_HEADER.unpack_from(data, offset)
        if code == DISCONNECT:
            if length < DEPTH_HEADER.size or offset + length > end:
                length = DEPTH_HEADER.size  # the reason is in the header: take it, whatever the length says
            out.responses.append(Response(DISCONNECT, segment, security_id, reason=sequence))
            offset += length
            continue
        if code not in (DEPTH_BID, DEPTH_ASK):
            out._bad(f"unknown depth response code {code}")
            break
        if length != DEPTH_SIZE:
            out._bad(f"depth response {code} says {length} bytes, its size is {DEPTH_SIZE}")
            break
        if offset + DEPTH_SIZE > end:
            out._bad(f"depth response {code} truncated at {end - offset} of {DEPTH_SIZE} bytes")
            break
        if segment not in SEGMENTS or security_id < 0:
            out._bad(f"depth response {code} with segment {segment}, security id {security_id}")
            offset += DEPTH_SIZE
            continue
        try:
            levels = tuple(
                DepthLevel(_price(p), q, n)
                for p, q, n in _DEPTH_LEVEL.iter_unpack(data[offset + DEPTH_HEADER.size : offset + DEPTH_SIZE])
            )
        except ValueError as exc:
            out._bad(f"depth response {code}: {exc}")
        else:
            out.responses.append(DepthSide(code, segment, security_id, sequence, levels))
        offset += DEPTH_SIZE
    return out


# Requests -------------------------------------------------------------------------------
def requests(code: int, instruments: list[tuple[int, str]], per_message: int = MAX_PER_REQUEST) -> list[dict[str, Any]]:
    """Subscribe/unsubscribe messages of ``code`` for ``(segment byte, security id)`` pairs, ≤ ``per_message`` each."""
    out = []
    ordered = sorted(set(instruments), key=lambda pair: (pair[0], int(pair[1]) if pair[1].isdigit() else 0, pair[1]))
    for start in range(0, len(ordered), per_message):
        batch = ordered[start : start + per_message]
        out.append(
            {
                "RequestCode": code,
                "InstrumentCount": len(batch),
                "InstrumentList": [
                    {"ExchangeSegment": SEGMENTS[segment], "SecurityId": str(security_id)}
                    for segment, security_id in batch
                ],
            }
        )
    return out


def disconnect_request() -> dict[str, int]:
    """The message that asks Dhan to close the feed."""
    return {"RequestCode": DISCONNECT_REQUEST}


# Encoders (the simulator's side, and the tests') ----------------------------------------
def encode(r: Response) -> bytes:
    """The bytes of ``r`` as Dhan sends them (float32 prices)."""
    size = SIZES[r.code]
    if r.code == TICKER:
        return _TICKER.pack(r.code, size, r.segment, r.security_id, r.ltp, r.ltt)
    if r.code == PREV_CLOSE:
        return _PREV_CLOSE.pack(r.code, size, r.segment, r.security_id, r.prev_close, r.prev_oi)
    if r.code == OI:
        return _OI.pack(r.code, size, r.segment, r.security_id, r.oi)
    if r.code == MARKET_STATUS:
        return HEADER.pack(r.code, size, r.segment, r.security_id)
    if r.code == DISCONNECT:
        return _DISCONNECT.pack(r.code, size, r.segment, r.security_id, r.reason)
    common = (r.ltp, r.last_quantity, r.ltt, r.average_price, r.volume, r.total_sell_quantity, r.total_buy_quantity)
    ohlc = (r.open, r.close, r.high, r.low)
    if r.code == QUOTE:
        return _QUOTE.pack(r.code, size, r.segment, r.security_id, *common, *ohlc)
    levels = list(r.depth)[:5] + [Level(0, 0, 0, 0, 0.0, 0.0)] * (5 - len(r.depth))
    head = _FULL.pack(r.code, size, r.segment, r.security_id, *common, r.oi, r.oi_high, r.oi_low, *ohlc)
    return head + b"".join(_LEVEL.pack(*level) for level in levels)


def encode_depth(side: DepthSide) -> bytes:
    """The bytes of one 20-depth side as Dhan sends them."""
    levels = list(side.levels)[:DEPTH_LEVELS]
    levels += [DepthLevel(0.0, 0, 0)] * (DEPTH_LEVELS - len(levels))
    head = DEPTH_HEADER.pack(DEPTH_SIZE, side.code, side.segment, side.security_id, side.sequence)
    return head + b"".join(_DEPTH_LEVEL.pack(*level) for level in levels)


def encode_depth_disconnect(reason: int) -> bytes:
    return DEPTH_HEADER.pack(DEPTH_HEADER.size, DISCONNECT, 0, 0, reason)
