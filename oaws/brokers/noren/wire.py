"""Noren's WebSocket feed as data, without I/O: parse what it sends, merge partial updates, build requests.

Noren speaks JSON text frames, every value a string (BROKERS.md, "Noren OMS"):

- ``ck`` (the answer to the connect ``c``; ``ak`` to the OAuth connect ``a``): ``s`` is
  ``"OK"`` or a refusal;
- ``tk`` / ``dk``: the acknowledgement of a touchline / depth subscription, carrying a full
  snapshot of the scrip; ``tf`` / ``df``: later updates carrying **only the fields that
  changed** (even ``lp`` may be missing);
- ``uk`` / ``udk``: unsubscribe acknowledgements; ``ok`` / ``uok``: order-feed ones;
  ``om``: an order's update; ``h``: a heartbeat's echo.

``pc`` is the percent change against ``c`` (the previous close); there is no absolute
change field. ``ft`` is epoch seconds; ``ltt`` is ``HH:MM:SS`` in IST with no date.

The merge (``Book``): per (exchange, token) the latest known value of every field.
``tk`` / ``dk`` replace the state with the snapshot; ``tf`` / ``df`` update only the
fields they carry. A field never sent is absent from the state, never zero, so a tick
built from the state can only show what Noren said.

Bad input never raises out of ``parse``'s callers unexpectedly: a frame that is not JSON,
not an object, has no or an unknown ``t``, or a feed message without ``e`` / ``tk`` raises
``Malformed`` (the feed counts and skips it); a single field whose value cannot be read (a
word where a number belongs, a non-finite or absurd number) is dropped and counted in
``Message.bad_fields``, and the rest of the message stands.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from oaws.config import IST

# Message types -----------------------------------------------------------------------
CONNECT_ACK, OAUTH_ACK = "ck", "ak"
TOUCH_ACK, TOUCH_UPDATE, DEPTH_ACK, DEPTH_UPDATE = "tk", "tf", "dk", "df"
TOUCH_UNSUB_ACK, DEPTH_UNSUB_ACK = "uk", "udk"
ORDER_UPDATE, ORDER_ACK, ORDER_UNSUB_ACK = "om", "ok", "uok"
HEARTBEAT = "h"
#: snapshot messages (they replace the state) and update messages (they merge into it)
SNAPSHOTS = frozenset({TOUCH_ACK, DEPTH_ACK})
UPDATES = frozenset({TOUCH_UPDATE, DEPTH_UPDATE})
MARKET = SNAPSHOTS | UPDATES
KNOWN = MARKET | {CONNECT_ACK, OAUTH_ACK, TOUCH_UNSUB_ACK, DEPTH_UNSUB_ACK, ORDER_UPDATE, ORDER_ACK}
KNOWN |= {ORDER_UNSUB_ACK, HEARTBEAT}

#: subscription kinds: touchline and depth (their subscribe and unsubscribe request types)
TOUCHLINE, DEPTH = "t", "d"
UNSUBSCRIBE = {TOUCHLINE: "u", DEPTH: "ud"}
#: which kind a market message belongs to
KIND_OF = {TOUCH_ACK: TOUCHLINE, TOUCH_UPDATE: TOUCHLINE, DEPTH_ACK: DEPTH, DEPTH_UPDATE: DEPTH}

#: scrips per subscribe / unsubscribe request. OpenAlgo's production Shoonya client sends at most
#: 100 ``#``-joined scrips a frame (``MAX_SCRIPS_PER_BATCH``), which live Noren servers take; a
#: frame of 100 keys is about 1.5 kB, far from any frame limit, and 1000 scrips are 10 frames.
BATCH = 100

#: Noren's limits, assumed: its brokers publish none that we could find. One feed connection per
#: session (Noren's clients, NorenApi's and OpenAlgo's, open one) holding at most 1000 scrips
#: (OpenAlgo calls 5000 "conservative" for Flattrade; 1000 stays well inside it). A scrip is one
#: subscription whatever its modes (a Depth one serves LTP and Quote too).
CONNECTIONS, SUBSCRIPTIONS = 1, 1000

# Fields -------------------------------------------------------------------------------
LEVELS = 5
_LEVEL = range(1, LEVELS + 1)
#: prices and percentages (rupees; ``pc`` percent)
PRICE_FIELDS = frozenset(
    {"lp", "o", "h", "l", "c", "ap", "pc", "uc", "lc", "52h", "52l"}
    | {f"bp{i}" for i in _LEVEL}
    | {f"sp{i}" for i in _LEVEL}
)
#: whole counts (quantities, orders, open interest)
COUNT_FIELDS = frozenset(
    {"v", "ltq", "tbq", "tsq", "oi", "poi", "toi"} | {f"{side}{i}" for side in ("bq", "sq", "bo", "so") for i in _LEVEL}
)
#: epoch seconds
TIME_FIELDS = frozenset({"ft"})
#: kept as text (``ltt`` is checked to be HH:MM:SS)
TEXT_FIELDS = frozenset({"ts", "ltt", "ti", "ls", "pp", "e", "tk"})
#: the largest price accepted (no instrument trades near a thousand billion rupees)
MAX_PRICE = 1e12
#: the largest count accepted: orjson writes integers up to 2**64, JSON readers' floats hold 2**53 exactly
MAX_COUNT = 2**53
#: ft earlier than 2000 or later than 2100 is not a time of this feed
MIN_TIME, MAX_TIME = 946_684_800, 4_102_444_800


class Malformed(ValueError):
    """A frame that is not a Noren message the feed can use; ``str()`` says why, without the frame."""


@dataclass
class Message:
    """One parsed Noren frame."""

    t: str
    #: Noren's exchange and token, for market messages (``e``, ``tk``)
    exchange: str = ""
    token: str = ""
    #: the market fields it carried, each already a number (or checked text)
    fields: dict[str, Any] = field(default_factory=dict)
    #: fields present but unreadable, dropped
    bad_fields: int = 0
    #: the decoded object as it came (for ``ck``, ``om``...)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.exchange, self.token)

    @property
    def ok(self) -> bool:
        """For ``ck`` / ``ak`` / ``ok``: whether Noren said OK (the feed says ``"OK"``, REST ``"Ok"``)."""
        return str(self.raw.get("s", self.raw.get("stat", ""))).strip().upper() == "OK"

    @property
    def reason(self) -> str:
        """For a refused ``ck`` / ``ak``: Noren's words, one line, bounded."""
        for name in ("emsg", "reason", "s"):
            value = self.raw.get(name)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:200]
        return "no reason given"


def _price(text: Any) -> float:
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_PRICE:
        raise ValueError
    return value


def _count(text: Any) -> int:
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError
    if isinstance(text, str):
        text = text.strip()
        try:
            value = int(text)
        except ValueError:
            number = float(text)  # "1200.00"
            if not math.isfinite(number) or not number.is_integer():
                raise
            value = int(number)
    elif isinstance(text, float):
        if not math.isfinite(text) or not text.is_integer():
            raise ValueError
        value = int(text)
    else:
        value = text
    if not 0 <= value <= MAX_COUNT:
        raise ValueError
    return value


def _time(text: Any) -> int:
    value = _count(text)
    if not MIN_TIME <= value <= MAX_TIME:
        raise ValueError
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError
    if name == "ltt":
        parts = value.split(":")
        if len(parts) != 3 or not all(p.isdigit() and len(p) == 2 for p in parts):
            raise ValueError
        h, m, s = map(int, parts)
        if h > 23 or m > 59 or s > 59:
            raise ValueError
    return value


def parse_field(name: str, value: Any) -> Any:
    """The value of market field ``name`` as the tick needs it; ValueError when it cannot be read."""
    if name in PRICE_FIELDS:
        return _price(value)
    if name in COUNT_FIELDS:
        return _count(value)
    if name in TIME_FIELDS:
        return _time(value)
    return _text(name, value)


KNOWN_FIELDS = PRICE_FIELDS | COUNT_FIELDS | TIME_FIELDS | TEXT_FIELDS


def parse(frame: str | bytes) -> Message:
    """One Noren frame; raises ``Malformed`` when it is not a message the feed can use."""
    try:
        body = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise Malformed("not JSON") from None
    if not isinstance(body, dict):
        raise Malformed(f"a JSON {type(body).__name__}, not an object")
    t = body.get("t")
    if not isinstance(t, str):
        raise Malformed("no message type")
    if t not in KNOWN:
        raise Malformed(f"an unknown message type {t[:16]!r}")
    if t not in MARKET:
        return Message(t, raw=body)
    exchange, token = body.get("e"), body.get("tk")
    if not isinstance(exchange, str) or not exchange or not isinstance(token, str) or not token:
        raise Malformed(f"a {t} message without its exchange or token")
    if len(exchange) > 16 or len(token) > 32:
        raise Malformed(f"a {t} message with an implausible exchange or token")
    message = Message(t, exchange, token, raw=body)
    for name, value in body.items():
        if name in ("t", "e", "tk") or name not in KNOWN_FIELDS:
            continue
        try:
            message.fields[name] = parse_field(name, value)
        except (ValueError, TypeError, OverflowError):
            message.bad_fields += 1
    return message


# The merge -----------------------------------------------------------------------------
class Book:
    """The merged state of every scrip: snapshots replace it, updates merge into it."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], dict[str, Any]] = {}

    def apply(self, message: Message) -> dict[str, Any]:
        """Merge a market message into its scrip's state; the state after it (do not modify it)."""
        key = message.key
        if message.t in SNAPSHOTS:
            state = self.states[key] = dict(message.fields)
            return state
        state = self.states.setdefault(key, {})
        state.update(message.fields)
        return state

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        return self.states.get(key)

    def forget(self, key: tuple[str, str]) -> None:
        self.states.pop(key, None)


# Ticks from the state ------------------------------------------------------------------
def trade_time_ms(state: Mapping[str, Any]) -> int | None:
    """The last trade's time, epoch ms: ``ltt`` (HH:MM:SS IST) on the IST day of ``ft``, else ``ft``.

    A trade time later than the feed time on that day belongs to the day before (a message
    just after midnight about a trade before it).
    """
    ft = state.get("ft")
    if ft is None:
        return None
    ltt = state.get("ltt")
    if not isinstance(ltt, str):
        return ft * 1000
    day = datetime.fromtimestamp(ft, IST)
    h, m, s = map(int, ltt.split(":"))
    traded = day.replace(hour=h, minute=m, second=s, microsecond=0)
    if traded.timestamp() > ft + 60:
        traded -= timedelta(days=1)
    return int(traded.timestamp()) * 1000


def _put(tick: dict[str, Any], name: str, state: Mapping[str, Any], source: str) -> None:
    value = state.get(source)
    if value is not None:
        tick[name] = value


def tick(state: Mapping[str, Any], symbol: str, exchange: str, received_ms: int, *, depth: bool) -> dict[str, Any]:
    """The full tick (Depth when ``depth``, else Quote) of a scrip's merged state, SPEC §2 names.

    Only what the state holds: a field Noren never sent is left out, never zero. ``change``
    is ``ltp - close`` in rupees (Noren has no absolute change); ``change_percent`` is
    Noren's ``pc``, computed from ``ltp`` and ``close`` only when Noren sent none.
    """
    t: dict[str, Any] = {"symbol": symbol, "exchange": exchange, "mode": 3 if depth else 2}
    _put(t, "ltp", state, "lp")
    ltt = trade_time_ms(state)
    if ltt is not None:
        t["ltt"] = ltt
    t["timestamp"] = received_ms
    for name, source in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"), ("volume", "v")):
        _put(t, name, state, source)
    _put(t, "last_trade_quantity", state, "ltq")
    _put(t, "average_price", state, "ap")
    _put(t, "total_buy_quantity", state, "tbq")
    _put(t, "total_sell_quantity", state, "tsq")
    ltp, close = state.get("lp"), state.get("c")
    if ltp is not None and close is not None:
        t["change"] = round(ltp - close, 4)
    if state.get("pc") is not None:
        t["change_percent"] = state["pc"]
    elif ltp is not None and close:
        t["change_percent"] = round((ltp - close) * 100 / close, 2)
    if not depth:
        return t
    _put(t, "last_quantity", state, "ltq")
    oi = state.get("toi", state.get("oi"))
    if oi is not None:
        t["oi"] = oi
        poi = state.get("poi")
        if poi:
            t["oi_change_percent"] = round((oi - poi) * 100 / poi, 2)
    _put(t, "upper_circuit", state, "uc")
    _put(t, "lower_circuit", state, "lc")
    _put(t, "week_52_high", state, "52h")
    _put(t, "week_52_low", state, "52l")
    if not any(f"{p}{i}" in state for p in ("bp", "sp", "bq", "sq") for i in _LEVEL):
        return t  # no book at all (an index): no depth of zeros
    t["depth"] = {
        side: [
            {
                "price": state.get(f"{p}{i}", 0.0),
                "quantity": state.get(f"{q}{i}", 0),
                "orders": state.get(f"{o}{i}", 0),
            }
            for i in _LEVEL
        ]
        for side, p, q, o in (("buy", "bp", "bq", "bo"), ("sell", "sp", "sq", "so"))
    }
    t["depth_level"] = LEVELS
    return t


# Requests ------------------------------------------------------------------------------
def connect(user_id: str, susertoken: str) -> str:
    """The first message on the socket with a QuickAuth session (answered by ``ck``)."""
    return orjson.dumps(
        {"t": "c", "uid": user_id, "actid": user_id, "susertoken": susertoken, "source": "API"}
    ).decode()


def connect_access(user_id: str, access_token: str) -> str:
    """The first message with an OAuth access token (Shoonya's newer releases)."""
    body = {"t": "a", "uid": user_id, "actid": user_id, "accesstoken": access_token, "source": "API"}
    return orjson.dumps(body).decode()


def scrip(exchange: str, token: str) -> str:
    return f"{exchange}|{token}"


def _batched(t: str, keys: Iterable[tuple[str, str]], batch: int) -> list[str]:
    scrips = sorted(scrip(e, tk) for e, tk in keys)
    return [orjson.dumps({"t": t, "k": "#".join(scrips[i : i + batch])}).decode() for i in range(0, len(scrips), batch)]


def subscribe(kind: str, keys: Iterable[tuple[str, str]], batch: int = BATCH) -> list[str]:
    """``{"t": "t"|"d", "k": "NSE|2885#NSE|1594"}`` requests of at most ``batch`` scrips each."""
    return _batched(kind, keys, batch)


def unsubscribe(kind: str, keys: Iterable[tuple[str, str]], batch: int = BATCH) -> list[str]:
    """``{"t": "u"|"ud", "k": ...}`` requests of at most ``batch`` scrips each."""
    return _batched(UNSUBSCRIBE[kind], keys, batch)


def subscribe_orders(account: str) -> str:
    return orjson.dumps({"t": "o", "actid": account}).decode()


#: the application heartbeat (NorenApi sends it as its ping payload; OpenAlgo as a text frame)
HEARTBEAT_MESSAGE = '{"t":"h"}'
