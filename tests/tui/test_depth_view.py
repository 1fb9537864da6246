"""The depth view of an instrument the server refused, and of a feed that sends no depth (the pilot)."""

from __future__ import annotations

from typing import Any

from oaws.client import ServerError, Status, Tick
from oaws.instruments import DEPTH, parse
from oaws.tui.app import WatchApp
from oaws.tui.depth import DepthScreen, DepthView
from oaws.tui.messages import DepthRefused
from oaws.tui.models.depth import DEPTHLESS_TICKS
from oaws.tui.models.watch import Watchlist

from .conftest import FIXED_NS, IST, ScriptedClient, sim_ticks, until

REL, FOO = parse("RELIANCE:NSE"), parse("FOOBAR:NSE")


class App(WatchApp):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.refusals: list[DepthRefused] = []

    def on_depth_refused(self, message: DepthRefused) -> None:
        self.refusals.append(message)


def start(events: list) -> App:
    client = ScriptedClient([Status("connected", "ws://127.0.0.1:8765"), *events])

    async def connect(wanted, mode):
        return client

    return App(connect, [Watchlist("w", [REL, FOO])], url="ws://127.0.0.1:8765", clock=lambda: FIXED_NS / 1e9,
               monotonic=lambda: 1000.0, tz=IST, roll_every=3600.0)  # fmt: skip


def shown(app: WatchApp) -> str:
    view = app.screen.query_one(DepthView)
    return "\n".join(line.text for line in view.render_lines(view.region.reset_offset)) if view.region else ""


async def test_a_refused_symbol_says_so_and_asks_the_app_not_to_subscribe_it_again():
    app = start([ServerError("SYMBOL_NOT_FOUND", "FOOBAR:NSE is not listed", FOO)])
    async with app.run_test(size=(120, 24)) as pilot:
        await until(pilot, lambda: app.model.rows[FOO].error, what="the refusal")
        await pilot.press("down", "enter")
        assert isinstance(app.screen, DepthScreen)
        app.frame()
        await pilot.pause()
        text = shown(app)
        assert "The server refused FOOBAR:NSE: symbol not found" in text and "waiting" not in text
        assert [(m.instrument, m.reason) for m in app.refusals] == [(FOO, "symbol not found")]
        app.frame()
        await pilot.pause()
        assert len(app.refusals) == 1  # once


def quote_ticks(n: int) -> list[Tick]:
    """A feed that answers a Depth subscription with ticks that carry no book (mode 3 in their data)."""
    out = []
    for tick in sim_ticks([REL], n):
        data = {k: v for k, v in tick.data.items() if k != "depth"}
        out.append(Tick(tick.instrument, DEPTH, data, tick.message, tick.received_ns))
    return out


async def test_a_feed_without_depth_says_depth_is_not_available():
    app = start(quote_ticks(DEPTHLESS_TICKS))
    async with app.run_test(size=(120, 24)) as pilot:
        await until(pilot, lambda: app.model.rows[REL].ticks == DEPTHLESS_TICKS, what="the ticks")
        await pilot.press("enter")
        app.frame()
        await pilot.pause()
        text = shown(app)
        assert "Depth is not available from this feed" in text and "waiting" not in text.lower()
        assert "RELIANCE · NSE" in text and app.refusals == []
