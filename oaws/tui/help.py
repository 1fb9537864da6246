"""The `?` screen: every key of the watch on one page; any key closes it."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓  j k  PgUp PgDn  Home End", "move the selection (or click a row)"),
    ("enter  (double click)", "market depth of the selected instrument"),
    ("a", "add an instrument, with completion"),
    ("d", "remove the selected instrument"),
    ("s", "sort: as given → change % → symbol → volume (or click a column title)"),
    ("tab  shift+tab", "next / previous watchlist of the config file"),
    ("p", "pause the screen (ticks are still taken in)"),
    ("?", "this help"),
    ("q  ctrl+c", "quit"),
)


class HelpScreen(ModalScreen[None]):
    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 3))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with Vertical(id="help-box"):
            yield Static("Keys", id="help-title")
            yield Static(table)
            yield Static(
                "Green: up on the day, red: down; the digits that changed flash on each trade. "
                "A dim grid means the connection is lost: the values are the last ones seen.",
                id="help-note",
            )
            yield Static("any key closes", id="help-close")

    def on_key(self, event: Key) -> None:
        event.stop()
        self.dismiss(None)

    def on_click(self) -> None:
        self.dismiss(None)
