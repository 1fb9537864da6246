"""Slow clients: a client that reads too slowly never delays the others (SPEC §1).

Nothing in the fan-out waits for a client; a slow one only grows its own send buffer.
Past ``soft_limit`` bytes of it, the client is conflated: it keeps only the latest tick
of each topic, until its buffer drains below half the limit and it gets those latest
ticks at once. Conflated for longer than ``slow_timeout`` seconds, it is closed with
1008: its buffer would otherwise hold the proxy's memory for a reader that is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from websockets.frames import CloseCode

from oaws.server.proxy.connection import OPEN, Client

log = logging.getLogger(__name__)


def conflate(c: Client, topic: bytes, body: bytes) -> None:
    """Keep ``body`` as the latest message of ``topic`` for a conflated client (the fan-out's
    hot path: a function, not a method, and no lookups beyond the client's own)."""
    latest = c.latest
    if topic in latest:
        c.conflated += 1
    latest[topic] = body


class SlowClients:
    """The conflated clients; ``close`` closes a client without waiting."""

    def __init__(self, soft_limit: int, slow_timeout: float, close: Callable[[Client, int, str], None]) -> None:
        self.soft_limit = soft_limit
        self.slow_timeout = slow_timeout
        self.close = close
        self.conflating: set[Client] = set()
        #: clients closed for being too slow
        self.closed = 0
        #: ticks slow clients that have left never got (superseded while conflating, or
        #: pending when they went); the ones still here count in their own ``conflated``
        self.skipped_gone = 0

    def begin(self, c: Client) -> None:
        """``c``'s send buffer passed the soft limit: conflate it from now on."""
        c.conflating = True
        c.slow_since = time.monotonic()
        self.conflating.add(c)

    def tend(self, now: float) -> None:
        """Drain conflated clients that caught up, close those that did not in time."""
        for c in list(self.conflating):
            try:
                self._tend(c, now)
            except Exception:  # one client's trouble must not stop the tending of the others
                log.exception("while tending slow client %s", c.peer)
                self.conflating.discard(c)

    def _tend(self, c: Client, now: float) -> None:
        if c.closing or c.ws.protocol.state is not OPEN:
            self.conflating.discard(c)
            return
        if c.transport.get_write_buffer_size() <= self.soft_limit // 2:
            bodies = list(c.latest.values())
            c.latest.clear()
            c.write(bodies)
            if c.transport.get_write_buffer_size() <= self.soft_limit:
                c.conflating = False
                self.conflating.discard(c)
            else:
                c.slow_since = now
        elif now - c.slow_since > self.slow_timeout:
            c.closing = True
            self.conflating.discard(c)
            self.closed += 1
            log.warning(
                "closing slow client %s: send buffer over %d bytes for %.0f s",
                c.peer,
                self.soft_limit,
                self.slow_timeout,
            )
            self.close(c, CloseCode.POLICY_VIOLATION, "client too slow: send buffer full")

    def forget(self, c: Client) -> None:
        """``c`` went away: what it never got still counts."""
        self.conflating.discard(c)
        self.skipped_gone += c.conflated + len(c.latest)
