"""The quote grid: a Line-API ScrollView that redraws only the rows that changed.

Each row is rendered once into a ``Strip`` and cached until its instrument ticks, the
cursor moves onto or off it, or the layout changes. The app calls ``redraw`` on a timer
(10 frames a second by default); ``redraw`` asks the model what changed and refreshes only
those lines that are on screen, so a thousand ticks a second cost a few dozen line renders
a frame. ``DataTable.update_cell`` would redraw the whole visible table on every tick.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from oaws.instruments import Instrument
from oaws.tui.messages import DepthRequested
from oaws.tui.models.columns import Column, Piece
from oaws.tui.models.watch import WatchModel

#: style names the model uses, each a component class ``grid--NAME`` in app.tcss
STYLE_NAMES = (
    "plain",
    "symbol",
    "muted",
    "up",
    "down",
    "flat",
    "flash-up",
    "flash-down",
    "error",
    "alert",
    "spark-up",
    "spark-down",
    "spark-flat",
    "header",
    "header-sorted",
)


class QuoteGrid(ScrollView, can_focus=True):
    """The instruments of the current watchlist, one line each."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"grid--{name}" for name in STYLE_NAMES} | {"grid--cursor", "grid--stale"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "depth", "Depth"),
    ]

    def __init__(self, model: WatchModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.layout_columns: list[tuple[Column, int]] = []
        self._width = -1
        self._cache: dict[Instrument, Strip] = {}
        self._styles: dict[str, Style] = {}
        #: rows rendered since start, for the benchmark and the tests
        self.rendered = 0

    # Drawing ---------------------------------------------------------------------
    def redraw(self) -> None:
        """Bring the screen up to date with the model: only changed rows that are visible."""
        whole, dirty = self.model.take_changes()
        width = self.scrollable_content_region.width
        if width != self._width:
            self._width = width
            whole = True
        if whole:
            self.layout_columns = self.model.layout(width)  # the symbol column fits the longest symbol
            self._cache.clear()
            self.virtual_size = Size(width, len(self.model.view))
            self.scroll_to_cursor()
            self.refresh()
            self.app.query("GridHeader").refresh()
            return
        if not dirty:
            return
        top = round(self.scroll_y)
        bottom = top + self.scrollable_content_region.height
        position = self.model.position
        cache = self._cache
        for instrument in dirty:
            cache.pop(instrument, None)
            y = position.get(instrument)
            if y is not None and top <= y < bottom:
                self.refresh_line(y)

    def on_resize(self, event: events.Resize) -> None:
        self.redraw()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.get_component_rich_style(f"grid--{name}")
            if name in ("cursor", "stale"):
                # these add to a cell's own style (a background, dim, bold) and never replace its colour
                style = Style(
                    bgcolor=style.bgcolor if name == "cursor" else None,
                    bold=style.bold,
                    dim=style.dim,
                    italic=style.italic,
                )
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        index = y + round(self.scroll_y)
        view = self.model.view
        width = self.scrollable_content_region.width
        if index >= len(view):
            return Strip.blank(width, self.rich_style)
        instrument = view[index]
        strip = self._cache.get(instrument)
        if strip is None:
            strip = self._cache[instrument] = self._render_row(instrument, width)
        return strip

    def _render_row(self, instrument: Instrument, width: int) -> Strip:
        self.rendered += 1
        pieces: list[Piece] = self.model.cells(instrument, self.layout_columns)
        style = self._style
        extra: Style | None = None
        if instrument == self.model.selected:
            extra = style("cursor")
        if self.model.stale:
            extra = style("stale") if extra is None else extra + style("stale")
        if extra is None:
            segments = [Segment(text, style(name)) for text, name in pieces]
        else:
            # a flash shows through the cursor; everything else takes the cursor's background
            segments = [
                Segment(text, extra + style(name) if name.startswith("flash") else style(name) + extra)
                for text, name in pieces
            ]
        used = sum(len(text) for text, _ in pieces)
        if used < width:
            segments.append(Segment(" " * (width - used), style("plain") if extra is None else style("plain") + extra))
        return Strip(segments, max(width, used)).crop(0, width)

    # The cursor --------------------------------------------------------------------
    def scroll_to_cursor(self) -> None:
        if self.model.selected is None:
            return
        y = self.model.cursor
        height = self.scrollable_content_region.height
        top = round(self.scroll_y)
        if y < top:
            self.scroll_to(y=y, animate=False, immediate=True)
        elif height and y >= top + height:
            self.scroll_to(y=y - height + 1, animate=False, immediate=True)

    def _moved(self) -> None:
        self.scroll_to_cursor()
        self.redraw()

    def action_move(self, delta: int) -> None:
        self.model.move(delta)
        self._moved()

    def action_page(self, direction: int) -> None:
        self.model.move(direction * max(1, self.scrollable_content_region.height - 1))
        self._moved()

    def action_jump(self, index: int) -> None:
        self.model.select_index(index if index >= 0 else len(self.model.view) - 1)
        self._moved()

    def action_depth(self) -> None:
        if self.model.selected is not None:
            self.post_message(DepthRequested(self.model.selected))

    def on_click(self, event: events.Click) -> None:
        index = event.y + round(self.scroll_y)
        if 0 <= index < len(self.model.view):
            self.model.select_index(index)
            self._moved()
            if event.chain == 2:
                self.action_depth()
