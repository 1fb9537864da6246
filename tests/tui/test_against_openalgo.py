"""The watch against a server that behaves like OpenAlgo's (tests/openalgo_server.py): it
waits out a slow authentication saying so, and whatever it is made to drop (`d`, Tab, the
depth view, quitting) leaves no subscription held on the server, though OpenAlgo takes an
unsubscribe without a mode for Quote."""

from __future__ import annotations

import pytest

from oaws.instruments import DEPTH, LTP, QUOTE, Instrument, parse
from oaws.tui.depth import DepthScreen
from oaws.tui.models.watch import Watchlist
from tests.openalgo_server import OpenAlgoServer

from .conftest import live_app, until

REL, INFY, TCS = parse("RELIANCE:NSE"), parse("INFY:NSE"), parse("TCS:NSE")


def held(*pairs: tuple[Instrument, int]) -> set[tuple[str, str, int]]:
    return {(i.symbol, i.exchange, mode) for i, mode in pairs}


@pytest.mark.parametrize("mode", [LTP, QUOTE, DEPTH], ids=["ltp", "quote", "depth"])
async def test_the_watch_leaves_no_subscription_behind_on_an_openalgo_server(mode):
    # columns of the Quote mode only, so that the list is held at the mode asked for (bid and ask need Depth)
    plain = ["symbol", "ltp", "change_percent"]
    lists = [Watchlist("one", [REL, INFY], columns=plain), Watchlist("two", [TCS], columns=plain)]
    async with OpenAlgoServer(auth_delay=2.0) as server:
        app = live_app(server.url, lists, api_key="oa-key", mode=mode)
        async with app.run_test(size=(150, 24)) as pilot:
            # OpenAlgo sets up the broker before it answers: the status line says the watch waits
            await until(pilot, lambda: app.health.state == "authenticating", what="the wait to be shown")
            app.second()
            assert "for the server to authenticate" in "".join(t for t, _ in app.health.pieces())
            await until(pilot, lambda: server.subscriptions() == held((REL, mode), (INFY, mode)), what="the grid")
            assert app.health.state == "connected" and server.auth_times[0] >= 2.0

            await pilot.press("enter")  # the depth view of RELIANCE, then back
            assert isinstance(app.screen, DepthScreen)
            with_depth = held((REL, mode), (REL, DEPTH), (INFY, mode))
            await until(pilot, lambda: server.subscriptions() == with_depth, what="Depth added")
            await until(pilot, lambda: app.model.rows[REL].data.get("depth"), what="a Depth tick")
            await pilot.press("escape")
            await until(pilot, lambda: server.subscriptions() == held((REL, mode), (INFY, mode)), what="Depth gone")

            await pilot.press("down", "d")  # INFY removed: every mode it held, each named
            await until(pilot, lambda: server.subscriptions() == held((REL, mode)), what="INFY gone")
            await pilot.press("tab")
            await until(pilot, lambda: server.subscriptions() == held((TCS, mode)), what="the second list")
            await pilot.press("shift+tab")
            await until(pilot, lambda: server.subscriptions() == held((REL, mode)), what="the first list again")
            await until(pilot, lambda: app.model.rows[REL].data.get("ltp"), what="its ticks")
            unsubscribes = server.sent("unsubscribe")
            assert unsubscribes and all("mode" in e for u in unsubscribes for e in u["symbols"])
            await pilot.press("q")
        await until(pilot, lambda: server.open_connections() == 0, what="the connection closed")
        assert server.subscriptions() == set()


async def test_the_watch_shows_an_openalgo_servers_refusals_in_the_rows():
    async with OpenAlgoServer() as server:
        app = live_app(server.url, ["RELIANCE:NSE", "NOSUCH:NSE"], api_key="oa-key")
        async with app.run_test(size=(150, 20)) as pilot:
            nosuch = parse("NOSUCH:NSE")
            await until(pilot, lambda: app.model.rows[nosuch].error, what="the refusal in the row")
            await until(pilot, lambda: app.model.rows[REL].data.get("ltp"), what="the other row's ticks")
            assert any("not found for exchange NSE" in n.message for n in app._notifications)
