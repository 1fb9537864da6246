"""Flood control: a client may send so many requests a second, and no more.

Each client has a token bucket that holds two seconds' worth. A request past it is
dropped and answered with ``LIMIT_EXCEEDED`` (the first time and every hundredth, not
each: the answers would be a flood of their own); a client that keeps on is closed with
1008, so that one script stuck in a loop cannot keep the proxy busy for the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from oaws.protocol.codes import LIMIT_EXCEEDED, error

#: one LIMIT_EXCEEDED answer per this many dropped requests
ANSWER_EVERY = 100


class Bucket:
    """One client's request tokens, full at first."""

    __slots__ = ("rate", "tokens", "refilled", "dropped")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = 2 * rate
        self.refilled = time.monotonic()
        self.dropped = 0

    def take(self) -> bool:
        """Take a request token, if there is one."""
        now = time.monotonic()
        self.tokens = min(2 * self.rate, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class FloodControl:
    """``rate`` requests a second per client; closed after ``close_after`` dropped ones."""

    def __init__(self, rate: float, close_after: int) -> None:
        self.rate = rate
        self.close_after = close_after

    def bucket(self) -> Bucket:
        return Bucket(self.rate)

    def admit(self, bucket: Bucket, send: Callable[[dict[str, Any]], None]) -> bool:
        """Whether a client's request may go on; if not, it is dropped and the client told so (``send``)."""
        if bucket.take():
            return True
        bucket.dropped += 1
        if bucket.dropped == 1 or bucket.dropped % ANSWER_EVERY == 0:
            send(
                error(
                    LIMIT_EXCEEDED,
                    f"more than {self.rate:g} requests per second; requests are being dropped",
                )
            )
        return False

    def overwhelmed(self, bucket: Bucket) -> bool:
        """The client kept on flooding: it is to be closed."""
        return bucket.dropped >= self.close_after
