"""``GET /history``'s way to the feed: a request up the bus, the answer down it
(``oaws.protocol.history`` describes the messages).

The proxy's own bus reader carries both: it subscribes ``_oaws.`` (the control topics), so
the answer on ``_oaws.history.<nonce>`` reaches it, and the request is one more
subscription, which every feed on the bus hears (a bound bus's feeds and a connected
one's alike). When the answer has come, or the time is up, the request is unsubscribed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import orjson

from oaws.bars.aggregator import Interval
from oaws.instruments import Instrument
from oaws.protocol import history as hist
from oaws.server.bus import BusReader

log = logging.getLogger(__name__)

#: history requests waiting for the feed at once; past it a request is refused at once
MAX_PENDING = 16
#: how long the feed may take (a broker's REST API, several requests for a long span)
TIMEOUT = 30.0


class HistoryBusy(Exception):
    """Too many history requests are waiting for the feed."""


class Histories:
    """The history requests waiting for an answer from the bus."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.reader: BusReader | None = None
        self.timeout = timeout
        self.pending: dict[bytes, asyncio.Future[Any]] = {}
        #: answers that matched no request (late, or another proxy's), or were not JSON
        self.ignored = 0

    async def ask(self, instrument: Instrument, interval: Interval, start_ms: int, end_ms: int) -> Any:
        """The feed's answer (parsed JSON, unchecked); TimeoutError when none comes in time."""
        assert self.reader is not None
        if len(self.pending) >= MAX_PENDING:
            raise HistoryBusy
        request = hist.HistoryRequest(secrets.token_hex(8), instrument, interval, start_ms, end_ms)
        topic = request.reply_topic
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[topic] = future
        self.reader.subscribe(request.to_bytes())
        try:
            return await asyncio.wait_for(future, self.timeout)
        finally:
            self.pending.pop(topic, None)
            self.reader.unsubscribe(request.to_bytes())

    def on_reply(self, topic: bytes, payload: bytes) -> None:
        """An answer from the bus (another process's bytes: checked, never raised on)."""
        future = self.pending.get(topic)
        if future is None or future.done() or len(payload) > hist.MAX_REPLY:
            self.ignored += 1
            return
        try:
            future.set_result(orjson.loads(payload))
        except orjson.JSONDecodeError:
            self.ignored += 1
            log.debug("ignoring a history answer that is not JSON on %r", topic[:80])
