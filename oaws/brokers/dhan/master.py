"""Dhan's scrip master: download, a fast index, symbol resolution, search.

Dhan publishes its instruments as one CSV (the "compact" master,
``https://images.dhan.co/api-data/api-scrip-master.csv``, another host than the API),
one line an instrument with the columns ``SEM_EXM_EXCH_ID`` (NSE, BSE, MCX),
``SEM_SEGMENT``, ``SEM_SMST_SECURITY_ID``, ``SEM_INSTRUMENT_NAME`` (EQUITY, INDEX, FUTIDX,
OPTIDX, FUTSTK, OPTSTK, FUTCUR, OPTCUR, FUTCOM, OPTFUT...), ``SEM_TRADING_SYMBOL``
(``NIFTY-Dec2024-24000-CE``), ``SEM_CUSTOM_SYMBOL`` (``NIFTY 26 DEC 24000 CALL``),
``SEM_EXPIRY_DATE``, ``SEM_STRIKE_PRICE``, ``SEM_OPTION_TYPE``, ``SEM_LOT_UNITS``,
``SEM_TICK_SIZE``, ``SEM_SERIES``, ``SM_SYMBOL_NAME`` and a few more. ``oaws instruments
update --broker dhan`` downloads it into the cache directory and writes beside it a compact
index (the oaws name of every instrument worked out once, the columns used, read back with
orjson); the feed and ``oaws instruments search`` load the index.

The oaws names follow OpenAlgo's own reading of Dhan's master
(``broker/dhan/database/master_contract_db.py``), so that a symbol means the same
instrument here as on an OpenAlgo server with a Dhan account:

- ``EQUITY`` of NSE / BSE: the trading symbol, ``RELIANCE:NSE``, ``RELIANCE:BSE``
  (of two NSE lines with one symbol, series EQ wins).
- ``INDEX``: ``NSE_INDEX`` / ``BSE_INDEX`` by the exchange, named as OpenAlgo names them
  (``NIFTY``, ``BANKNIFTY``, ``FINNIFTY``, ``MIDCPNIFTY``, ``NIFTYNXT50``, ``INDIAVIX``;
  ``SENSEX``, ``BANKEX``, ``SENSEX50``...); the names people type (``NIFTY 50``,
  ``Nifty Bank``, ``India VIX``: Dhan's custom symbol and symbol name) find the same index,
  compared without case, spaces or dashes.
- Futures and options of NSE (``NFO``), BSE (``BFO``), MCX (``MCX``), NSE currency
  (``CDS``) and BSE currency (``BCD``) in OpenAlgo's format: underlying, expiry as
  DDMMMYY, then ``FUT``, or the strike and ``CE`` / ``PE`` (``NIFTY26DEC24FUT``,
  ``NIFTY26DEC2424000CE``, ``USDINR27DEC2483.25PE``). Dhan's own trading symbol
  (``NIFTY-Dec2024-24000-CE:NFO``) finds the same contract, unless it names several
  (Dhan gives a weekly and the monthly contract of one month the same trading symbol):
  then the refusal lists the OpenAlgo names to choose from.

Requests to Dhan name an instrument by its exchange segment (``NSE_EQ``, ``IDX_I``...) and
security id; the feed's packets carry the segment as a byte. A security id is unique only
within its segment, so the way back (``Master.instrument_of``) is by (segment, id).
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from oaws import config
from oaws.brokers.api import Rejection
from oaws.brokers.dhan.errors import DhanError, DhanMasterMissing, DhanUnavailable
from oaws.brokers.masterkit import save_download, stale_days
from oaws.format import strike as strike_column
from oaws.instruments import Instrument
from oaws.options import OptionContract
from oaws.protocol.codes import SYMBOL_NOT_FOUND

log = logging.getLogger(__name__)

#: Dhan's exchange segments (as requests name them) and the byte the feed gives each
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
#: oaws exchange -> Dhan's exchange segment
EXCHANGE_SEGMENTS = {
    "NSE": "NSE_EQ",
    "BSE": "BSE_EQ",
    "NFO": "NSE_FNO",
    "BFO": "BSE_FNO",
    "MCX": "MCX_COMM",
    "CDS": "NSE_CURRENCY",
    "BCD": "BSE_CURRENCY",
    "NSE_INDEX": "IDX_I",
    "BSE_INDEX": "IDX_I",
}
INDEX_EXCHANGES = {"NSE": "NSE_INDEX", "BSE": "BSE_INDEX"}
_EXCHANGE_ORDER = {exchange: i for i, exchange in enumerate(EXCHANGE_SEGMENTS)}

#: the columns of Dhan's compact master that oaws reads (the first four must be there)
REQUIRED = ("SEM_EXM_EXCH_ID", "SEM_SMST_SECURITY_ID", "SEM_INSTRUMENT_NAME", "SEM_TRADING_SYMBOL")
OPTIONAL = (
    "SEM_SEGMENT",
    "SEM_CUSTOM_SYMBOL",
    "SEM_EXPIRY_DATE",
    "SEM_STRIKE_PRICE",
    "SEM_OPTION_TYPE",
    "SEM_LOT_UNITS",
    "SEM_TICK_SIZE",
    "SEM_SERIES",
    "SM_SYMBOL_NAME",
)

#: OpenAlgo's NSE index names (its master_contract_db.py): Dhan's trading symbol without
#: spaces and dashes becomes one of these, else stays as Dhan writes it
NSE_INDEX_NAMES = frozenset(
    (
        "NIFTY",
        "NIFTYNXT50",
        "FINNIFTY",
        "BANKNIFTY",
        "MIDCPNIFTY",
        "INDIAVIX",
        "HANGSENGBEESNAV",
        "NIFTY100",
        "NIFTY200",
        "NIFTY500",
        "NIFTYALPHA50",
        "NIFTYAUTO",
        "NIFTYCOMMODITIES",
        "NIFTYCONSUMPTION",
        "NIFTYCPSE",
        "NIFTYDIVOPPS50",
        "NIFTYENERGY",
        "NIFTYFMCG",
        "NIFTYGROWSECT15",
        "NIFTYGS10YR",
        "NIFTYGS10YRCLN",
        "NIFTYGS1115YR",
        "NIFTYGS15YRPLUS",
        "NIFTYGS48YR",
        "NIFTYGS813YR",
        "NIFTYGSCOMPSITE",
        "NIFTYINFRA",
        "NIFTYIT",
        "NIFTYMEDIA",
        "NIFTYMETAL",
        "NIFTYMIDLIQ15",
        "NIFTYMIDCAP100",
        "NIFTYMIDCAP150",
        "NIFTYMIDCAP50",
        "NIFTYMIDSML400",
        "NIFTYMNC",
        "NIFTYPHARMA",
        "NIFTYPSE",
        "NIFTYPSUBANK",
        "NIFTYPVTBANK",
        "NIFTYREALTY",
        "NIFTYSERVSECTOR",
        "NIFTYSMLCAP100",
        "NIFTYSMLCAP250",
        "NIFTYSMLCAP50",
        "NIFTY100EQLWGT",
        "NIFTY100LIQ15",
        "NIFTY100LOWVOL30",
        "NIFTY100QUALTY30",
        "NIFTY200QUALTY30",
        "NIFTY50DIVPOINT",
        "NIFTY50EQLWGT",
        "NIFTY50PR1XINV",
        "NIFTY50PR2XLEV",
        "NIFTY50TR1XINV",
        "NIFTY50TR2XLEV",
        "NIFTY50VALUE20",
    )
)
NSE_INDEX_RENAMES = {
    "NIFTYNEXT50": "NIFTYNXT50",
    "NIFTYMCAP50": "NIFTYMIDCAP50",
    "NIFTYMIDSMALLCAP400": "NIFTYMIDSML400",
    "NIFTYSMALLCAP100": "NIFTYSMLCAP100",
    "NIFTYSMALLCAP250": "NIFTYSMLCAP250",
    "NIFTYSMALLCAP50": "NIFTYSMLCAP50",
    "NIFTY100EQUALWEIGHT": "NIFTY100EQLWGT",
    "NIFTY100LOWVOLATILITY30": "NIFTY100LOWVOL30",
    "NIFTYMID100FREE": "NIFTYMIDCAP100",
}
#: OpenAlgo's BSE index names for Dhan's trading symbols
BSE_INDEX_NAMES = {
    "SNSX50": "SENSEX50",
    "SNXT50": "BSESENSEXNEXT50",
    "MID150": "BSE150MIDCAPINDEX",
    "LMI250": "BSE250LARGEMIDCAPINDEX",
    "MSL400": "BSE400MIDSMALLCAPINDEX",
    "AUTO": "BSEAUTO",
    "BSE CG": "BSECAPITALGOODS",
    "BSE CD": "BSECONSUMERDURABLES",
    "BSE HC": "BSEHEALTHCARE",
    "BSE IT": "BSEINFORMATIONTECHNOLOGY",
    "CARBON": "BSECARBONEX",
    "CPSE": "BSECPSE",
    "DOL100": "BSEDOLLEX100",
    "DOL200": "BSEDOLLEX200",
    "DOL30": "BSEDOLLEX30",
    "ENERGY": "BSEENERGY",
    "BSEFMC": "BSEFASTMOVINGCONSUMERGOODS",
    "FINSER": "BSEFINANCIALSERVICES",
    "GREENX": "BSEGREENEX",
    "INFRA": "BSEINDIAINFRASTRUCTUREINDEX",
    "INDSTR": "BSEINDUSTRIALS",
    "LRGCAP": "BSELARGECAP",
    "METAL": "BSEMETAL",
    "MIDCAP": "BSEMIDCAP",
    "MIDSEL": "BSEMIDCAPSELECTINDEX",
    "OILGAS": "BSEOIL&GAS",
    "POWER": "BSEPOWER",
    "REALTY": "BSEREALTY",
    "SMLCAP": "BSESMALLCAP",
    "SMLSEL": "BSESMALLCAPSELECTINDEX",
    "SMEIPO": "BSESMEIPO",
    "TECK": "BSETECK",
    "TELCOM": "BSETELECOM",
}
#: instrument names of each exchange's derivatives (OpenAlgo's lists; MCX: any future or option)
_NSE_FNO = frozenset(("FUTIDX", "FUTSTK", "OPTIDX", "OPTSTK", "OPTFUT"))
_BSE_FNO = frozenset(("FUTIDX", "FUTSTK", "OPTIDX", "OPTSTK"))
_CURRENCY = frozenset(("FUTCUR", "OPTCUR"))

MASTER_FILE = "api-scrip-master.csv"
INDEX_FILE = "dhan-index.json"
INDEX_FORMAT = "oaws-dhan-index-1"

# Columns of the index rows.
SECURITY_ID, SEGMENT, EXCHANGE, SYMBOL, DHAN_SYMBOL, NAME, TYPE, EXPIRY, STRIKE, LOT, TICK, CUSTOM, SERIES = range(13)
Row = tuple[str, ...]

_NORMALISE = re.compile(r"[\s\-_.]+")


def normalise(text: str) -> str:
    return _NORMALISE.sub("", text).upper()


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an instrument lives on Dhan: what requests and the feed name it by, and its contract."""

    #: Dhan's exchange segment as requests write it (``NSE_EQ``, ``IDX_I``...)
    segment: str
    #: the segment's byte in the feed's packets (IDX_I 0, NSE_EQ 1, NSE_FNO 2...)
    segment_code: int
    security_id: str
    #: Dhan's trading symbol (``NIFTY-Dec2024-24000-CE``)
    tradingsymbol: str
    name: str
    #: EQ, INDEX, FUT, CE or PE
    instrument_type: str
    #: DD-MMM-YY as OpenAlgo writes it, "" for cash and indices
    expiry: str
    strike: float
    lot_size: int
    tick_size: float
    #: the instrument as oaws (and OpenAlgo) names it, ``NIFTY26DEC2424000CE:NFO``
    instrument: str = ""


@dataclass(frozen=True, slots=True)
class Match:
    """A search result, with the ``SYMBOL:EXCHANGE`` that oaws commands accept for it."""

    instrument: str
    dhan_symbol: str
    security_id: str
    segment: str
    name: str
    instrument_type: str
    expiry: str
    strike: float
    lot_size: int

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}

    def columns(self) -> dict[str, str]:
        """The search table's columns, the most wanted first (a narrow terminal drops the last)."""
        return {
            "instrument": self.instrument,
            "type": self.instrument_type,
            "expiry": self.expiry,
            "strike": strike_column(self.strike),
            "lot": str(self.lot_size),
            "name": self.name,
            "dhan symbol": self.dhan_symbol,
            "security id": self.security_id,
        }


def _number(text: str, default: float = 0.0) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def _strike_text(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


# Reading Dhan's CSV ----------------------------------------------------------------
def _classify(exchange: str, instrument: str, option: str) -> tuple[str, str, str] | None:
    """(oaws exchange, Dhan segment, type) of a line, as OpenAlgo's assign_values; None: not served."""
    derivative_type = option if instrument.startswith("OPT") else "FUT"
    if instrument.startswith("OPT") and option not in ("CE", "PE"):
        return None
    if instrument == "EQUITY" and exchange in ("NSE", "BSE"):
        return exchange, f"{exchange}_EQ", "EQ"
    if instrument == "INDEX" and exchange in INDEX_EXCHANGES:
        return INDEX_EXCHANGES[exchange], "IDX_I", "INDEX"
    if exchange == "MCX" and instrument[:3] in ("FUT", "OPT"):
        return "MCX", "MCX_COMM", derivative_type
    if exchange == "NSE" and instrument in _NSE_FNO:
        return "NFO", "NSE_FNO", derivative_type
    if exchange == "BSE" and instrument in _BSE_FNO:
        return "BFO", "BSE_FNO", derivative_type
    if instrument in _CURRENCY and exchange in ("NSE", "BSE"):
        currency = ("CDS", "NSE_CURRENCY") if exchange == "NSE" else ("BCD", "BSE_CURRENCY")
        return (*currency, derivative_type)
    return None


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})[-/](\d{1,2})[-/](\d{4})")


@functools.lru_cache(maxsize=4096)
def _expiry(text: str) -> str:
    """Dhan's ``2024-12-26 14:30:00`` as OpenAlgo's ``26-DEC-24`` (whatever the locale); "" when there is none."""
    found = _DATE.match(text.strip())
    if found is None:
        return ""
    year, month, day = found.group(1, 2, 3) if found.group(1) else found.group(6, 5, 4)
    try:
        when = date(int(year), int(month), int(day))
    except ValueError:
        return ""
    return "" if when.year < 1900 else f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year % 100:02d}"


def _expiry_date(text: str) -> date | None:
    """An index row's expiry (``26-DEC-24``, as ``_expiry`` writes it) as a date; None when there is none."""
    day, _, rest = text.partition("-")
    month, _, year = rest.partition("-")
    if month not in _MONTHS or not day.isdigit() or not year.isdigit():
        return None
    try:
        return date(2000 + int(year), _MONTHS.index(month) + 1, int(day))
    except ValueError:
        return None


def _index_symbol(exchange: str, trading: str) -> str:
    if exchange == "NSE_INDEX":
        squeezed = trading.upper().replace(" ", "").replace("-", "")
        squeezed = NSE_INDEX_RENAMES.get(squeezed, squeezed)
        return squeezed if squeezed in NSE_INDEX_NAMES else trading.upper()
    return BSE_INDEX_NAMES.get(trading.upper(), trading.upper())


def _derivative_symbol(kind: str, trading: str, custom: str, expiry: str, strike: float) -> tuple[str, str]:
    """(OpenAlgo's symbol, the underlying) of a future or option."""
    compact = expiry.replace("-", "")
    parts = custom.split()
    # the underlying as Dhan's trading symbol starts (it may hold dashes: BAJAJ-AUTO-Dec2024-FUT)
    pieces = trading.rsplit("-", 2 if kind == "FUT" else 3)
    underlying = pieces[0] if len(pieces) == (3 if kind == "FUT" else 4) else (parts[0] if parts else trading)
    if not compact:
        return trading.upper(), underlying.upper()
    # OpenAlgo's reformat_symbol: from the custom symbol ("NIFTY 26 DEC 24000 CALL", "NIFTY DEC FUT")
    if kind == "FUT" and len(parts) in (3, 4):
        return f"{parts[0]}{compact}FUT".upper(), parts[0].upper()
    if kind in ("CE", "PE") and len(parts) in (4, 5):
        return f"{parts[0]}{compact}{parts[len(parts) - 2]}{kind}".upper(), parts[0].upper()
    # a custom symbol of another shape: the same format from the trading symbol's underlying
    tail = "FUT" if kind == "FUT" else f"{_strike_text(strike)}{kind}"
    return f"{underlying}{compact}{tail}".upper(), underlying.upper()


#: the order ``_row`` reads its fields in
_FIELDS = (*REQUIRED, *OPTIONAL)


def _row(values: list[str]) -> Row | None:
    """The index row of one line's fields (in ``_FIELDS``' order; "" for a column the file lacks)."""
    (
        exchange,
        security_id,
        instrument,
        trading,
        _segment_letter,
        custom,
        expiry_text,
        strike_text,
        option,
        lot_text,
        tick_text,
        series,
        name,
    ) = values
    exchange, instrument, option = exchange.strip().upper(), instrument.strip().upper(), option.strip().upper()
    classified = _classify(exchange, instrument, option)
    security_id = security_id.strip()
    if classified is None or not security_id:
        return None
    if security_id.endswith(".0"):  # a float written by a spreadsheet
        security_id = security_id[:-2]
    oaws_exchange, segment, kind = classified
    trading, custom, name = trading.strip(), custom.strip(), name.strip()
    expiry = _expiry(expiry_text)
    strike = _number(strike_text.strip(), 0.0)
    if kind == "EQ":
        symbol, name = trading.upper(), name or custom
        expiry, strike = "", 0.0
    elif kind == "INDEX":
        symbol, name = _index_symbol(oaws_exchange, trading), custom or name  # "Nifty 50" rather than NIFTY
        expiry, strike = "", 0.0
    else:
        symbol, name = _derivative_symbol(kind, trading, custom, expiry, strike)
        if kind == "FUT":
            strike = 0.0
    lot = _number(lot_text.strip(), 1.0)
    # Dhan writes the tick size in paise (5.0000 for 0.05 rupee); OpenAlgo divides by 100 too
    tick = _number(tick_text.strip(), 0.0) / 100
    return (
        security_id,
        segment,
        oaws_exchange,
        symbol,
        trading,
        name,
        kind,
        expiry,
        _strike_text(strike) if strike > 0 else "",
        str(int(lot)) if lot >= 1 else "1",
        _strike_text(tick) if tick > 0 else "",
        custom,
        series.strip().upper(),
    )


def rows_from_csv(data: bytes) -> list[Row]:
    """The index rows of Dhan's scrip master CSV; raises ValueError (its reason) when it is not one.

    Lines of exchanges or instrument kinds oaws does not serve are left out; a malformed line
    in the middle is skipped (and counted in one warning); a last line cut short, as by a
    broken download, refuses the whole file.
    """
    if not data.strip():
        raise ValueError("it is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("it is not text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [column.strip() for column in next(reader)]
    except (StopIteration, csv.Error):
        raise ValueError("it has no header line") from None
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise ValueError(f"its header lacks {', '.join(missing)}")
    width = len(header)
    positions = [header.index(column) if column in header else -1 for column in _FIELDS]
    rows: list[Row] = []
    malformed = 0
    last: list[str] = []
    try:
        for fields in reader:
            last = fields
            if not fields:
                continue
            if len(fields) != width:
                malformed += 1
                continue
            row = _row([fields[i] if i >= 0 else "" for i in positions])
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise ValueError(f"it is not valid CSV ({exc})") from None
    if last and len(last) != width and not text.endswith(("\n", "\r")):
        raise ValueError("its last line is cut short (an incomplete download?)")
    if not rows:
        raise ValueError("it has no instrument of an exchange oaws serves")
    if malformed:
        log.warning("the Dhan scrip master has %d malformed lines; they were skipped", malformed)
    return rows


# The master in memory ---------------------------------------------------------------
def _preference(row: Row) -> int:
    """Lower wins when two lines claim one name: NSE series EQ before other series."""
    return 0 if row[TYPE] != "EQ" or row[SERIES] in ("EQ", "") else 1


class Master:
    """The scrip master in memory, with the lookups resolution and search need."""

    def __init__(self, rows: list[Row], source: str = "", built: float = 0.0) -> None:
        self.rows = rows
        self.source = source
        self.built = built
        #: (exchange, symbol) -> row, by OpenAlgo's name (indices by every name they answer to)
        self._by_symbol: dict[tuple[str, str], Row] = {}
        #: (exchange, Dhan's trading symbol) -> rows (several when Dhan reuses one)
        self._by_dhan: dict[tuple[str, str], list[Row]] = {}
        self._by_id: dict[tuple[int, str], Row] = {}
        index_names: list[tuple[tuple[str, str], Row]] = []
        for row in rows:
            exchange = row[EXCHANGE]
            if exchange not in EXCHANGE_SEGMENTS or row[SEGMENT] not in SEGMENT_CODES:
                continue
            self._by_id.setdefault((SEGMENT_CODES[row[SEGMENT]], row[SECURITY_ID]), row)
            self._claim(self._key(row), row)
            if row[TYPE] == "INDEX":
                index_names.extend(
                    ((exchange, normalise(text)), row) for text in (row[DHAN_SYMBOL], row[CUSTOM], row[NAME]) if text
                )
                continue
            dhan = self._by_dhan.setdefault((exchange, row[DHAN_SYMBOL].upper()), [])
            if not any(r[SYMBOL] == row[SYMBOL] for r in dhan):
                dhan.append(row)
        for key, row in index_names:  # OpenAlgo's names win over the names people type
            self._by_symbol.setdefault(key, row)

    @staticmethod
    def _key(row: Row) -> tuple[str, str]:
        symbol = row[SYMBOL]
        return (row[EXCHANGE], normalise(symbol) if row[TYPE] == "INDEX" else symbol.upper())

    def _claim(self, key: tuple[str, str], row: Row) -> None:
        held = self._by_symbol.get(key)
        if held is None or _preference(row) < _preference(held):
            self._by_symbol[key] = row

    def __len__(self) -> int:
        return len(self.rows)

    def options(self, underlying: str) -> list[OptionContract]:
        """Every option (CE or PE) of NFO and BFO on ``underlying`` (``NIFTY``, ``RELIANCE``),
        any expiry, under its OpenAlgo symbol."""
        wanted = underlying.strip().upper()
        found = []
        for row in self.rows:
            if row[TYPE] not in ("CE", "PE") or row[EXCHANGE] not in ("NFO", "BFO") or row[NAME] != wanted:
                continue
            expiry = _expiry_date(row[EXPIRY])
            strike = _number(row[STRIKE], 0.0)
            if expiry is not None and strike > 0:
                lot = int(_number(row[LOT], 1.0)) or 1
                found.append(OptionContract(wanted, expiry, strike, row[TYPE], row[SYMBOL], row[EXCHANGE], lot))
        found.sort(key=lambda c: (c.expiry, c.strike, c.right))
        return found

    # Resolution ------------------------------------------------------------------
    def find(self, instrument: Instrument) -> Row | None:
        """The row of ``instrument`` (None when there is none, or Dhan's symbol names several)."""
        exchange = instrument.exchange
        if exchange not in EXCHANGE_SEGMENTS:
            return None
        if exchange in ("NSE_INDEX", "BSE_INDEX"):
            return self._by_symbol.get((exchange, normalise(instrument.symbol)))
        symbol = instrument.symbol.upper()
        row = self._by_symbol.get((exchange, symbol))
        if row is not None:
            return row
        rows = self._by_dhan.get((exchange, symbol), [])
        return rows[0] if len(rows) == 1 else None

    def resolve(self, instrument: Instrument) -> Resolved:
        """Dhan's segment and security id of ``instrument``; raises Rejection(SYMBOL_NOT_FOUND) with a hint."""
        if instrument.exchange not in EXCHANGE_SEGMENTS:
            served = ", ".join(EXCHANGE_SEGMENTS)
            raise Rejection(SYMBOL_NOT_FOUND, f"Dhan's feed does not serve {instrument.exchange} (it serves {served})")
        row = self.find(instrument)
        if row is None:
            raise Rejection(SYMBOL_NOT_FOUND, self._not_found(instrument))
        return Resolved(
            segment=row[SEGMENT],
            segment_code=SEGMENT_CODES[row[SEGMENT]],
            security_id=row[SECURITY_ID],
            tradingsymbol=row[DHAN_SYMBOL],
            name=row[NAME],
            instrument_type=row[TYPE],
            expiry=row[EXPIRY],
            strike=_number(row[STRIKE]),
            lot_size=int(_number(row[LOT], 1)),
            tick_size=_number(row[TICK]),
            instrument=self._instrument(row),
        )

    def _not_found(self, instrument: Instrument) -> str:
        message = f"{instrument} is not in Dhan's scrip master"
        exchange = instrument.exchange
        several = self._by_dhan.get((exchange, instrument.symbol.upper()), [])
        if len(several) > 1:
            names = ", ".join(sorted(self._instrument(r) for r in several))
            return f"{instrument} names {len(several)} contracts on Dhan; say which: {names}"
        if exchange in INDEX_EXCHANGES:
            index = self.find(Instrument(instrument.symbol, INDEX_EXCHANGES[exchange]))
            if index is not None:
                return f"{message}; the index is {self._instrument(index)}"
        words = instrument.symbol.split()
        return f"{message}; try: oaws instruments search {words[0] if words else instrument.symbol} --broker dhan"

    @staticmethod
    def _instrument(row: Row) -> str:
        return f"{row[SYMBOL]}:{row[EXCHANGE]}"

    def instrument_of(self, segment_code: int, security_id: str | int) -> str | None:
        """``SYMBOL:EXCHANGE`` (OpenAlgo's name) of the feed's (segment byte, security id); None if unknown."""
        row = self._by_id.get((segment_code, str(security_id)))
        return None if row is None else self._instrument(row)

    def row_of(self, segment_code: int, security_id: str | int) -> Row | None:
        return self._by_id.get((segment_code, str(security_id)))

    # Search ----------------------------------------------------------------------
    def search(self, text: str, exchange: str | None = None, limit: int = 20) -> list[Match]:
        """Instruments whose symbol or name holds ``text``: exact, then prefix, then anywhere."""
        needle = text.strip().upper()
        if not needle:
            return []
        wanted = exchange.upper() if exchange else None
        squeezed = normalise(needle)
        scored: list[tuple[int, int, int, str, Row]] = []
        for row in self.rows:
            if wanted is not None and row[EXCHANGE] != wanted:
                continue
            if self._by_symbol.get(self._key(row)) is not row:  # a line another one's name shadows
                continue
            texts = (row[SYMBOL].upper(), row[DHAN_SYMBOL].upper(), row[NAME].upper(), row[CUSTOM].upper())
            if needle in texts or (row[TYPE] == "INDEX" and squeezed in {normalise(t) for t in texts}):
                rank = 0
            elif any(t.startswith(needle) for t in texts):
                rank = 1
            elif any(needle in t for t in texts):
                rank = 2
            else:
                continue
            derivative = 0 if row[TYPE] in ("EQ", "INDEX") else 1  # cash and indices before contracts
            scored.append((rank, derivative, _EXCHANGE_ORDER.get(row[EXCHANGE], 99), row[SYMBOL], row))
        scored.sort(key=lambda s: s[:4])
        return [self._match(row) for *_, row in scored[:limit]]

    def _match(self, row: Row) -> Match:
        return Match(
            instrument=self._instrument(row),
            dhan_symbol=row[DHAN_SYMBOL],
            security_id=row[SECURITY_ID],
            segment=row[SEGMENT],
            name=row[NAME],
            instrument_type=row[TYPE],
            expiry=row[EXPIRY],
            strike=_number(row[STRIKE]),
            lot_size=int(_number(row[LOT], 1)),
        )


# Files -----------------------------------------------------------------------------
def index_bytes(rows: list[Row], source: str, built: float | None = None) -> bytes:
    return orjson.dumps({"format": INDEX_FORMAT, "source": source, "built": built or time.time(), "rows": rows})


def _index_rows(parsed: Any) -> list[Row]:
    rows = parsed["rows"]
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == SERIES + 1 for r in rows):
        raise ValueError("its rows are not those of this version of oaws (run `oaws instruments update` again)")
    if rows and not all(isinstance(v, str) for r in (rows[0], rows[-1]) for v in r):  # a sample: it is one writer's
        raise ValueError("its rows are not text")
    return [tuple(r) for r in rows]


def read_master(path: Path) -> Master:
    """An oaws index or Dhan's own CSV; raises DhanMasterMissing with the reason, in one sentence."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DhanMasterMissing(f"cannot read the Dhan scrip master {path}: {exc.strerror or exc}") from None
    try:
        if data.lstrip()[:1] == b"{":
            parsed = orjson.loads(data)
            if not isinstance(parsed, dict) or parsed.get("format") != INDEX_FORMAT:
                raise ValueError("it is JSON but not an oaws index of Dhan's master")
            return Master(_index_rows(parsed), str(parsed.get("source", path)), float(parsed.get("built", 0)))
        return Master(rows_from_csv(data), str(path), path.stat().st_mtime)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # AttributeError: a row of numbers
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DhanMasterMissing(f"{path} is not a Dhan scrip master: {reason}") from None


def master_dir() -> Path:
    return config.cache_dir() / "dhan"


def load_master(instruments: str | os.PathLike[str] | None = None) -> Master:
    """The master from ``instruments`` (Dhan's CSV or oaws's index) if given, else the cached index."""
    if instruments:
        return read_master(Path(instruments).expanduser())
    index = master_dir() / INDEX_FILE
    if not index.exists():
        raise DhanMasterMissing(
            "no Dhan scrip master: run `oaws instruments update --broker dhan` or pass --instruments FILE"
        )
    master = read_master(index)
    if (days := stale_days(master.built)) is not None:
        log.warning("the Dhan scrip master is %d days old; `oaws instruments update --broker dhan` refreshes it", days)
    return master


class MasterNotSaved(DhanError):
    """The cache directory cannot take the scrip master (missing, not a directory, read-only, full)."""


def update_master(
    url: str | None = None, progress: Callable[[int, int | None], None] | None = None, timeout: float = 30.0
) -> tuple[Path, int]:
    """Download Dhan's master from ``url`` (default: the settings' master_url) into the cache and index it.

    Returns (index path, instruments). ``progress(done, total)`` is called as bytes arrive
    (total from Content-Length, None when unknown). 429 and 5xx answers are retried a few
    times (Retry-After honoured, about 10 s in all), then DhanUnavailable. The previous
    files stay in place until the new ones are complete and valid: a body shorter than its
    Content-Length, or one that is not Dhan's CSV, is refused with DhanMasterMissing.
    """
    from oaws.brokers.dhan.session import describe_request_error, send

    if url is None:
        from oaws.brokers.dhan.settings import load_settings

        url = load_settings().master_url
    address = url
    directory = master_dir()

    def parse(data: bytes) -> list[Row]:
        try:
            return rows_from_csv(data)
        except ValueError as exc:
            raise DhanMasterMissing(
                f"{address} did not send Dhan's scrip master ({exc}); the previous one is kept"
            ) from None

    def unreachable(exc: Exception) -> DhanUnavailable:
        reason = describe_request_error(exc, address)
        return DhanUnavailable(f"cannot download the Dhan scrip master from {address}: {reason}")

    index_path, rows = save_download(
        directory,
        MASTER_FILE,
        INDEX_FILE,
        open_response=lambda: send("GET", address, what="download the Dhan scrip master", timeout=timeout, stream=True),
        parse=parse,
        index=lambda rows: index_bytes(rows, address),
        not_saved=lambda exc: MasterNotSaved(
            f"cannot save the Dhan scrip master in {directory}: {exc.strerror or exc}"
        ),
        bad_status=lambda status: DhanUnavailable(f"cannot download the Dhan scrip master from {address}: {status}"),
        unreachable=unreachable,
        cut_short=lambda done, total: DhanMasterMissing(
            f"the Dhan scrip master from {address} broke off after {done} of {total} bytes; the previous one is kept"
        ),
        progress=progress,
    )
    return index_path, len(rows)


def _completion_rows(instruments: str | None) -> list[Any]:
    """The index's lists as parsed (no Master and its tables to build); Dhan's CSV through read_master; []
    without one."""
    path = Path(instruments).expanduser() if instruments else master_dir() / INDEX_FILE
    if not path.is_file():
        return []
    try:
        parsed = orjson.loads(path.read_bytes()) if path.name.endswith(".json") else None
        if isinstance(parsed, dict) and parsed.get("format") == INDEX_FORMAT and isinstance(parsed.get("rows"), list):
            return parsed["rows"]
        return list(read_master(path).rows)
    except (OSError, ValueError, DhanMasterMissing) as exc:
        log.debug("no completion from the Dhan scrip master: %s", exc)
        return []


def completion_names(instruments: str | None = None) -> dict[str, str]:
    """``SYMBOL:EXCHANGE`` -> the company's (``RELIANCE INDUSTRIES LTD``) or index's name of every
    equity and index (a contract's name is only its underlying); {} without a master."""
    return {
        f"{row[SYMBOL]}:{row[EXCHANGE]}": row[NAME]
        for row in _completion_rows(instruments)
        if len(row) > SERIES and row[NAME] and row[TYPE] in ("EQ", "INDEX")
    }


def completion_instruments(instruments: str | None = None) -> list[str]:
    """Every instrument of the master as ``SYMBOL:EXCHANGE``, for the watch's completion; [] without one."""
    from oaws.instruments import EXCHANGES, valid_symbol

    rows = _completion_rows(instruments)
    exchanges = frozenset(EXCHANGES)
    found: dict[str, None] = {}
    for row in rows:
        if len(row) > SERIES and row[EXCHANGE] in exchanges and valid_symbol(row[SYMBOL]):
            found[f"{row[SYMBOL]}:{row[EXCHANGE]}"] = None
    return list(found)


class DhanMaster:
    """Dhan's scrip master as the broker plugin offers it (``oaws.brokers.api.InstrumentMaster``)."""

    exchanges = tuple(EXCHANGE_SEGMENTS)

    def update(self, url: str | None, progress: Callable[[int, int | None], None] | None) -> tuple[Path, int]:
        return update_master(url, progress=progress)

    def search(self, text: str, exchange: str | None, limit: int, source: str | None) -> list[Match]:
        from oaws.brokers.dhan.settings import load_settings

        return load_master(load_settings(instruments=source).instruments).search(text, exchange, limit)

    def instruments(self) -> list[str]:
        from oaws.brokers.dhan.settings import load_settings

        try:
            return completion_instruments(load_settings().instruments)
        except Exception as exc:  # completion is a nicety: never an error on the screen
            log.debug("no completion from the Dhan scrip master: %s", exc)
            return []

    def options(self, underlying: str) -> list[OptionContract]:
        """Every option contract on ``underlying`` the master lists (the option chain's source);
        [] when there is none or no master."""
        from oaws.brokers.dhan.settings import load_settings

        try:
            return load_master(load_settings().instruments).options(underlying)
        except DhanMasterMissing:
            return []

    def names(self) -> dict[str, str]:
        """Company names of the master's equities and indices, for the add dialog's search by name."""
        from oaws.brokers.dhan.settings import load_settings

        try:
            return completion_names(load_settings().instruments)
        except Exception as exc:  # completion is a nicety: never an error on the screen
            log.debug("no names from the Dhan scrip master: %s", exc)
            return {}
