"""The Angel One broker: SmartAPI login, instrument master, the WebSocket V2 feed, a simulator.

Modules, from the wire up: ``wire`` (binary layouts, no I/O), ``ticks`` (packets to oaws
ticks), ``master`` (instrument master and symbol resolution), ``settings`` and
``session`` (credentials, login, stored tokens), ``smartapi`` (smartapi-python imported
without its side effects), ``feed`` (``AngelFeed``), ``simulator`` and ``sim_command`` (a
local Angel). docs/brokers/angel.md tells Angel's side of each.

This module only declares the plugin: everything heavy is imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oaws.brokers.angel.settings import SPEC
from oaws.brokers.angel.sim_command import angel_sim
from oaws.brokers.api import Broker, BrokerLimits, FeedOptions

if TYPE_CHECKING:
    from oaws.brokers.angel.feed import AngelFeed
    from oaws.brokers.angel.master import AngelMaster

#: Angel's documented limits (unverified beyond the simulator): 3 connections of 1000 tokens
CONNECTIONS, TOKENS_PER_CONNECTION = 3, 1000


def make_feed(options: FeedOptions) -> AngelFeed:
    from oaws.brokers.angel.feed import AngelFeed

    return AngelFeed.from_settings(instruments=options.get("instruments"))


def login() -> str:
    from oaws.brokers.angel.session import login_and_save

    return login_and_save()


def master() -> AngelMaster:
    from oaws.brokers.angel.master import AngelMaster

    return AngelMaster()


broker = Broker(
    name="angel",
    title="Angel One",
    summary="SmartAPI: TOTP login, the scrip master, the WebSocket V2 binary feed",
    make_feed=make_feed,
    options=("instruments",),
    settings=SPEC,
    login=login,
    master=master,
    simulator=angel_sim,
    limits=BrokerLimits(
        depths=(5, 20),
        subscriptions=CONNECTIONS * TOKENS_PER_CONNECTION,
        connections=CONNECTIONS,
        note="depth 20: NSE cash only, 50 instruments at once",
    ),
)
