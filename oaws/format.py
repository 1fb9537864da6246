"""Numbers as Indian market screens show them."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any


def indian(n: int | float | None) -> str:
    """Indian digit grouping: 1234567 -> 12,34,567."""
    if n is None:
        return ""
    value = int(n)
    sign, digits = ("-" if value < 0 else ""), str(abs(value))
    if len(digits) <= 3:
        return sign + digits
    head, tail = digits[:-3], digits[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return sign + ",".join(groups) + "," + tail


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 tick``, ``2 ticks``, ``12,345 ticks``; ``many`` where adding an s is wrong (``1 entry``, ``2 entries``)."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def strike(value: float | int | None) -> str:
    """An option's strike as an option chain shows it: 24000, 83.25; "" for none (0 or -1 in the masters)."""
    if not value or value <= 0:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def price(p: float | int | None) -> str:
    return "" if p is None else f"{p:,.2f}"


def signed(x: float | int | None, suffix: str = "") -> str:
    return "" if x is None else f"{x:+,.2f}{suffix}"


def moment(seconds: float, tz: tzinfo | None) -> datetime:
    """Epoch seconds as an aware datetime in ``tz`` (None: the machine's zone), so ``%Z`` names it."""
    return datetime.fromtimestamp(seconds, tz) if tz is not None else datetime.fromtimestamp(seconds).astimezone()


def clock(ms: int | float | None, tz: tzinfo | None = None) -> str:
    """Epoch milliseconds as HH:MM:SS.mmm in ``tz`` (None: the machine's local time)."""
    if not ms:
        return "--:--:--.---"
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%H:%M:%S") + f".{int(ms % 1000):03d}"


def order_line(update: dict[str, Any]) -> str:
    """One ``order_update`` for people: ``SIM000001 complete  BUY 10 RELIANCE:NSE MARKET  filled 10 @ 1,480.65``."""
    status = str(update.get("order_status", "?"))
    head = f"{update.get('orderid', '?')} {status:<9} {update.get('action', '?')} {update.get('quantity', '?')}"
    where = f"{update.get('symbol', '?')}:{update.get('exchange', '?')}"
    kind = str(update.get("pricetype", ""))
    if kind == "LIMIT":
        kind += f" {price(update.get('price'))}"  # type: ignore[arg-type]
    line = f"{head} {where} {kind} {update.get('product', '')}".rstrip()
    filled = update.get("filled_quantity")
    if filled:
        line += f"  filled {filled} @ {price(update.get('average_price'))}"  # type: ignore[arg-type]
    reason = update.get("rejection_reason")
    if reason:
        line += f"  ({reason})"
    return line
