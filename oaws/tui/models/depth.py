"""The depth view's figures: five levels a side, their shares, the spread."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from oaws.ticks import change_of
from oaws.tui.models.columns import (
    group_digits,
    price_text,
    signed_text,
)


@dataclass(frozen=True, slots=True)
class Level:
    price: str
    quantity: str
    orders: str
    #: quantity as a share of the largest quantity on either side (0..1), for the bar
    share: float


@dataclass(frozen=True, slots=True)
class DepthFigures:
    bids: list[Level]
    asks: list[Level]
    total_bid: str
    total_ask: str
    #: share of the buy side in the total quantity of both sides (0..1), None without totals
    buy_share: float | None
    facts: list[tuple[str, str]]
    spread: str


def _levels(side: Any) -> list[dict[str, Any]]:
    return [lv for lv in side if isinstance(lv, dict)][:5] if isinstance(side, list) else []


def depth_view(
    data: dict[str, Any],
    grouping: str = "indian",
    tz: tzinfo | None = None,
    clock: Callable[[Any], str] | None = None,
) -> DepthFigures:
    """Five levels a side with bar lengths, the day's figures, and who leads the book.

    ``clock`` writes the last trade's time (the grid's ``WatchModel.clock_text``: with its date
    when it is from an earlier session); HH:MM:SS in ``tz`` without it."""
    depth = data.get("depth") if isinstance(data.get("depth"), dict) else {}
    buys, sells = _levels(depth.get("buy")), _levels(depth.get("sell"))
    biggest = max((int(lv.get("quantity") or 0) for lv in buys + sells), default=0) or 1

    def level(lv: dict[str, Any] | None) -> Level:
        if lv is None or not lv.get("quantity"):
            return Level("", "", "", 0.0)
        qty = int(lv.get("quantity") or 0)
        return Level(
            price_text(lv.get("price"), grouping),
            group_digits(qty, grouping),
            str(lv.get("orders") or ""),
            qty / biggest,
        )

    bids = [level(buys[n] if n < len(buys) else None) for n in range(5)]
    asks = [level(sells[n] if n < len(sells) else None) for n in range(5)]
    tb, ts = data.get("total_buy_quantity"), data.get("total_sell_quantity")
    share = tb / (tb + ts) if isinstance(tb, int) and isinstance(ts, int) and tb + ts > 0 else None
    spread = ""
    best_bid = buys[0].get("price") if buys else None
    best_ask = sells[0].get("price") if sells else None
    if isinstance(best_bid, (int, float)) and isinstance(best_ask, (int, float)) and best_bid and best_ask:
        spread = price_text(best_ask - best_bid, grouping)
    change, pct = change_of(data)
    # OpenAlgo's Depth name first: a Depth tick from an OpenAlgo server has no other
    last_qty = data.get("last_quantity") or data.get("last_trade_quantity")
    facts = [
        ("LTP", price_text(data.get("ltp"), grouping)),
        (
            "Change",
            f"{signed_text(change, '', grouping)} ({signed_text(pct, '%', 'none')})" if change is not None else "",
        ),
        ("Open", price_text(data.get("open"), grouping)),
        ("High", price_text(data.get("high"), grouping)),
        ("Low", price_text(data.get("low"), grouping)),
        ("Prev close", price_text(data.get("close"), grouping)),
        # zero volume, average and last quantity mean "none" (an index, or before the first trade)
        ("Avg price", price_text(data.get("average_price"), grouping) if data.get("average_price") else ""),
        ("Volume", group_digits(int(data["volume"]), grouping) if data.get("volume") else ""),
        ("Last qty", group_digits(int(last_qty), grouping) if last_qty else ""),
        (
            "Circuits",
            f"{price_text(data.get('lower_circuit'), grouping)} – {price_text(data.get('upper_circuit'), grouping)}"
            if data.get("upper_circuit")
            else "",
        ),
        ("OI", group_digits(int(data["oi"]), grouping) if data.get("oi") else ""),
        (
            "Last trade",
            (clock(data["ltt"]) if clock else datetime.fromtimestamp(data["ltt"] / 1000, tz).strftime("%H:%M:%S"))
            if isinstance(data.get("ltt"), (int, float)) and data["ltt"] > 0
            else "",
        ),
    ]
    return DepthFigures(
        bids,
        asks,
        group_digits(tb, grouping) if isinstance(tb, int) else "",
        group_digits(ts, grouping) if isinstance(ts, int) else "",
        share,
        [(k, v) for k, v in facts if v],
        spread,
    )


def bar(share: float, width: int) -> str:
    """A horizontal bar of ``share`` (0..1) of ``width`` cells, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, share)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + ("" if not part else " ▏▎▍▌▋▊▉"[part]))[:width]


#: ticks without an order book since the depth view opened before it says the feed has none
DEPTHLESS_TICKS = 5


@dataclass(frozen=True, slots=True)
class DepthState:
    """What the depth view shows of a row: the tick to draw and, instead of a book, why there is none."""

    #: the latest figures, over the latest book (a Quote tick of the grid's between Depth ticks keeps the book)
    data: dict[str, Any]
    #: a sentence to show instead of the book; None: draw the book
    note: str | None
    #: the server refused the instrument: nothing will come, do not ask again
    refused: bool = False
    #: no tick at all yet
    waiting: bool = False


def depth_state(row: Any, opened_at: int, *, index: bool, name: str) -> DepthState:
    """The depth view's state of ``row`` (a ``WatchModel`` row, or None) ``opened_at`` its tick count
    when the view opened; ``index``: the instrument is an index (no order book); ``name`` as the title says it."""
    if row is None:
        return DepthState({}, f"{name} is no longer on the list.", waiting=True)
    data = row.data
    book = row.book
    if book is not None and book is not data:
        data = {**book, **data, "depth": book.get("depth")}
    if row.error is not None:
        return DepthState(data, f"The server refused {name}: {row.error}. No depth will come.", refused=True)
    if not row.ticks:
        return DepthState(data, "Waiting for the first tick…", waiting=True)
    if index:
        return DepthState(data, "An index has no order book.")
    if book is None:
        depth_mode = data.get("mode") == 3
        if depth_mode or row.ticks - opened_at >= DEPTHLESS_TICKS:
            return DepthState(data, "Depth is not available from this feed: its ticks carry no order book.")
        return DepthState(data, "No order book yet: waiting for a Depth tick…")
    levels = book.get("depth") if isinstance(book.get("depth"), dict) else {}
    if not any(
        isinstance(lv, dict) and lv.get("quantity") for side in levels.values() if isinstance(side, list) for lv in side
    ):
        return DepthState(data, "The order book is empty: no bids, no offers.")
    return DepthState(data, None)
