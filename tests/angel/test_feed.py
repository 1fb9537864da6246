"""AngelFeed against the simulator, through a real FeedHub and a ZeroMQ SUB socket."""

from __future__ import annotations

from tests.angel.conftest import Bus, make_feed


async def test_quote_ticks_reach_the_bus(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        topic, tick = await bus.next("NSE_RELIANCE_QUOTE")
    print(tick)
    assert tick["symbol"] == "RELIANCE"
