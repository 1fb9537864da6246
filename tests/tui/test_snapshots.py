"""What the screen looks like, pinned: the grid, the depth view and a lost connection.

The events come from a seeded simulated market on a fixed clock through a scripted client,
so every run draws the same picture. After a deliberate change of the look, review and
update with ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from oaws.client import Status
from oaws.instruments import DEFAULT_WATCHLIST, parse_many
from oaws.tui.models.watch import Watchlist

from .conftest import FIXED_NS, scripted_app, sim_ticks, until

GRID = parse_many(list(DEFAULT_WATCHLIST))
URL = "ws://127.0.0.1:8765"


def watch(*tail: object):
    script = [Status("connected", URL), *sim_ticks(GRID, 12), *tail]
    app, _ = scripted_app(script, [Watchlist("default", list(GRID)), Watchlist("banks", GRID[3:5])])

    async def settle(pilot) -> None:
        await until(pilot, lambda: app.events >= len(script), what="every scripted event")
        app.second()
        app.frame()
        await pilot.pause()

    return app, settle


def test_grid(snap_compare):
    app, settle = watch()
    assert snap_compare(app, terminal_size=(140, 16), run_before=settle)


def test_grid_narrow_terminal_drops_columns(snap_compare):
    app, settle = watch()
    assert snap_compare(app, terminal_size=(80, 16), run_before=settle)


def test_depth_view(snap_compare):
    app, settle = watch()

    async def open_depth(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        app.frame()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 26), run_before=open_depth)


def test_lost_connection_dims_the_grid(snap_compare):
    app, settle = watch(Status("reconnecting", "the connection dropped", FIXED_NS / 1e9 + 4))
    assert snap_compare(app, terminal_size=(140, 16), run_before=settle)
