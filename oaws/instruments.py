"""Instruments, exchanges, modes and bus topics.

An instrument is written ``SYMBOL:EXCHANGE`` on the command line and travels on the bus
as the topic ``EXCHANGE_SYMBOL_MODE`` (OpenAlgo's own topic format). An exchange may
contain ``_`` (``NSE_INDEX``, ``GLOBAL_INDEX``); the mode is always the last part of a
topic, and the exchange is read longest first, so ``MCX_INDEX_X_LTP`` is X of MCX_INDEX.

The exchanges are every one OpenAlgo serves (``VALID_EXCHANGES`` of its
``utils/constants.py``); which of them a broker serves is the broker's business.

Depth beyond the default five levels: OpenAlgo's topics never carry a depth (its
adapters publish 20 levels on ``EXCHANGE_SYMBOL_DEPTH`` too, Dhan's with ``depth_level``
in the tick), because its proxy tells an adapter the depth in a call. oaws's feeds learn
what is wanted from the bus subscriptions, so a Depth stream of another depth has a
topic of its own, ``EXCHANGE_SYMBOL_DEPTH_20``: its subscribers get 20 levels, those of
``EXCHANGE_SYMBOL_DEPTH`` keep their five, and the default topic stays OpenAlgo's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

EXCHANGES: tuple[str, ...] = (
    "NSE",
    "BSE",
    "NFO",
    "BFO",
    "CDS",
    "BCD",
    "MCX",
    "NCDEX",
    "NCO",
    "NSE_INDEX",
    "BSE_INDEX",
    "MCX_INDEX",
    "GLOBAL_INDEX",
    "CRYPTO",
)
# Longest first, so that ``NSE_INDEX_NIFTY_LTP`` is read as NSE_INDEX / NIFTY.
_EXCHANGES_LONGEST_FIRST = sorted(EXCHANGES, key=len, reverse=True)

LTP, QUOTE, DEPTH = 1, 2, 3
MODES: tuple[int, ...] = (LTP, QUOTE, DEPTH)
MODE_NAMES = {LTP: "LTP", QUOTE: "QUOTE", DEPTH: "DEPTH"}
MODE_LABELS = {LTP: "LTP", QUOTE: "Quote", DEPTH: "Depth"}
_MODE_BY_NAME = {"LTP": LTP, "QUOTE": QUOTE, "DEPTH": DEPTH}
#: levels a side of a Depth tick when a client names no ``depth``
DEFAULT_DEPTH = 5
#: the most levels a side any broker offers (OpenAlgo names 5, 20, 30 and 50)
MAX_DEPTH = 50
#: the depths a feed may offer (OpenAlgo's)
KNOWN_DEPTHS: tuple[int, ...] = (5, 20, 30, 50)

# Symbols as brokers spell them: RELIANCE, M&M, BAJAJ-AUTO, NIFTY28NOV2425000CE, "NIFTY 50".
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9&\-_. ]{0,63}$")

DEFAULT_WATCHLIST: tuple[str, ...] = (
    "NIFTY:NSE_INDEX",
    "BANKNIFTY:NSE_INDEX",
    "RELIANCE:NSE",
    "HDFCBANK:NSE",
    "ICICIBANK:NSE",
    "INFY:NSE",
    "TCS:NSE",
    "SBIN:NSE",
)


class InstrumentError(ValueError):
    """A user wrote an instrument or mode that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    exchange: str

    def __str__(self) -> str:
        return f"{self.symbol}:{self.exchange}"

    def topic(self, mode: int, depth: int = DEFAULT_DEPTH) -> str:
        """The bus topic of this instrument at ``mode`` (``NSE_RELIANCE_LTP``); a Depth
        stream of other than five levels a side adds its depth (``NSE_RELIANCE_DEPTH_20``)."""
        if mode == DEPTH and depth != DEFAULT_DEPTH:
            return f"{self.exchange}_{self.symbol}_DEPTH_{depth}"
        return f"{self.exchange}_{self.symbol}_{MODE_NAMES[mode]}"

    @property
    def dotted(self) -> str:
        """The seed protocol's topic (``RELIANCE.NSE``), sent as ``topic`` to clients."""
        return f"{self.symbol}.{self.exchange}"


def valid_symbol(symbol: object) -> bool:
    return isinstance(symbol, str) and bool(_SYMBOL_RE.match(symbol))


def make(symbol: object, exchange: object) -> Instrument:
    """An instrument from a request's fields, checked; raises InstrumentError.

    Refused too: a symbol whose topic would read back as another instrument's
    (``INDEX_NIFTY:NSE`` is written ``NSE_INDEX_NIFTY_...``, NIFTY:NSE_INDEX's topic): the bus
    could not tell the two apart, and one route would serve two labels."""
    if not isinstance(exchange, str) or exchange.upper() not in EXCHANGES:
        raise InstrumentError(f"unknown exchange {exchange!r}; known: {', '.join(EXCHANGES)}")
    if not valid_symbol(symbol):
        raise InstrumentError(f"invalid symbol {symbol!r}")
    instrument = Instrument(str(symbol).upper(), exchange.upper())
    head = f"{instrument.exchange}_{instrument.symbol}"
    read = _instrument_of(head)
    if read != instrument:
        whose = f"that of {read}" if read is not None else "no instrument's"
        raise InstrumentError(
            f"invalid symbol {instrument.symbol!r} on {instrument.exchange}: its bus topic {head}_* is {whose}"
        )
    return instrument


def parse(text: str) -> Instrument:
    """``RELIANCE:NSE``, or ``NSE:RELIANCE`` where the first part is a known exchange."""
    parts = text.strip().split(":")
    if len(parts) != 2 or not all(parts):
        raise InstrumentError(f"{text!r} is not an instrument; write SYMBOL:EXCHANGE, e.g. RELIANCE:NSE")
    first, second = parts
    if first.upper() in EXCHANGES and second.upper() not in EXCHANGES:
        first, second = second, first
    return make(first, second)


def parse_many(texts: list[str] | tuple[str, ...]) -> list[Instrument]:
    """Instruments in the order given, without repeats."""
    seen: dict[Instrument, None] = {}
    for text in texts:
        seen[parse(text)] = None
    return list(seen)


def parse_mode(value: object) -> int:
    """1, 2, 3, "1".."3" or LTP / Quote / Depth in any case; raises InstrumentError."""
    if isinstance(value, bool):
        raise InstrumentError(f"invalid mode {value!r}")
    if isinstance(value, int) and value in MODES:
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        if name in _MODE_BY_NAME:
            return _MODE_BY_NAME[name]
        if name.isdigit() and int(name) in MODES:
            return int(name)
    raise InstrumentError(f"invalid mode {value!r}; use 1/LTP, 2/Quote or 3/Depth")


class Stream(NamedTuple):
    """What a bus topic names: an instrument, a mode and, for Depth, the levels a side."""

    instrument: Instrument
    mode: int
    depth: int = DEFAULT_DEPTH


def parse_topic(topic: str) -> tuple[Instrument, int] | None:
    """``NSE_INDEX_NIFTY_QUOTE`` -> (NIFTY:NSE_INDEX, 2); None for anything else, a Depth
    topic of another depth (``..._DEPTH_20``, see ``parse_stream``) included."""
    stream = parse_stream(topic)
    if stream is None or stream.depth != DEFAULT_DEPTH:
        return None
    return stream.instrument, stream.mode


def parse_stream(topic: str) -> Stream | None:
    """``NSE_RELIANCE_DEPTH_20`` -> (RELIANCE:NSE, 3, 20), ``NSE_RELIANCE_LTP`` -> (RELIANCE:NSE,
    1, 5); None for anything that is not an instrument's topic as ``Instrument.topic`` writes
    it (``..._DEPTH_5`` is not: five levels are ``..._DEPTH``)."""
    head, sep, last = topic.rpartition("_")
    depth = DEFAULT_DEPTH
    if last.isascii() and last.isdigit():
        depth = int(last)
        if str(depth) != last or not DEFAULT_DEPTH < depth <= MAX_DEPTH:
            return None
        head, sep, last = head.rpartition("_")
        if last != MODE_NAMES[DEPTH]:
            return None
    mode = _MODE_BY_NAME.get(last)
    if not sep or mode is None:
        return None
    instrument = _instrument_of(head)
    return None if instrument is None else Stream(instrument, mode, depth)


def _instrument_of(head: str) -> Instrument | None:
    """``NSE_INDEX_NIFTY`` -> NIFTY:NSE_INDEX: the longest known exchange that starts it."""
    for exchange in _EXCHANGES_LONGEST_FIRST:
        if head.startswith(exchange + "_"):
            symbol = head[len(exchange) + 1 :]
            return Instrument(symbol, exchange) if valid_symbol(symbol) else None
    return None
