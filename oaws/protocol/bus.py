"""The bus's message format (SPEC §3) beyond the tick itself: control topics and ``fseq``.

Kept here, without I/O, because four places speak it: the feed's hub stamps ``fseq``
(``oaws.server.bus``), the proxy reads it to count messages ZeroMQ dropped
(``oaws.server.proxy``), the replay feed strips it from recorded ticks, and a
recording's summary reads it to count ticks that never arrived.

``fseq`` is a feed's count of messages on one topic (1, 2, 3...), spliced into the
payload as its first key so that a proxy reads it from the bytes without parsing the
tick. A count lower than the last one seen means the feed restarted and counts afresh.

Control messages travel under topics that start with ``_oaws.`` (no exchange starts with
``_``), their payload a JSON object:

* ``_oaws.info``, once a second from each feed, and at once when a proxy joins (its SUB
  socket subscribes ``_oaws.``): ``fid`` (the feed's id), ``broker``, ``depths``,
  ``adapter_status`` and the feed's other figures;
* ``_oaws.reject``, when a feed cannot serve a wanted topic: ``fid``, ``topic``, ``symbol``,
  ``exchange``, ``mode``, ``code`` (an error code of ``oaws.protocol.codes``), ``message``;
* ``_oaws.order.<nonce>``, a feed's answer to an order placed with ``oaws sim order``
  (``oaws.protocol.orders``, which also has the order updates' own topics).

A proxy checks both before it acts on them (``info_error``, ``reject_error``): a bus is
another process's output, and whoever can publish on it could otherwise rename the broker,
offer depths no feed has, or take a subscription back from every client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from oaws.instruments import KNOWN_DEPTHS, parse_stream

CONTROL_PREFIX = b"_oaws."
INFO_TOPIC = b"_oaws.info"
REJECT_TOPIC = b"_oaws.reject"

#: the largest control message a proxy reads (a feed's announcement is a few hundred bytes)
MAX_CONTROL = 16_384
#: a feed's id (FeedHub's are 8 hex digits), a broker's name, an error code, a status
_FID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BROKER = re.compile(r"[A-Za-z0-9_+-]{1,32}")
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_MAX_STATUS = 64
_MAX_MESSAGE = 1_000
_MAX_DEPTHS = 8


def _short(value: object, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def info_error(info: Mapping[str, Any]) -> str | None:
    """Why ``info`` (a parsed ``_oaws.info``) is not an announcement a proxy may take, or None.

    ``fid`` and ``broker`` must be short names (the broker's labels every ``market_data``
    message), ``depths``, when given, a short list of depths oaws knows, ``adapter_status``
    a short string; the rest are the feed's figures, shown as they are."""
    if not _short(info.get("fid"), _FID):
        return "its fid is not a short name"
    if not _short(info.get("broker"), _BROKER):
        return "its broker is not a short name of letters, digits, _ + -"
    depths = info.get("depths", [])
    if (
        not isinstance(depths, list)
        or len(depths) > _MAX_DEPTHS
        or not all(type(d) is int and d in KNOWN_DEPTHS for d in depths)
    ):
        return f"its depths are not a list of {', '.join(map(str, KNOWN_DEPTHS))}"
    status = info.get("adapter_status", "")
    if not isinstance(status, str) or len(status) > _MAX_STATUS:
        return "its adapter_status is not a short string"
    return None


def reject_error(body: Mapping[str, Any]) -> str | None:
    """Why ``body`` (a parsed ``_oaws.reject``) is not a well-formed refusal, or None: a
    ``fid``, a ``topic`` that is an instrument's, the ``symbol``, ``exchange`` and ``mode``
    of that topic when given, a ``code`` of capitals and a ``message`` string when given.
    Whether the feed announced itself and the topic is a route is the proxy's to check."""
    if not _short(body.get("fid"), _FID):
        return "it names no feed (fid)"
    topic = body.get("topic")
    stream = parse_stream(topic) if isinstance(topic, str) else None
    if stream is None:
        return "its topic is not an instrument's"
    for key, value in (("symbol", stream.instrument.symbol), ("exchange", stream.instrument.exchange)):
        if key in body and body[key] != value:
            return f"its {key} is not its topic's"
    if "mode" in body and (type(body["mode"]) is not int or body["mode"] != stream.mode):
        return "its mode is not its topic's"
    if "code" in body and not _short(body["code"], _CODE):
        return "its code is not an error code"
    message = body.get("message", "")
    if not isinstance(message, str) or len(message) > _MAX_MESSAGE:
        return "its message is not a string of at most 1,000 characters"
    return None


FSEQ = "fseq"
FSEQ_PREFIX = b'{"fseq":'
#: digits ``read_fseq`` accepts: a count past 10**19 is not a feed's but garbage, and
#: bounding it keeps a hostile payload from costing a long scan or a huge int
_MAX_DIGITS = 19
_DIGITS_END = len(FSEQ_PREFIX) + _MAX_DIGITS + 1


def stamp_fseq(payload: bytes, fseq: int) -> bytes:
    """``payload`` with ``fseq`` spliced in as its first key; a payload that is not a JSON
    object is returned as it is (there is nowhere to put the count)."""
    if payload[:1] != b"{":
        return payload
    rest = payload[1:]
    if rest.lstrip()[:1] == b"}":  # an empty object: no comma after the count
        return b'{"fseq":%d' % fseq + rest
    return b'{"fseq":%d,' % fseq + rest


def read_fseq(payload: bytes) -> int | None:
    """The ``fseq`` of a payload as stamped (its first key), read from the bytes; None when
    it has none there or it is not a plain count. Never raises: the payload comes from
    whatever publishes on the bus."""
    if payload[:8] != FSEQ_PREFIX:
        return None
    end = payload.find(b",", 8, _DIGITS_END)
    if end < 0:
        end = payload.find(b"}", 8, _DIGITS_END)
    digits = payload[8:end].strip() if end > 0 else b""
    # bytes.isdigit is ASCII only: no sign, no point, no exponent, not empty
    return int(digits) if digits.isdigit() else None


def tick_fseq(tick: Mapping[str, Any]) -> int | None:
    """The ``fseq`` of a parsed tick (from a recording), or None when it has no count."""
    fseq = tick.get(FSEQ)
    return fseq if type(fseq) is int else None


def strip_fseq(tick: dict[str, Any]) -> None:
    """Drop the bus's count from a tick about to be published again: each bus stamps its own."""
    tick.pop(FSEQ, None)
