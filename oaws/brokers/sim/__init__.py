"""The simulated market: a broker that needs no account and no network (the default).

``oaws watch`` on a fresh install shows it; tests and screenshots drive it with a seed.
It keeps the exchanges' sessions (quiet while an exchange is closed) unless told to trade
around the clock: ``oaws serve --always-open``, ``OAWS_SIM_HOURS=always`` or
``sim_hours = "always"`` in the config file (docs/sessions.md).
"""

from __future__ import annotations

import math

from oaws import config
from oaws.brokers.api import Broker, BrokerLimits, FeedError, FeedOptions
from oaws.brokers.sim.feed import HOURS, SimFeed, known_symbols
from oaws.brokers.sim.master import master


def hours(options: FeedOptions) -> str:
    """The hours the market keeps: the ``hours`` option (``--always-open``), else
    ``OAWS_SIM_HOURS``, else ``sim_hours`` in the config file, else the exchanges' sessions."""
    chosen = options.get("hours") or config.get("sim_hours", default="exchange")
    if chosen not in HOURS:
        raise FeedError(
            f"the simulated market's hours (OAWS_SIM_HOURS, sim_hours in the config file) are "
            f"{' or '.join(HOURS)}, not {chosen!r}"
        )
    return str(chosen)


def make_feed(options: FeedOptions) -> SimFeed:
    rate = options.get("rate")
    rate = 3.0 if rate is None else rate
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise FeedError(f"the simulated tick rate must be a positive number of ticks per second, not {rate:g}")
    return SimFeed(seed=options.get("seed"), rate=rate, hours=hours(options), any_symbol=any_symbol(options))


def any_symbol(options: FeedOptions) -> bool:
    """Whether any symbol trades (``--any-symbol``, ``OAWS_SIM_ANY_SYMBOL``, ``sim_any_symbol``
    in the config file), else only the instruments the market lists (``universe``)."""
    given = options.get("any_symbol")
    if given is not None:
        return bool(given)
    return bool(config.get("sim_any_symbol", default=False))


broker = Broker(
    name="sim",
    title="Simulated market",
    summary="a seeded random walk of ~140 stocks, 10 indices, their futures and options, MCX and currencies; "
    "no account, no network",
    make_feed=make_feed,
    options=("seed", "rate", "hours", "any_symbol"),
    symbols=known_symbols,
    master=master,
    limits=BrokerLimits(depths=SimFeed.depths, note="lists its own instruments (--any-symbol: any symbol trades)"),
)
