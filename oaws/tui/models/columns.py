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
    #: how readily the column gives way on a narrow screen: the lowest are kept first, columns
    #: of one number come and go together (Bid with Ask, High with Low), see ``WatchModel.layout``
    drop: int
    #: ascending by default when sorted by this column (text); numbers sort high first
    ascending: bool = False
    #: what the column chooser and the status line call it
    label: str = ""
    #: a field only Depth mode carries (bid/ask, OI, circuits, the 52-week range)
    depth: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("symbol", "Symbol", 10, "left", 0, ascending=True, label="symbol"),
    Column("exchange", "Exch", 9, "left", 9, ascending=True, label="exchange"),
    Column("ltp", "LTP", 10, "right", 0, label="LTP"),
    Column("change", "Chg", 9, "right", 2, label="change"),
    Column("change_percent", "Chg%", 7, "right", 1, label="change %"),
    Column("bid", "Bid", 10, "right", 7, label="bid", depth=True),
    Column("bid_qty", "Bid qty", 9, "right", 11, label="bid quantity", depth=True),
    Column("ask", "Ask", 10, "right", 7, label="ask", depth=True),
    Column("ask_qty", "Ask qty", 9, "right", 11, label="ask quantity", depth=True),
    Column("volume", "Volume", 12, "right", 3, label="volume"),
    Column("oi", "OI", 11, "right", 5, label="open interest", depth=True),
    Column("oi_change", "OI chg", 10, "right", 10, label="OI change", depth=True),
    Column("oi_change_percent", "OI chg%", 8, "right", 6, label="OI change %", depth=True),
    Column("open", "Open", 10, "right", 13, label="open"),
    Column("high", "High", 10, "right", 8, label="high"),
    Column("low", "Low", 10, "right", 8, label="low"),
    Column("close", "Prev", 10, "right", 14, label="prev close"),
    Column("average_price", "Avg", 10, "right", 12, label="average price"),
    Column("upper_circuit", "Upper ckt", 10, "right", 15, label="upper circuit", depth=True),
    Column("lower_circuit", "Lower ckt", 10, "right", 15, label="lower circuit", depth=True),
    Column("week_52_high", "52w high", 10, "right", 16, label="52-week high", depth=True),
    Column("week_52_low", "52w low", 10, "right", 16, label="52-week low", depth=True),
    Column("ltt", "Time", 8, "right", 4, label="time"),
    Column("spark", "Trend", 16, "left", 17, label="trend"),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
#: the columns a list shows until its own are chosen (``c``), in this order; see docs/columns.md
DEFAULT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "exchange",
    "ltp",
    "change",
    "change_percent",
    "bid",
    "ask",
    "volume",
    "open",
    "high",
    "low",
    "close",
    "ltt",
    "spark",
)
#: added to the default set, after Volume, for a list that holds futures or options
DERIVATIVE_COLUMNS: tuple[str, ...] = ("oi", "oi_change_percent")
#: the Time column when a row's last trade is from an earlier session (``01 Dec 15:29``)
DATED_TIME_WIDTH = 12
#: the symbol column grows to fit the longest readable name, up to this
SYMBOL_WIDTH_MAX = 28
SORT_LABELS = {"given": "as given", **{c.key: c.label for c in COLUMNS}}
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


def best_level(data: dict[str, Any], side: str) -> tuple[Any, Any] | None:
    """(price, quantity) of the best level of ``side`` ("buy" or "sell") of a Depth tick; None without one."""
    depth = data.get("depth")
    if not depth:
        return None
    levels = depth.get(side) if isinstance(depth, dict) else None
    if not levels or not isinstance(levels, list):
        return None
    level = levels[0]
    if not isinstance(level, dict) or not level.get("quantity"):
        return None  # an empty level (a book without orders on that side) is not a price of 0
    return level.get("price"), level.get("quantity")


def oi_change(data: dict[str, Any]) -> tuple[float | None, float | None]:
    """(OI change, OI change %) on the day: from ``oi`` and ``prev_oi``, else the feed's
    ``oi_change_percent`` (the change itself is then unknown); None where unknown."""
    oi, prev = data.get("oi"), data.get("prev_oi")
    if isinstance(oi, (int, float)) and isinstance(prev, (int, float)) and prev > 0:
        moved = oi - prev
        return moved, moved * 100 / prev
    pct = data.get("oi_change_percent")
    return None, pct if isinstance(pct, (int, float)) else None


def signed_count(value: Any, grouping: str = "indian") -> str:
    """A whole number with its sign and digit grouping (+12,500); "" when it is not a number."""
    if not isinstance(value, (int, float)):
        return ""
    whole = round(value)
    return ("+" if whole > 0 else "-" if whole < 0 else "") + group_digits(abs(whole), grouping)


def direction_style(value: Any) -> str:
    if not isinstance(value, (int, float)) or value == 0:
        return "flat"
    return "up" if value > 0 else "down"
