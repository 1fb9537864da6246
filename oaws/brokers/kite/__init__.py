"""The Zerodha Kite broker: Kite Connect's login, its instrument dump, the binary ticker, a simulator.

Modules, from the wire up: ``wire`` (the ticker's binary packets, no I/O), ``ticks``
(packets to oaws ticks), ``master`` (the instrument dump and symbol resolution),
``settings`` and ``session`` (credentials, the request-token exchange, the stored access
token), ``feed`` (``KiteFeed`` on the shared connection runner), ``simulator`` and
``sim_command`` (a local Kite). docs/brokers/kite.md tells Kite's side of each.

This module only declares the plugin: everything heavy is imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oaws.brokers.api import Broker, BrokerLimits, FeedOptions
from oaws.brokers.kite.settings import SPEC
from oaws.brokers.kite.sim_command import kite_sim

if TYPE_CHECKING:
    from oaws.brokers.kite.feed import KiteFeed
    from oaws.brokers.kite.master import KiteMaster

#: Kite's documented limits: 3000 instruments on one ticker connection, 3 connections per API key
CONNECTIONS, TOKENS_PER_CONNECTION = 3, 3000


def make_feed(options: FeedOptions) -> KiteFeed:
    from oaws.brokers.kite.feed import KiteFeed

    return KiteFeed.from_settings(
        instruments=options.get("instruments"), max_connections=CONNECTIONS, tokens_per_connection=TOKENS_PER_CONNECTION
    )


def login(**io: Any) -> str:
    from oaws.brokers.kite.session import login_and_save

    return login_and_save(**io)


def master() -> KiteMaster:
    from oaws.brokers.kite.master import KiteMaster

    return KiteMaster()


broker = Broker(
    name="kite",
    title="Zerodha Kite",
    summary="Kite Connect: the request-token login, the instrument dump, the binary ticker",
    make_feed=make_feed,
    options=("instruments",),
    settings=SPEC,
    login=login,
    master=master,
    simulator=kite_sim,
    limits=BrokerLimits(
        depths=(5,),
        subscriptions=CONNECTIONS * TOKENS_PER_CONNECTION,
        connections=CONNECTIONS,
        note="3000 instruments a connection, 3 connections an API key; circuit limits are not in the ticker",
    ),
)
