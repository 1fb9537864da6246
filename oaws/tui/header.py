"""The column titles above the grid; a click sorts by that column."""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from textual import events
from textual.strip import Strip
from textual.widget import Widget

from oaws.tui.grid import QuoteGrid
from oaws.tui.messages import SortRequested
from oaws.tui.models.columns import GAP


class GridHeader(Widget):
    """One line of titles, laid out like the grid's columns; the sorted one is marked ▲ or ▼."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"grid--header", "grid--header-sorted"}

    def __init__(self, grid: QuoteGrid, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.grid = grid

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y:
            return Strip.blank(width, self.rich_style)
        pieces = self.grid.model.header(self.grid.layout_columns)
        segments = [Segment(text, self.get_component_rich_style(f"grid--{name}")) for text, name in pieces]
        used = sum(len(text) for text, _ in pieces)
        if used < width:
            segments.append(Segment(" " * (width - used), self.get_component_rich_style("grid--header")))
        return Strip(segments).crop(0, width)

    def column_at(self, x: int) -> str | None:
        """The key of the column under cell ``x``, gaps belonging to the column on their left."""
        left = 0
        for column, width in self.grid.layout_columns:
            if x < left + width + GAP:
                return column.key
            left += width + GAP
        return None

    def on_click(self, event: events.Click) -> None:
        key = self.column_at(event.x)
        if key is not None:
            self.post_message(SortRequested(key))
