"""Angel One's instrument master: download, a fast index, symbol resolution, search.

Angel's scrip master is one JSON array of tens of MB (docs/brokers/angel.md, section 4).
``oaws instruments update`` downloads it into the cache directory and writes beside it a
compact index (only the columns used, as lists, read back with orjson in a fraction of
the time); the feed and ``oaws instruments search`` load the index.

How an oaws instrument finds its Angel record:

- ``RELIANCE:NSE``: the NSE cash record ``RELIANCE-EQ`` (then the symbol as written, then
  the other cash series ``-BE``, ``-BZ``, ``-SM``, ``-ST``); indices are never matched here.
- ``NIFTY:NSE_INDEX`` / ``SENSEX:BSE_INDEX`` / ``MCXCOMDEX:MCX_INDEX``: an ``AMXIDX`` record
  of segment NSE / BSE / MCX (OpenAlgo reads Angel's master the same way),
  through the alias table below (NIFTY -> "Nifty 50"), else by its symbol or name compared
  without case, spaces or dashes (``NIFTY 50`` and ``nifty50`` both find "Nifty 50").
- NFO, BFO, BSE, MCX, NCDEX, CDS: the record of that segment whose symbol is the one
  written (``NIFTY26DEC24FUT:NFO``, ``RELIANCE:BSE``).

Of the other exchanges OpenAlgo knows, Angel serves none (BCD, NCO, GLOBAL_INDEX, CRYPTO):
they are refused with the list of those it does serve.

The exchange type sent to the feed follows the segment (NSE 1, NFO 2, BSE 3, BFO 4, MCX 5,
NCDEX 7, CDS 13); prices of CDS come in units of 1e-7 rupee, all others in paise.
"""

from __future__ import annotations

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
from oaws.brokers.angel.errors import AngelError, AngelUnavailable, MasterMissing, describe_request_error
from oaws.brokers.api import Rejection
from oaws.brokers.masterkit import save_download, stale_days
from oaws.format import strike as strike_column
from oaws.instruments import Instrument
from oaws.options import CALL, PUT, OptionContract
from oaws.protocol.codes import SYMBOL_NOT_FOUND

log = logging.getLogger(__name__)

SEGMENT_TYPES = {"NSE": 1, "NFO": 2, "BSE": 3, "BFO": 4, "MCX": 5, "NCDEX": 7, "CDS": 13}
#: oaws exchange -> the segment (exch_seg) of its records in the master
EXCHANGE_SEGMENTS = {
    "NSE": "NSE",
    "NFO": "NFO",
    "BSE": "BSE",
    "BFO": "BFO",
    "MCX": "MCX",
    "NCDEX": "NCDEX",
    "CDS": "CDS",
    "NSE_INDEX": "NSE",
    "BSE_INDEX": "BSE",
    "MCX_INDEX": "MCX",
}
INDEX_EXCHANGES = {"NSE": "NSE_INDEX", "BSE": "BSE_INDEX", "MCX": "MCX_INDEX"}
INDEX_TYPE = "AMXIDX"
#: the instrument types of options on an index and on a stock (options on futures, MCX's OPTFUT, are not chained)
OPTION_TYPES = frozenset({"OPTIDX", "OPTSTK"})
#: The names users and OpenAlgo give the common indices, and Angel's symbols for them.
INDEX_ALIASES: dict[str, dict[str, str]] = {
    "NSE_INDEX": {
        "NIFTY": "Nifty 50",
        "BANKNIFTY": "Nifty Bank",
        "FINNIFTY": "Nifty Fin Service",
        "MIDCPNIFTY": "NIFTY MID SELECT",
        "NIFTYNXT50": "Nifty Next 50",
        "NIFTYIT": "Nifty IT",
        "INDIAVIX": "India VIX",
    },
    "BSE_INDEX": {"SENSEX": "SENSEX", "BANKEX": "BANKEX", "SENSEX50": "SNSX50"},
    "MCX_INDEX": {},
}
NSE_CASH_SERIES = ("BE", "BZ", "SM", "ST")
CDS_DIVISOR = 10_000_000.0
PAISE = 100.0

MASTER_FILE = "OpenAPIScripMaster.json"
INDEX_FILE = "angel-index.json"
INDEX_FORMAT = "oaws-angel-index-1"

# Columns of the index rows.
TOKEN, SYMBOL, NAME, SEGMENT, TYPE, EXPIRY, STRIKE, LOTSIZE, TICK = range(9)
_COLUMNS = ("token", "symbol", "name", "exch_seg", "instrumenttype", "expiry", "strike", "lotsize", "tick_size")
_SEGMENT_ORDER = {segment: i for i, segment in enumerate(SEGMENT_TYPES)}
_NORMALISE = re.compile(r"[\s\-_.]+")

Row = tuple[str, ...]


def normalise(text: str) -> str:
    return _NORMALISE.sub("", text).upper()


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an instrument lives on Angel's feed."""

    exchange_type: int
    token: str
    angel_symbol: str
    divisor: float


@dataclass(frozen=True, slots=True)
class Match:
    """A search result, with the ``SYMBOL:EXCHANGE`` that oaws commands accept for it."""

    instrument: str
    angel_symbol: str
    token: str
    exchange_type: int
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
            "type": self.instrument_type or "EQ",
            "expiry": self.expiry,
            "strike": strike_column(self.strike),
            "lot": str(self.lot_size),
            "name": self.name,
            "angel symbol": self.angel_symbol,
            "token": self.token,
        }


def _number(text: str, default: float = 0.0) -> float:
    try:
        return float(text)
    except ValueError:
        return default


class Master:
    """The instrument master in memory, with the lookups resolution and search need."""

    def __init__(self, rows: list[Row], source: str = "", built: float = 0.0) -> None:
        self.rows = rows
        self.source = source
        self.built = built
        self._by_symbol: dict[tuple[str, str], Row] = {}
        self._indices: dict[tuple[str, str], Row] = {}
        self._by_token: dict[tuple[int, str], Row] = {}
        index_names: dict[tuple[str, str], Row] = {}
        for row in rows:
            segment = row[SEGMENT]
            if segment not in SEGMENT_TYPES:
                continue
            self._by_token[(SEGMENT_TYPES[segment], row[TOKEN])] = row
            if row[TYPE] == INDEX_TYPE:
                self._indices.setdefault((segment, normalise(row[SYMBOL])), row)
                index_names.setdefault((segment, normalise(row[NAME])), row)
            else:
                self._by_symbol.setdefault((segment, row[SYMBOL].upper()), row)
        self._options: dict[str, list[Row]] | None = None  # name -> option rows, built when first asked
        for key, row in index_names.items():  # a symbol match wins over a name match
            self._indices.setdefault(key, row)
        self._index_alias = {
            (EXCHANGE_SEGMENTS[exchange], normalise(angel)): alias
            for exchange, table in INDEX_ALIASES.items()
            for alias, angel in table.items()
        }

    def __len__(self) -> int:
        return len(self.rows)

    # Resolution ------------------------------------------------------------------
    def find(self, instrument: Instrument) -> Row | None:
        segment = EXCHANGE_SEGMENTS.get(instrument.exchange)
        if segment is None:
            return None
        symbol = instrument.symbol.upper()
        if instrument.exchange in INDEX_ALIASES:
            alias = INDEX_ALIASES[instrument.exchange].get(normalise(symbol))
            return self._indices.get((segment, normalise(alias or symbol)))
        if segment == "NSE":
            for candidate in (f"{symbol}-EQ", symbol, *(f"{symbol}-{s}" for s in NSE_CASH_SERIES)):
                row = self._by_symbol.get((segment, candidate))
                if row is not None:
                    return row
            return None
        return self._by_symbol.get((segment, symbol))

    def resolve(self, instrument: Instrument) -> Resolved:
        """Angel's exchange type and token for ``instrument``; raises Rejection(SYMBOL_NOT_FOUND)."""
        if instrument.exchange not in EXCHANGE_SEGMENTS:
            served = ", ".join(EXCHANGE_SEGMENTS)
            raise Rejection(
                SYMBOL_NOT_FOUND, f"Angel One's feed does not serve {instrument.exchange} (it serves {served})"
            )
        row = self.find(instrument)
        if row is None:
            raise Rejection(SYMBOL_NOT_FOUND, self._not_found(instrument))
        segment = row[SEGMENT]
        return Resolved(SEGMENT_TYPES[segment], row[TOKEN], row[SYMBOL], CDS_DIVISOR if segment == "CDS" else PAISE)

    def _not_found(self, instrument: Instrument) -> str:
        message = f"{instrument} is not in Angel One's instrument master"
        if instrument.exchange in INDEX_EXCHANGES:
            index = Instrument(instrument.symbol, INDEX_EXCHANGES[instrument.exchange])
            if self.find(index) is not None:
                return f"{message}; the index is {index}"
        return f"{message}; try: oaws instruments search {instrument.symbol.split()[0]}"

    def row_for_token(self, exchange_type: int, token: str) -> Row | None:
        return self._by_token.get((exchange_type, token))

    # Options ---------------------------------------------------------------------
    def options(self, underlying: str) -> list[OptionContract]:
        """Every option (OPTIDX, OPTSTK of NFO and BFO) on ``underlying``, Angel's ``name``
        (``NIFTY``, ``RELIANCE``), any expiry; the symbol is Angel's, which is OpenAlgo's
        (``NIFTY29DEC2626000CE``), the strike in rupees (the master's is in paise)."""
        if self._options is None:
            self._options = {}
            for row in self.rows:
                if row[TYPE] in OPTION_TYPES and row[SEGMENT] in ("NFO", "BFO"):
                    self._options.setdefault(row[NAME].upper(), []).append(row)
        found = []
        for row in self._options.get(underlying.upper(), []):
            contract = _option_of(row)
            if contract is not None:
                found.append(contract)
        found.sort(key=lambda c: (c.expiry, c.strike, c.right))
        return found

    # Search ----------------------------------------------------------------------
    def instrument_of(self, row: Row) -> str:
        """How oaws commands write the instrument of ``row``."""
        segment, symbol = row[SEGMENT], row[SYMBOL]
        if row[TYPE] == INDEX_TYPE:
            name = self._index_alias.get((segment, normalise(symbol)), symbol.upper())
            return f"{name}:{INDEX_EXCHANGES.get(segment, segment)}"
        if segment == "NSE" and symbol.upper().endswith("-EQ"):
            return f"{symbol[:-3].upper()}:NSE"
        return f"{symbol.upper()}:{segment}"

    def search(self, text: str, exchange: str | None = None, limit: int = 20) -> list[Match]:
        """Instruments whose symbol or name contains ``text``: exact, then prefix, then anywhere."""
        needle = text.strip().upper()
        if not needle:
            return []
        segment = EXCHANGE_SEGMENTS.get(exchange.upper()) if exchange else None
        want_index = exchange.upper() in INDEX_ALIASES if exchange else None
        scored: list[tuple[int, int, int, str, Row]] = []
        for row in self.rows:
            if row[SEGMENT] not in SEGMENT_TYPES:
                continue
            if segment is not None and (row[SEGMENT] != segment or (row[TYPE] == INDEX_TYPE) != want_index):
                continue
            symbol, name = row[SYMBOL].upper(), row[NAME].upper()
            base = symbol.removesuffix("-EQ")
            if needle in (symbol, base, name):
                rank = 0
            elif symbol.startswith(needle) or name.startswith(needle):
                rank = 1
            elif needle in symbol or needle in name:
                rank = 2
            else:
                continue
            derivative = 1 if row[EXPIRY] else 0  # cash and indices before contracts, NSE before BSE
            scored.append((rank, derivative, _SEGMENT_ORDER.get(row[SEGMENT], 9), symbol, row))
        scored.sort(key=lambda s: s[:4])
        return [self._match(row) for *_, row in scored[:limit]]

    def _match(self, row: Row) -> Match:
        strike = _number(row[STRIKE], -1.0)
        return Match(
            instrument=self.instrument_of(row),
            angel_symbol=row[SYMBOL],
            token=row[TOKEN],
            exchange_type=SEGMENT_TYPES[row[SEGMENT]],
            name=row[NAME],
            instrument_type=row[TYPE],
            expiry=row[EXPIRY],
            strike=strike / 100 if strike > 0 else 0.0,
            lot_size=int(_number(row[LOTSIZE], 1)),
        )


_MONTHS = {
    m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)
}


def expiry_date(text: str) -> date | None:
    """The master's expiry (``29DEC2026``) as a date (English months whatever the locale); None
    when it is not one."""
    month = _MONTHS.get(text[2:5].upper())
    if len(text) != 9 or month is None or not (text[:2].isdigit() and text[5:].isdigit()):
        return None
    try:
        return date(int(text[5:]), month, int(text[:2]))
    except ValueError:
        return None


def _option_of(row: Row) -> OptionContract | None:
    """The option contract of a master row; None for a row that is not a well-formed one."""
    symbol = row[SYMBOL].upper()
    right = symbol[-2:]
    expiry = expiry_date(row[EXPIRY])
    strike = _number(row[STRIKE], -1.0) / PAISE
    if right not in (CALL, PUT) or expiry is None or strike <= 0:
        return None
    return OptionContract(
        underlying=row[NAME].upper(),
        expiry=expiry,
        strike=strike,
        right=right,
        symbol=symbol,
        exchange=row[SEGMENT],
        lot_size=int(_number(row[LOTSIZE], 1)) or 1,
    )


# Files -----------------------------------------------------------------------------
def rows_from_raw(data: bytes) -> list[Row]:
    """Rows of Angel's master JSON; raises ValueError when it is not one."""
    records = orjson.loads(data)
    if not isinstance(records, list) or not records:
        raise ValueError("not a JSON array of instrument records")
    rows: list[Row] = []
    for record in records:
        if not isinstance(record, dict) or "token" not in record or "exch_seg" not in record:
            raise ValueError("a record has no token or exch_seg")
        rows.append(tuple(str(record.get(c) or "") for c in _COLUMNS))
    return rows


def index_bytes(rows: list[Row], source: str, built: float | None = None) -> bytes:
    return orjson.dumps({"format": INDEX_FORMAT, "source": source, "built": built or time.time(), "rows": rows})


def read_master(path: Path) -> Master:
    """An oaws index or a raw Angel master; raises MasterMissing with the reason."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MasterMissing(f"cannot read the instrument master {path}: {exc.strerror}") from None
    try:
        parsed = orjson.loads(data)
        if isinstance(parsed, dict) and parsed.get("format") == INDEX_FORMAT:
            rows = [tuple(r) for r in parsed["rows"]]
            return Master(rows, str(parsed.get("source", path)), float(parsed.get("built", 0)))
        return Master(rows_from_raw(data), str(path), path.stat().st_mtime)
    except (ValueError, KeyError, TypeError) as exc:
        raise MasterMissing(f"{path} is not an Angel One instrument master: {exc}") from None


def master_dir() -> Path:
    return config.cache_dir() / "angel"


def load_master(instruments: str | os.PathLike[str] | None = None) -> Master:
    """The master from ``instruments`` if given, else the cached index; MasterMissing says how to get one."""
    if instruments:
        return read_master(Path(instruments).expanduser())
    index = master_dir() / INDEX_FILE
    if not index.exists():
        raise MasterMissing(
            "no Angel One instrument master here yet: run `oaws instruments update --broker angel` "
            "(or point OAWS_INSTRUMENTS at a copy of OpenAPIScripMaster.json)"
        )
    master = read_master(index)
    if (days := stale_days(master.built)) is not None:
        log.warning(
            "the Angel instrument master is %d days old; `oaws instruments update --broker angel` refreshes it", days
        )
    return master


class MasterNotSaved(AngelError):
    """The cache directory cannot take the instrument master (missing, not a directory, read-only, full)."""


def update_master(
    url: str, progress: Callable[[int, int | None], None] | None = None, timeout: float = 30.0
) -> tuple[Path, Master]:
    """Download the master from ``url`` into the cache, build the index; returns (index path, master).

    ``progress(done, total)`` is called as bytes arrive (total None when unknown). The old
    files stay in place until the new ones are complete and valid. Raises AngelUnavailable
    (with the reason) when the download fails, MasterNotSaved when the cache cannot take it
    (checked before downloading), MasterMissing when what arrived is not a master.
    """
    import requests

    directory = master_dir()

    def parse(data: bytes) -> list[Row]:
        try:
            return rows_from_raw(data)
        except ValueError as exc:
            raise MasterMissing(f"{url} did not send an Angel One instrument master: {exc}") from None

    def unreachable(exc: Exception) -> AngelUnavailable:
        reason = describe_request_error(exc, url)
        return AngelUnavailable(f"cannot download the instrument master from {url}: {reason}")

    index_path, rows = save_download(
        directory,
        MASTER_FILE,
        INDEX_FILE,
        open_response=lambda: requests.get(url, stream=True, timeout=timeout),
        parse=parse,
        index=lambda rows: index_bytes(rows, url),
        not_saved=lambda exc: MasterNotSaved(
            f"cannot save the instrument master in {directory}: {exc.strerror or exc}"
        ),
        bad_status=lambda status: AngelUnavailable(f"cannot download the instrument master from {url}: {status}"),
        unreachable=unreachable,
        progress=progress,
    )
    return index_path, Master(rows, url)


def _completion_rows(instruments: str | None) -> list[Any]:
    """The index's rows as parsed (a raw master through read_master); [] without one."""
    path = Path(instruments).expanduser() if instruments else master_dir() / INDEX_FILE
    if not path.is_file():
        return []
    parsed = orjson.loads(path.read_bytes())
    if isinstance(parsed, dict) and parsed.get("format") == INDEX_FORMAT:
        return parsed["rows"]
    del parsed
    return read_master(path).rows


def completion_names(instruments: str | None = None) -> dict[str, str]:
    """``SYMBOL:EXCHANGE`` -> the master's name of every equity and index (Angel's names are mostly
    the symbol again; an index's is "Nifty 50"); {} without a master."""
    naming = Master([])
    return {
        naming.instrument_of(row): row[NAME]
        for row in _completion_rows(instruments)
        if row[SEGMENT] in SEGMENT_TYPES and row[NAME] and not row[EXPIRY]
    }


def completion_instruments(instruments: str | None = None) -> list[str]:
    """Every instrument of the master as ``SYMBOL:EXCHANGE``, for the watch's completion; [] without one.

    The index's rows as parsed, not a whole Master (tuples and lookup tables): about half
    the time and a fraction of the memory the watch keeps afterwards. A raw master (only
    through OAWS_INSTRUMENTS) goes through read_master, which knows its records; never
    load_master, whose warning about an old index would print over the screen.
    """
    from oaws.instruments import EXCHANGES, valid_symbol

    rows = _completion_rows(instruments)
    naming = Master([])  # only how oaws writes a record's instrument
    exchanges = frozenset(EXCHANGES)
    found: dict[str, None] = {}
    for row in rows:
        if row[SEGMENT] not in SEGMENT_TYPES:
            continue
        text = naming.instrument_of(row)
        symbol, _, exchange = text.rpartition(":")
        if exchange in exchanges and valid_symbol(symbol):
            found[text] = None
    return list(found)


class AngelMaster:
    """Angel One's instrument master as the broker plugin offers it (``oaws.brokers.api.InstrumentMaster``)."""

    exchanges = tuple(EXCHANGE_SEGMENTS)

    def update(self, url: str | None, progress: Callable[[int, int | None], None] | None) -> tuple[Path, int]:
        from oaws.brokers.angel.settings import load_settings

        path, master = update_master(url or load_settings().master_url, progress=progress)
        return path, len(master)

    def search(self, text: str, exchange: str | None, limit: int, source: str | None) -> list[Match]:
        from oaws.brokers.angel.settings import load_settings

        return load_master(load_settings(instruments=source).instruments).search(text, exchange, limit)

    def instruments(self) -> list[str]:
        from oaws.brokers.angel.settings import load_settings

        return completion_instruments(load_settings().instruments)

    def options(self, underlying: str) -> list[OptionContract]:
        """Every option contract on ``underlying`` the master lists (the option chain's source);
        [] when there is none or no master."""
        from oaws.brokers.angel.settings import load_settings

        try:
            return load_master(load_settings().instruments).options(underlying)
        except MasterMissing:
            return []

    def names(self) -> dict[str, str]:
        """The master's names of its equities and indices, for the add dialog's search by name."""
        from oaws.brokers.angel.settings import load_settings

        return completion_names(load_settings().instruments)
