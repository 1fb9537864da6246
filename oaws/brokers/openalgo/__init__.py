"""An OpenAlgo server as a broker: ``oaws serve --broker openalgo --upstream ws://HOST:8765``.

Modules: ``wire`` (OpenAlgo's requests and replies, no I/O), ``settings`` (its API key),
``feed`` (``OpenAlgoFeed`` on the connection runner). docs/brokers/openalgo.md tells the rest.

This module only declares the plugin: the feed is imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oaws.brokers.api import Broker, BrokerLimits, FeedOptions
from oaws.brokers.openalgo.settings import SPEC

if TYPE_CHECKING:
    from oaws.brokers.openalgo.feed import OpenAlgoFeed


def make_feed(options: FeedOptions) -> OpenAlgoFeed:
    from oaws.brokers.openalgo.feed import OpenAlgoFeed

    return OpenAlgoFeed.from_settings(upstream=options.get("upstream"))


broker = Broker(
    name="openalgo",
    title="OpenAlgo",
    summary="an OpenAlgo server's WebSocket feed (every broker it supports) through oaws's fan-out",
    make_feed=make_feed,
    options=("upstream",),
    selected_by=("upstream",),
    settings=SPEC,
    limits=BrokerLimits(depths=(5,), connections=1, note="the broker behind the OpenAlgo server sets the real limits"),
)
