"""The simulator's symbol masters: Noren's per-exchange files, small, with real Noren tokens.

Noren hosts publish one file a exchange at the host's root (``NSE_symbols.txt.zip`` holding
``NSE_symbols.txt``): a CSV whose header and lines all end with a comma. The columns differ
by exchange, as OpenAlgo's Shoonya master reader expects them:

- NSE, BSE: ``Exchange,Token,LotSize,Symbol,TradingSymbol,Instrument,TickSize,``
- NFO, BFO: ``Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize,``
- CDS: ``Exchange,Token,LotSize,Precision,Multiplier,Symbol,TradingSymbol,Expiry,Instrument,OptionType,``
  ``StrikePrice,TickSize,``
- MCX: ``Exchange,Token,LotSize,GNGD,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize,``

Equities carry Noren's real tokens (RELIANCE-EQ 2885, ...) and the NSE indices Noren's own
names ("Nifty 50" 26000, ...). Derivatives are made around the money with expiries computed
from today (NSE's monthly and weekly expiries on Tuesdays, BSE's on Thursdays); their tokens
are the simulator's own. ``Expiry`` is ``DD-MON-YYYY``; futures have ``OptionType`` ``XX``.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

#: Each exchange's columns, in its file's order
COLUMNS: dict[str, tuple[str, ...]] = {
    "NSE": ("Exchange", "Token", "LotSize", "Symbol", "TradingSymbol", "Instrument", "TickSize"),
    "BSE": ("Exchange", "Token", "LotSize", "Symbol", "TradingSymbol", "Instrument", "TickSize"),
    "NFO": (
        "Exchange",
        "Token",
        "LotSize",
        "Symbol",
        "TradingSymbol",
        "Expiry",
        "Instrument",
        "OptionType",
        "StrikePrice",
        "TickSize",
    ),
    "CDS": (
        "Exchange",
        "Token",
        "LotSize",
        "Precision",
        "Multiplier",
        "Symbol",
        "TradingSymbol",
        "Expiry",
        "Instrument",
        "OptionType",
        "StrikePrice",
        "TickSize",
    ),
    "MCX": (
        "Exchange",
        "Token",
        "LotSize",
        "GNGD",
        "Symbol",
        "TradingSymbol",
        "Expiry",
        "Instrument",
        "OptionType",
        "StrikePrice",
        "TickSize",
    ),
}
COLUMNS["BFO"] = COLUMNS["NFO"]
EXCHANGES = ("NSE", "NFO", "BSE", "BFO", "CDS", "MCX")


@dataclass(frozen=True)
class Scrip:
    """One line of a master, and what the simulator needs to make its market."""

    exchange: str
    token: str
    lot_size: int
    symbol: str
    trading_symbol: str
    instrument: str
    tick_size: str
    #: rupees, roughly, so that the market looks familiar
    price: float
    expiry: str = ""
    option_type: str = ""
    strike: str = ""
    precision: int = 2

    @property
    def is_index(self) -> bool:
        return self.instrument == "INDEX"

    @property
    def is_derivative(self) -> bool:
        return self.exchange in ("NFO", "BFO", "CDS", "MCX")

    def line(self) -> str:
        values = {
            "Exchange": self.exchange,
            "Token": self.token,
            "LotSize": str(self.lot_size),
            "Symbol": self.symbol,
            "TradingSymbol": self.trading_symbol,
            "Instrument": self.instrument,
            "TickSize": self.tick_size,
            "Expiry": self.expiry,
            "OptionType": self.option_type,
            "StrikePrice": self.strike,
            "Precision": str(self.precision),
            "Multiplier": "1000" if self.exchange == "CDS" else "1",
            "GNGD": "1",
        }
        return "".join(f"{values[c]}," for c in COLUMNS[self.exchange])


# Cash markets: (symbol, token, price); NSE's trading symbols are SYMBOL-EQ, BSE's the plain symbol
NSE_EQUITIES = (
    ("RELIANCE", "2885", 2950.0),
    ("INFY", "1594", 1890.0),
    ("SBIN", "3045", 812.0),
    ("TCS", "11536", 4150.0),
    ("HDFCBANK", "1333", 1720.0),
    ("ICICIBANK", "4963", 1290.0),
    ("ITC", "1660", 465.0),
    ("TATAMOTORS", "3456", 780.0),
)
#: (Symbol, TradingSymbol, token, price): Noren's own index names
NSE_INDICES = (
    ("NIFTY INDEX", "Nifty 50", "26000", 24350.0),
    ("NIFTY BANK", "Nifty Bank", "26009", 52300.0),
    ("INDIA VIX", "India VIX", "26017", 13.5),
    ("NIFTY FIN SERVICE", "Nifty Fin Service", "26037", 23400.0),
    ("NIFTY MID SELECT", "NIFTY MID SELECT", "26074", 12600.0),
)
BSE_EQUITIES = (
    ("RELIANCE", "500325", 2951.0),
    ("SBIN", "500112", 812.5),
    ("INFY", "500209", 1890.5),
    ("TCS", "532540", 4151.0),
    ("HDFCBANK", "500180", 1720.5),
)
BSE_INDICES = (("SENSEX", "SENSEX", "1", 80200.0), ("BANKEX", "BANKEX", "12", 59000.0))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    day = first_next - dt.timedelta(days=1)
    return day - dt.timedelta(days=(day.weekday() - weekday) % 7)


def monthly_expiries(today: dt.date, weekday: int, count: int = 2) -> list[dt.date]:
    """The next ``count`` monthly expiries (the month's last ``weekday``) from ``today`` on."""
    found: list[dt.date] = []
    year, month = today.year, today.month
    while len(found) < count:
        day = _last_weekday(year, month, weekday)
        if day >= today:
            found.append(day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def weekly_expiry(today: dt.date, weekday: int) -> dt.date:
    """The next ``weekday`` from ``today`` on (today itself if it is one)."""
    return today + dt.timedelta(days=(weekday - today.weekday()) % 7)


def _expiry(day: dt.date) -> str:
    return day.strftime("%d-%b-%Y").upper()


def _short(day: dt.date) -> str:
    return day.strftime("%d%b%y").upper()


TUESDAY, THURSDAY = 1, 3
#: (underlying, lot size, strike step, strikes each side, price) of the simulated F&O
NFO_UNDERLYINGS = (
    ("NIFTY", 75, 50, 5, 24350.0, "IDX"),
    ("BANKNIFTY", 35, 100, 3, 52300.0, "IDX"),
    ("RELIANCE", 500, 20, 2, 2950.0, "STK"),
    ("SBIN", 750, 10, 2, 812.0, "STK"),
)


def scrips(today: dt.date | None = None) -> Iterator[Scrip]:
    """Every scrip of the simulated masters, exchange by exchange."""
    today = today or dt.date.today()
    for symbol, token, price in NSE_EQUITIES:
        yield Scrip("NSE", token, 1, symbol, f"{symbol}-EQ", "EQ", "0.05", price)
    for symbol, tsym, token, price in NSE_INDICES:
        yield Scrip("NSE", token, 1, symbol, tsym, "INDEX", "0.05", price)
    for symbol, token, price in BSE_EQUITIES:
        yield Scrip("BSE", token, 1, symbol, symbol, "A", "0.05", price)
    for symbol, tsym, token, price in BSE_INDICES:
        yield Scrip("BSE", token, 1, symbol, tsym, "INDEX", "0.01", price)

    token = 35000
    months = monthly_expiries(today, TUESDAY)
    for name, lot, step, width, price, kind in NFO_UNDERLYINGS:
        for month in months:
            token += 1
            yield Scrip(
                "NFO", str(token), lot, name, f"{name}{_short(month)}F", f"FUT{kind}", "0.10", price + 40,
                expiry=_expiry(month), option_type="XX", strike="0",
            )  # fmt: skip
        expiry = weekly_expiry(today, TUESDAY) if name == "NIFTY" else months[0]
        money = round(price / step) * step
        for strike in range(money - width * step, money + (width + 1) * step, step):
            for right in ("C", "P"):
                token += 1
                intrinsic = max(0.0, price - strike) if right == "C" else max(0.0, strike - price)
                yield Scrip(
                    "NFO", str(token), lot, name, f"{name}{_short(expiry)}{right}{strike}", f"OPT{kind}", "0.05",
                    round(intrinsic + price * 0.004, 1), expiry=_expiry(expiry), option_type=f"{right}E",
                    strike=f"{strike}.00",
                )  # fmt: skip

    token = 1_100_000
    sensex_weekly = weekly_expiry(today, THURSDAY)
    sensex_month = monthly_expiries(today, THURSDAY, 1)[0]
    token += 1
    yield Scrip(
        "BFO", str(token), 20, "SENSEX", f"SENSEX{_short(sensex_month)}F", "FUTIDX", "0.05", 80260.0,
        expiry=_expiry(sensex_month), option_type="XX", strike="0",
    )  # fmt: skip
    for strike in range(80000, 80500, 100):
        for right in ("C", "P"):
            token += 1
            yield Scrip(
                "BFO", str(token), 20, "SENSEX", f"SENSEX{_short(sensex_weekly)}{right}{strike}", "OPTIDX", "0.05",
                320.0, expiry=_expiry(sensex_weekly), option_type=f"{right}E", strike=f"{strike}.00",
            )  # fmt: skip

    cds_month = monthly_expiries(today, 0, 1)[0]  # roughly: currency futures expire near the month's end
    yield Scrip(
        "CDS", "1001", 1, "USDINR", f"USDINR{_short(cds_month)}F", "FUTCUR", "0.0025", 84.4525,
        expiry=_expiry(cds_month), option_type="XX", strike="0", precision=4,
    )  # fmt: skip
    mcx_month = monthly_expiries(today, 4, 1)[0]
    yield Scrip(
        "MCX", "430106", 100, "CRUDEOIL", f"CRUDEOIL{_short(mcx_month)}", "FUTCOM", "1", 5920.0,
        expiry=_expiry(mcx_month), option_type="XX", strike="0",
    )  # fmt: skip
    yield Scrip(
        "MCX", "430107", 1, "GOLDM", f"GOLDM{_short(mcx_month)}", "FUTCOM", "1", 76200.0,
        expiry=_expiry(mcx_month), option_type="XX", strike="0",
    )  # fmt: skip


def master_text(exchange: str, rows: list[Scrip]) -> str:
    """One exchange's file: the header and one line a scrip, each ending with a comma."""
    header = "".join(f"{c}," for c in COLUMNS[exchange])
    return "\n".join([header, *(r.line() for r in rows if r.exchange == exchange)]) + "\n"


def master_files(rows: list[Scrip]) -> dict[str, bytes]:
    """``{"NSE_symbols.txt.zip": bytes, ...}``: each a zip holding ``NSE_symbols.txt``."""
    files: dict[str, bytes] = {}
    for exchange in EXCHANGES:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{exchange}_symbols.txt", master_text(exchange, rows))
        files[f"{exchange}_symbols.txt.zip"] = buffer.getvalue()
    return files


#: Flattrade's own files (unverified: the names OpenAlgo's Flattrade reader downloads, the columns it reads,
#: in that order): plain CSV, lines without a trailing comma, BSE indices as ``UNDIND``
FLATTRADE_COLUMNS = ("Exchange", "Token", "Lotsize", "Symbol", "Tradingsymbol", "Instrument", "Expiry", "Strike",
                     "Optiontype")  # fmt: skip
FLATTRADE_FILES = {
    "NSE_Equity.csv": lambda s: s.exchange == "NSE",
    "Nfo_Index_Derivatives.csv": lambda s: s.exchange == "NFO" and s.instrument.endswith("IDX"),
    "Nfo_Equity_Derivatives.csv": lambda s: s.exchange == "NFO" and s.instrument.endswith("STK"),
    "Currency_Derivatives.csv": lambda s: s.exchange == "CDS",
    "Commodity.csv": lambda s: s.exchange == "MCX",
    "BSE_Equity.csv": lambda s: s.exchange == "BSE",
    "Bfo_Index_Derivatives.csv": lambda s: s.exchange == "BFO" and s.instrument.endswith("IDX"),
    "Bfo_Equity_Derivatives.csv": lambda s: s.exchange == "BFO" and s.instrument.endswith("STK"),
}


def flattrade_files(rows: list[Scrip]) -> dict[str, bytes]:
    """Flattrade's per-segment CSV files (``NSE_Equity.csv``...), as far as they are known."""
    files: dict[str, bytes] = {}
    for name, wanted in FLATTRADE_FILES.items():
        lines = [",".join(FLATTRADE_COLUMNS)]
        for s in filter(wanted, rows):
            instrument = "UNDIND" if s.exchange == "BSE" and s.is_index else s.instrument
            strike = s.strike if s.option_type not in ("", "XX") else ""
            lines.append(",".join((s.exchange, s.token, str(s.lot_size), s.symbol, s.trading_symbol, instrument,
                                   s.expiry, strike, s.option_type)))  # fmt: skip
        files[name] = ("\n".join(lines) + "\n").encode()
    return files
