"""The market depth of one instrument: five levels a side, quantities as bars, live.

While it is open the app subscribes the instrument in Depth mode (and drops that mode
when it closes); the view itself only draws ``model.depth_view`` of the latest tick,
and only when a new tick has arrived since it last drew.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from oaws.instruments import Instrument
from oaws.ticks import change_of, is_index
from oaws.tui.models.columns import direction_style, price_text, signed_text
from oaws.tui.models.depth import DepthFigures, bar, depth_view
from oaws.tui.models.health import Health
from oaws.tui.models.watch import WatchModel
from oaws.tui.status import StatusBar


class DepthView(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "depth--bid",
        "depth--ask",
        "depth--bid-bar",
        "depth--ask-bar",
        "depth--label",
        "depth--value",
        "depth--muted",
        "depth--up",
        "depth--down",
        "depth--flat",
        "depth--title",
    }

    def __init__(self, model: WatchModel, instrument: Instrument, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.instrument = instrument
        self.seen = -1

    def update_if_changed(self) -> None:
        row = self.model.rows.get(self.instrument)
        ticks = row.ticks if row is not None else -1
        if ticks != self.seen:
            self.seen = ticks
            self.refresh()

    def _s(self, name: str) -> str:
        return self.get_component_rich_style(f"depth--{name}")  # type: ignore[return-value]

    def render(self) -> RenderableType:
        row = self.model.rows.get(self.instrument)
        data = row.data if row is not None else {}
        g = self.model.grouping
        view = depth_view(data, g, self.model.tz)
        change, pct = change_of(data)
        trend = self._s(direction_style(change))
        title = Text.assemble(
            (str(self.instrument), self._s("title")),
            "   ",
            (price_text(data.get("ltp"), g) or "waiting for the first tick…", trend),
            "  ",
            (f"{signed_text(change, '', g)}  {signed_text(pct, '%', 'none')}", trend),
        )
        bar_width = max(6, min(30, (self.size.width - 72) // 2))
        if not any(level.quantity for level in view.bids + view.asks):
            note = (
                "An index has no order book."
                if is_index(self.instrument)
                else "No order book yet: waiting for a Depth tick…"
            )
            return Group(title, "", Text(note, self._s("muted")), "", self._facts(view))
        book = Table.grid(padding=(0, 2), expand=False)
        # whole cells on the bid side: block characters come in left-aligned eighths only
        book.add_column(justify="right", min_width=bar_width)
        for justify in ("right", "right", "right"):
            book.add_column(justify=justify, no_wrap=True)
        book.add_column(justify="center", width=1)
        for justify in ("left", "right", "right"):
            book.add_column(justify=justify, no_wrap=True)
        book.add_column(justify="left", min_width=bar_width)
        label, muted = self._s("label"), self._s("muted")
        book.add_row(
            "",
            Text("Orders", label),
            Text("Qty", label),
            Text("Bid", label),
            "│",
            Text("Ask", label),
            Text("Qty", label),
            Text("Orders", label),
            "",
        )
        for bid, ask in zip(view.bids, view.asks, strict=True):
            book.add_row(
                Text("█" * round(bid.share * bar_width), self._s("bid-bar")),
                Text(bid.orders, muted),
                Text(bid.quantity, self._s("value")),
                Text(bid.price, self._s("bid")),
                "│",
                Text(ask.price, self._s("ask")),
                Text(ask.quantity, self._s("value")),
                Text(ask.orders, muted),
                Text(bar(ask.share, bar_width), self._s("ask-bar")),
            )
        totals = Text.assemble(
            ("Total bid ", label),
            (view.total_bid or "–", self._s("bid")),
            ("    spread ", label),
            (view.spread or "–", self._s("value")),
            ("    total ask ", label),
            (view.total_ask or "–", self._s("ask")),
        )
        if view.buy_share is not None:
            width = 40
            buy = round(view.buy_share * width)
            totals = Group(
                totals,
                Text.assemble(
                    ("█" * buy, self._s("bid-bar")),
                    ("█" * (width - buy), self._s("ask-bar")),
                    (f"  {view.buy_share * 100:.0f}% buy", label),
                ),
            )
        return Group(title, "", book, "", totals, "", self._facts(view))

    def _facts(self, view: DepthFigures) -> Table:
        facts = Table.grid(padding=(0, 3))
        per_row = 4
        for _ in range(per_row):
            facts.add_column(no_wrap=True)
        label, value = self._s("label"), self._s("value")
        cells = [Text.assemble((f"{k} ", label), (v, value)) for k, v in view.facts]
        for start in range(0, len(cells), per_row):
            facts.add_row(*cells[start : start + per_row])
        return facts


class DepthScreen(Screen[None]):
    """Pushed over the grid by enter; escape (or enter again) goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,backspace", "close", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, model: WatchModel, health: Health, instrument: Instrument) -> None:
        super().__init__()
        self.model = model
        self.health = health
        self.instrument = instrument

    def compose(self) -> ComposeResult:
        yield Static(f"Market depth · {self.instrument}", id="depth-title")
        yield DepthView(self.model, self.instrument, id="depth")
        yield StatusBar(self.health, self.model, id="depth-status")
        yield Footer()

    def redraw(self) -> None:
        # the frame timer may fire between the push of this screen and its compose
        for view in self.query(DepthView):
            view.update_if_changed()

    def action_close(self) -> None:
        self.dismiss(None)
