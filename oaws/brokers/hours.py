"""When Indian exchanges trade: the market-hours knowledge behind a feed's silence watchdog.

A feed that hears nothing while its market is open has a dead connection; one that hears
nothing at night is fine. The sessions are the exchanges', not a broker's, so every broker
maps its own segment codes to these exchange names. Pre-open, special sessions and
holidays are not modelled: the watchdog doubles its window after each silent reconnect
(see ``oaws.brokers.connection``), so a holiday costs a few reconnects, not a storm.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from oaws.config import IST

#: Trading session (minutes after midnight IST) by exchange.
SESSIONS: dict[str, tuple[int, int]] = {
    "NSE": (555, 930),
    "NFO": (555, 930),
    "BSE": (555, 930),
    "BFO": (555, 930),
    "MCX": (540, 1435),
    "NCDEX": (540, 1200),
    "CDS": (540, 1020),
}
#: The session assumed for an exchange not in the table: the equity market's.
DEFAULT_SESSION = SESSIONS["NSE"]


def market_open(exchanges: Iterable[str], now: datetime | None = None) -> bool:
    """Whether any of these exchanges is in its trading session now (weekdays, IST)."""
    t = (now or datetime.now(IST)).astimezone(IST)
    if t.weekday() >= 5:
        return False
    minute = t.hour * 60 + t.minute
    return any(lo <= minute < hi for lo, hi in (SESSIONS.get(e, DEFAULT_SESSION) for e in exchanges))
