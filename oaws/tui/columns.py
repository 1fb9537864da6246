"""The `c` dialog: which columns the current watchlist shows, and in what order.

Every column is listed with a check mark, the shown ones first in their order: space shows
or hides the selected one, shift+↑ / shift+↓ (or ``[`` / ``]``) move it, ``r`` brings back
the default set, enter keeps the choice, esc leaves everything as it was. The choice is the
list's own (``Watchlist.columns``), saved with the watchlists (``oaws.store``) unless the list
was given on the command line, and the app hears of it (``ColumnsChanged``) to subscribe at
the mode the new columns need.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Footer, Label

from oaws.instruments import DEPTH, LTP
from oaws.tui.messages import ColumnsChanged
from oaws.tui.models.columns import COLUMN_BY_KEY, COLUMNS
from oaws.tui.models.watch import WatchModel, default_columns

log = logging.getLogger(__name__)


class ColumnChoice:
    """The chooser's state without a screen: every column in order, which are shown, the selection."""

    def __init__(self, shown: list[str]) -> None:
        shown = ["symbol", *(k for k in dict.fromkeys(shown) if k in COLUMN_BY_KEY and k != "symbol")]
        self.order: list[str] = [*shown, *(c.key for c in COLUMNS if c.key not in shown)]
        self.shown: set[str] = set(shown)
        self.cursor = 0

    @property
    def selected(self) -> str:
        return self.order[self.cursor]

    def keys(self) -> list[str]:
        """The shown columns, in order (the symbol always, first)."""
        return ["symbol", *(k for k in self.order if k in self.shown and k != "symbol")]

    def move_cursor(self, delta: int) -> None:
        self.cursor = max(0, min(len(self.order) - 1, self.cursor + delta))

    def toggle(self) -> bool:
        """Show or hide the selected column; False for the symbol, which is always shown."""
        key = self.selected
        if key == "symbol":
            return False
        self.shown ^= {key}
        return True

    def move(self, delta: int) -> bool:
        """Move the selected column up (-1) or down (+1); the symbol stays first."""
        here = self.cursor
        there = here + delta
        if self.order[here] == "symbol" or not 1 <= there < len(self.order):
            return False
        self.order.insert(there, self.order.pop(here))
        self.cursor = there
        return True

    def reset(self, keys: list[str]) -> None:
        """Back to ``keys`` (the default set), the selection kept on the same column."""
        selected = self.selected
        fresh = ColumnChoice(keys)
        self.order, self.shown = fresh.order, fresh.shown
        self.cursor = self.order.index(selected)


class ColumnList(Widget, can_focus=True):
    """The columns, one a line: a check mark, the title, what it is."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"columns--cursor", "columns--muted", "columns--check"}

    DEFAULT_CSS = """
    ColumnList { height: auto; }
    ColumnList > .columns--cursor { background: $primary 35%; text-style: bold; }
    ColumnList > .columns--muted { color: $foreground-muted; }
    ColumnList > .columns--check { color: $text-success; text-style: bold; }
    """

    def __init__(self, choice: ColumnChoice, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.choice = choice
        #: the first line shown, when the screen is too short for every column
        self.top = 0

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.choice.order)

    def _window(self) -> range:
        """The lines that fit, the selected one among them."""
        height = self.size.height or len(self.choice.order)
        cursor = self.choice.cursor
        if cursor < self.top:
            self.top = cursor
        elif cursor >= self.top + height:
            self.top = cursor - height + 1
        self.top = max(0, min(self.top, len(self.choice.order) - height))
        return range(self.top, min(len(self.choice.order), self.top + height))

    def render(self) -> Text:
        choice = self.choice
        muted = self.get_component_rich_style("columns--muted")
        check = self.get_component_rich_style("columns--check")
        cursor = self.get_component_rich_style("columns--cursor")
        lines = Text(no_wrap=True, overflow="ellipsis")
        window = self._window()
        for n in window:
            key = choice.order[n]
            column = COLUMN_BY_KEY[key]
            line = Text(no_wrap=True)
            line.append("[✓] " if key in choice.shown else "[ ] ", check if key in choice.shown else muted)
            line.append(f"{column.title:<10}")
            note = "always shown" if key == "symbol" else column.label + (" · needs Depth mode" if column.depth else "")
            line.append(f" {note}", muted)
            if n == choice.cursor:
                line.pad_right(max(0, 52 - line.cell_len))
                line.stylize(cursor)
            if n != window.start:
                lines.append("\n")
            lines.append_text(line)
        return lines

    def on_click(self, event: events.Click) -> None:
        if 0 <= event.y + self.top < len(self.choice.order):
            self.choice.cursor = event.y + self.top
            self.refresh()


class ColumnScreen(ModalScreen[list[str] | None]):
    """Returns the keys kept (already applied to the model), or None when cancelled."""

    DEFAULT_CSS = """
    ColumnScreen { align: center middle; }
    #columns-box {
        width: 60;
        height: auto;
        max-height: 100%;
        padding: 0 2;
        border: round $primary;
        background: $surface;
    }
    #columns-title { text-style: bold; width: 100%; }
    #columns-note { color: $foreground-muted; width: 100%; margin-bottom: 1; }
    #columns-error { color: $text-error; width: 100%; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle", "Show/hide"),
        Binding("shift+up,left_square_bracket", "move(-1)", "Move up", key_display="⇧↑ ["),
        Binding("shift+down,right_square_bracket", "move(1)", "Move down", key_display="⇧↓ ]"),
        Binding("r", "reset", "Defaults"),
        Binding("enter", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("home", "cursor(-100)", "First", show=False),
        Binding("end", "cursor(100)", "Last", show=False),
    ]

    def __init__(self, model: WatchModel) -> None:
        super().__init__()
        self.model = model
        self.watchlist = model.watchlist
        self.choice = ColumnChoice(model.column_keys())

    def compose(self) -> ComposeResult:
        name = self.watchlist.name
        if self.watchlist.saved:
            note = f"The choice is saved for the list {name!r}."
        else:
            note = "This list was given on the command line: the choice lasts until you quit."
        with Vertical(id="columns-box"):
            yield Label(f"Columns of {name}", id="columns-title")
            yield Label(note, id="columns-note")
            yield ColumnList(self.choice, id="columns-list")
            yield Label("", id="columns-error")
        yield Footer()

    #: lines of the screen the list leaves to the box's border, title, note, error line and the footer
    AROUND = 8

    def on_mount(self) -> None:
        self._fit()
        self.query_one(ColumnList).focus()

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        """As many columns as the screen has room for; the list scrolls with the selection."""
        self.query_one(ColumnList).styles.max_height = max(3, self.size.height - self.AROUND)

    def _changed(self) -> None:
        self.query_one(ColumnList).refresh()

    def action_cursor(self, delta: int) -> None:
        self.choice.move_cursor(delta)
        self._changed()

    def action_toggle(self) -> None:
        self.choice.toggle()
        self._changed()

    def action_move(self, delta: int) -> None:
        self.choice.move(delta)
        self._changed()

    def action_reset(self) -> None:
        self.choice.reset(default_columns(self.watchlist.instruments))
        self._changed()

    def action_save(self) -> None:
        model = self.model
        if model.watchlist is not self.watchlist:  # the list changed under the dialog: nothing to apply to
            self.dismiss(None)
            return
        before = model.mode_for(LTP) == DEPTH
        keys = model.set_columns(self.choice.keys())
        after = model.mode_for(LTP) == DEPTH
        if self.watchlist.saved:
            try:
                from oaws import store

                store.save_columns(self.watchlist.name, keys)
            except Exception as exc:  # the screen keeps the choice; the file is the user's to fix
                log.warning("cannot save the columns of %r: %s", self.watchlist.name, exc)
                self.app.notify(
                    f"The columns are shown but not saved: {exc}", title="Not saved", severity="error", timeout=10
                )
        self.app.post_message(ColumnsChanged(self.watchlist.name, keys, before, after))
        self.dismiss(keys)

    def action_cancel(self) -> None:
        self.dismiss(None)
