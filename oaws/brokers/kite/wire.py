"""Kite's ticker on the wire, without I/O: binary messages split into packets, packets decoded, text parsed.

A binary message is a 2-byte big-endian packet count, then per packet a 2-byte big-endian
length and the packet; a message of one byte is a heartbeat. A packet's size says its
layout (all fields big-endian unsigned 32-bit unless said):

- 8, LTP: token, last price.
- 28, index quote: token, last price, high, low, open, close, signed net change (24-28).
- 32, index full: the index quote and the exchange's time, epoch seconds (28-32).
- 44, quote: token, last price, last quantity, average price, volume, total buy quantity,
  total sell quantity, open, high, low, close (note the order: open first here).
- 184, full: the quote, then last trade time (s), OI, OI day high, OI day low, exchange
  time (s), then five bids and five offers of 12 bytes (quantity, price, u16 orders, 2 padding).

Prices stay integers here, in the unit of the token's segment (its low byte): ``divisor``
turns them into rupees (CDS ÷ 1e7, BCD and NCO ÷ 1e4, everything else ÷ 100, paise).

Decoding never raises and never guesses. WebSocket messages arrive whole, so a message
whose framing does not add up exactly (a count that overruns, a length past the end,
bytes left over) is not a truncated Kite message but foreign or corrupt bytes: none of
its packets is trusted, and it counts as one bad message. Within a message whose framing
adds up, a packet of a size Kite does not define is counted and skipped (never read as a
neighbouring layout), and the others are decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import orjson

LTP_SIZE, INDEX_QUOTE_SIZE, INDEX_FULL_SIZE, QUOTE_SIZE, FULL_SIZE = 8, 28, 32, 44, 184
SIZES = (LTP_SIZE, INDEX_QUOTE_SIZE, INDEX_FULL_SIZE, QUOTE_SIZE, FULL_SIZE)

#: Kite's modes, as its subscribe messages name them
LTP, QUOTE, FULL = "ltp", "quote", "full"
#: the mode a packet of each size is
MODE_OF_SIZE = {LTP_SIZE: LTP, INDEX_QUOTE_SIZE: QUOTE, INDEX_FULL_SIZE: FULL, QUOTE_SIZE: QUOTE, FULL_SIZE: FULL}

#: segments (an instrument token's low byte) with prices in other units than paise
CDS, BCD, NCO, INDICES = 3, 6, 12, 9
DIVISORS = {CDS: 10_000_000.0, BCD: 10_000.0, NCO: 10_000.0}
PAISE = 100.0

_U16 = struct.Struct(">H")
_LTP = struct.Struct(">II")
_INDEX = struct.Struct(">IIIIIIi")  # token, ltp, high, low, open, close, net change
_INDEX_FULL = struct.Struct(">IIIIIIiI")  # + exchange time
_QUOTE = struct.Struct(">IIIIIIIIIII")  # token, ltp, ltq, atp, volume, buy, sell, open, high, low, close
_FULL = struct.Struct(">IIIIIIIIIII" + "IIIII" + "IIH2x" * 10)
_FULL_HEAD = struct.Struct(">IIIIIIIIIII" + "IIIII")  # the 64 bytes before the book
_LEVEL = struct.Struct(">IIH2x")  # each of the book's ten levels

assert (_LTP.size, _INDEX.size, _INDEX_FULL.size, _QUOTE.size, _FULL.size) == SIZES


def divisor(token: int) -> float:
    """What a price of ``token`` is divided by to be rupees (by the segment in its low byte)."""
    return DIVISORS.get(token & 0xFF, PAISE)


class DepthEntry(NamedTuple):
    """One level of a full packet's book, the price as on the wire (a named tuple: ten a
    full packet, and a frozen dataclass's ``__init__`` cost more than unpacking them)."""

    quantity: int
    price: int
    orders: int


#: a DepthEntry of an unpacked level's tuple, in C (``_make`` is Python and checks a length unpack fixes)
_entry = partial(tuple.__new__, DepthEntry)


@dataclass(slots=True)
class Packet:
    """One decoded packet, prices as integers on the wire (``divisor`` makes rupees).

    Fields a layout does not carry are None (the book: empty tuples). Not frozen: a frozen
    dataclass's ``__init__`` cost a third of decoding, and nothing mutates a packet.
    """

    token: int
    size: int
    ltp: int
    open: int | None = None
    high: int | None = None
    low: int | None = None
    close: int | None = None
    #: index packets' own signed net change (bytes 24-28)
    net_change: int | None = None
    last_quantity: int | None = None
    average_price: int | None = None
    volume: int | None = None
    total_buy_quantity: int | None = None
    total_sell_quantity: int | None = None
    #: epoch seconds (full packets)
    last_trade_time: int | None = None
    exchange_time: int | None = None
    oi: int | None = None
    oi_day_high: int | None = None
    oi_day_low: int | None = None
    bids: tuple[DepthEntry, ...] = ()
    offers: tuple[DepthEntry, ...] = ()

    @property
    def mode(self) -> str:
        """Kite's mode of the packet: "ltp", "quote" or "full"."""
        return MODE_OF_SIZE[self.size]

    @property
    def index(self) -> bool:
        return self.size in (INDEX_QUOTE_SIZE, INDEX_FULL_SIZE)

    @property
    def divisor(self) -> float:
        return divisor(self.token)


def decode_packet(packet: bytes) -> Packet | None:
    """The packet of ``packet``'s bytes; None for a size Kite does not define."""
    size = len(packet)
    if size == LTP_SIZE:
        token, ltp = _LTP.unpack(packet)
        return Packet(token, size, ltp)
    if size in (INDEX_QUOTE_SIZE, INDEX_FULL_SIZE):
        if size == INDEX_QUOTE_SIZE:
            token, ltp, high, low, open_, close, net = _INDEX.unpack(packet)
            when = None
        else:
            token, ltp, high, low, open_, close, net, when = _INDEX_FULL.unpack(packet)
        return Packet(token, size, ltp, open_, high, low, close, net_change=net, exchange_time=when)
    if size == QUOTE_SIZE:
        token, ltp, ltq, atp, volume, buy, sell, open_, high, low, close = _QUOTE.unpack(packet)
        return Packet(token, size, ltp, open_, high, low, close, None, ltq, atp, volume, buy, sell)
    if size == FULL_SIZE:
        token, ltp, ltq, atp, volume, buy, sell, open_, high, low, close, ltt, oi, oi_high, oi_low, when = (
            _FULL_HEAD.unpack_from(packet)
        )
        book = tuple(map(_entry, _LEVEL.iter_unpack(packet[_FULL_HEAD.size :])))
        return Packet(
            token,
            size,
            ltp,
            open_,
            high,
            low,
            close,
            None,
            ltq,
            atp,
            volume,
            buy,
            sell,
            ltt,
            when,
            oi,
            oi_high,
            oi_low,
            book[:5],
            book[5:],
        )
    return None


def frames(message: bytes) -> list[tuple[int, int]] | None:
    """(offset, length) of each packet of a binary message; None when the framing does not add up exactly."""
    end = len(message)
    if end < 2:
        return None
    (count,) = _U16.unpack_from(message, 0)
    at, found = 2, []
    for _ in range(count):
        if at + 2 > end:
            return None
        (length,) = _U16.unpack_from(message, at)
        at += 2
        if at + length > end:
            return None
        found.append((at, length))
        at += length
    return found if at == end else None


def is_heartbeat(message: bytes) -> bool:
    return len(message) == 1


def decode(message: bytes) -> tuple[list[Packet], int]:
    """The packets of a binary message and how many bad things were skipped; never raises.

    A heartbeat is ``([], 0)``. A message with broken framing is ``([], 1)``; each packet
    of an unknown size adds one.
    """
    if len(message) == 1:
        return [], 0
    found = frames(message)
    if found is None:
        return [], 1
    packets, bad = [], 0
    for at, length in found:
        packet = decode_packet(message[at : at + length])
        if packet is None:
            bad += 1
        else:
            packets.append(packet)
    return packets, bad


# Text messages --------------------------------------------------------------------------
ORDER, ERROR, MESSAGE = "order", "error", "message"
TEXT_TYPES = (ORDER, ERROR, MESSAGE)


@dataclass(frozen=True, slots=True)
class Text:
    """A text message of the ticker: an order update (``data`` a dict), an error or a message."""

    type: str
    data: object


def parse_text(text: str | bytes) -> Text | None:
    """The text message; None for anything that is not one of Kite's three kinds (count it)."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    kind, data = message.get("type"), message.get("data")
    if kind not in TEXT_TYPES:
        return None
    if kind == ORDER and not isinstance(data, dict):
        return None
    return Text(kind, data)


# Requests -------------------------------------------------------------------------------
def subscribe(tokens: list[int]) -> bytes:
    return orjson.dumps({"a": "subscribe", "v": tokens})


def unsubscribe(tokens: list[int]) -> bytes:
    return orjson.dumps({"a": "unsubscribe", "v": tokens})


def set_mode(mode: str, tokens: list[int]) -> bytes:
    return orjson.dumps({"a": "mode", "v": [mode, tokens]})
