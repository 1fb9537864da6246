"""The simulated market's options: which contracts it lists, and what they are worth.

The listings follow the exchanges' calendar as it stands since 1 September 2025:

- NSE's index options (NIFTY, BANKNIFTY, FINNIFTY, MIDCPNIFTY, on NFO) expire on a
  Tuesday, BSE's (SENSEX, on BFO) on a Thursday;
- weekly expiries only for one index of each exchange, NIFTY and SENSEX (SEBI, November
  2024); monthly ones (the last Tuesday, or Thursday, of the month) for all five indices and
  for a few stocks (RELIANCE, TCS, INFY, HDFCBANK: the last Tuesday);
- an expiry that falls on a holiday (``oaws.sessions``) moves to the trading day before it
  (2026: 31 March to 30 March, 24 November to 23 November, SENSEX's 26 March to 25 March).

Listed on a day: the next ``WEEKLIES`` weekly expiries and ``MONTHLIES`` monthly ones, each
with ``STRIKES_EACH_SIDE`` strikes either side of the underlying's reference price (its
previous close in ``universe``), a call and a put each, in OpenAlgo's spelling
(``NIFTY08DEC2626000CE``). Lot sizes are those of January 2026.

The price of a contract is Black-Scholes-Merton's (vollib) on the live underlying, at the
rate ``universe.RATE``, no dividend, and a volatility smile: ``smile``. An implied
volatility solved from that price (``oaws.chain``) is the smile's volatility again.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from oaws import sessions
from oaws.config import IST
from oaws.instruments import Instrument
from oaws.names import MONTHS, contract
from oaws.options import CALL, PUT, OptionContract

#: weekly expiries listed (NIFTY, SENSEX), and monthly ones (every underlying)
WEEKLIES = 4
MONTHLIES = 3
#: strikes each side of the reference price
STRIKES_EACH_SIDE = 40
#: the hour (IST) an expiry's contracts stop trading, as ``oaws.chain`` counts it
EXPIRY_CLOSE = (15, 30)
TUESDAY, THURSDAY = 1, 3
_YEAR_SECONDS = 365 * 86400


@dataclass(frozen=True, slots=True)
class Underlying:
    #: the derivative exchange its options trade on
    exchange: str
    lot_size: int
    strike_step: float
    weekly: bool
    #: the smile: base volatility (a year), its slope in log-moneyness, its curvature
    vol: float
    skew: float
    curvature: float

    @property
    def weekday(self) -> int:
        return THURSDAY if self.exchange == "BFO" else TUESDAY


#: what has options, and how (lot sizes of January 2026)
UNDERLYINGS: dict[str, Underlying] = {
    "NIFTY": Underlying("NFO", 65, 50, True, 0.12, -0.8, 3.0),
    "BANKNIFTY": Underlying("NFO", 30, 100, False, 0.14, -0.8, 3.0),
    "FINNIFTY": Underlying("NFO", 60, 50, False, 0.13, -0.8, 3.0),
    "MIDCPNIFTY": Underlying("NFO", 120, 25, False, 0.17, -0.7, 2.5),
    "SENSEX": Underlying("BFO", 20, 100, True, 0.12, -0.8, 3.0),
    "RELIANCE": Underlying("NFO", 500, 10, False, 0.24, -0.4, 1.5),
    "TCS": Underlying("NFO", 175, 20, False, 0.22, -0.4, 1.5),
    "INFY": Underlying("NFO", 400, 20, False, 0.25, -0.4, 1.5),
    "HDFCBANK": Underlying("NFO", 550, 10, False, 0.20, -0.4, 1.5),
}

#: the smile's bounds, whatever the moneyness
MIN_VOL, MAX_VOL = 0.05, 1.5


def _shift(day: date) -> date:
    """An expiry on a holiday moves to the trading day before it."""
    while not sessions.trading_day(day):
        day -= timedelta(days=1)
    return day


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


@lru_cache(maxsize=256)
def _expiries(underlying: str, on: date) -> tuple[date, ...]:
    spec = UNDERLYINGS.get(underlying)
    if spec is None:
        return ()
    found: set[date] = set()
    year, month = on.year, on.month
    monthlies = 0
    while monthlies < MONTHLIES:
        expiry = _shift(_last_weekday(year, month, spec.weekday))
        if expiry >= on:
            found.add(expiry)
            monthlies += 1
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if spec.weekly:
        day = on + timedelta(days=(spec.weekday - on.weekday()) % 7)
        weeklies = 0
        while weeklies < WEEKLIES:
            expiry = _shift(day)
            if expiry >= on:
                found.add(expiry)
                weeklies += 1
            day += timedelta(days=7)
    return tuple(sorted(found))


def expiries(underlying: str, on: date) -> list[date]:
    """The expiries of ``underlying``'s options listed on ``on`` (its own expiry day
    included), nearest first; [] for an underlying without options."""
    return list(_expiries(underlying.upper(), on))


#: the index underlyings (the rest are stocks on NSE), by the exchange of their index
INDEX_UNDERLYINGS: dict[str, str] = {
    "NIFTY": "NSE_INDEX",
    "BANKNIFTY": "NSE_INDEX",
    "FINNIFTY": "NSE_INDEX",
    "MIDCPNIFTY": "NSE_INDEX",
    "SENSEX": "BSE_INDEX",
}

#: an instrument's previous close in the simulated market: ``universe.reference``, handed
#: over by ``universe`` as it loads (it prices options by this module, so this module does
#: not import it back; the package's ``__init__`` loads ``universe`` before any of its modules)
previous_close: Callable[[Instrument], float | None] | None = None


def underlying_of(underlying: str) -> Instrument:
    """The instrument an option's price follows: the index (``NIFTY:NSE_INDEX``,
    ``SENSEX:BSE_INDEX``) or the stock on NSE."""
    return Instrument(underlying, INDEX_UNDERLYINGS.get(underlying, "NSE"))


def reference_spot(underlying: str) -> float | None:
    """The underlying's previous close, which the strikes are centred on."""
    if underlying not in UNDERLYINGS:
        return None
    assert previous_close is not None, "oaws.brokers.sim.universe hands its reference over when it loads"
    return previous_close(underlying_of(underlying))


@lru_cache(maxsize=64)
def _strikes(underlying: str, around: float | None = None) -> tuple[float, ...]:
    spec = UNDERLYINGS.get(underlying)
    spot = reference_spot(underlying) if around is None else around
    if spec is None or spot is None:
        return ()
    step = spec.strike_step
    centre = round(spot / step) * step
    return tuple(centre + i * step for i in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1) if centre + i * step > 0)


def strikes(underlying: str) -> list[float]:
    """The strikes listed for every expiry of ``underlying``, lowest first."""
    return list(_strikes(underlying.upper()))


def strike_text(strike: float) -> str:
    """A strike as OpenAlgo's symbol writes it: ``26000``, ``1482.5``."""
    return str(int(strike)) if float(strike).is_integer() else f"{strike:g}"


def symbol(underlying: str, expiry: date, strike: float, right: str) -> str:
    """OpenAlgo's symbol of an option: ``NIFTY08DEC2626000CE``."""
    return f"{underlying}{expiry.day:02d}{MONTHS[expiry.month - 1]}{expiry.year % 100:02d}{strike_text(strike)}{right}"


def option_contracts(underlying: str, on: date, around: float | None = None) -> list[OptionContract]:
    """Every option on ``underlying`` listed on ``on``, by expiry, strike and right; [] for
    an underlying without options. ``around``: centre the strikes on this price, not the
    sim's reference (another simulator's market, angel-sim's)."""
    name = underlying.upper()
    spec = UNDERLYINGS.get(name)
    if spec is None:
        return []
    return [
        OptionContract(name, expiry, strike, right, symbol(name, expiry, strike, right), spec.exchange, spec.lot_size)
        for expiry in _expiries(name, on)
        for strike in _strikes(name, around)
        for right in (CALL, PUT)
    ]


def is_listed(symbol_text: str, exchange: str, on: date) -> bool:
    """Whether the option ``symbol_text`` on ``exchange`` is listed on ``on``."""
    parts = contract(symbol_text)
    if parts is None or parts.kind not in (CALL, PUT):
        return False
    spec = UNDERLYINGS.get(parts.base)
    if spec is None or spec.exchange != exchange:
        return False
    return parts.expiry in _expiries(parts.base, on) and float(parts.strike) in _strikes(parts.base)


def has_options(underlying: str) -> bool:
    return underlying.upper() in UNDERLYINGS


# Prices -----------------------------------------------------------------------------------


def smile(underlying: str, spot: float, strike: float) -> float:
    """The volatility (a year) an option of ``strike`` is priced at while the underlying is at
    ``spot``: base + skew·m + curvature·m², m = ln(K/S), within [MIN_VOL, MAX_VOL]."""
    spec = UNDERLYINGS.get(underlying.upper())
    base, skew, curvature = (spec.vol, spec.skew, spec.curvature) if spec is not None else (0.28, -0.4, 1.5)
    m = math.log(strike / spot)
    return min(MAX_VOL, max(MIN_VOL, base + skew * m + curvature * m * m))


def expiry_close(expiry: date) -> float:
    """When ``expiry``'s contracts stop trading (15:30 IST), as a Unix time."""
    return datetime(expiry.year, expiry.month, expiry.day, *EXPIRY_CLOSE, tzinfo=IST).timestamp()


def years_to(expiry: date, now: float) -> float:
    """Years (of 365 days) from the Unix time ``now`` to ``expiry``'s close; 0 once past it."""
    return max(expiry_close(expiry) - now, 0.0) / _YEAR_SECONDS


def fair(right: str, spot: float, strike: float, years: float, volatility: float, rate: float) -> float:
    """Black-Scholes-Merton's price (vollib) without dividend; at expiry, the intrinsic value."""
    if years <= 0:
        return max(0.0, spot - strike) if right == CALL else max(0.0, strike - spot)
    from vollib.black_scholes_merton import black_scholes_merton

    return float(black_scholes_merton("c" if right == CALL else "p", spot, strike, years, rate, volatility, 0.0))


def price(underlying: str, right: str, spot: float, strike: float, expiry: date, now: float, rate: float) -> float:
    """The simulated market's price of an option (before rounding to the tick): ``fair`` on the smile."""
    return fair(right, spot, strike, years_to(expiry, now), smile(underlying, spot, strike), rate)
