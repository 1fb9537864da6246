"""A Noren broker's symbol masters: download, a compact index, ``SYMBOL:EXCHANGE`` resolution, search.

Noren hosts publish one file per exchange at the host's root, not under the API path:
Shoonya ``NSE_symbols.txt.zip`` (a zip holding ``NSE_symbols.txt``) and the same for NFO,
CDS, MCX, BSE and BFO; Flattrade plain CSVs (``NSE_Equity.csv``, ``Nfo_Index_Derivatives.csv``...,
as OpenAlgo's ``broker/*/database/master_contract_db.py`` download them). Each is a CSV with a
header; Shoonya's lines end with a comma. Columns are found by name, whatever their case
(``TradingSymbol`` / ``Tradingsymbol``, ``StrikePrice`` / ``Strike``), so both read alike.

``oaws instruments update --broker NAME`` downloads every file, and only when all are good
replaces the cached index (``{cache}/noren/NAME/index.json``): a bad or truncated download
keeps the old one.

How an oaws instrument finds its Noren scrip, as OpenAlgo's Shoonya mapping names them:

- ``RELIANCE:NSE``: ``RELIANCE-EQ`` (then ``-BE``, ``-BZ``, ``-SM``, ``-ST``, then the symbol as written);
  ``RELIANCE-EQ:NSE`` (Noren's trading symbol) works too.
- ``NIFTY:NSE_INDEX``: an NSE scrip of instrument ``INDEX`` by OpenAlgo's name (NIFTY,
  BANKNIFTY, FINNIFTY, MIDCPNIFTY, NIFTYNXT50, INDIAVIX...) or Noren's (``Nifty 50``,
  ``NIFTY INDEX``), compared without case, spaces or dashes; ``SENSEX:BSE_INDEX`` likewise
  (Shoonya's BSE file lists no index: SENSEX ``BSE|1`` and BANKEX ``BSE|12`` are added, as OpenAlgo does).
- ``BSE``: the trading symbol as written.
- NFO, BFO, CDS, MCX: OpenAlgo's names (``NIFTY26DEC24FUT``, ``NIFTY26DEC2424000CE``: name,
  expiry ``DDMMMYY``, strike, CE/PE) and Noren's trading symbol as written (``NIFTY26DEC24C24000``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from oaws import config
from oaws.brokers.api import Rejection
from oaws.brokers.masterkit import stale_days, status_text, stream_body, write_atomic
from oaws.brokers.noren.errors import NorenError, NorenMasterMissing, NorenUnavailable, describe_request_error
from oaws.brokers.noren.family import HOSTS
from oaws.format import strike as strike_column
from oaws.instruments import Instrument
from oaws.options import OptionContract
from oaws.protocol.codes import SYMBOL_NOT_FOUND

log = logging.getLogger(__name__)

#: the exchanges of Noren's masters, in the order they are listed and searched
NOREN_EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "CDS", "MCX")
#: oaws exchange -> Noren exchange
EXCHANGE_OF = {
    "NSE": "NSE",
    "BSE": "BSE",
    "NFO": "NFO",
    "BFO": "BFO",
    "CDS": "CDS",
    "MCX": "MCX",
    "NSE_INDEX": "NSE",
    "BSE_INDEX": "BSE",
}
INDEX_EXCHANGE = {"NSE": "NSE_INDEX", "BSE": "BSE_INDEX"}
#: Noren's instrument types of indices (Shoonya INDEX, Flattrade's BSE UNDIND)
INDEX_TYPES = frozenset({"INDEX", "UNDIND"})
#: NSE cash series, in the order ``SYMBOL:NSE`` tries them
CASH_SERIES = ("EQ", "BE", "BZ", "SM", "ST")
#: Noren's index names (without case, spaces or dashes) -> OpenAlgo's (its master_contract_db overrides)
INDEX_NAMES = {
    "NIFTY50": "NIFTY",
    "NIFTYINDEX": "NIFTY",
    "NIFTYBANK": "BANKNIFTY",
    "BANKNIFTYINDEX": "BANKNIFTY",
    "NIFTYFIN": "FINNIFTY",
    "NIFTYFINSERVICE": "FINNIFTY",
    "NIFTYFINANCIALSERVICES": "FINNIFTY",
    "FINNIFTYINDEX": "FINNIFTY",
    "NIFTYNEXT50": "NIFTYNXT50",
    "NIFTYMIDSELECT": "MIDCPNIFTY",
    "NIFTYMIDCAPSELECT": "MIDCPNIFTY",
    "MIDCPNIFTYINDEX": "MIDCPNIFTY",
    "INDIAVIX": "INDIAVIX",
    "SENSEXINDEX": "SENSEX",
    "BANKEXINDEX": "BANKEX",
}
#: BSE indices Shoonya's BSE file leaves out (OpenAlgo adds the same two by hand)
BSE_INDICES = (("1", "SENSEX"), ("12", "BANKEX"))

#: each host's files, by Noren exchange (Shoonya's names for a host not listed)
FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "shoonya": {e: (f"{e}_symbols.txt.zip",) for e in NOREN_EXCHANGES},
    "flattrade": {
        "NSE": ("NSE_Equity.csv",),
        "BSE": ("BSE_Equity.csv",),
        "NFO": ("Nfo_Equity_Derivatives.csv", "Nfo_Index_Derivatives.csv"),
        "BFO": ("Bfo_Equity_Derivatives.csv", "Bfo_Index_Derivatives.csv"),
        "CDS": ("Currency_Derivatives.csv",),
        "MCX": ("Commodity.csv",),
    },
}

INDEX_FORMAT = "oaws-noren-index-1"

# Columns of a row
EXCH, TOKEN, TSYM, NAME, ITYPE, EXPIRY, OTYPE, STRIKE, LOT, TICK = range(10)
#: header names (lower case, no spaces or underscores) -> the row's column
_HEADER = {
    "exchange": EXCH,
    "exch": EXCH,
    "token": TOKEN,
    "tradingsymbol": TSYM,
    "symbol": NAME,
    "instrument": ITYPE,
    "expiry": EXPIRY,
    "optiontype": OTYPE,
    "strikeprice": STRIKE,
    "strike": STRIKE,
    "lotsize": LOT,
    "ticksize": TICK,
}
_NORMALISE = re.compile(r"[\s\-_.]+")

Row = tuple[str, ...]


def normalise(text: str) -> str:
    return _NORMALISE.sub("", text).upper()


def _strike_text(strike: str) -> str:
    try:
        value = float(strike)
    except ValueError:
        return strike
    return str(int(value)) if value.is_integer() else f"{value:.4f}".rstrip("0").rstrip(".")


def _expiry_code(expiry: str) -> str:
    """``26-DEC-2024`` -> ``26DEC24``; '' when it cannot be read."""
    for pattern in ("%d-%b-%Y", "%d-%b-%y", "%d%b%Y", "%d%b%y", "%Y-%m-%d"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(expiry.strip(), pattern).strftime("%d%b%y").upper()
    return ""


def _expiry_date(expiry: str) -> date | None:
    """``26-DEC-2024`` (and the other spellings ``_expiry_code`` reads) as a date; None when it cannot be read."""
    code = _expiry_code(expiry)
    if not code:
        return None
    return datetime.strptime(code, "%d%b%y").date()


def openalgo_symbol(row: Row) -> str:
    """How OpenAlgo (and oaws) writes the scrip of ``row`` (its exchange is ``oaws_exchange(row)``)."""
    exchange, tsym = row[EXCH], row[TSYM].upper()
    if row[ITYPE].upper() in INDEX_TYPES:
        name = normalise(tsym)
        return INDEX_NAMES.get(name, name)
    if exchange == "NSE":
        base, _, series = tsym.rpartition("-")
        return base if base and series in CASH_SERIES else tsym
    if exchange == "BSE":
        return tsym
    expiry = _expiry_code(row[EXPIRY])
    if not expiry:
        return tsym
    name = row[NAME].upper().strip() or re.match(r"[A-Z&]*", tsym).group(0)  # type: ignore[union-attr]
    option = row[OTYPE].upper().strip()
    if option in ("", "XX") or row[ITYPE].upper().startswith("FUT"):
        return f"{name}{expiry}FUT"
    return f"{name}{expiry}{_strike_text(row[STRIKE])}{option}"


def oaws_exchange(row: Row) -> str:
    return INDEX_EXCHANGE.get(row[EXCH], row[EXCH]) if row[ITYPE].upper() in INDEX_TYPES else row[EXCH]


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an instrument lives on Noren's feed."""

    exchange: str  #: Noren's (NSE for an NSE index)
    token: str
    tsym: str
    instrument: Instrument  #: the instrument as oaws writes it (``RELIANCE:NSE`` for ``RELIANCE-EQ:NSE``)
    lot_size: int = 1


@dataclass(frozen=True, slots=True)
class Match:
    instrument: str
    noren_symbol: str
    token: str
    exchange: str
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
            "noren symbol": self.noren_symbol,
            "token": self.token,
        }


def _int(text: str, default: int = 1) -> int:
    try:
        return int(float(text))
    except ValueError:
        return default


class Master:
    """A Noren broker's masters in memory, with the lookups resolution and search need."""

    def __init__(self, rows: list[Row], host: str = "", source: str = "", built: float = 0.0) -> None:
        self.host = host
        self.source = source
        self.built = built
        self.rows = list(rows)
        if any(r[EXCH] == "BSE" for r in self.rows) and not any(
            r[EXCH] == "BSE" and r[ITYPE].upper() in INDEX_TYPES for r in self.rows
        ):
            taken = {r[TOKEN] for r in self.rows if r[EXCH] == "BSE"}
            for token, name in BSE_INDICES:
                if token not in taken:
                    self.rows.append(("BSE", token, name, name, "INDEX", "", "", "", "1", "0.05"))
        self.titles = {r: (openalgo_symbol(r), oaws_exchange(r)) for r in self.rows}
        self._by_name: dict[tuple[str, str], Row] = {}
        self._by_tsym: dict[tuple[str, str], Row] = {}
        self._indices: dict[tuple[str, str], Row] = {}
        self._by_token: dict[tuple[str, str], Row] = {}
        for row in self.rows:
            self._by_token.setdefault((row[EXCH], row[TOKEN]), row)
            symbol, exchange = self.titles[row]
            if exchange in INDEX_EXCHANGE.values():
                for name in (symbol, row[TSYM], row[NAME]):
                    if name:
                        self._indices.setdefault((exchange, normalise(name)), row)
                continue
            self._by_tsym.setdefault((row[EXCH], row[TSYM].upper()), row)
            self._by_name.setdefault((exchange, symbol), row)
        # NSE cash: the -EQ scrip wins over other series of the same name
        for (exchange, _), row in list(self._by_tsym.items()):
            if exchange == "NSE" and row[TSYM].upper().endswith("-EQ"):
                self._by_name[("NSE", self.titles[row][0])] = row
        for alias, name in INDEX_NAMES.items():
            for exchange in INDEX_EXCHANGE.values():
                row = self._indices.get((exchange, name))
                if row is not None:
                    self._indices.setdefault((exchange, alias), row)

    def __len__(self) -> int:
        return len(self.rows)

    # Resolution -----------------------------------------------------------------------
    def find(self, instrument: Instrument) -> Row | None:
        exchange = instrument.exchange
        noren = EXCHANGE_OF.get(exchange)
        if noren is None:
            return None
        symbol = instrument.symbol.upper().strip()
        if exchange in INDEX_EXCHANGE.values():
            return self._indices.get((exchange, normalise(symbol)))
        row = self._by_name.get((exchange, symbol))
        if row is not None:
            return row
        if exchange == "NSE":
            for series in CASH_SERIES:
                row = self._by_tsym.get(("NSE", f"{symbol}-{series}"))
                if row is not None:
                    return row
        return self._by_tsym.get((noren, symbol))

    def resolve(self, instrument: Instrument) -> Resolved:
        """Noren's exchange and token for ``instrument``; raises Rejection(SYMBOL_NOT_FOUND) with a hint."""
        title = HOSTS[self.host].title if self.host in HOSTS else "Noren"
        if instrument.exchange not in EXCHANGE_OF:
            served = ", ".join(EXCHANGE_OF)
            raise Rejection(
                SYMBOL_NOT_FOUND, f"{title}'s feed does not serve {instrument.exchange} (it serves {served})"
            )
        row = self.find(instrument)
        if row is None:
            raise Rejection(SYMBOL_NOT_FOUND, self._not_found(instrument, title))
        symbol, exchange = self.titles[row]
        return Resolved(row[EXCH], row[TOKEN], row[TSYM], Instrument(symbol, exchange), _int(row[LOT]))

    def _not_found(self, instrument: Instrument, title: str) -> str:
        message = f"{instrument} is not in {title}'s symbol master"
        if instrument.exchange in INDEX_EXCHANGE:
            index = Instrument(instrument.symbol, INDEX_EXCHANGE[instrument.exchange])
            if self.find(index) is not None:
                return f"{message}; the index is {index}"
        word = instrument.symbol.split()[0] if instrument.symbol.split() else instrument.symbol
        broker = f" --broker {self.host}" if self.host else ""
        return f"{message}; try: oaws instruments search {word}{broker}"

    def row_of(self, exchange: str, token: str) -> Row | None:
        return self._by_token.get((exchange, token))

    def instrument_of(self, exchange: str, token: str) -> Instrument | None:
        """The oaws instrument of Noren's (exchange, token), None when the master has no such scrip."""
        row = self._by_token.get((exchange, token))
        if row is None:
            return None
        symbol, oaws = self.titles[row]
        return Instrument(symbol, oaws)

    def instrument_of_tsym(self, exchange: str, tsym: str) -> Instrument | None:
        row = self._by_tsym.get((exchange, tsym.upper()))
        if row is None:
            return None
        symbol, oaws = self.titles[row]
        return Instrument(symbol, oaws)

    # Search ---------------------------------------------------------------------------------
    def search(self, text: str, exchange: str | None = None, limit: int = 20) -> list[Match]:
        """Scrips whose symbol, trading symbol or name holds ``text``: exact, then prefix, then anywhere."""
        needle = text.strip().upper()
        if not needle:
            return []
        wanted = exchange.upper() if exchange else None
        order = {e: i for i, e in enumerate(NOREN_EXCHANGES)}
        scored: list[tuple[int, int, int, str, Row]] = []
        for row in self.rows:
            symbol, oaws = self.titles[row]
            if wanted is not None and oaws != wanted:
                continue
            names = (symbol, row[TSYM].upper(), row[NAME].upper())
            if needle in names or normalise(needle) in (normalise(symbol), normalise(row[TSYM])):
                rank = 0
            elif any(n.startswith(needle) for n in names):
                rank = 1
            elif any(needle in n for n in names):
                rank = 2
            else:
                continue
            scored.append((rank, 1 if row[EXPIRY] else 0, order.get(row[EXCH], 9), symbol, row))
        scored.sort(key=lambda s: s[:4])
        return [self._match(row) for *_, row in scored[:limit]]

    def _match(self, row: Row) -> Match:
        symbol, exchange = self.titles[row]
        try:
            strike = float(row[STRIKE]) if row[STRIKE] else 0.0
        except ValueError:
            strike = 0.0
        return Match(
            instrument=f"{symbol}:{exchange}",
            noren_symbol=row[TSYM],
            token=row[TOKEN],
            exchange=row[EXCH],
            name=row[NAME],
            instrument_type=row[ITYPE],
            expiry=row[EXPIRY],
            strike=max(strike, 0.0),
            lot_size=_int(row[LOT]),
        )

    def options(self, underlying: str) -> list[OptionContract]:
        """Every option (OPTIDX, OPTSTK) of NFO and BFO on ``underlying`` (the files' ``Symbol``:
        ``NIFTY``, ``RELIANCE``), any expiry, under its OpenAlgo symbol."""
        wanted = underlying.strip().upper()
        found = []
        for row in self.rows:
            if row[EXCH] not in ("NFO", "BFO") or row[ITYPE].upper() not in ("OPTIDX", "OPTSTK"):
                continue
            right = row[OTYPE].upper().strip()
            if row[NAME].upper().strip() != wanted or right not in ("CE", "PE"):
                continue
            expiry = _expiry_date(row[EXPIRY])
            try:
                strike = float(row[STRIKE])
            except ValueError:
                continue
            if expiry is not None and strike > 0:
                found.append(
                    OptionContract(wanted, expiry, strike, right, openalgo_symbol(row), row[EXCH], _int(row[LOT]))
                )
        found.sort(key=lambda c: (c.expiry, c.strike, c.right))
        return found

    def instruments(self) -> list[str]:
        from oaws.instruments import EXCHANGES, valid_symbol

        found: dict[str, None] = {}
        for symbol, exchange in self.titles.values():
            if exchange in EXCHANGES and valid_symbol(symbol):
                found[f"{symbol}:{exchange}"] = None
        return list(found)

    def names(self) -> dict[str, str]:
        """``SYMBOL:EXCHANGE`` -> the scrip's name (Noren's ``Symbol`` column) of every equity and index."""
        return {
            f"{symbol}:{exchange}": row[NAME]
            for row, (symbol, exchange) in self.titles.items()
            if row[NAME] and not row[EXPIRY]
        }


# Files ---------------------------------------------------------------------------------------
def rows_of_text(text: str, exchange: str | None = None, *, allow_empty: bool = False) -> list[Row]:
    """The rows of one master file's text; ValueError when it is not one (or holds none, unless ``allow_empty``)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise ValueError("the file is empty")
    columns: dict[int, int] = {}
    for i, name in enumerate(header):
        column = _HEADER.get(re.sub(r"[\s_]+", "", name).lower())
        if column is not None and column not in columns.values():
            columns[i] = column
    if TOKEN not in columns.values() or TSYM not in columns.values():
        raise ValueError("no Token and TradingSymbol columns")
    if EXCH not in columns.values() and exchange is None:
        raise ValueError("no Exchange column")
    rows: list[Row] = []
    for line in reader:
        if not any(cell.strip() for cell in line):
            continue
        cells = ["" for _ in range(10)]
        for i, column in columns.items():
            if i < len(line):
                cells[column] = line[i].strip()
        if not cells[EXCH]:
            cells[EXCH] = exchange or ""
        cells[EXCH] = cells[EXCH].upper()
        if not cells[TOKEN] or not cells[TSYM]:
            continue  # Noren's placeholder rows
        rows.append(tuple(cells))
    if not rows and not allow_empty:
        raise ValueError("no scrips in it")
    return rows


def rows_of_bytes(data: bytes, exchange: str | None = None, *, allow_empty: bool = False) -> list[Row]:
    """The rows of a master file: a zip of CSV/txt files, or one CSV/txt; ValueError when it is not one."""
    texts: list[bytes] = []
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.infolist():
                    if not member.is_dir() and member.file_size < 1 << 30:
                        texts.append(archive.read(member))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
            raise ValueError(f"a broken zip ({exc.__class__.__name__})") from None
        if not texts:
            raise ValueError("an empty zip")
    else:
        texts.append(data)
    rows: list[Row] = []
    for raw in texts:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("not text") from None
        rows.extend(rows_of_text(text, exchange, allow_empty=True))
    if not rows and not allow_empty:
        raise ValueError("no scrips in it")
    return rows


def index_bytes(rows: list[Row], host: str, source: str, built: float | None = None) -> bytes:
    body = {"format": INDEX_FORMAT, "host": host, "source": source, "built": built or time.time(), "rows": rows}
    return orjson.dumps(body)


def read_master(path: Path, host: str = "") -> Master:
    """An oaws index or one of Noren's master files; NorenMasterMissing with the reason."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NorenMasterMissing(f"cannot read the symbol master {path}: {exc.strerror}") from None
    if data[:1] == b"{":
        try:
            parsed = orjson.loads(data)
            if isinstance(parsed, dict) and parsed.get("format") == INDEX_FORMAT:
                rows = [tuple(str(c) for c in r) for r in parsed["rows"] if isinstance(r, list) and len(r) == 10]
                return Master(
                    rows,
                    host or str(parsed.get("host", "")),
                    str(parsed.get("source", path)),
                    float(parsed.get("built", 0)),
                )
        except (ValueError, KeyError, TypeError):
            pass
    try:
        return Master(rows_of_bytes(data), host, str(path), path.stat().st_mtime)
    except ValueError as exc:
        raise NorenMasterMissing(f"{path} is not a Noren symbol master: {exc}") from None


def master_dir(name: str) -> Path:
    return config.cache_dir() / "noren" / name


def index_path(name: str) -> Path:
    return master_dir(name) / "index.json"


def load_master(name: str, instruments: str | os.PathLike[str] | None = None) -> Master:
    """The master from ``instruments`` if given, else the cached index; NorenMasterMissing says how to get one."""
    if instruments:
        return read_master(Path(instruments).expanduser(), name)
    path = index_path(name)
    if not path.exists():
        title = HOSTS[name].title if name in HOSTS else name
        raise NorenMasterMissing(
            f"no {title} symbol master here yet: run `oaws instruments update --broker {name}` "
            "(or point OAWS_INSTRUMENTS at one of its files)"
        )
    master = read_master(path, name)
    if (days := stale_days(master.built)) is not None:
        log.warning(
            "the %s symbol master is %d days old; `oaws instruments update --broker %s` refreshes it", name, days, name
        )
    return master


class MasterNotSaved(NorenError):
    """The cache directory cannot take the master."""


def files_of(name: str) -> dict[str, tuple[str, ...]]:
    return FILES.get(name, FILES["shoonya"])


def _download(
    url: str, into: io.BytesIO, timeout: float, done: int, progress: Callable[[int, int | None], None] | None
) -> int:
    import requests

    with requests.get(url, stream=True, timeout=timeout) as response:
        if response.status_code != 200:
            raise NorenUnavailable(f"cannot download the symbol master {url}: {status_text(response)}")
        along = None
        if progress is not None:
            report = progress
            along = lambda got, length: report(done + got, done + length if length else None)  # noqa: E731
        got, length = stream_body(response, into.write, along)
        if length is not None and got != length:
            raise NorenMasterMissing(
                f"the download of {url} broke off ({got} of {length} bytes); the old master is kept"
            )
    return got


def update_master(
    name: str,
    url: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30.0,
) -> tuple[Path, Master]:
    """Download every exchange's file from ``url`` (else the host's master_url) and build the index.

    All or nothing: the cached index is replaced only when every file arrived whole and
    reads as a master. Raises NorenUnavailable for the network, NorenMasterMissing for a
    bad file, MasterNotSaved when the cache cannot take it.
    """
    import requests

    from oaws.brokers.noren.session import join
    from oaws.brokers.noren.settings import load_settings

    root = url or load_settings(name).master_url
    rows: list[Row] = []
    done = 0
    for exchange, names in files_of(name).items():
        for file in names:
            address = join(root, file)
            buffer = io.BytesIO()
            try:
                done += _download(address, buffer, timeout, done, progress)
            except requests.RequestException as exc:
                reason = describe_request_error(exc, address)
                raise NorenUnavailable(f"cannot download the symbol master {address}: {reason}") from None
            try:
                # a host's segment may list nothing today (Flattrade's BSE stock derivatives): a header is enough
                rows.extend(rows_of_bytes(buffer.getvalue(), exchange, allow_empty=len(names) > 1))
            except ValueError as exc:
                raise NorenMasterMissing(
                    f"{address} is not a Noren symbol master ({exc}); the old master is kept"
                ) from None
    if not rows:
        raise NorenMasterMissing(f"{root} sent symbol masters without a single scrip; the old master is kept")
    path = index_path(name)
    try:
        write_atomic(path, index_bytes(rows, name, root))
    except OSError as exc:
        raise MasterNotSaved(f"cannot save the symbol master in {path.parent}: {exc.strerror or exc}") from None
    return path, Master(rows, name, root)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


class NorenMaster:
    """A Noren broker's master as its plugin offers it (``oaws.brokers.api.InstrumentMaster``)."""

    exchanges = tuple(EXCHANGE_OF)

    def __init__(self, name: str) -> None:
        self.name = name

    def update(self, url: str | None, progress: Callable[[int, int | None], None] | None) -> tuple[Path, int]:
        path, master = update_master(self.name, url, progress)
        return path, len(master)

    def search(self, text: str, exchange: str | None, limit: int, source: str | None) -> list[Match]:
        from oaws.brokers.noren.settings import load_settings

        return load_master(self.name, source or load_settings(self.name).instruments).search(text, exchange, limit)

    def instruments(self) -> list[str]:
        from oaws.brokers.noren.settings import load_settings

        try:
            with _quiet():
                return load_master(self.name, load_settings(self.name).instruments).instruments()
        except NorenError:
            return []

    def options(self, underlying: str) -> list[OptionContract]:
        """Every option contract on ``underlying`` the master lists (the option chain's source);
        [] when there is none or no master."""
        from oaws.brokers.noren.settings import load_settings

        try:
            with _quiet():
                return load_master(self.name, load_settings(self.name).instruments).options(underlying)
        except NorenError:
            return []

    def names(self) -> dict[str, str]:
        from oaws.brokers.noren.settings import load_settings

        try:
            with _quiet():
                return load_master(self.name, load_settings(self.name).instruments).names()
        except NorenError:
            return {}
