"""OpenAlgo's WebSocket protocol as a client speaks it: requests out, replies in (no I/O).

Written from OpenAlgo's ``websocket_proxy/server.py``, what matters to a feed:

- ``{"action": "authenticate", "api_key": ...}`` is answered ``{"type": "auth", "status":
  "success", "broker": ...}`` once OpenAlgo has set up its broker adapter (which can take
  seconds), or with an error (``{"status": "error", "code": "AUTHENTICATION_ERROR", ...}``;
  ``BROKER_ERROR`` or ``BROKER_INIT_ERROR`` when its broker cannot be set up). Requests are
  handled one at a time, in order, so a subscribe sent right behind it waits for it.
- ``subscribe`` takes ``symbols`` and one ``mode`` for all of them (a label: ``LTP``,
  ``Quote``, ``Depth``; numbers too) and answers ``{"type": "subscribe", "subscriptions":
  [...]}``, an entry per instrument with its own ``status``; ``request_id`` is echoed.
- ``unsubscribe`` with ``symbols`` reads each entry's own ``mode`` and takes a missing one
  for Quote: every entry here names its mode (and the request too, for servers that read it
  there).
- Market data: ``{"type": "market_data", "symbol", "exchange", "mode", "data", "broker"}``,
  ``mode`` the subscription's, ``data`` the tick (SPEC §2's fields, OpenAlgo's names).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from oaws.instruments import MODE_LABELS, Instrument, InstrumentError, parse_mode

#: instruments per subscribe or unsubscribe request: frames far below OpenAlgo's 1 MiB
#: (and below any per-request cap an older server has)
CHUNK = 500

Message = dict[str, Any]


def authenticate(api_key: str) -> str:
    return orjson.dumps({"action": "authenticate", "api_key": api_key}).decode()


def subscribe(mode: int, instruments: Iterable[Instrument], request_id: str) -> str:
    symbols = [{"symbol": i.symbol, "exchange": i.exchange} for i in instruments]
    body = {"action": "subscribe", "symbols": symbols, "mode": MODE_LABELS[mode], "depth": 5, "request_id": request_id}
    return orjson.dumps(body).decode()


def unsubscribe(mode: int, instruments: Iterable[Instrument], request_id: str) -> str:
    label = MODE_LABELS[mode]
    symbols = [{"symbol": i.symbol, "exchange": i.exchange, "mode": label} for i in instruments]
    return orjson.dumps({"action": "unsubscribe", "symbols": symbols, "mode": label, "request_id": request_id}).decode()


def messages(frame: str | bytes) -> list[Message]:
    """The JSON objects of one frame (one object, or an array of them); [] for anything else."""
    try:
        body = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return []
    items = body if isinstance(body, list) else [body]
    return [m for m in items if isinstance(m, dict)]


def mode_of(value: object, default: int | None = None) -> int | None:
    """A mode as OpenAlgo writes it (1, "LTP", "Quote"...), else ``default``."""
    try:
        return parse_mode(value)
    except InstrumentError:
        return default


def instrument_of(message: Message) -> Instrument | None:
    """The instrument a message or a reply's entry names, as the bus spells it; None without one."""
    symbol, exchange = message.get("symbol"), message.get("exchange")
    if not isinstance(symbol, str) or not isinstance(exchange, str) or not symbol or not exchange:
        return None
    return Instrument(symbol.strip().upper(), exchange.strip().upper())


def is_error(message: Message) -> bool:
    return message.get("status") == "error" or message.get("type") == "error"


def reason(message: Message) -> str:
    """``CODE: message`` of an error reply, for log lines and the stand-down sentence."""
    code, text = message.get("code"), message.get("message")
    text = str(text) if text else "no reason given"
    return f"{code}: {text}" if isinstance(code, str) and code else text
