"""Guard rails around authentication (the check of the key itself is the ``Session``'s).

* An address that failed to authenticate three times in a row is answered ever later:
  0.25 s, then doubling up to 5 s, so that guessing the key costs time. The delay is the
  address's, not a connection's: the unauthenticated requests of all its connections take
  their turn one at a time (``turn``), so that a thousand connections guess no faster than
  one. Its failures are forgotten after a quiet minute, or when it gets the key right; a
  request with the right key waits at most one delay (5 s) behind its address's others.
* With a key configured, a client that has not authenticated within ``timeout`` seconds
  is closed with 4401: a connection that never authenticates only holds resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from oaws.protocol.codes import CLOSE_NOT_AUTHENTICATED
from oaws.server.proxy.connection import OPEN, Client
from oaws.server.proxy.logs import Throttled

log = logging.getLogger(__name__)
#: a guesser must not be able to fill the log
failures_log = Throttled(log)

#: failures in a row after which an address's answers are delayed
TOLERATED = 3
#: seconds after which an address's failures are forgotten
FORGET_AFTER = 60
#: the first delay, and the longest
FIRST_DELAY = 0.25
MAX_DELAY = 5.0
#: addresses remembered before the ones quiet for a minute are forgotten
REMEMBERED = 10_000


class AuthGuard:
    """Failed authentication per address, the turns of its requests, and the deadline to
    authenticate by."""

    def __init__(self, timeout: float, close: Callable[[Client, int, str], None]) -> None:
        self.timeout = timeout
        self.close = close
        #: address -> (failures in a row, when the last one was)
        self.failed: dict[str, tuple[int, float]] = {}
        #: address -> the lock its unauthenticated requests take turns on, while any waits
        self._turns: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def deadline(self, c: Client) -> asyncio.TimerHandle:
        """Close ``c`` with 4401 unless it has authenticated within ``timeout``; cancel the
        handle when it goes."""
        return asyncio.get_running_loop().call_later(self.timeout, self._expire, c)

    def _expire(self, c: Client) -> None:
        if not c.session.authenticated and c.ws.protocol.state is OPEN:
            log.info("closing %s: not authenticated within %.0f s", c.peer, self.timeout)
            self.close(c, CLOSE_NOT_AUTHENTICATED, "auth timeout")

    def _failing(self, ip: str) -> bool:
        return self.failed.get(ip, (0, 0.0))[0] >= TOLERATED and self.delay(ip) > 0

    @contextlib.asynccontextmanager
    async def turn(self, c: Client) -> AsyncIterator[None]:
        """Around an unauthenticated client's request: if its address keeps failing, wait
        for the address's turn, then the delay; the request is handled within the turn."""
        if c.session.admitted or not self._failing(c.ip):
            yield
            return
        lock, waiting = self._turns.setdefault(c.ip, (asyncio.Lock(), [0]))
        waiting[0] += 1
        try:
            async with lock:
                # a connection that went while it waited costs its address no time
                if c.ws.protocol.state is OPEN and self._failing(c.ip):
                    await asyncio.sleep(self.delay(c.ip))
                yield
        finally:
            waiting[0] -= 1
            if not waiting[0]:
                self._turns.pop(c.ip, None)

    def delay(self, ip: str) -> float:
        """Seconds to wait before answering an address that failed to authenticate repeatedly."""
        count, last = self.failed.get(ip, (0, 0.0))
        if count < TOLERATED or time.monotonic() - last > FORGET_AFTER:
            return 0.0
        # the exponent capped: 2 ** 1,000 failures is a float overflow
        return min(MAX_DELAY, FIRST_DELAY * 2 ** min(count - TOLERATED, 16))

    def settle(self, c: Client, failures_before: int, was_authenticated: bool) -> None:
        """After a request: count a failure to authenticate, or forget them on success."""
        session = c.session
        if session.failed_auth > failures_before:
            count, last = self.failed.get(c.ip, (0, 0.0))
            now = time.monotonic()
            count = 1 if now - last > FORGET_AFTER else count + 1
            if c.ip not in self.failed and len(self.failed) >= REMEMBERED:
                self.failed = {ip: f for ip, f in self.failed.items() if now - f[1] <= FORGET_AFTER}
            self.failed[c.ip] = (count, now)
            failures_log.warning("failed authentication from %s (%d in a row)", c.ip, count)
        elif session.authenticated and not was_authenticated:
            self.failed.pop(c.ip, None)
