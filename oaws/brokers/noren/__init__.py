"""The Noren OMS family: one adapter for Shoonya, Flattrade and the other brokers on Noren.

Modules: ``family`` (the brokers: hosts, prefixes, logins), ``settings``, ``session``
(QuickAuth, the OAuth code exchange, the stored session), ``master`` (the per-exchange
symbol masters), ``wire`` (Noren's JSON messages, no I/O), ``feed`` (``NorenFeed`` on the
shared connection runner, merging partial updates), ``simulator`` and ``sim_command``.
docs/brokers/noren.md tells Noren's side of each.

This module only declares the plugins, one ``Broker`` per ``family.HOSTS`` entry, each
registered in pyproject.toml under its own name; everything heavy is imported when used.
"""

from __future__ import annotations

from typing import Any

from oaws.brokers.api import Broker, BrokerLimits, Feed, FeedOptions, InstrumentMaster
from oaws.brokers.noren.family import HOSTS
from oaws.brokers.noren.settings import spec
from oaws.brokers.noren.sim_command import simulator_for
from oaws.brokers.noren.wire import CONNECTIONS, SUBSCRIPTIONS

LIMITS_NOTE = (
    f"assumed, unverified: {CONNECTIONS} feed connection of {SUBSCRIPTIONS} scrips; one scrip serves all its modes"
)


def broker_for(name: str) -> Broker:
    """The plugin of the Noren broker ``name``."""
    host = HOSTS[name]

    def make_feed(options: FeedOptions) -> Feed:
        from oaws.brokers.noren.feed import NorenFeed

        return NorenFeed.from_settings(name, instruments=options.get("instruments"))

    def login(**io: Any) -> str:
        from oaws.brokers.noren.session import login_and_save

        return login_and_save(name, **io)

    def master() -> InstrumentMaster:
        from oaws.brokers.noren.master import NorenMaster

        return NorenMaster(name)

    return Broker(
        name=host.name,
        title=host.title,
        summary=f"Noren OMS: {' or '.join(host.logins)} login, symbol masters, the JSON feed with partial updates",
        make_feed=make_feed,
        options=("instruments",),
        settings=spec(name),
        login=login,
        master=master,
        simulator=simulator_for(name),
        # `oaws sim noren` is the first Noren broker's simulator (it answers as any with --as)
        simulator_aliases=("noren",) if name == next(iter(HOSTS)) else (),
        limits=BrokerLimits(depths=(5,), subscriptions=SUBSCRIPTIONS, connections=CONNECTIONS, note=LIMITS_NOTE),
    )


shoonya = broker_for("shoonya")
flattrade = broker_for("flattrade")
