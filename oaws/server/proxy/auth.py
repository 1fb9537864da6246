"""Guard rails around authentication (the check of the key itself is the ``Session``'s).

* An address that failed to authenticate three times in a row is answered ever later:
  0.25 s, then doubling up to 5 s, so that guessing the key costs time. Its failures are
  forgotten after a quiet minute, or when it gets the key right.
* With a key configured, a client that has not authenticated within ``timeout`` seconds
  is closed with 4401: a connection that never authenticates only holds resources.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from oaws.protocol.codes import CLOSE_NOT_AUTHENTICATED
from oaws.server.proxy.connection import OPEN, Client

log = logging.getLogger(__name__)

#: failures in a row after which an address's answers are delayed
TOLERATED = 3
#: seconds after which an address's failures are forgotten
FORGET_AFTER = 60


class AuthGuard:
    """Failed authentication per address, and the deadline to authenticate by."""

    def __init__(self, timeout: float, close: Callable[[Client, int, str], None]) -> None:
        self.timeout = timeout
        self.close = close
        #: address -> (failures in a row, when the last one was)
        self.failed: dict[str, tuple[int, float]] = {}

    def deadline(self, c: Client) -> asyncio.TimerHandle:
        """Close ``c`` with 4401 unless it has authenticated within ``timeout``; cancel the
        handle when it goes."""
        return asyncio.get_running_loop().call_later(self.timeout, self._expire, c)

    def _expire(self, c: Client) -> None:
        if not c.session.authenticated and c.ws.protocol.state is OPEN:
            log.info("closing %s: not authenticated within %.0f s", c.peer, self.timeout)
            self.close(c, CLOSE_NOT_AUTHENTICATED, "auth timeout")

    async def wait_turn(self, c: Client) -> None:
        """Before an unauthenticated client's request: wait if its address keeps failing."""
        if not c.session.admitted and self.failed.get(c.ip, (0, 0.0))[0] >= TOLERATED:
            await asyncio.sleep(self.delay(c.ip))

    def delay(self, ip: str) -> float:
        """Seconds to wait before answering an address that failed to authenticate repeatedly."""
        count, last = self.failed.get(ip, (0, 0.0))
        if time.monotonic() - last > FORGET_AFTER:
            return 0.0
        return min(5.0, 0.25 * 2 ** (count - TOLERATED))

    def settle(self, c: Client, failures_before: int, was_authenticated: bool) -> None:
        """After a request: count a failure to authenticate, or forget them on success."""
        session = c.session
        if session.failed_auth > failures_before:
            count, last = self.failed.get(c.ip, (0, 0.0))
            now = time.monotonic()
            count = 1 if now - last > FORGET_AFTER else count + 1
            self.failed[c.ip] = (count, now)
            log.warning("failed authentication from %s (%d in a row)", c.ip, count)
        elif session.authenticated and not was_authenticated:
            self.failed.pop(c.ip, None)
