"""The trading session of each Indian exchange: pre-open, open, closed or a holiday, and when next it opens.

The trading days come from the maintained ``exchange-calendars`` library (its ``XBOM``
calendar: NSE and BSE share their holidays). Importing pandas and building that calendar
takes most of a second, so it happens once, lazily (``load``; ``preload`` starts it in a
thread, ``loaded`` says whether it is done), and what it knows is kept as plain Python: a
set of trading days and the session's times. Every question after that is arithmetic.

The library records holidays only up to a bound (the end of 2026 in exchange-calendars
4.13): after it every weekday is taken for a trading day, and a state that relies on such a
day says so in its ``note``.

Sessions (IST), by exchange (docs/sessions.md gives the sources):

- NSE, BSE (and their indices, NSE_INDEX and BSE_INDEX): pre-open 09:00-09:15 (order entry
  to 09:08, matching to 09:12, then a buffer), trading 09:15-15:30.
- NFO, BFO: 09:15-15:30; since 8 December 2025 their futures have a pre-open session
  09:00-09:15 too (options have none).
- CDS, BCD (currency derivatives): 09:00-17:00.
- MCX, NCO (and MCX_INDEX): 09:00-23:30 while the United States keeps daylight saving
  time (second Sunday of March to first Sunday of November), 09:00-23:55 otherwise. On an
  NSE/BSE holiday the morning session is taken as closed and the evening one (from 17:00)
  as open: MCX's own holiday list, which closes some holidays for the whole day, is not in
  the library, so such a state carries a note.
- NCDEX: 09:00-17:00 on NSE/BSE trading days.
- CRYPTO trades around the clock; GLOBAL_INDEX is taken as always open (its hours are
  not modelled). Any other exchange keeps the equity session.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from oaws.config import IST

log = logging.getLogger(__name__)

PRE_OPEN = "pre-open"
OPEN = "open"
CLOSED = "closed"
HOLIDAY = "holiday"

#: the note on a state that relies on a day after the library's last recorded holiday
BEYOND_NOTE = "holidays after {year} unknown; update exchange-calendars"
#: the note on MCX's state on an NSE/BSE holiday
COMMODITY_HOLIDAY_NOTE = "an exchange holiday: the evening session (from 17:00) is assumed; some holidays close it too"
GLOBAL_NOTE = "the hours of global indices are not modelled"

#: the derivatives' futures have a pre-open session from this day on (NSE/FAOP/71092, BSE 20251110-40)
DERIVATIVES_PRE_OPEN_FROM = date(2025, 12, 8)

_H = 3600
_M = 60
PRE_OPEN_AT = 9 * _H
#: the equity session, until the library's calendar says otherwise
EQUITY_OPEN, EQUITY_CLOSE = 9 * _H + 15 * _M, 15 * _H + 30 * _M
CURRENCY = (9 * _H, 17 * _H)
COMMODITY_OPEN = 9 * _H
COMMODITY_EVENING = 17 * _H
COMMODITY_CLOSE_SUMMER = 23 * _H + 30 * _M  # while the US keeps daylight saving time
COMMODITY_CLOSE_WINTER = 23 * _H + 55 * _M
NCDEX = (9 * _H, 17 * _H)

# The kinds of session, in the order the status line shows them.
EQUITY, DERIVATIVES, CURRENCY_KIND, COMMODITY, NCDEX_KIND, GLOBAL, CRYPTO = (
    "equity", "derivatives", "currency", "commodity", "ncdex", "global", "crypto",
)  # fmt: skip
_ORDER = {kind: i for i, kind in enumerate((EQUITY, DERIVATIVES, CURRENCY_KIND, COMMODITY, NCDEX_KIND, GLOBAL, CRYPTO))}

#: the session each exchange trades in (an exchange not here: the equity session)
KIND: dict[str, str] = {
    "NSE": EQUITY, "BSE": EQUITY, "NSE_INDEX": EQUITY, "BSE_INDEX": EQUITY,
    "NFO": DERIVATIVES, "BFO": DERIVATIVES,
    "CDS": CURRENCY_KIND, "BCD": CURRENCY_KIND,
    "MCX": COMMODITY, "NCO": COMMODITY, "MCX_INDEX": COMMODITY,
    "NCDEX": NCDEX_KIND,
    "GLOBAL_INDEX": GLOBAL,
    "CRYPTO": CRYPTO,
}  # fmt: skip
#: the exchange an index's session is named after
LABEL: dict[str, str] = {"NSE_INDEX": "NSE", "BSE_INDEX": "BSE", "MCX_INDEX": "MCX"}
_LABEL_ORDER = {e: i for i, e in enumerate(("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCO", "NCDEX"))}

#: Names of the holidays that fall on the same date every year. The library gives dates
#: only; a holiday on any other date (Diwali, Holi, Eid...) is shown without a name.
FIXED_HOLIDAYS: dict[tuple[int, int], str] = {
    (1, 26): "Republic Day",
    (4, 14): "Ambedkar Jayanti",
    (5, 1): "Maharashtra Day",
    (8, 15): "Independence Day",
    (10, 2): "Gandhi Jayanti",
    (12, 25): "Christmas",
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EPOCH = date(1970, 1, 1).toordinal()
_IST_OFFSET = 5 * _H + 30 * _M


@dataclass(frozen=True)
class SessionState:
    """One exchange's session at a moment: what it is doing, and when it next opens or closes."""

    exchange: str
    #: "pre-open", "open", "closed" or "holiday"
    state: str
    #: when it next opens (the regular session, after any pre-open), IST; None while open
    opens_at: datetime | None
    #: while open: when today's session closes (None: it never does)
    closes_at: datetime | None
    #: the holiday's name where known (a holiday of the calendar without a name: None)
    holiday: str | None = None
    #: what the state rests on beyond the calendar (a day after its bound, an assumption)
    note: str | None = None
    #: the moment the state is of (for ``describe``'s "today or another day")
    at: datetime | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """A short text for the status line: ``NSE open till 15:30``, ``NSE closed, opens Thu 09:15``."""
        name = self.exchange
        if self.state == OPEN:
            return f"{name} open till {self.closes_at:%H:%M}" if self.closes_at is not None else f"{name} open"
        when = self._when()
        if self.state == PRE_OPEN:
            return f"{name} pre-open, opens {when}"
        if self.state == HOLIDAY:
            return f"{name} holiday ({self.holiday}), opens {when}" if self.holiday else f"{name} holiday, opens {when}"
        return f"{name} closed, opens {when}"

    def _when(self) -> str:
        opens = self.opens_at
        if opens is None:
            return "?"
        days = (opens.date() - self.at.date()).days if self.at is not None else 0
        if days <= 0:
            return f"{opens:%H:%M}"
        if days < 7:
            return f"{_DAYS[opens.weekday()]} {opens:%H:%M}"
        return f"{_DAYS[opens.weekday()]} {opens.day} {opens:%b %H:%M}"


@dataclass(frozen=True)
class _Calendar:
    """What the library knows, as plain Python."""

    #: the trading days from ``first`` to ``last``
    days: frozenset[date]
    first: date
    last: date
    open: int
    close: int
    #: why there is no calendar (None: there is one)
    missing: str | None = None

    def kind_of(self, d: date) -> str:
        """The kind of day ``d`` is: "trading", "weekend" or "holiday"."""
        if self.missing is None and self.first <= d <= self.last:
            if d in self.days:
                return "trading"
        elif d.weekday() < 5:
            return "trading"
        return "weekend" if d.weekday() >= 5 else "holiday"

    def beyond(self, d: date) -> bool:
        return self.missing is None and d > self.last


_lock = threading.Lock()
_starting = threading.Lock()
_calendar: _Calendar | None = None
_loader: threading.Thread | None = None


def _build() -> _Calendar:
    try:
        import exchange_calendars as xc
        from exchange_calendars.exchange_calendar_xbom import XBOMExchangeCalendar

        bound = XBOMExchangeCalendar.bound_max()  # get_calendar raises for an end beyond it
        with warnings.catch_warnings():  # pandas' deprecation notices are no user's business
            warnings.simplefilter("ignore")
            calendar = xc.get_calendar("XBOM", end=bound)
            days = frozenset(ts.date() for ts in calendar.sessions)
        opens, closes = calendar.open_times[-1][1], calendar.close_times[-1][1]
        return _Calendar(
            days=days,
            first=calendar.first_session.date(),
            last=bound.date(),
            open=opens.hour * _H + opens.minute * _M,
            close=closes.hour * _H + closes.minute * _M,
        )
    except Exception as e:  # a broken install must not stop the watch: weekdays, said so
        log.warning("the exchange calendar is unavailable (%s): every weekday is taken for a trading day", e)
        return _Calendar(frozenset(), date.min, date.min, EQUITY_OPEN, EQUITY_CLOSE, missing=str(e) or type(e).__name__)


def load() -> None:
    """Build the calendar now, if it is not built yet (blocks for most of a second, once)."""
    global _calendar
    if _calendar is None:
        with _lock:
            if _calendar is None:
                _calendar = _build()


def loaded() -> bool:
    """Whether the calendar is built, so that a question is answered at once."""
    return _calendar is not None


def preload() -> threading.Thread | None:
    """Build the calendar in a thread of its own, once however often asked (None: it is built)."""
    global _loader
    if _calendar is not None:
        return None
    with _starting:
        if _loader is None:
            _loader = threading.Thread(target=load, name="oaws-sessions", daemon=True)
            _loader.start()
        return _loader


def _get() -> _Calendar:
    if _calendar is None:
        load()
    assert _calendar is not None
    return _calendar


# The arithmetic --------------------------------------------------------------------
def _ist(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(IST)
    if now.tzinfo is None:
        raise ValueError("a session needs an aware time (tzinfo set), not a naive one")
    return now.astimezone(IST)


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def us_daylight_saving(d: date) -> bool:
    """Whether the United States keeps daylight saving time on the (IST) day ``d``: from the
    second Sunday of March to the first Sunday of November (the change is made at 02:00 on
    a Sunday there, when the Indian exchanges are closed)."""
    if 3 < d.month < 11:
        return True
    if d.month == 3:
        return d >= _nth_sunday(d.year, 3, 2)
    if d.month == 11:
        return d < _nth_sunday(d.year, 11, 1)
    return False


def _hours(kind: str, d: date, cal: _Calendar) -> tuple[int | None, int, int] | None:
    """(pre-open, open, close) of ``kind`` on ``d`` in seconds after midnight IST, or None."""
    day = cal.kind_of(d)
    if kind == COMMODITY:
        if day == "weekend":
            return None
        close = COMMODITY_CLOSE_SUMMER if us_daylight_saving(d) else COMMODITY_CLOSE_WINTER
        return (None, COMMODITY_OPEN if day == "trading" else COMMODITY_EVENING, close)
    if day != "trading":
        return None
    if kind == DERIVATIVES:
        return (PRE_OPEN_AT if d >= DERIVATIVES_PRE_OPEN_FROM else None, cal.open, cal.close)
    if kind == CURRENCY_KIND:
        return (None, *CURRENCY)
    if kind == NCDEX_KIND:
        return (None, *NCDEX)
    return (PRE_OPEN_AT, cal.open, cal.close)


def _at(d: date, seconds: int) -> datetime:
    return datetime(d.year, d.month, d.day, seconds // _H, seconds // _M % 60, tzinfo=IST)


def _notes(*notes: str | None) -> str | None:
    given = [n for n in notes if n]
    return "; ".join(dict.fromkeys(given)) if given else None


def _state(kind: str, label: str, t: datetime, cal: _Calendar) -> SessionState:
    if kind in (CRYPTO, GLOBAL):
        return SessionState(label, OPEN, None, None, note=GLOBAL_NOTE if kind == GLOBAL else None, at=t)
    today = t.date()
    seconds = t.hour * _H + t.minute * _M + t.second
    day = cal.kind_of(today)
    name = FIXED_HOLIDAYS.get((today.month, today.day)) if day == "holiday" else None
    beyond = BEYOND_NOTE.format(year=cal.last.year) if cal.beyond(today) else None
    missing = f"no exchange calendar ({cal.missing}): weekdays assumed" if cal.missing else None
    assumed = COMMODITY_HOLIDAY_NOTE if kind == COMMODITY and day == "holiday" else None
    hours = _hours(kind, today, cal)
    if hours is not None:
        pre, opens, closes = hours
        if opens <= seconds < closes:
            return SessionState(label, OPEN, None, _at(today, closes), name, _notes(beyond, assumed, missing), t)
        if seconds < closes:  # before the session
            if pre is not None and pre <= seconds:
                return SessionState(label, PRE_OPEN, _at(today, opens), None, name, _notes(beyond, missing), t)
            state = HOLIDAY if day == "holiday" else CLOSED
            return SessionState(label, state, _at(today, opens), None, name, _notes(beyond, assumed, missing), t)
        state = CLOSED  # after today's session (an evening session on a holiday included)
    else:
        state = HOLIDAY if day == "holiday" else CLOSED
    d = today
    for _ in range(366):
        d += timedelta(days=1)
        following = _hours(kind, d, cal)
        if following is not None:
            break
    else:  # pragma: no cover - a calendar with no trading day in a year
        return SessionState(label, state, None, None, name, _notes(beyond, missing), t)
    if beyond is None and cal.beyond(d):
        beyond = BEYOND_NOTE.format(year=cal.last.year)
    later = COMMODITY_HOLIDAY_NOTE if kind == COMMODITY and cal.kind_of(d) == "holiday" else None
    return SessionState(label, state, _at(d, following[1]), None, name, _notes(beyond, later, missing), t)


def _kind(exchange: str) -> str:
    return KIND.get(exchange, EQUITY)


#: where each kind of session's bars start (seconds after midnight IST): the session's open,
#: so that a 60-minute bar of NSE runs 09:15-10:15 (oaws.bars); around-the-clock markets from midnight
BAR_ORIGIN: dict[str, int] = {
    EQUITY: EQUITY_OPEN, DERIVATIVES: EQUITY_OPEN, CURRENCY_KIND: CURRENCY[0], COMMODITY: COMMODITY_OPEN,
    NCDEX_KIND: NCDEX[0], GLOBAL: 0, CRYPTO: 0,
}  # fmt: skip


def bar_origin(exchange: str) -> int:
    """Seconds after midnight IST at which the bars of ``exchange`` are aligned (its session's open; no I/O)."""
    return BAR_ORIGIN[_kind(exchange)]


# The API -------------------------------------------------------------------------
def state(exchange: str, now: datetime | None = None) -> SessionState:
    """The session of ``exchange`` (NSE, NFO, NSE_INDEX, MCX...) at ``now`` (default: now)."""
    return _state(_kind(exchange), LABEL.get(exchange, exchange), _ist(now), _get())


def states(exchanges: Iterable[str], now: datetime | None = None) -> list[SessionState]:
    """One state per distinct session among ``exchanges``: NSE, BSE and their indices share the
    equity session (named ``NSE/BSE`` when both are there), NFO and BFO the derivatives', CDS
    and BCD the currency one, MCX, NCO and MCX_INDEX the commodity one. In the status line's
    order: equity, derivatives, currency, commodity, NCDEX, global indices, crypto."""
    labels: dict[str, set[str]] = {}
    for exchange in exchanges:
        labels.setdefault(_kind(exchange), set()).add(LABEL.get(exchange, exchange))
    t, cal = _ist(now), _get()
    found = []
    for kind in sorted(labels, key=lambda k: _ORDER.get(k, len(_ORDER))):
        label = "/".join(sorted(labels[kind], key=lambda e: (_LABEL_ORDER.get(e, len(_LABEL_ORDER)), e)))
        found.append(_state(kind, label, t, cal))
    return found


def trading_day(d: date) -> bool:
    """Whether NSE and BSE trade on ``d`` (not a weekend, not a holiday the calendar knows)."""
    return _get().kind_of(d) == "trading"


def is_open(exchange: str, now: datetime | None = None) -> bool:
    """Whether ``exchange`` is in its trading session (pre-open is not trading)."""
    return state(exchange, now).state == OPEN


def previous_close(exchange: str, now: datetime | None = None) -> datetime | None:
    """When the last session of ``exchange`` that closed before ``now`` closed (None: it never closes)."""
    kind = _kind(exchange)
    if kind in (CRYPTO, GLOBAL):
        return None
    t, cal = _ist(now), _get()
    d = t.date()
    hours = _hours(kind, d, cal)
    if hours is not None and t.hour * _H + t.minute * _M + t.second >= hours[2]:
        return _at(d, hours[2])
    for _ in range(366):
        d -= timedelta(days=1)
        hours = _hours(kind, d, cal)
        if hours is not None:
            return _at(d, hours[2])
    return None  # pragma: no cover


def session_day(ms: float) -> date:
    """The IST date of a tick time (milliseconds since the epoch)."""
    return date.fromordinal(_EPOCH + int((ms / 1000 + _IST_OFFSET) // 86400))


def same_day(ms: float, now: datetime | None = None) -> bool:
    """Whether the tick time ``ms`` falls on today's IST date (at ``now``)."""
    return session_day(ms) == _ist(now).date()


def session_hours(exchange: str, d: date) -> tuple[datetime, datetime] | None:
    """The regular session of ``exchange`` on ``d`` as (open, close) in IST, or None on a day it
    does not trade (a weekend, a holiday; around-the-clock markets: midnight to midnight)."""
    kind = _kind(exchange)
    if kind in (CRYPTO, GLOBAL):
        start = _at(d, 0)
        return start, start + timedelta(days=1)
    hours = _hours(kind, d, _get())
    if hours is None:
        return None
    return _at(d, hours[1]), _at(d, hours[2])
