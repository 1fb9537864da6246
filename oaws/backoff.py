"""Waiting before connecting again: exponential backoff with full jitter, for every client
oaws has of someone else's server (a broker's feed, an oaws or OpenAlgo proxy)."""

from __future__ import annotations

import random


class Backoff:
    """Full jitter: the n-th wait in a row is uniform in [floor, min(cap, base * 2**n)].

    Why full jitter: after a broker-wide outage every connection of every user retries at
    once; drawing from the whole range spreads them out most, and the expected wait is half
    the bound. The floor (a tenth of ``base`` unless given) keeps a zero draw from turning a
    connection that fails at once into a hot loop. One ``rng.uniform`` call per wait.
    """

    def __init__(
        self, base: float = 1.0, cap: float = 60.0, *, floor: float | None = None, rng: random.Random | None = None
    ) -> None:
        self.base, self.cap = base, cap
        self.floor = base / 10 if floor is None else floor
        if self.floor <= 0:
            raise ValueError("the backoff floor must be positive, or a connection that fails at once would spin")
        self.rng = rng or random.Random()
        #: waits in a row so far; no longer counted once the bound has reached the cap
        self.attempt = 0

    def bound(self) -> float:
        return min(self.cap, self.base * 2**self.attempt)

    def next(self) -> float:
        """The next wait; each call doubles the bound until it reaches the cap."""
        bound = self.bound()
        if bound < self.cap:
            self.attempt += 1  # past the cap the bound grows no more, so 2**attempt never overflows
        return max(self.floor, self.rng.uniform(0, bound))

    def reset(self) -> None:
        self.attempt = 0
