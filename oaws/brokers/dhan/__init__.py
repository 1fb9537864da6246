"""The Dhan broker: the access token, the scrip master, the v2 binary market feed, 20-level depth, a simulator.

Modules, from the wire up: ``wire`` (the feed's little-endian responses, no I/O), ``ticks``
(responses to oaws ticks), ``master`` (the scrip master and symbol resolution),
``settings`` and ``session`` (credentials, the profile check), ``feed`` (``DhanFeed`` on the
shared connection runner), ``simulator`` and ``sim_command`` (a local Dhan).
docs/brokers/dhan.md tells Dhan's side of each.

This module only declares the plugin: everything heavy is imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oaws.brokers.api import Broker, BrokerLimits, FeedOptions
from oaws.brokers.dhan.settings import SPEC
from oaws.brokers.dhan.sim_command import dhan_sim

if TYPE_CHECKING:
    from oaws.brokers.dhan.feed import DhanFeed
    from oaws.brokers.dhan.master import DhanMaster

#: Dhan's documented limits: 5000 instruments a connection, 5 connections a user, 100 a request
CONNECTIONS, INSTRUMENTS_PER_CONNECTION, INSTRUMENTS_PER_REQUEST = 5, 5000, 100
#: the 20-level depth stream: 50 instruments a connection
DEPTH_INSTRUMENTS_PER_CONNECTION = 50


def make_feed(options: FeedOptions) -> DhanFeed:
    from oaws.brokers.dhan.feed import DhanFeed

    return DhanFeed.from_settings(instruments=options.get("instruments"))


def login() -> str:
    from oaws.brokers.dhan.session import check_and_describe

    return check_and_describe()


def master() -> DhanMaster:
    from oaws.brokers.dhan.master import DhanMaster

    return DhanMaster()


broker = Broker(
    name="dhan",
    title="Dhan",
    summary="DhanHQ v2: the access token, the scrip master, the binary market feed, 20-level depth",
    make_feed=make_feed,
    options=("instruments",),
    settings=SPEC,
    login=login,
    master=master,
    simulator=dhan_sim,
    limits=BrokerLimits(
        depths=(5, 20),
        subscriptions=CONNECTIONS * INSTRUMENTS_PER_CONNECTION,
        connections=CONNECTIONS,
        note="5000 instruments a connection, 5 connections; depth 20: 50 instruments a connection",
    ),
)
