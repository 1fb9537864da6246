"""The messages the watch's widgets send to the app, in one place."""

from __future__ import annotations

from textual.message import Message

from oaws.instruments import Instrument


class SortRequested(Message):
    """A column header was clicked: sort by that column (again: reverse)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class DepthRequested(Message):
    """Enter or a double click on a row: show the market depth of that instrument."""

    def __init__(self, instrument: Instrument) -> None:
        super().__init__()
        self.instrument = instrument


class ColumnsChanged(Message):
    """The column chooser changed the current list's columns (already shown and saved).

    ``depth_before`` / ``depth_after``: whether a shown column needed Depth mode before and
    after (``WatchModel.mode_for``); when they differ the app subscribes the list again at
    ``model.mode_for(its mode)`` (and drops Depth when no column needs it any more)."""

    def __init__(self, watchlist: str, keys: list[str], depth_before: bool, depth_after: bool) -> None:
        super().__init__()
        self.watchlist = watchlist
        self.keys = keys
        self.depth_before = depth_before
        self.depth_after = depth_after

    @property
    def mode_changed(self) -> bool:
        return self.depth_before != self.depth_after


class DepthRefused(Message):
    """The depth view's instrument was refused by the server (``row.error``): the app drops its
    Depth subscription and does not ask for it again while the view is open."""

    def __init__(self, instrument: Instrument, reason: str) -> None:
        super().__init__()
        self.instrument = instrument
        self.reason = reason
