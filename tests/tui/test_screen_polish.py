"""What the screen says and where: every key in the help, a plain word for a missing API key,
notifications that leave the status line readable."""

from __future__ import annotations

from functools import partial

from textual.binding import Binding
from textual.widgets._toast import Toast

from oaws.client import Status
from oaws.instruments import Instrument
from oaws.tui.depth import DepthScreen
from oaws.tui.help import HelpScreen
from oaws.tui.models.watch import Watchlist
from oaws.tui.screen import WatchScreen
from oaws.tui.status import StatusBar

from .conftest import live_app, scripted_app, sim_ticks, start_service
from .conftest import until as until_

#: conftest's ``until`` with room for a loaded machine (the store's thread, a real server)
until = partial(until_, timeout=20.0)


async def test_the_help_names_every_key_of_the_main_screen():
    app, _ = scripted_app([Status("connected", "ws://127.0.0.1:8765")], [Watchlist("w", [])])
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = " ".join(key for key, _ in app.screen.rows()).split()
        shown = {"shift+up": "shift+↑", "shift+down": "shift+↓", "exclamation_mark": "!"}
        for binding in WatchScreen.BINDINGS:
            assert isinstance(binding, Binding)
            for key in binding.key.split(","):
                assert shown.get(key, key) in listed, key
        assert "c" in listed  # the column chooser's key, added by its screen


async def test_the_help_of_the_depth_view_names_esc_the_way_back():
    rel = Instrument("RELIANCE", "NSE")
    events = [Status("connected", "ws://127.0.0.1:8765"), *sim_ticks([rel], 2)]
    app, _ = scripted_app(events, [Watchlist("w", [rel])])
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DepthScreen), what="the depth view")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "esc" in {key for key, _ in app.screen.rows()}


async def test_no_api_key_against_a_server_that_needs_one_says_so_plainly():
    service = await start_service(api_key="right")
    try:
        app = live_app(service.url, ["RELIANCE:NSE"])
        async with app.run_test(size=(150, 20)) as pilot:
            await until(pilot, lambda: app.health.state == "refused", what="the refusal")
            (note,) = [n for n in app._notifications if n.severity == "error"]
            assert note.message == (
                f"{service.url} requires an API key: quit with q, then pass --api-key or set OAWS_API_KEY"
            )
            assert "requires an API key" in str(app.screen.query_one(StatusBar).render())
    finally:
        await service.stop()


async def test_a_notification_stands_above_the_status_line_and_the_footer():
    app, _ = scripted_app([Status("connected", "ws://127.0.0.1:8765")], [Watchlist("w", [])])
    async with app.run_test(size=(100, 20), notifications=True) as pilot:
        app.notify("RELIANCE:NSE price above 1,500.00 — LTP 1,502.40", title="Alert 1", timeout=60)
        await until(pilot, lambda: list(app.screen.query(Toast)), what="the toast")
        await pilot.pause()
        (toast,) = app.screen.query(Toast)
        status = app.screen.query_one(StatusBar).region
        assert toast.region.bottom <= status.y, (toast.region, status)


async def test_the_add_dialog_finds_a_company_by_its_name_and_shows_the_name():
    app, _ = scripted_app([Status("connected", "ws://127.0.0.1:8765")], [Watchlist("w", [])])
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("a", *"infosys")
        matches = app.screen.query_one("#add-matches")
        await until(pilot, lambda: matches.option_count, what="a match")
        first = matches.get_option_at_index(0)
        assert first.id == "INFY:NSE" and str(first.prompt) == "INFY:NSE  Infosys"
        await pilot.press("down", "enter")  # the highlighted match, not the text typed
        assert [str(i) for i in app.model.view] == ["INFY:NSE"]
        assert any(n.message == "added INFY:NSE" for n in app._notifications)
