"""The simulator's built-in scrip master: a small, realistic slice of Dhan's compact CSV.

Dhan publishes its instruments as one CSV (``api-scrip-master.csv``, the "compact" format)
with these columns, in this order (``HEADER``)::

    SEM_EXM_EXCH_ID, SEM_SEGMENT, SEM_SMST_SECURITY_ID, SEM_INSTRUMENT_NAME, SEM_EXPIRY_CODE,
    SEM_TRADING_SYMBOL, SEM_LOT_UNITS, SEM_CUSTOM_SYMBOL, SEM_EXPIRY_DATE, SEM_STRIKE_PRICE,
    SEM_OPTION_TYPE, SEM_TICK_SIZE, SEM_EXPIRY_FLAG, SEM_EXCH_INSTRUMENT_TYPE, SEM_SERIES, SM_SYMBOL_NAME

``master_csv(today)`` writes equities and indices with their real Dhan security ids (NSE's
and BSE's own tokens), and derivatives whose expiries are computed from ``today`` so that
they never go stale: NIFTY weekly and monthly options and futures, BANKNIFTY monthly, RELIANCE
futures, SENSEX weekly options on BSE, CRUDEOIL futures on MCX and USDINR futures on NSE's
currency segment. Derivative security ids are made up (numbered in a fixed order), so the
file is the same for the same date. Exchange holidays are ignored.

Field formats follow public copies of the file (unverified against today's live file): the
tick size in paise (``5.0000`` is 0.05 rupee; ``0.2500`` is 0.0025 for currency), the
strike ``-0.01000`` where there is none, expiries as ``YYYY-MM-DD HH:MM:SS``, option symbols
like ``NIFTY-Dec2024-24500-CE`` with a custom symbol ``NIFTY 26 DEC 24500 CALL``.

``scrips_from_csv`` reads any compact CSV back into ``Scrip`` records (what the simulator
ticks), mapping (exchange, segment letter) to Dhan's exchange segments.
"""

from __future__ import annotations

import calendar
import csv
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

HEADER = (
    "SEM_EXM_EXCH_ID",
    "SEM_SEGMENT",
    "SEM_SMST_SECURITY_ID",
    "SEM_INSTRUMENT_NAME",
    "SEM_EXPIRY_CODE",
    "SEM_TRADING_SYMBOL",
    "SEM_LOT_UNITS",
    "SEM_CUSTOM_SYMBOL",
    "SEM_EXPIRY_DATE",
    "SEM_STRIKE_PRICE",
    "SEM_OPTION_TYPE",
    "SEM_TICK_SIZE",
    "SEM_EXPIRY_FLAG",
    "SEM_EXCH_INSTRUMENT_TYPE",
    "SEM_SERIES",
    "SM_SYMBOL_NAME",
)

#: (SEM_EXM_EXCH_ID, SEM_SEGMENT) -> Dhan's exchange segment, as the feed and the REST API name it
SEGMENTS = {
    ("NSE", "I"): "IDX_I",
    ("BSE", "I"): "IDX_I",
    ("NSE", "E"): "NSE_EQ",
    ("BSE", "E"): "BSE_EQ",
    ("NSE", "D"): "NSE_FNO",
    ("BSE", "D"): "BSE_FNO",
    ("NSE", "C"): "NSE_CURRENCY",
    ("BSE", "C"): "BSE_CURRENCY",
    ("MCX", "M"): "MCX_COMM",
}
#: Dhan's exchange segment -> the byte of the feed's header (dhanhq's MarketFeed constants)
SEGMENT_CODES = {
    "IDX_I": 0,
    "NSE_EQ": 1,
    "NSE_FNO": 2,
    "NSE_CURRENCY": 3,
    "BSE_EQ": 4,
    "MCX_COMM": 5,
    "BSE_CURRENCY": 7,
    "BSE_FNO": 8,
}
DERIVATIVE_SEGMENTS = frozenset({"NSE_FNO", "NSE_CURRENCY", "MCX_COMM", "BSE_CURRENCY", "BSE_FNO"})

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NO_STRIKE = "-0.01000"
FIRST_DERIVATIVE_ID = 40001

#: Equities: (symbol, NSE security id, BSE security id or None, company, rough price in rupees)
EQUITIES = (
    ("RELIANCE", 2885, 500325, "RELIANCE INDUSTRIES LTD", 2950.0),
    ("INFY", 1594, 500209, "INFOSYS LIMITED", 1890.0),
    ("TCS", 11536, 532540, "TATA CONSULTANCY SERV LT", 4150.0),
    ("HDFCBANK", 1333, 500180, "HDFC BANK LTD", 1720.0),
    ("SBIN", 3045, 500112, "STATE BANK OF INDIA", 812.0),
    ("ICICIBANK", 4963, 532174, "ICICI BANK LTD.", 1290.0),
    ("ITC", 1660, None, "ITC LTD", 470.0),
    ("LT", 11483, None, "LARSEN & TOUBRO LTD.", 3600.0),
    ("AXISBANK", 5900, None, "AXIS BANK LIMITED", 1150.0),
    ("BHARTIARTL", 10604, None, "BHARTI AIRTEL LIMITED", 1580.0),
)
#: Indices: (exchange, security id, trading symbol, custom symbol, rough level)
INDICES = (
    ("NSE", 13, "NIFTY", "Nifty 50", 24350.0),
    ("NSE", 25, "BANKNIFTY", "Nifty Bank", 52300.0),
    ("NSE", 27, "FINNIFTY", "Nifty Fin Service", 23400.0),
    ("NSE", 442, "MIDCPNIFTY", "NIFTY MID SELECT", 12200.0),
    ("NSE", 21, "INDIA VIX", "India VIX", 14.5),
    ("BSE", 51, "SENSEX", "SENSEX", 80200.0),
    ("BSE", 69, "BANKEX", "BANKEX", 59000.0),
)
LEVELS = {symbol: level for _, _, symbol, _, level in INDICES}


@dataclass(frozen=True)
class Scrip:
    """One instrument as the simulator needs it: where it is, what it is called, a price to start from."""

    segment: str
    security_id: str
    symbol: str
    exchange: str
    #: rupees
    price: float
    #: rupees
    tick: float
    lot: int = 1
    instrument: str = "EQUITY"
    name: str = ""

    @property
    def derivative(self) -> bool:
        return self.segment in DERIVATIVE_SEGMENTS

    @property
    def segment_code(self) -> int:
        return SEGMENT_CODES[self.segment]


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _next_month(d: date) -> tuple[int, int]:
    return (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)


def _monthly(today: date, weekday: int, count: int = 2) -> list[date]:
    """The next ``count`` monthly expiries on the last ``weekday`` of a month, from ``today`` on."""
    out: list[date] = []
    year, month = today.year, today.month
    while len(out) < count:
        expiry = _last_weekday(year, month, weekday)
        if expiry >= today:
            out.append(expiry)
        year, month = _next_month(date(year, month, 1))
    return out


def _weekly(today: date, weekday: int, count: int = 2) -> list[date]:
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    return [first + timedelta(weeks=i) for i in range(count)]


def _mcx_expiries(today: date, count: int = 2) -> list[date]:
    """CRUDEOIL: about the 19th of each month (a weekday on or before it)."""
    out: list[date] = []
    year, month = today.year, today.month
    while len(out) < count:
        expiry = date(year, month, 19)
        while expiry.weekday() >= 5:
            expiry -= timedelta(days=1)
        if expiry >= today:
            out.append(expiry)
        year, month = _next_month(date(year, month, 1))
    return out


def _currency_expiries(today: date, count: int = 2) -> list[date]:
    """USDINR: two weekdays before the month's last weekday."""
    out: list[date] = []
    year, month = today.year, today.month
    while len(out) < count:
        expiry = date(year, month, calendar.monthrange(year, month)[1])
        skipped = 0
        while expiry.weekday() >= 5 or skipped < 2:
            if expiry.weekday() < 5:
                skipped += 1
            expiry -= timedelta(days=1)
        while expiry.weekday() >= 5:
            expiry -= timedelta(days=1)
        if expiry >= today:
            out.append(expiry)
        year, month = _next_month(date(year, month, 1))
    return out


def _paise(tick: float) -> str:
    return f"{tick * 100:.4f}"


def _mon(d: date) -> str:
    return f"{_MONTHS[d.month - 1]}{d.year}"


def option_price(spot: float, strike: float, call: bool, days: int, tick: float = 0.05) -> float:
    """A plausible premium (intrinsic value plus a little time value) on the tick grid."""
    intrinsic = max(0.0, spot - strike) if call else max(0.0, strike - spot)
    time_value = spot * 0.012 * math.sqrt(max(days, 1) / 30) * math.exp(-abs(strike - spot) / (0.03 * spot))
    return max(tick, round((intrinsic + time_value) / tick) * tick)


def _rows(today: date) -> Iterator[tuple[str, ...]]:
    for symbol, nse_id, bse_id, company, _ in EQUITIES:
        yield ("NSE", "E", str(nse_id), "EQUITY", "0", symbol, "1.0", company.title(), "", _NO_STRIKE, "XX")
        yield (_paise(0.05), "NA", "ES", "EQ", company)
        if bse_id is not None:
            yield ("BSE", "E", str(bse_id), "EQUITY", "0", symbol, "1.0", company.title(), "", _NO_STRIKE, "XX")
            yield (_paise(0.05), "NA", "ES", "A", company)
    for exchange, sid, symbol, custom, _ in INDICES:
        yield (exchange, "I", str(sid), "INDEX", "0", symbol, "1.0", custom, "", _NO_STRIKE, "XX")
        yield (_paise(0.05), "NA", "INDEX", "NA", symbol)


def _derivatives(today: date) -> Iterator[tuple[str, ...]]:
    """The derivative rows without their security id (the caller numbers them)."""

    def future(exch: str, seg: str, kind: str, under: str, expiry: date, at: str, lot: int, tick: float):
        return (
            exch,
            seg,
            kind,
            "0",
            f"{under}-{_mon(expiry)}-FUT",
            f"{lot}.0",
            f"{under} {_MONTHS[expiry.month - 1].upper()} FUT",
            f"{expiry.isoformat()} {at}",
            _NO_STRIKE,
            "XX",
            _paise(tick),
            "M",
            "FUT",
            "NA",
            under,
        )

    def options(exch: str, under: str, expiry: date, flag: str, lot: int, step: int, each_side: int):
        spot = LEVELS[under]
        atm = round(spot / step) * step
        month = _MONTHS[expiry.month - 1].upper()
        when = f"{expiry.day:02d} {month}" if flag == "W" else month
        for k in range(atm - each_side * step, atm + (each_side + 1) * step, step):
            for kind, word in (("CE", "CALL"), ("PE", "PUT")):
                yield (
                    exch,
                    "D",
                    "OPTIDX",
                    "0",
                    f"{under}-{_mon(expiry)}-{k}-{kind}",
                    f"{lot}.0",
                    f"{under} {when} {k} {word}",
                    f"{expiry.isoformat()} 14:30:00",
                    f"{k:.5f}",
                    kind,
                    _paise(0.05),
                    flag,
                    "OP",
                    "NA",
                    under,
                )

    nifty_weekly = _weekly(today, calendar.TUESDAY, 1)
    nifty_monthly = _monthly(today, calendar.TUESDAY)
    for expiry in nifty_monthly:
        yield future("NSE", "D", "FUTIDX", "NIFTY", expiry, "14:30:00", 75, 0.10)
        yield future("NSE", "D", "FUTIDX", "BANKNIFTY", expiry, "14:30:00", 35, 0.20)
        yield future("NSE", "D", "FUTSTK", "RELIANCE", expiry, "14:30:00", 500, 0.10)
    weekly = nifty_weekly[0]
    yield from options("NSE", "NIFTY", weekly, "M" if weekly == nifty_monthly[0] else "W", 75, 50, 5)
    if nifty_monthly[0] != weekly:
        yield from options("NSE", "NIFTY", nifty_monthly[0], "M", 75, 50, 5)
    yield from options("NSE", "BANKNIFTY", nifty_monthly[0], "M", 35, 100, 5)
    sensex_weekly = _weekly(today, calendar.THURSDAY, 1)[0]
    yield from options("BSE", "SENSEX", sensex_weekly, "W", 20, 100, 5)
    yield future("BSE", "D", "FUTIDX", "SENSEX", _monthly(today, calendar.THURSDAY, 1)[0], "14:30:00", 20, 0.05)
    for expiry in _mcx_expiries(today):
        yield future("MCX", "M", "FUTCOM", "CRUDEOIL", expiry, "23:30:00", 100, 1.0)
    for expiry in _currency_expiries(today):
        yield future("NSE", "C", "FUTCUR", "USDINR", expiry, "12:00:00", 1, 0.0025)


def master_rows(today: date | None = None) -> list[tuple[str, ...]]:
    """Every row of the built-in master (without the header) for ``today`` (default: today)."""
    today = today or date.today()
    plain = list(_rows(today))
    rows = [plain[i] + plain[i + 1] for i in range(0, len(plain), 2)]
    for n, row in enumerate(_derivatives(today)):
        rows.append((*row[:2], str(FIRST_DERIVATIVE_ID + n), *row[2:]))
    return rows


def master_csv(today: date | None = None) -> bytes:
    """The built-in master as Dhan's compact CSV (CRLF line ends, as ``csv`` writes them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(master_rows(today))
    return out.getvalue().encode()


def _base_price(row: dict[str, str], today: date) -> float:
    symbol, under = row["SEM_TRADING_SYMBOL"], row.get("SM_SYMBOL_NAME", "")
    for name, _, _, _, price in EQUITIES:
        if symbol == name:
            return price
    for _, _, name, _, level in INDICES:
        if symbol == name:
            return level
    spot = LEVELS.get(under) or {"RELIANCE": 2950.0, "CRUDEOIL": 5920.0, "USDINR": 84.45}.get(under)
    if spot is None:
        return float(100 + int(row["SEM_SMST_SECURITY_ID"]) % 2900)
    kind = row.get("SEM_OPTION_TYPE", "")
    if kind in ("CE", "PE"):
        try:
            expiry = date.fromisoformat(row["SEM_EXPIRY_DATE"][:10])
            strike = float(row["SEM_STRIKE_PRICE"])
        except ValueError:
            return 100.0
        return option_price(spot, strike, kind == "CE", (expiry - today).days)
    return spot


def scrips_from_csv(data: bytes, today: date | None = None) -> list[Scrip]:
    """The instruments of a compact CSV that the feed can serve (rows of unknown segments are skipped)."""
    today = today or date.today()
    reader = csv.DictReader(io.StringIO(data.decode("utf-8", errors="replace")))
    out: list[Scrip] = []
    for raw in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        segment = SEGMENTS.get((row.get("SEM_EXM_EXCH_ID", ""), row.get("SEM_SEGMENT", "")))
        sid = row.get("SEM_SMST_SECURITY_ID", "")
        if segment is None or not sid.isdigit():
            continue
        try:
            tick = float(row.get("SEM_TICK_SIZE") or 5) / 100
        except ValueError:
            tick = 0.05
        if not tick > 0:
            tick = 0.05
        try:
            lot = int(float(row.get("SEM_LOT_UNITS") or 1))
        except ValueError:
            lot = 1
        price = _base_price(row, today)
        out.append(
            Scrip(
                segment=segment,
                security_id=sid,
                symbol=row.get("SEM_TRADING_SYMBOL", ""),
                exchange=row.get("SEM_EXM_EXCH_ID", ""),
                price=max(tick, round(price / tick) * tick),
                tick=tick,
                lot=lot,
                instrument=row.get("SEM_INSTRUMENT_NAME", ""),
                name=row.get("SM_SYMBOL_NAME", ""),
            )
        )
    return out


def by_key(scrips: Iterable[Scrip]) -> dict[tuple[str, str], Scrip]:
    """(exchange segment, security id) -> scrip: the key packets map back by."""
    return {(s.segment, s.security_id): s for s in scrips}
