"""What the new columns and the column chooser look like, pinned (see test_snapshots.py).

The ticks come from the seeded simulated market on a fixed clock; the fields the simulated
market may not give (the previous session's OI, the 52-week range) are set here, so that the
picture does not change with it. Update after a deliberate change of the look with
``pytest tests/tui/test_snapshots_columns.py --snapshot-update``.
"""

from __future__ import annotations

from oaws.client import Status, Tick
from oaws.instruments import parse_many
from oaws.tui.models.watch import Watchlist

from .conftest import FIXED_NS, scripted_app, sim_ticks, until

URL = "ws://127.0.0.1:8765"
DERIVATIVES = parse_many(
    ["NIFTY:NSE_INDEX", "RELIANCE:NSE", "NIFTY30DEC2526000CE:NFO", "NIFTY30DEC2526000PE:NFO", "BANKNIFTY30DEC25FUT:NFO"]
)
#: the previous session's closing OI, the 52-week range: what a broker's Depth tick adds
EXTRA = {
    "NIFTY30DEC2526000CE": {"prev_oi": 760_000, "week_52_high": 1450.0, "week_52_low": 12.5},
    "NIFTY30DEC2526000PE": {"oi_change_percent": -4.25, "week_52_high": 2210.0, "week_52_low": 48.0},
    "BANKNIFTY30DEC25FUT": {"prev_oi": 1_700_000, "week_52_high": 60120.0, "week_52_low": 48110.0},
    "RELIANCE": {"week_52_high": 1608.8, "week_52_low": 1114.85},
}
PINNED = frozenset({"prev_oi", "oi_change_percent", "week_52_high", "week_52_low"})
#: the put's last trade was in the session before (Monday's close)
YESTERDAY_MS = FIXED_NS // 1_000_000 - 86_400_000 + 5 * 3600_000 + 14 * 60_000
COLUMNS = ["symbol", "ltp", "change_percent", "bid", "ask", "volume", "oi", "oi_change", "oi_change_percent",
           "week_52_high", "week_52_low", "upper_circuit", "lower_circuit", "average_price", "ltt"]  # fmt: skip


def ticks() -> list[Tick]:
    out = []
    for tick in sim_ticks(DERIVATIVES, 6):
        # the fields pinned here, whatever the simulated market sends of them
        data = {k: v for k, v in tick.data.items() if k not in PINNED}
        data.update(EXTRA.get(tick.instrument.symbol, {}))
        if tick.instrument.symbol == "NIFTY30DEC2526000PE":  # a broker that gives only the percentage
            data["ltt"] = YESTERDAY_MS
        out.append(Tick(tick.instrument, tick.mode, data, tick.message, tick.received_ns))
    return out


def watch(columns: list[str] | None):
    script = [Status("connected", URL), *ticks()]
    app, _ = scripted_app(script, [Watchlist("options", list(DERIVATIVES), columns=columns)])

    async def settle(pilot) -> None:
        await until(pilot, lambda: app.events >= len(script), what="every scripted event")
        app.second()
        app.frame()
        await pilot.pause()
        app.frame()  # the Time column makes room for a date on the frame after it met one
        await pilot.pause()

    return app, settle


def test_grid_with_bid_ask_oi_52_weeks_circuits_and_readable_names(snap_compare):
    app, settle = watch(COLUMNS)
    assert snap_compare(app, terminal_size=(200, 12), run_before=settle)


def test_grid_default_columns_of_a_list_with_derivatives(snap_compare):
    app, settle = watch(None)
    assert snap_compare(app, terminal_size=(160, 12), run_before=settle)


def test_column_chooser(snap_compare):
    app, settle = watch(None)

    async def open_chooser(pilot) -> None:
        await settle(pilot)
        await pilot.press("c", "down", "down", "down", "space")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 34), run_before=open_chooser)
