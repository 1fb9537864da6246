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

* ``_oaws.info``, once a second from each feed: ``fid`` (the feed's id), ``broker``,
  ``depths``, ``adapter_status`` and the feed's other figures;
* ``_oaws.reject``, when a feed cannot serve a wanted topic: ``topic``, ``symbol``,
  ``exchange``, ``mode``, ``code`` (an error code of ``oaws.protocol.codes``), ``message``;
* ``_oaws.order.<nonce>``, a feed's answer to an order placed with ``oaws sim order``
  (``oaws.protocol.orders``, which also has the order updates' own topics).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTROL_PREFIX = b"_oaws."
INFO_TOPIC = b"_oaws.info"
REJECT_TOPIC = b"_oaws.reject"

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
