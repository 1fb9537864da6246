"""The main screen: the index ribbon, column titles, the quote grid, the status line and the key hints."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from oaws.tui.grid import QuoteGrid
from oaws.tui.header import GridHeader
from oaws.tui.models.health import Health
from oaws.tui.models.ribbon import RibbonModel
from oaws.tui.models.watch import WatchModel
from oaws.tui.ribbon import Ribbon
from oaws.tui.status import StatusBar


class WatchScreen(Screen[None]):
    """Keys that act on the grid live here, so that the depth view and dialogs do not inherit them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "app.add", "Add"),
        Binding("d", "app.remove", "Remove"),
        Binding("shift+up", "app.reorder(-1)", "Move up", show=False),
        Binding("shift+down", "app.reorder(1)", "Move down", show=False),
        Binding("s", "app.sort", "Sort"),
        Binding("c", "columns", "Columns"),
        Binding("exclamation_mark", "app.alerts", "Alerts", key_display="!"),
        Binding("n", "app.new_list", "New list"),
        Binding("r", "app.rename_list", "Rename", show=False),
        Binding("x,ctrl+d", "app.delete_list", "Delete list", show=False),
        Binding("p", "app.pause", "Pause"),
        Binding("tab", "app.watchlist(1)", "Next list", priority=True),
        Binding("shift+tab", "app.watchlist(-1)", "Previous list", show=False, priority=True),
    ]

    def __init__(self, model: WatchModel, health: Health, ribbon: RibbonModel | None = None) -> None:
        super().__init__()
        self.model = model
        self.health = health
        self.grid = QuoteGrid(model, id="grid")
        self.ribbon = Ribbon(ribbon, model, id="ribbon") if ribbon else None

    def compose(self) -> ComposeResult:
        if self.ribbon is not None:
            yield self.ribbon
        yield GridHeader(self.grid, id="header")
        yield self.grid
        yield StatusBar(self.health, self.model, id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.grid.focus()

    def action_columns(self) -> None:
        from oaws.tui.columns import ColumnScreen

        self.app.push_screen(ColumnScreen(self.model), lambda _: self.grid.redraw())
