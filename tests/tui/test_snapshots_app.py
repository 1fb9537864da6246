"""What the main screen's new parts look like, pinned: the index ribbon with an alert's mark
on a row, a notification above the status line, the alert dialog, the add dialog's footer.

Seeded simulated ticks on a fixed clock through a scripted client, as in test_snapshots.py.
Review and update with ``pytest tests/tui/test_snapshots_app.py --snapshot-update``.
"""

from __future__ import annotations

from oaws.alerts import ARMED, TRIGGERED, Alert
from oaws.client import Status
from oaws.instruments import DEFAULT_WATCHLIST, parse_many
from oaws.tui.add import AddScreen
from oaws.tui.dialogs import AlertDialog
from oaws.tui.models.ribbon import default_ribbon
from oaws.tui.models.watch import Watchlist

from .conftest import scripted_app, sim_ticks, until

GRID = parse_many(list(DEFAULT_WATCHLIST))
URL = "ws://127.0.0.1:8765"
ALERTS = [
    Alert(
        1, "RELIANCE:NSE", "above", 1480.0, TRIGGERED, "2025-11-25T10:14:00+05:30", "2025-11-25T10:15:01+05:30", 1480.45
    ),
    Alert(2, "RELIANCE:NSE", "change_below", -2.0, ARMED, "2025-11-25T10:14:30+05:30"),
    Alert(3, "INFY:NSE", "below", 1400.0, ARMED, "2025-11-25T10:14:30+05:30"),
]


def watch():
    ribbon = default_ribbon()
    script = [Status("connected", URL), *sim_ticks([*GRID, *ribbon[2:]], 12)]
    app, _ = scripted_app(script, [Watchlist("default", list(GRID)), Watchlist("banks", GRID[3:5])], ribbon=ribbon)

    async def settle(pilot) -> None:
        await until(pilot, lambda: app.events >= len(script), what="every scripted event")
        app.book.replace([Alert(**vars(a)) for a in ALERTS])
        app._show_marks()
        app.second()
        app.frame()
        await pilot.pause()

    return app, settle


def test_ribbon_and_a_triggered_alerts_mark(snap_compare):
    app, settle = watch()
    assert snap_compare(app, terminal_size=(140, 18), run_before=settle)


def test_a_notification_stands_above_the_status_line(snap_compare):
    app, settle = watch()

    async def notified(pilot) -> None:
        await settle(pilot)
        app.notify("RELIANCE:NSE price above 1,480.00 — LTP 1,480.45", title="Alert 1", severity="warning", timeout=600)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 18), run_before=notified)


def test_alert_dialog(snap_compare):
    app, settle = watch()

    async def open_alerts(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "down", "exclamation_mark")  # RELIANCE
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, AlertDialog)
                and app.screen.query_one("#alert-list").option_count == 2
                and app.screen.focused is app.screen.query_one("#alert-value")
            ),
            what="the dialog, its alerts listed, the value focused",
        )
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 30), run_before=open_alerts)


def test_add_dialog_shows_its_own_keys(snap_compare):
    app, settle = watch()

    async def open_add(pilot) -> None:
        await settle(pilot)
        await pilot.press("a", *"relia")
        await until(
            pilot,
            lambda: isinstance(app.screen, AddScreen) and app.screen.query_one("#add-matches").option_count,
            what="the matches",
        )
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 24), run_before=open_add)
