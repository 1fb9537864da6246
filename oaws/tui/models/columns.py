"""The grid's columns, and how prices, changes and quantities read in them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from oaws.format import indian

#: how long the changed digits of a new LTP stay highlighted (seconds)
FLASH_SECONDS = 0.6
#: prices kept per row for the sparkline
HISTORY = 32
#: a sorted grid re-sorts at most this often (seconds), so rows do not jump on every tick
RESORT_SECONDS = 1.0
#: the sort orders ``s`` cycles through
SORT_CYCLE: tuple[str, ...] = ("given", "change_percent", "symbol", "volume")
GROUPINGS: tuple[str, ...] = ("indian", "intl", "none")
SPARKS = "▁▂▃▄▅▆▇█"

Piece = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    #: "left" or "right"
    align: str
    #: columns are dropped from the highest number down when the screen is narrow
    drop: int
    #: ascending by default when sorted by this column (text); numbers sort high first
    ascending: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("symbol", "Symbol", 10, "left", 0, ascending=True),
    Column("exchange", "Exch", 9, "left", 6, ascending=True),
    Column("ltp", "LTP", 10, "right", 0),
    Column("change", "Chg", 9, "right", 3),
    Column("change_percent", "Chg%", 7, "right", 1),
    Column("open", "Open", 10, "right", 9),
    Column("high", "High", 10, "right", 7),
    Column("low", "Low", 10, "right", 7),
    Column("close", "Prev", 10, "right", 8),
    Column("volume", "Volume", 12, "right", 4),
    Column("ltt", "Time", 8, "right", 5),
    Column("spark", "Trend", 16, "left", 2),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
SORT_LABELS = {
    "given": "as given",
    "change_percent": "change %",
    "symbol": "symbol",
    "volume": "volume",
    "exchange": "exchange",
    "ltp": "LTP",
    "change": "change",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "prev close",
    "ltt": "time",
    "spark": "trend",
}
GAP = 2


def group_digits(value: int, grouping: str) -> str:
    if grouping == "indian":
        return indian(value)
    if grouping == "intl":
        return f"{value:,}"
    return str(value)


def price_text(value: Any, grouping: str = "indian") -> str:
    """A price with two decimals and the chosen digit grouping (1,23,456.70 in Indian style)."""
    if not isinstance(value, (int, float)):
        return ""
    whole, _, frac = f"{abs(value):.2f}".partition(".")
    sign = "-" if value < 0 and (whole != "0" or frac != "00") else ""
    return f"{sign}{group_digits(int(whole), grouping)}.{frac}"


def signed_text(value: Any, suffix: str = "", grouping: str = "indian") -> str:
    if not isinstance(value, (int, float)):
        return ""
    text = price_text(abs(value), grouping)
    return ("+" if value > 0 else "-" if value < 0 else "") + text + suffix


def changed_from(old: str, new: str) -> int:
    """Where the changed digits of ``new`` start, as an index into ``new``; len(new) when none changed."""
    shift = len(new) - len(old)
    for i, ch in enumerate(new):
        j = i - shift
        if j < 0 or old[j] != ch:
            return i
    return len(new)


def sparkline(values: Iterable[float], width: int) -> str:
    """The last ``width`` values as block characters scaled between their low and high."""
    points = list(values)[-width:]
    if not points:
        return ""
    low, high = min(points), max(points)
    if high == low:
        return SPARKS[3] * len(points)
    scale = (len(SPARKS) - 1) / (high - low)
    return "".join(SPARKS[round((p - low) * scale)] for p in points)


def direction_style(value: Any) -> str:
    if not isinstance(value, (int, float)) or value == 0:
        return "flat"
    return "up" if value > 0 else "down"
