"""Alerts on the watch: set from the command line's store, they fire on screen once (a
notification that names them, the bell, a mark on the row, the [notify] command) and are
then triggered in the file; set, re-armed and removed in the `!` dialog.

Each test has a config file of its own (OAWS_CONFIG); the store is the real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from oaws import store
from oaws.alerts import ARMED, TRIGGERED
from oaws.client import Event, Status, Tick
from oaws.instruments import DEPTH, QUOTE, Instrument, parse
from oaws.tui.app import WatchApp
from oaws.tui.dialogs import AlertDialog
from oaws.tui.models.watch import Watchlist

from .conftest import FIXED_NS, IST, ScriptedClient, live_app
from .conftest import until as until_

#: conftest's ``until`` with room for a loaded machine (the store's thread, a real server)
until = partial(until_, timeout=20.0)


REL, INFY, TCS = parse("RELIANCE:NSE"), parse("INFY:NSE"), parse("TCS:NSE")


@pytest.fixture
def conf(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    fired = tmp_path / "fired.env"
    path.write_text(
        "# alerts, by hand\n"
        "watchlist = ['RELIANCE:NSE', 'INFY:NSE']\n\n"
        "[notify]\n"
        f"command = 'env | grep ^OAWS_ALERT_ >> {fired}'\n"
        "desktop = false\n"
    )
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    return path


def alert_notes(app) -> list[str]:
    return [n.message for n in app._notifications if (n.title or "").startswith("Alert ")]


def held_by_server(service) -> dict:
    (client,) = service.proxy.clients
    return client.session.subs


async def test_an_alert_set_from_the_command_line_fires_on_screen_once(service, conf, tmp_path):
    lists = [Watchlist("default", [REL, INFY])]
    app = live_app(service.url, lists, store=store, roll_every=0.2)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(150, 24)) as pilot:
        await until(pilot, lambda: app.model.rows[REL].data.get("ltp"), what="the list's ticks")
        # as `oaws alerts add` does, while the watch runs: it reads the file again when it changes
        on_row = store.add_alert("RELIANCE:NSE", "above", 1.0)
        elsewhere = store.add_alert("TCS:NSE", "above", 1.0)  # not in the list: watched all the same
        await until(pilot, lambda: len(alert_notes(app)) == 2, what="both alerts to fire")
        notes = alert_notes(app)
        assert any(n.startswith("RELIANCE:NSE price above 1.00 — LTP ") for n in notes)
        assert any(n.startswith("TCS:NSE price above 1.00 — LTP ") for n in notes)
        assert rings == [1, 1]
        assert app.model.rows[REL].mark is not None and app.model.rows[INFY].mark is None
        assert TCS not in app.model.view
        await until(
            pilot,
            lambda: {a.id: a.state for a in store.alerts()} == {on_row.id: TRIGGERED, elsewhere.id: TRIGGERED},
            what="both saved as triggered",
        )
        saved = {a.id: a for a in store.alerts()}
        assert saved[on_row.id].triggered_value and saved[on_row.id].triggered_at
        # once: more ticks of RELIANCE, no more firings
        ticks = app.model.rows[REL].ticks
        await until(pilot, lambda: app.model.rows[REL].ticks >= ticks + 5, what="more ticks")
        assert len(alert_notes(app)) == 2 and rings == [1, 1]
        # TCS was wanted only by its alert: triggered, it is let go
        await until(pilot, lambda: TCS not in held_by_server(service), what="TCS unsubscribed")
    fired = tmp_path / "fired.env"
    await_lines = lambda: fired.exists() and fired.read_text().count("OAWS_ALERT_ID=") == 2  # noqa: E731
    for _ in range(200):
        if await_lines():
            break
        await asyncio.sleep(0.02)
    text = fired.read_text()
    assert "OAWS_ALERT_INSTRUMENT=RELIANCE:NSE" in text and "OAWS_ALERT_INSTRUMENT=TCS:NSE" in text
    assert "OAWS_ALERT_KIND=above" in text


async def test_an_armed_alert_outside_the_list_is_subscribed_at_the_mode_it_needs(service, conf):
    store.add_alert("TCS:NSE", "oi_above", 10**15)  # never met: stays armed
    lists = [Watchlist("default", [REL], columns=["symbol", "ltp"])]
    app = live_app(service.url, lists, store=store)
    async with app.run_test(size=(150, 24)) as pilot:
        await until(pilot, lambda: held_by_server(service).get(TCS) == {DEPTH}, what="TCS in Depth (OI)")
        assert held_by_server(service).get(REL) == {QUOTE}
        assert app.model.view == [REL]


class FedClient(ScriptedClient):
    """Ticks when the test hands them over."""

    def __init__(self) -> None:
        super().__init__([])
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    async def __aiter__(self) -> AsyncIterator[Event]:
        yield Status("connected", "ws://127.0.0.1:8765")
        while True:
            yield await self.queue.get()


def quote(instrument: Instrument, ltp: float, **more: Any) -> Tick:
    data = {"ltp": ltp, "close": 1480.0, "ltt": FIXED_NS // 1_000_000, **more}
    return Tick(instrument, QUOTE, data, {}, FIXED_NS)


def fed_app(lists: list[Watchlist]) -> tuple[WatchApp, FedClient]:
    client = FedClient()

    async def connect(instruments, mode):
        return client

    app = WatchApp(connect, lists, url="ws://127.0.0.1:8765", tz=IST, roll_every=0.2, store=store)
    return app, client


async def test_a_triggered_alert_is_marked_at_start_and_rearming_clears_it(conf):
    alert = store.add_alert("RELIANCE:NSE", "above", 1500.0)
    alert.state, alert.triggered_at, alert.triggered_value = TRIGGERED, "2026-12-02T10:15:00+05:30", 1502.4
    store.save_alert(alert)
    app, client = fed_app([Watchlist("default", [REL, INFY])])
    async with app.run_test(size=(150, 30)) as pilot:
        await until(pilot, lambda: app.model.rows[REL].mark is not None, what="the mark of the triggered alert")
        client.queue.put_nowait(quote(REL, 1490.0))
        await pilot.press("!")
        dialog = app.screen
        assert isinstance(dialog, AlertDialog)
        listed = dialog.query_one("#alert-list")
        assert "price above 1,500.00  triggered 10:15:00 at 1,502.40" in str(listed.get_option_at_index(0).prompt)
        listed.focus()
        await until(pilot, lambda: dialog.focused is listed, what="the list focused")
        await pilot.press("r")
        await until(pilot, lambda: store.alerts()[0].state == ARMED, what="re-armed in the file")
        await until(pilot, lambda: app.model.rows[REL].mark is None, what="the mark gone")
        assert "armed" in str(listed.get_option_at_index(0).prompt)
        await pilot.press("escape")
        client.queue.put_nowait(quote(REL, 1501.0))  # armed again: it fires again
        await until(pilot, lambda: alert_notes(app), what="the firing")
        assert app.model.rows[REL].mark is not None


async def test_the_dialog_sets_an_alert_prefilled_with_the_rows_values_and_removes_it(conf):
    app, client = fed_app([Watchlist("default", [REL, INFY])])
    async with app.run_test(size=(150, 30)) as pilot:
        client.queue.put_nowait(quote(REL, 1490.5, change_percent=0.71))
        await until(pilot, lambda: app.model.rows[REL].data.get("ltp"), what="a tick")
        await until(pilot, lambda: app._alerts_version is not None, what="the alerts read")
        await pilot.press("!")
        dialog = app.screen
        assert isinstance(dialog, AlertDialog)
        value = dialog.query_one("#alert-value")
        assert value.value == "1490.50"
        dialog.query_one("#alert-kind").value = "change_below"
        await until(pilot, lambda: value.value == "0.71", what="the value of the new kind filled in")
        value.value = "abc"
        await pilot.press("enter")
        error = dialog.query_one("#alert-error")
        await until(pilot, lambda: "needs a number" in str(error.render()) or "not a number" in str(error.render()))
        value.value = "-2"
        value.focus()
        await until(pilot, lambda: dialog.focused is value, what="the value focused")
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (
                [(a.instrument, a.kind, a.value) for a in store.alerts()] == [("RELIANCE:NSE", "change_below", -2.0)]
            ),
            what="the alert saved",
        )
        listed = dialog.query_one("#alert-list")
        await until(pilot, lambda: "change % below -2.00%" in str(listed.get_option_at_index(0).prompt), what="shown")
        listed.focus()
        listed.highlighted = 0
        await until(pilot, lambda: dialog.focused is listed, what="the list focused")
        await pilot.press("x")
        await until(pilot, lambda: store.alerts() == [], what="removed from the file")
        await until(pilot, lambda: app.book.alerts() == [], what="and from the screen's alerts")
    assert "# alerts, by hand" in conf.read_text()


async def test_the_bell_rings_only_when_notify_says_so(conf):
    conf.write_text(conf.read_text().replace("desktop = false\n", "desktop = false\nbell = false\n"))
    store.add_alert("RELIANCE:NSE", "above", 1500.0)
    app, client = fed_app([Watchlist("default", [REL])])
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(150, 30)) as pilot:
        await until(pilot, lambda: app.book.alerts() and not app.ring, what="the alerts and [notify] read")
        client.queue.put_nowait(quote(REL, 1501.0))
        await until(pilot, lambda: alert_notes(app), what="the firing")
        assert rings == [] and app.model.rows[REL].mark is not None
