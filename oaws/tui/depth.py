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
from oaws.names import readable
from oaws.ticks import change_of, is_index
from oaws.tui.messages import DepthRefused
from oaws.tui.models.columns import direction_style, price_text, signed_text
from oaws.tui.models.depth import DepthFigures, DepthState, bar, depth_state, depth_view
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
        self.seen: tuple[int, str | None] = (-1, None)
        row = model.rows.get(instrument)
        #: the row's tick count when the view opened: a feed without depth is known after a few more
        self.opened_at = row.ticks if row is not None else 0
        #: the app was told of a refusal (once)
        self.told = False

    def update_if_changed(self) -> None:
        row = self.model.rows.get(self.instrument)
        ticks = row.ticks if row is not None else -1
        error = row.error if row is not None else None
        if (ticks, error) != self.seen:
            self.seen = (ticks, error)
            self.refresh()
            if error is not None and not self.told:
                # nothing will come for a refused instrument: the app stops asking for its depth
                self.told = True
                self.post_message(DepthRefused(self.instrument, error))

    def on_mount(self) -> None:
        self.update_if_changed()

    def _s(self, name: str) -> str:
        return self.get_component_rich_style(f"depth--{name}")  # type: ignore[return-value]

    @property
    def title_name(self) -> str:
        """The instrument as people read it: ``NIFTY 26 DEC 24000 CE · NFO``."""
        row = self.model.rows.get(self.instrument)
        label = row.label if row is not None else readable(self.instrument)
        return f"{label} · {self.instrument.exchange}"

    def state(self) -> DepthState:
        row = self.model.rows.get(self.instrument)
        return depth_state(row, self.opened_at, index=is_index(self.instrument), name=str(self.instrument))

    def render(self) -> RenderableType:
        state = self.state()
        data = state.data
        g = self.model.grouping
        view = depth_view(data, g, self.model.tz, self.model.clock_text)
        change, pct = change_of(data)
        trend = self._s(direction_style(change))
        if state.refused:
            figures: tuple[str, str] = ("refused", self._s("muted"))
        elif state.waiting:
            figures = ("waiting for the first tick…", trend)
        else:
            figures = (price_text(data.get("ltp"), g), trend)
        title = Text.assemble(
            (self.title_name, self._s("title")),
            "   ",
            figures,
            "  ",
            (f"{signed_text(change, '', g)}  {signed_text(pct, '%', 'none')}", trend),
        )
        if state.note is not None:
            if state.waiting:
                return Group(title)
            if state.refused:
                return Group(title, "", Text(state.note, self._s("muted")))
            return Group(title, "", Text(state.note, self._s("muted")), "", self._facts(view))
        bar_width = max(6, min(30, (self.size.width - 72) // 2))
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
        view = DepthView(self.model, self.instrument, id="depth")
        yield Static(f"Market depth · {view.title_name}", id="depth-title")
        yield view
        yield StatusBar(self.health, self.model, id="depth-status")
        yield Footer()

    def redraw(self) -> None:
        # the frame timer may fire between the push of this screen and its compose
        for view in self.query(DepthView):
            view.update_if_changed()

    def action_close(self) -> None:
        self.dismiss(None)
