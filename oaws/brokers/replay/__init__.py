"""Recordings played back as a broker (``oaws serve --replay FILE``, ``oaws replay FILE``)."""

from __future__ import annotations

from oaws.brokers.api import Broker, FeedOptions
from oaws.brokers.replay.feed import ReplayFeed


def make_feed(options: FeedOptions) -> ReplayFeed:
    speed = options.get("speed")
    return ReplayFeed(
        list(options.get("replay") or ()),
        speed=1.0 if speed is None else speed,
        loop=bool(options.get("loop")),
        start=options.get("replay_from"),
        end=options.get("replay_to"),
    )


broker = Broker(
    name="replay",
    title="Recording",
    summary="recordings made by `oaws record`, served at their recorded pace (or faster)",
    make_feed=make_feed,
    options=("replay", "speed", "loop", "replay_from", "replay_to"),
    selected_by=("replay",),
)
