"""The status line: server, connection, ticks per second, latency; watchlist and sort on the right."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from oaws.tui.models.columns import SORT_LABELS
from oaws.tui.models.health import Health
from oaws.tui.models.watch import WatchModel


class StatusBar(Widget):
    """Redrawn once a second by the app (and when the connection changes), never per tick."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status--status",
        "status--status-url",
        "status--status-ok",
        "status--status-bad",
        "status--status-wait",
        "status--status-stale",
        "status--status-notice",
        "status--paused",
        "status--right",
    }

    def __init__(self, health: Health, model: WatchModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.health = health
        self.model = model
        self.paused = False

    def render(self) -> Text:
        left = Text(no_wrap=True, overflow="ellipsis")
        for text, name in self.health.pieces():
            left.append(text, self.get_component_rich_style(f"status--{name}"))
        model = self.model
        lists = model.watchlists
        where = model.watchlist.name + (f" {model.current + 1}/{len(lists)}" if len(lists) > 1 else "")
        sort = SORT_LABELS.get(model.sort, model.sort) + (" ▼" if model.descending else "")
        clock = datetime.fromtimestamp(self.health.clock(), model.tz).strftime("%H:%M:%S")
        right = Text(no_wrap=True)
        if self.paused:
            right.append(" PAUSED ", self.get_component_rich_style("status--paused"))
            right.append("  ")
        right.append(
            f"{where} · {len(model.view)} · sort {sort} · {clock}", self.get_component_rich_style("status--right")
        )
        width = self.size.width
        room = max(0, width - right.cell_len - 1)
        left.truncate(room, overflow="ellipsis", pad=True)
        return Text.assemble(left, " ", right, no_wrap=True)
