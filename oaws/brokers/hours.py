"""When Indian exchanges trade: the market-hours knowledge behind a feed's silence watchdog.

A feed that hears nothing while its market is open has a dead connection; one that hears
nothing at night, at a weekend or on a holiday is fine. The sessions are the exchanges', not
a broker's, so every broker maps its own segment codes to these exchange names, and
``oaws.sessions`` answers: the trading days of the exchange-calendars library (holidays
included), each segment's hours, pre-open counted as closed. An exchange it does not know
keeps the equity session. Special sessions the library does not list (Muhurat trading) are
not known: the watchdog doubles its window after each silent reconnect (see
``oaws.brokers.connection``), so such a day costs a few reconnects, not a storm.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from oaws import sessions
from oaws.config import IST


def market_open(exchanges: Iterable[str], now: datetime | None = None) -> bool:
    """Whether any of these exchanges is in its trading session now (IST, holidays known)."""
    t = now.astimezone(IST) if now is not None else datetime.now(IST)
    return any(sessions.is_open(e, t) for e in set(exchanges))
