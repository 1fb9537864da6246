"""The simulator's instrument dump: a small Kite-shaped ``GET /instruments`` CSV, never stale.

Kite's real dump has about 100,000 rows; this one has a few hundred, chosen to cover every
segment and naming rule the adapter must handle:

- NSE and BSE equities with their real instrument tokens (``exchange_token << 8 | segment``:
  RELIANCE on NSE is 2885 << 8 | 1 = 738561, on BSE 500325 << 8 | 4 = 128083204);
- the indices (segment ``INDICES``, exchange NSE or BSE, segment byte 9) with their real
  tokens and Kite's tradingsymbols (``NIFTY 50``, ``NIFTY BANK``, ``SENSEX``, ...);
- NFO index and stock futures (``NIFTY26DECFUT``) and options around the money, weekly
  (``NIFTY26D0824000CE``: year, month as 1-9/O/N/D, day) and monthly
  (``NIFTY26DEC24000CE``), BFO SENSEX futures and options;
- CDS (segment byte 3, tick 0.0025) USDINR futures and options, BCD (byte 6) USDINR
  futures, MCX (byte 7) and NCO (byte 12) commodity futures.

Expiries are computed from the date given (today by default), so the dump never goes
stale; the same date always gives the same bytes. The expiry rules are simplified and
ignore exchange holidays: NIFTY weeklies on Tuesdays, monthlies (NFO) on the month's last
Tuesday, SENSEX on Thursdays (weekly) and the last Thursday (monthly), currency on the
business day two before the month's last weekday, MCX crude on the 19th (or the weekday
before). Derivative exchange tokens are derived from the tradingsymbol (stable from day to
day for the same contract); they are realistic in shape, not the exchange's numbers.
"""

from __future__ import annotations

import calendar
import csv
import io
import zlib
from dataclasses import dataclass
from datetime import date, timedelta

#: The dump's columns, in Kite's order.
COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)

#: The ticker's segment byte (the low byte of an instrument token), as kiteconnect's ``EXCHANGE_MAP``.
SEGMENT_BYTES = {
    "NSE": 1,
    "NFO": 2,
    "CDS": 3,
    "BSE": 4,
    "BFO": 5,
    "BCD": 6,
    "MCX": 7,
    "MCXSX": 8,
    "INDICES": 9,
    "NCO": 12,
}

#: Kite's weekly-expiry month letters: 1-9 for January to September, then O, N, D.
WEEKLY_MONTH = "123456789OND"

TUESDAY, THURSDAY = 1, 3


@dataclass(frozen=True)
class Row:
    exchange_token: int
    tradingsymbol: str
    name: str
    last_price: float
    expiry: date | None
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str
    segment: str
    exchange: str
    segment_byte: int

    @property
    def instrument_token(self) -> int:
        return self.exchange_token << 8 | self.segment_byte

    def cells(self) -> list[str]:
        return [
            str(self.instrument_token),
            str(self.exchange_token),
            self.tradingsymbol,
            self.name,
            _num(self.last_price),
            self.expiry.isoformat() if self.expiry else "",
            _num(self.strike),
            _num(self.tick_size),
            str(self.lot_size),
            self.instrument_type,
            self.segment,
            self.exchange,
        ]


def _num(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


# name -> (NSE token, BSE scrip code, company name, price, F&O lot or 0)
EQUITIES = {
    "RELIANCE": (2885, 500325, "RELIANCE INDUSTRIES", 2950.0, 500),
    "INFY": (1594, 500209, "INFOSYS", 1890.0, 400),
    "TCS": (11536, 532540, "TATA CONSULTANCY SERV LT", 4150.0, 175),
    "HDFCBANK": (1333, 500180, "HDFC BANK", 1720.0, 550),
    "SBIN": (3045, 500112, "STATE BANK OF INDIA", 812.0, 750),
    "ICICIBANK": (4963, 532174, "ICICI BANK.", 1290.0, 700),
    "ITC": (1660, 500875, "ITC", 455.0, 1600),
    "TATAMOTORS": (3456, 500570, "TATA MOTORS", 780.0, 550),
}

# (tradingsymbol, exchange, exchange token, price)
INDICES = (
    ("NIFTY 50", "NSE", 1001, 24050.0),
    ("NIFTY BANK", "NSE", 1016, 52300.0),
    ("NIFTY FIN SERVICE", "NSE", 1007, 23600.0),
    ("NIFTY MID SELECT", "NSE", 1125, 12650.0),
    ("INDIA VIX", "NSE", 1035, 13.25),
    ("NIFTY NEXT 50", "NSE", 1058, 70400.0),
    ("NIFTY IT", "NSE", 1015, 41800.0),
    ("SENSEX", "BSE", 1, 80200.0),
    ("BANKEX", "BSE", 1072, 59300.0),
)

# derivative name -> (underlying price, strike step, lot size, tick of the future)
INDEX_DERIVATIVES = {
    "NIFTY": (24050.0, 50, 75, 0.1),
    "BANKNIFTY": (52300.0, 100, 35, 0.2),
    "FINNIFTY": (23600.0, 50, 65, 0.1),
    "SENSEX": (80200.0, 100, 20, 0.05),
}

STRIKES_EACH_SIDE = 5


def last_weekday(year: int, month: int, weekday: int) -> date:
    day = date(year, month, calendar.monthrange(year, month)[1])
    return day - timedelta(days=(day.weekday() - weekday) % 7)


def _months(today: date, count: int) -> list[tuple[int, int]]:
    out, year, month = [], today.year, today.month
    while len(out) < count:
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def monthly_expiries(today: date, weekday: int, count: int) -> list[date]:
    """The next ``count`` month-end expiries on the last ``weekday`` of the month, from ``today`` on."""
    days = [last_weekday(y, m, weekday) for y, m in _months(today, count + 1)]
    return [d for d in days if d >= today][:count]


def weekly_expiries(today: date, weekday: int, count: int) -> list[date]:
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    return [first + timedelta(weeks=i) for i in range(count)]


def _business_day_back(day: date, count: int) -> date:
    """``count`` weekdays before ``day`` (holidays ignored)."""
    while count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def currency_expiries(today: date, count: int) -> list[date]:
    """Two business days before the month's last business day (holidays ignored)."""
    out = []
    for y, m in _months(today, count + 1):
        last = date(y, m, calendar.monthrange(y, m)[1])
        while last.weekday() >= 5:
            last -= timedelta(days=1)
        expiry = _business_day_back(last, 2)
        if expiry >= today:
            out.append(expiry)
    return out[:count]


def mcx_expiries(today: date, count: int) -> list[date]:
    out = []
    for y, m in _months(today, count + 1):
        day = date(y, m, 19)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        if day >= today:
            out.append(day)
    return out[:count]


def monthly_symbol(name: str, expiry: date, tail: str) -> str:
    """NIFTY26DECFUT, NIFTY26DEC24000CE: Kite's monthly format."""
    return f"{name}{expiry:%y}{calendar.month_abbr[expiry.month].upper()}{tail}"


def weekly_symbol(name: str, expiry: date, tail: str) -> str:
    """NIFTY26D0824000CE: year, a month letter, the day, then the strike and type."""
    return f"{name}{expiry:%y}{WEEKLY_MONTH[expiry.month - 1]}{expiry.day:02d}{tail}"


def _strike_text(strike: float) -> str:
    return _num(strike)


class _Tokens:
    """Exchange tokens for derivatives: from the tradingsymbol, unique within a segment byte."""

    def __init__(self) -> None:
        self.used: set[tuple[int, int]] = set()

    def __call__(self, symbol: str, segment_byte: int, low: int = 35000, span: int = 900_000) -> int:
        token = low + zlib.crc32(symbol.encode()) % span
        while (segment_byte, token) in self.used:
            token += 1
        self.used.add((segment_byte, token))
        return token


def _option_price(spot: float, strike: float, kind: str, days: int, tick: float) -> float:
    intrinsic = max(0.0, spot - strike) if kind == "CE" else max(0.0, strike - spot)
    time_value = spot * 0.004 * (max(days, 1) / 7) ** 0.5
    price = intrinsic + time_value * (0.5 ** (abs(spot - strike) / (spot * 0.01)))
    return round(max(tick, round(price / tick) * tick), 4)


def rows(today: date | None = None) -> list[Row]:
    """The dump's rows for ``today`` (default: the local date)."""
    today = today or date.today()
    tokens = _Tokens()
    out: list[Row] = []
    for symbol, (nse, bse, company, price, _lot) in EQUITIES.items():
        out.append(Row(nse, symbol, company, price, None, 0, 0.05, 1, "EQ", "NSE", "NSE", SEGMENT_BYTES["NSE"]))
        out.append(Row(bse, symbol, company, price, None, 0, 0.05, 1, "EQ", "BSE", "BSE", SEGMENT_BYTES["BSE"]))
    for symbol, exchange, token, price in INDICES:
        out.append(Row(token, symbol, symbol, price, None, 0, 0.0, 0, "EQ", "INDICES", exchange, 9))

    def derivative(
        exchange: str,
        name: str,
        symbol: str,
        price: float,
        expiry: date,
        strike: float,
        tick: float,
        lot: int,
        kind: str,
    ) -> None:
        seg = SEGMENT_BYTES[exchange]
        segment = f"{exchange}-{'FUT' if kind == 'FUT' else 'OPT'}"
        token = tokens(symbol, seg)
        out.append(Row(token, symbol, name, price, expiry, strike, tick, lot, kind, segment, exchange, seg))

    def options(exchange: str, name: str, spot: float, step: float, lot: int, expiry: date, weekly: bool) -> None:
        atm = round(spot / step) * step
        for i in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1):
            strike = atm + i * step
            for kind in ("CE", "PE"):
                tail = f"{_strike_text(strike)}{kind}"
                symbol = weekly_symbol(name, expiry, tail) if weekly else monthly_symbol(name, expiry, tail)
                price = _option_price(spot, strike, kind, (expiry - today).days, 0.05)
                derivative(exchange, name, symbol, price, expiry, strike, 0.05, lot, kind)

    # NFO / BFO index derivatives
    for name, (spot, step, lot, fut_tick) in INDEX_DERIVATIVES.items():
        exchange, weekday = ("BFO", THURSDAY) if name == "SENSEX" else ("NFO", TUESDAY)
        months = monthly_expiries(today, weekday, 3)
        for expiry in months:
            derivative(exchange, name, monthly_symbol(name, expiry, "FUT"), spot, expiry, 0, fut_tick, lot, "FUT")
        for expiry in months[:2]:
            options(exchange, name, spot, step, lot, expiry, weekly=False)
        if name in ("NIFTY", "SENSEX"):  # the indices that still have weekly expiries
            for expiry in weekly_expiries(today, weekday, 3):
                if expiry not in months:
                    options(exchange, name, spot, step, lot, expiry, weekly=True)
    # NFO stock derivatives
    for name in ("RELIANCE", "INFY", "SBIN"):
        _nse, _bse, _company, spot, lot = EQUITIES[name]
        months = monthly_expiries(today, TUESDAY, 3)
        for expiry in months:
            derivative("NFO", name, monthly_symbol(name, expiry, "FUT"), spot, expiry, 0, 0.1, lot, "FUT")
        step = 20 if spot > 1000 else 10
        atm = round(spot / step) * step
        for strike in (atm - step, atm, atm + step):
            for kind in ("CE", "PE"):
                symbol = monthly_symbol(name, months[0], f"{_strike_text(strike)}{kind}")
                price = _option_price(spot, strike, kind, (months[0] - today).days, 0.05)
                derivative("NFO", name, symbol, price, months[0], strike, 0.05, lot, kind)
    # currency: CDS (NSE) and BCD (BSE)
    for expiry in currency_expiries(today, 3):
        symbol = monthly_symbol("USDINR", expiry, "FUT")
        derivative("CDS", "USDINR", symbol, 84.4525, expiry, 0, 0.0025, 1, "FUT")
        derivative("BCD", "USDINR", symbol, 84.4550, expiry, 0, 0.0025, 1, "FUT")
    first = currency_expiries(today, 1)[0]
    for strike in (84.0, 84.25, 84.5, 84.75, 85.0):
        for kind in ("CE", "PE"):
            symbol = monthly_symbol("USDINR", first, f"{_strike_text(strike)}{kind}")
            price = _option_price(84.4525, strike, kind, (first - today).days, 0.0025)
            derivative("CDS", "USDINR", symbol, price, first, strike, 0.0025, 1, kind)
    # commodities: MCX and NCO
    for expiry in mcx_expiries(today, 3):
        derivative("MCX", "CRUDEOIL", monthly_symbol("CRUDEOIL", expiry, "FUT"), 5920.0, expiry, 0, 1.0, 100, "FUT")
        derivative("MCX", "NATURALGAS", monthly_symbol("NATURALGAS", expiry, "FUT"), 285.4, expiry, 0, 0.1, 1250, "FUT")
        derivative("NCO", "CRUDEOIL", monthly_symbol("CRUDEOIL", expiry, "FUT"), 5921.0, expiry, 0, 1.0, 100, "FUT")
    for expiry in monthly_expiries(today, 4, 2):  # gold: the last Friday, a simplification
        derivative("MCX", "GOLDM", monthly_symbol("GOLDM", expiry, "FUT"), 76450.0, expiry, 0, 1.0, 10, "FUT")
    return out


def build_dump(today: date | None = None) -> bytes:
    """The CSV (header and rows, ``\\n`` line ends) Kite's ``GET /instruments`` would answer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows(today):
        writer.writerow(row.cells())
    return buffer.getvalue().encode()
