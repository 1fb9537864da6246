"""The status line's sessions, on a fixed clock: per distinct session of the list, at most once
a minute, nothing until the calendar is built, the right side whole at 80 columns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oaws import sessions
from oaws.client import Status
from oaws.instruments import Instrument, parse_many
from oaws.tui.app import WatchApp
from oaws.tui.models.watch import Watchlist
from oaws.tui.status import StatusBar

from .conftest import IST, ScriptedClient, until

URL = "ws://127.0.0.1:8765"
STOCKS = parse_many(["RELIANCE:NSE", "NIFTY:NSE_INDEX", "SENSEX:BSE_INDEX"])
COMMODITIES = parse_many(["CRUDEOIL26DECFUT:MCX", "GOLD26DECFUT:MCX"])


class Clock:
    def __init__(self, *when: int) -> None:
        self.set(*when)

    def set(self, *when: int) -> None:
        self.now = datetime(*when, tzinfo=IST).timestamp()

    def __call__(self) -> float:
        return self.now


def app_at(clock: Clock, lists: list[Watchlist]) -> WatchApp:
    client = ScriptedClient([Status("connected", URL)])

    async def connect(instruments: list[Instrument], mode: int) -> ScriptedClient:
        return client

    kw: dict[str, Any] = {"url": URL, "clock": clock, "monotonic": lambda: 1000.0, "tz": IST, "roll_every": 3600.0}
    return WatchApp(connect, lists, **kw)  # type: ignore[arg-type]


def status(app: WatchApp) -> str:
    app.second()
    return app.screen.query_one(StatusBar).render().plain


async def test_the_status_line_says_each_sessions_state_and_its_next_open():
    clock = Clock(2026, 12, 25, 10, 0)  # Christmas, a Friday
    app = app_at(clock, [Watchlist("mixed", STOCKS + COMMODITIES), Watchlist("metals", COMMODITIES)])
    async with app.run_test(size=(160, 12)) as pilot:
        await until(pilot, lambda: app.health.state == "connected", what="the connection")
        line = status(app)
        assert "NSE/BSE holiday (Christmas), opens Mon 09:15 · MCX holiday (Christmas), opens 17:00 · mixed" in line
        assert line.rstrip().endswith("mixed 1/2 · 5 · sort as given · 10:00:00")
        clock.set(2026, 12, 25, 17, 0)
        assert "NSE/BSE holiday (Christmas), opens Mon 09:15 · MCX open till 23:55 ·" in status(app)
        await pilot.press("tab")  # another list: its own sessions at once
        await pilot.pause()
        line = status(app)
        assert "MCX open till 23:55 · metals" in line and "NSE" not in line


async def test_at_80_columns_the_right_side_stays_whole_and_the_sessions_shorten():
    clock = Clock(2026, 12, 2, 9, 5)  # a Wednesday's pre-open
    app = app_at(clock, [Watchlist("mixed", STOCKS + COMMODITIES)])
    async with app.run_test(size=(80, 12)) as pilot:
        await until(pilot, lambda: app.health.state == "connected", what="the connection")
        line = status(app)
        assert len(line) == app.screen.query_one(StatusBar).size.width == 78  # 80 less the padding
        assert line == "● connected".ljust(23) + "NSE/BSE pre-open · mixed · 5 · sort as given · 09:05:00"
        app.model.watchlist.instruments[:] = COMMODITIES + STOCKS[:1]
        assert status(app).startswith("● connected     NSE pre-open · MCX open · mixed · ")  # fits in full


async def test_the_sessions_are_worked_out_at_most_once_a_minute_or_when_the_list_changes(monkeypatch):
    asked: list[frozenset[str]] = []
    real = sessions.states

    def counted(exchanges, now=None):
        asked.append(frozenset(exchanges))
        return real(exchanges, now)

    monkeypatch.setattr(sessions, "states", counted)
    clock = Clock(2026, 12, 2, 11, 0)
    app = app_at(clock, [Watchlist("stocks", list(STOCKS))])
    async with app.run_test(size=(140, 12)) as pilot:
        await until(pilot, lambda: app.health.state == "connected", what="the connection")
        asked.clear()
        for second in range(50):  # a redraw a second
            clock.set(2026, 12, 2, 11, 1, second)
            status(app)
        assert len(asked) == 1
        clock.set(2026, 12, 2, 11, 2, 0)
        status(app)
        assert len(asked) == 2
        app.model.watchlist.instruments.append(Instrument("CRUDEOIL26DECFUT", "MCX"))
        assert "MCX open till 23:55" in status(app)
        assert asked[-1] == {"NSE", "NSE_INDEX", "BSE_INDEX", "MCX"} and len(asked) == 3


async def test_nothing_is_shown_until_the_calendar_is_built_in_its_thread(monkeypatch):
    started: list[bool] = []
    monkeypatch.setattr(sessions, "_calendar", None)
    monkeypatch.setattr(sessions, "preload", lambda: started.append(True))  # the thread, held back
    clock = Clock(2026, 12, 2, 11, 0)
    app = app_at(clock, [Watchlist("stocks", list(STOCKS))])
    async with app.run_test(size=(140, 12)) as pilot:
        await until(pilot, lambda: app.health.state == "connected", what="the connection")
        line = status(app)
        assert started and "NSE" not in line and line.rstrip().endswith("stocks · 3 · sort as given · 11:00:00")
        sessions.load()  # what the thread does
        assert "NSE/BSE open till 15:30 · stocks" in status(app)


def test_the_status_line_on_a_holiday(snap_compare):
    clock = Clock(2026, 11, 10, 12, 0)  # a holiday of the calendar without a fixed name
    app = app_at(clock, [Watchlist("mixed", STOCKS + COMMODITIES)])

    async def settle(pilot) -> None:
        await until(pilot, lambda: app.health.state == "connected", what="the connection")
        app.second()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 8), run_before=settle)


async def test_sessions_in_the_same_state_with_the_same_times_are_shown_as_one():
    clock = Clock(2026, 12, 2, 12, 0)
    futures = parse_many(["NIFTY26DECFUT:NFO", "USDINR26DECFUT:CDS"])
    app = app_at(clock, [Watchlist("mixed", STOCKS + futures + COMMODITIES)])
    async with app.run_test(size=(160, 12)) as pilot:
        await until(pilot, lambda: app.health.state == "connected", what="the connection")
        assert "NSE/BSE/NFO open till 15:30 · CDS open till 17:00 · MCX open till 23:55 · mixed" in status(app)
        clock.set(2026, 12, 2, 16, 0)
        assert "NSE/BSE/NFO closed, opens Thu 09:15 · CDS open till 17:00 · MCX open till 23:55" in status(app)
