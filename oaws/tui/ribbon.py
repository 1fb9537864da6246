"""The index ribbon at the top of the main screen (``models.ribbon`` decides what it shows).

Redrawn by the app a few times a second, never per tick: the app stores each index's
tick in ``RibbonModel.quotes`` and calls ``refresh`` from its frame timer.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

from oaws.tui.models.ribbon import RibbonModel
from oaws.tui.models.watch import WatchModel

STYLE_NAMES = ("plain", "label", "value", "muted", "symbol", "up", "down", "flat")


class Ribbon(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"ribbon--{name}" for name in STYLE_NAMES}

    def __init__(self, ribbon: RibbonModel, model: WatchModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ribbon = ribbon
        self.model = model
        self._lines: tuple[list, list] = ([], [])

    def update(self) -> None:
        """Work out both lines again (the movers from the grid's rows) and repaint."""
        rows = self.model.rows
        shown = ((i, rows[i].data) for i in self.model.watchlist.instruments if i in rows)
        self._lines = self.ribbon.lines(max(0, self.size.width - 2), shown)
        self.refresh()

    def on_resize(self) -> None:
        self.update()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y > 1:
            return Strip.blank(width, self.rich_style)
        style = self.get_component_rich_style
        segments = [Segment(" ", style("ribbon--plain"))]
        segments += [Segment(text, style(f"ribbon--{name}")) for text, name in self._lines[y]]
        used = sum(len(s.text) for s in segments)
        if used < width:
            segments.append(Segment(" " * (width - used), style("ribbon--plain")))
        return Strip(segments).crop(0, width)
