"""The main screen: column titles, the quote grid, the status line and the key hints."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from oaws.tui.grid import QuoteGrid
from oaws.tui.header import GridHeader
from oaws.tui.models.health import Health
from oaws.tui.models.watch import WatchModel
from oaws.tui.status import StatusBar


class WatchScreen(Screen[None]):
    """Keys that act on the grid live here, so that the depth view and dialogs do not inherit them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "app.add", "Add"),
        Binding("d", "app.remove", "Remove"),
        Binding("s", "app.sort", "Sort"),
        Binding("c", "columns", "Columns"),
        Binding("p", "app.pause", "Pause"),
        Binding("tab", "app.watchlist(1)", "Next list", priority=True),
        Binding("shift+tab", "app.watchlist(-1)", "Previous list", show=False, priority=True),
    ]

    def __init__(self, model: WatchModel, health: Health) -> None:
        super().__init__()
        self.model = model
        self.health = health
        self.grid = QuoteGrid(model, id="grid")

    def compose(self) -> ComposeResult:
        yield GridHeader(self.grid, id="header")
        yield self.grid
        yield StatusBar(self.health, self.model, id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.grid.focus()

    def action_columns(self) -> None:
        from oaws.tui.columns import ColumnScreen

        self.app.push_screen(ColumnScreen(self.model), lambda _: self.grid.redraw())
