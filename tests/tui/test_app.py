"""The watch driven by keys and mouse against a real in-process server (SimFeed, WebSocket, ZeroMQ)."""

from __future__ import annotations

import io

from rich.console import Console

from oaws.client import ServerError, Status, Subscribed, Tick
from oaws.instruments import DEPTH, QUOTE, parse, parse_many
from oaws.tui.add import AddScreen
from oaws.tui.depth import DepthScreen, DepthView
from oaws.tui.help import HelpScreen
from oaws.tui.models.watch import Watchlist
from oaws.tui.status import StatusBar

from .conftest import FIXED_NS, line, live_app, scripted_app, start_service, until

THREE = ["RELIANCE:NSE", "INFY:NSE", "NIFTY:NSE_INDEX"]
#: columns of the Quote mode only: the list is held at the mode asked for (bid and ask would need Depth)
QUOTE_COLUMNS = ["symbol", "exchange", "ltp", "change", "change_percent", "volume"]


def quote_list(items: list[str]) -> list[Watchlist]:
    return [Watchlist("test", parse_many(items), columns=QUOTE_COLUMNS)]


def status_text(app) -> str:
    return str(app.screen.query_one(StatusBar).render())


def held_by_server(service) -> dict:
    """The modes the server holds of each instrument for its one client, the app."""
    (client,) = service.proxy.clients
    return client.session.subs


def filled(app) -> bool:
    return all(row.data.get("ltp") for row in app.model.rows.values())


async def test_grid_fills_with_the_given_instruments_and_values_change(service):
    app = live_app(service.url, THREE)
    async with app.run_test(size=(150, 20)) as pilot:
        await until(pilot, lambda: filled(app), what="a tick of every instrument")

        def shows_the_models_prices() -> bool:
            # ticks keep coming between two frames, so the screen may lag the model by one:
            # wait for a frame where both agree
            for y, instrument in enumerate(parse_many(THREE)):
                row, ltp = line(app, y), app.model.rows[instrument].data["ltp"]
                if not row.startswith(instrument.symbol) or f"{ltp:,.2f}"[-6:] not in row:
                    return False
            return True

        await until(pilot, shows_the_models_prices, what="rows showing the model's prices")
        rows = [line(app, y) for y in range(3)]
        assert "Symbol" in app.screen.query_one("#header").render_line(0).text
        first = rows[0]
        await until(pilot, lambda: line(app, 0) != first, what="the first row to change")
        assert app.ticks > 3 and "ticks/s" in status_text(app)


async def test_add_remove_and_sort_by_key(service):
    app = live_app(service.url, quote_list(THREE))
    async with app.run_test(size=(150, 20)) as pilot:
        await until(pilot, lambda: filled(app))
        await pilot.press("a")
        assert isinstance(app.screen, AddScreen)
        await pilot.press(*"tcs", "enter")  # a bare symbol: NSE
        tcs = parse("TCS:NSE")
        assert app.model.view[-1] == tcs and app.model.selected == tcs
        await until(pilot, lambda: app.model.rows[tcs].data.get("ltp"), what="the added instrument's tick")
        assert app.client.wanted[tcs] == {QUOTE}

        await pilot.press("d")
        assert tcs not in app.model.view and tcs not in app.client.wanted
        await pilot.press("up", "d")  # the cursor went to the last row, NIFTY; one up is INFY
        assert parse_many(THREE)[1] not in app.model.view

        await pilot.press("s")
        assert app.model.sort == "change_percent" and app.model.descending
        pcts = [app.model.rows[i].data["change_percent"] for i in app.model.view]
        assert pcts == sorted(pcts, reverse=True)
        await pilot.press("s")
        assert [i.symbol for i in app.model.view] == ["NIFTY", "RELIANCE"]


async def test_add_dialog_completes_and_rejects_nonsense(service):
    app = live_app(service.url, THREE, completions=["HDFCBANK:NSE", "SENSEX:BSE_INDEX"])
    async with app.run_test(size=(150, 24)) as pilot:
        await pilot.press("a", *"sens", "tab")
        assert app.screen.query_one("#add-input").value == "SENSEX:BSE_INDEX"
        await pilot.press("ctrl+u", *"a:b:c", "enter")
        assert isinstance(app.screen, AddScreen)  # still open, saying why
        assert "not an instrument" in str(app.screen.query_one("#add-error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, AddScreen) and len(app.model.view) == 3


async def test_header_click_sorts_and_row_click_selects(service):
    app = live_app(service.url, THREE)
    async with app.run_test(size=(150, 20)) as pilot:
        await until(pilot, lambda: filled(app))
        await pilot.click("#header", offset=(3, 0))
        assert app.model.sort == "symbol"
        assert [i.symbol for i in app.model.view] == ["INFY", "NIFTY", "RELIANCE"]
        await pilot.click("#grid", offset=(5, 2))
        assert app.model.selected == parse("RELIANCE:NSE")


async def test_depth_view_subscribes_depth_while_open_and_shows_five_levels(service):
    app = live_app(service.url, quote_list(THREE))
    reliance = parse("RELIANCE:NSE")
    async with app.run_test(size=(150, 30)) as pilot:
        await until(pilot, lambda: filled(app))
        await pilot.press("enter")
        assert isinstance(app.screen, DepthScreen)
        await until(pilot, lambda: held_by_server(service).get(reliance) == {QUOTE, DEPTH}, what="Depth added")
        assert app.client.wanted[reliance] == {QUOTE, DEPTH}
        await until(pilot, lambda: app.model.rows[reliance].data.get("depth"), what="a Depth tick")
        await pilot.pause(0.2)
        console = Console(width=150, record=True, file=io.StringIO())
        console.print(app.screen.query_one(DepthView).render())
        text = console.export_text()
        assert "Bid" in text and "Ask" in text and "Total bid" in text
        best_bid = app.model.rows[reliance].data["depth"]["buy"][0]["price"]
        assert f"{best_bid:,.2f}" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, DepthScreen)
        await until(pilot, lambda: held_by_server(service).get(reliance) == {QUOTE}, what="Depth dropped")
        assert app.client.wanted[reliance] == {QUOTE}


async def test_pause_freezes_the_screen_but_not_the_feed(service):
    app = live_app(service.url, THREE)
    async with app.run_test(size=(150, 20)) as pilot:
        await until(pilot, lambda: filled(app))
        await pilot.press("p")
        assert "PAUSED" in status_text(app)
        rendered, ticks = app.grid.rendered, app.ticks
        await until(pilot, lambda: app.ticks > ticks + 5)
        await pilot.pause(0.2)
        assert app.grid.rendered == rendered
        await pilot.press("p")
        await pilot.pause(0.2)
        assert app.grid.rendered > rendered and "PAUSED" not in status_text(app)


async def test_tab_cycles_watchlists_and_moves_subscriptions(service):
    lists = [Watchlist("one", parse_many(["RELIANCE:NSE", "INFY:NSE"])), Watchlist("two", parse_many(["TCS:NSE"]))]
    app = live_app(service.url, lists)
    async with app.run_test(size=(150, 20)) as pilot:
        await until(pilot, lambda: app.client is not None and app.ticks > 0)
        await pilot.press("tab")
        tcs = parse("TCS:NSE")
        assert app.model.view == [tcs] and "two 2/2" in status_text(app)
        await until(pilot, lambda: set(app.client.wanted) == {tcs})
        await until(pilot, lambda: app.model.rows[tcs].data.get("ltp"))
        await pilot.press("shift+tab")
        assert app.model.watchlist.name == "one"


async def test_help_shows_the_keys_and_any_key_closes_it(service):
    app = live_app(service.url, THREE)
    async with app.run_test(size=(150, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("x")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
    assert app.return_code == 0


async def test_a_dropped_server_dims_the_grid_and_a_new_one_is_picked_up():
    first = await start_service()
    port = int(first.url.rsplit(":", 1)[1])
    app = live_app(first.url, THREE)
    second = None
    try:
        async with app.run_test(size=(150, 20)) as pilot:
            await until(pilot, lambda: filled(app) and app.health.state == "connected")
            await first.stop()
            await until(pilot, lambda: app.health.state == "reconnecting", what="the drop to be seen")
            assert app.model.stale and "reconnecting" in status_text(app)
            await pilot.pause(0.15)
            kept = line(app, 0)
            assert "RELIANCE" in kept and app.model.rows[parse("RELIANCE:NSE")].data["ltp"]
            second = await start_service(port=port)
            await until(pilot, lambda: app.health.state == "connected", timeout=8, what="the reconnect")
            ticks = app.ticks
            await until(pilot, lambda: app.ticks > ticks, what="ticks from the new server")
            assert not app.model.stale and "connected" in status_text(app)
    finally:
        if second is not None:
            await second.stop()


async def test_a_refused_api_key_is_a_notification_not_a_crash():
    service = await start_service(api_key="right")
    try:
        app = live_app(service.url, THREE, api_key="wrong")
        async with app.run_test(size=(150, 20)) as pilot:
            await until(pilot, lambda: app.health.state == "refused", what="the refusal")
            assert any("refused the API key" in n.message for n in app._notifications)
            assert "refused" in status_text(app)
            await pilot.press("q")
        assert app.return_code == 0
    finally:
        await service.stop()


async def test_an_unknown_symbol_is_marked_on_its_row_and_notified():
    bogus = parse("NOSUCH:NSE")
    app, _ = scripted_app(
        [ServerError("SYMBOL_NOT_FOUND", "no such symbol NOSUCH on NSE", bogus)],
        [Watchlist("w", [bogus, parse("INFY:NSE")])],
    )
    async with app.run_test(size=(150, 20)) as pilot:
        await until(pilot, lambda: app.model.rows[bogus].error)
        await pilot.pause(0.15)
        assert "symbol not found" in line(app, 0)
        assert any("no such symbol" in n.message for n in app._notifications)


async def test_the_status_line_takes_no_latency_from_a_marked_snapshot():
    rel, infy = parse("RELIANCE:NSE"), parse("INFY:NSE")
    reply = {
        "type": "subscribe",
        "status": "success",
        "subscriptions": [
            {"symbol": s, "exchange": "NSE", "mode": 2, "status": "success"} for s in ("RELIANCE", "INFY")
        ],
    }
    confirmations = [Subscribed(i, QUOTE, reply) for i in (rel, infy)]

    def tick(instrument, age_ms: float, *, snapshot: bool = False) -> Tick:
        data = {"ltp": 100.0, "ts_ns": FIXED_NS - int(age_ms * 1e6)}
        message = {"type": "market_data", "data": data, **({"snapshot": True} if snapshot else {})}
        return Tick(instrument, QUOTE, data, message, FIXED_NS)

    app, _ = scripted_app(
        [
            Status("connected", "ws://127.0.0.1:8765"),
            *confirmations,
            tick(rel, 900.0, snapshot=True),  # the last ticks the server held, marked: not the feed's speed
            tick(infy, 14_935.7, snapshot=True),
            tick(rel, 0.4),
            tick(infy, 0.6),
            tick(rel, 0.5),
        ],
        [Watchlist("w", [rel, infy])],
    )
    async with app.run_test(size=(150, 20)) as pilot:
        await until(pilot, lambda: app.ticks == 5)
        app.second()
        await pilot.pause()
        assert "5 ticks/s  latency 0.5 ms (max 0.6)" in status_text(app)
        assert app.model.rows[rel].data["ltp"] == 100.0  # the snapshot filled the row all the same


async def test_the_status_line_says_the_watch_waits_for_a_slow_authentication():
    rel = parse("RELIANCE:NSE")
    waiting = "waiting for ws://127.0.0.1:8765 to answer authenticate (up to 30 s)"
    app, _ = scripted_app(
        [Status("connecting", "ws://127.0.0.1:8765"), Status("authenticating", waiting)], [Watchlist("w", [rel])]
    )
    async with app.run_test(size=(150, 20)) as pilot:
        await until(pilot, lambda: app.health.state == "authenticating")
        app.second()
        await pilot.pause()
        assert "waiting 0 s for the server to authenticate" in status_text(app)


async def test_leaving_the_depth_view_drops_only_depth_and_keeps_the_grids_mode():
    rel, infy = parse("RELIANCE:NSE"), parse("INFY:NSE")
    lists = [Watchlist("w", [rel, infy], columns=QUOTE_COLUMNS)]
    app, client = scripted_app([Status("connected", "ws://127.0.0.1:8765")], lists)
    async with app.run_test(size=(150, 30)) as pilot:
        await until(pilot, lambda: app.client is client)
        await pilot.press("enter")
        assert isinstance(app.screen, DepthScreen)
        await until(pilot, lambda: client.requests, what="the Depth subscription")
        await pilot.press("escape")
        await until(pilot, lambda: len(client.requests) == 2, what="the Depth unsubscription")
        await pilot.pause(0.1)
    assert client.requests == [("subscribe", ([rel], DEPTH)), ("unsubscribe", ([rel], DEPTH))]
