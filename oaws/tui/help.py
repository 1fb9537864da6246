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
    ("g", "chart of the selected instrument: candles, volume, the previous close (keys: ? there)"),
    ("a", "add an instrument, with completion"),
    ("d", "remove the selected instrument"),
    ("shift+↑  shift+↓", "move the selected instrument up / down"),
    ("s", "sort: as given → change % → symbol → volume (or click a column title)"),
    ("tab  shift+tab", "next / previous watchlist"),
    ("n", "new watchlist"),
    ("r", "rename this watchlist"),
    ("x  ctrl+d", "delete this watchlist (asks first)"),
    ("!", "alerts of the selected instrument"),
    ("p", "pause the screen (ticks are still taken in)"),
    ("esc", "back: from the depth view, the column chooser or a dialog"),
    ("?", "this help"),
    ("q  ctrl+c", "quit"),
)
#: binding keys the table names in its own words (shift+↑ for shift+up)
COVERED = frozenset({"shift+up", "shift+down", "exclamation_mark", "ctrl+d", "enter"})
#: keys other helpers' screens add (the column chooser); shown when their binding exists
EXTRA_KEYS: dict[str, str] = {"c": "choose the columns of this list (saved)"}


class HelpScreen(ModalScreen[None]):
    #: the box's title and the note under its keys (a screen's own help, the chart's, sets its own)
    TITLE_TEXT = "Keys"
    NOTE = (
        "Green: up on the day, red: down; the digits that changed flash on each trade. "
        "A dim grid means the connection is lost: the values are the last ones seen. "
        "● before a symbol: one of its alerts fired (re-arm it with !). "
        "Edits of lists are saved at once, except a list given on the command line."
    )

    def __init__(self, more: dict[str, str] | None = None) -> None:
        super().__init__()
        #: keys of the main screen this table does not name yet (key -> what it does)
        self.more = more or {}

    def rows(self) -> list[tuple[str, str]]:
        keys = list(KEYS)
        keys[-4:-4] = list(self.more.items())
        return keys

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 3))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in self.rows():
            table.add_row(key, what)
        with Vertical(id="help-box"):
            yield Static(self.TITLE_TEXT, id="help-title")
            yield Static(table)
            yield Static(self.NOTE, id="help-note")
            yield Static("any key closes", id="help-close")

    def on_key(self, event: Key) -> None:
        event.stop()
        self.dismiss(None)

    def on_click(self) -> None:
        self.dismiss(None)
