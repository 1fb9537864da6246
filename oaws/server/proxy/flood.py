"""Flood control: a client may change so many instruments a second, and no more.

What costs the proxy is work, not requests: one subscribe of 1,001 instruments is a
thousand times the work of a ping, and OpenAlgo's SDK sends it as one request. So each
client has a token bucket of work, refilled at ``rate`` a second and holding two
seconds' worth; a request costs the instruments it names (at least 1). A request is
served while the bucket is not empty, and its cost is taken afterwards (a large one
leaves the bucket in debt): the work done in any span is at most the rate's plus one
request, and a request is at most a frame (``ProxyOptions.max_frame``).

A request that finds the bucket empty is dropped and answered with ``LIMIT_EXCEEDED``
(the first time and every hundredth, not each: the answers would be a flood of their
own); a client that keeps on is closed with 1008, so that one script stuck in a loop
cannot keep the proxy busy for the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from oaws.protocol.codes import LIMIT_EXCEEDED, error

#: one LIMIT_EXCEEDED answer per this many dropped requests
ANSWER_EVERY = 100


class Bucket:
    """One client's work tokens, full at first."""

    __slots__ = ("rate", "tokens", "refilled", "dropped")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = 2 * rate
        self.refilled = time.monotonic()
        self.dropped = 0

    def ready(self) -> bool:
        """Whether a request may be served now (the bucket is not empty)."""
        now = time.monotonic()
        self.tokens = min(2 * self.rate, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        return self.tokens > 0

    def spend(self, work: int) -> None:
        """A served request's cost; the bucket may go into debt."""
        self.tokens -= work


class FloodControl:
    """``rate`` instruments changed a second per client; closed after ``close_after`` dropped requests."""

    def __init__(self, rate: float, close_after: int) -> None:
        self.rate = rate
        self.close_after = close_after

    def bucket(self) -> Bucket:
        return Bucket(self.rate)

    def admit(self, bucket: Bucket, send: Callable[[dict[str, Any]], None]) -> bool:
        """Whether a client's request may go on; if not, it is dropped and the client told so (``send``)."""
        if bucket.ready():
            return True
        bucket.dropped += 1
        if bucket.dropped == 1 or bucket.dropped % ANSWER_EVERY == 0:
            send(
                error(
                    LIMIT_EXCEEDED,
                    f"more than {self.rate:g} instruments changed per second; requests are being dropped",
                )
            )
        return False

    def overwhelmed(self, bucket: Bucket) -> bool:
        """The client kept on flooding: it is to be closed."""
        return bucket.dropped >= self.close_after
