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
