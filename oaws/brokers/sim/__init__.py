"""The simulated market: a broker that needs no account and no network (the default).

``oaws watch`` on a fresh install shows it; tests and screenshots drive it with a seed.
"""

from __future__ import annotations

import math

from oaws.brokers.api import Broker, BrokerLimits, FeedError, FeedOptions
from oaws.brokers.sim.feed import SimFeed, known_symbols


def make_feed(options: FeedOptions) -> SimFeed:
    rate = options.get("rate")
    rate = 3.0 if rate is None else rate
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise FeedError(f"the simulated tick rate must be a positive number of ticks per second, not {rate:g}")
    return SimFeed(seed=options.get("seed"), rate=rate)


broker = Broker(
    name="sim",
    title="Simulated market",
    summary="a seeded random walk of every symbol on every exchange, with depth; no account, no network",
    make_feed=make_feed,
    options=("seed", "rate"),
    symbols=known_symbols,
    limits=BrokerLimits(depths=SimFeed.depths, note="any symbol on any exchange trades"),
)
