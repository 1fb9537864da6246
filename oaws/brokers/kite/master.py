"""Zerodha Kite's instrument dump: download, a fast index, symbol resolution, search.

Kite publishes every instrument it serves as one CSV (``GET /instruments``, tens of MB,
rebuilt each morning) with the columns ``instrument_token, exchange_token, tradingsymbol,
name, last_price, expiry, strike, tick_size, lot_size, instrument_type, segment,
exchange``. ``oaws instruments update --broker kite`` downloads it into the cache and
writes beside it a compact index (the columns used and each row's oaws name, read back
with orjson); the feed and ``oaws instruments search`` load the index.

How a Kite row is named in oaws (``SYMBOL:EXCHANGE``), following OpenAlgo's own Kite
master (broker/zerodha/database/master_contract_db.py) so that the names clients already
send work unchanged:

- Exchanges NSE, BSE, NFO, BFO, CDS, BCD, MCX and NCO keep their names; ``GLOBAL`` and
  ``NSEIX`` (foreign indices, GIFT NIFTY) become GLOBAL_INDEX. Rows of any other exchange,
  and CDS's index rows (OpenAlgo's CDS_INDEX, which oaws does not know), are left out.
- Segment ``INDICES``: NSE -> NSE_INDEX, BSE -> BSE_INDEX, MCX -> MCX_INDEX, with
  OpenAlgo's names (``NIFTY 50`` -> NIFTY, ``NIFTY BANK`` -> BANKNIFTY, ``SNSX50`` ->
  SENSEX50, see the tables below); an index no table names keeps its tradingsymbol.
  The names users type resolve too: an index is found by its oaws name, its
  tradingsymbol or its name, compared without case, spaces, dashes or dots
  (``NIFTY 50:NSE_INDEX``, ``nifty50:NSE_INDEX`` and ``NIFTY:NSE_INDEX`` are one index).
- Futures: ``name + expiry as DDMMMYY + FUT`` (NIFTY26DEC24FUT); options: ``name + DDMMMYY
  + strike + CE/PE``, the strike without ``.0`` when whole (NIFTY26DEC2424000CE,
  USDINR26DEC2483.25CE). Kite's own tradingsymbol (NIFTY24D2624000CE, NIFTY24DECFUT)
  resolves to the same token.
- Everything else (equities, ETFs, bonds): the tradingsymbol as written (RELIANCE:NSE).
"""

from __future__ import annotations

import csv
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
from oaws.brokers.kite.errors import KiteError, KiteMasterMissing, KiteUnavailable
from oaws.brokers.masterkit import save_download, stale_days
from oaws.format import strike as strike_column
from oaws.instruments import Instrument
from oaws.options import OptionContract
from oaws.protocol.codes import SYMBOL_NOT_FOUND

log = logging.getLogger(__name__)

#: the dump's columns, in Kite's order
CSV_COLUMNS = (
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
#: Kite's exchange -> oaws's (for rows outside the INDICES segment)
EXCHANGE_MAP = {
    "NSE": "NSE",
    "BSE": "BSE",
    "NFO": "NFO",
    "BFO": "BFO",
    "CDS": "CDS",
    "BCD": "BCD",
    "MCX": "MCX",
    "NCO": "NCO",
    "GLOBAL": "GLOBAL_INDEX",
    "NSEIX": "GLOBAL_INDEX",
}
#: Kite's exchange of an INDICES row -> oaws's (CDS's indices have no oaws exchange)
INDEX_EXCHANGE_MAP = {"NSE": "NSE_INDEX", "BSE": "BSE_INDEX", "MCX": "MCX_INDEX"}
INDEX_SEGMENT = "INDICES"
#: the exchanges oaws serves from Kite, for ``search --exchange`` and the refusal's list
EXCHANGES = (
    "NSE",
    "BSE",
    "NFO",
    "BFO",
    "CDS",
    "BCD",
    "MCX",
    "NCO",
    "NSE_INDEX",
    "BSE_INDEX",
    "MCX_INDEX",
    "GLOBAL_INDEX",
)

#: OpenAlgo's names of NSE indices whose name is not just the tradingsymbol without spaces
NSE_INDEX_NAMES = {
    "NIFTY 50": "NIFTY",
    "NIFTY NEXT 50": "NIFTYNXT50",
    "NIFTY FIN SERVICE": "FINNIFTY",
    "NIFTY BANK": "BANKNIFTY",
    "NIFTY MID SELECT": "MIDCPNIFTY",
}
#: NSE indices OpenAlgo names by their tradingsymbol without spaces (an index not here keeps its spaces)
NSE_INDEX_SQUEEZED = frozenset(
    """INDIA VIX|HANGSENG BEES NAV|NIFTY 100|NIFTY 200|NIFTY 500|NIFTY ALPHA 50|NIFTY AUTO|NIFTY COMMODITIES|
    NIFTY CONSUMPTION|NIFTY CPSE|NIFTY DIV OPPS 50|NIFTY ENERGY|NIFTY FMCG|NIFTY GROWSECT 15|NIFTY INFRA|NIFTY IT|
    NIFTY MEDIA|NIFTY METAL|NIFTY MNC|NIFTY PHARMA|NIFTY PSE|NIFTY PSU BANK|NIFTY PVT BANK|NIFTY REALTY|
    NIFTY SERV SECTOR|NIFTY MID LIQ 15|NIFTY MIDCAP 50|NIFTY MIDCAP 100|NIFTY MIDCAP 150|NIFTY MIDSML 400|
    NIFTY SMLCAP 50|NIFTY SMLCAP 100|NIFTY SMLCAP 250|NIFTY100 EQL WGT|NIFTY100 LIQ 15|NIFTY100 LOWVOL30|
    NIFTY100 QUALTY30|NIFTY200 QUALTY30|NIFTY50 DIV POINT|NIFTY50 EQL WGT|NIFTY50 PR 1X INV|NIFTY50 PR 2X LEV|
    NIFTY50 TR 1X INV|NIFTY50 TR 2X LEV|NIFTY50 VALUE 20|NIFTY GS 10YR|NIFTY GS 10YR CLN|NIFTY GS 11 15YR|
    NIFTY GS 15YRPLUS|NIFTY GS 4 8YR|NIFTY GS 8 13YR|NIFTY GS COMPSITE""".replace("\n", "")
    .replace("    ", "")
    .split("|")
)
#: OpenAlgo's names of BSE indices (only in BSE_INDEX: equities share some of these words)
BSE_INDEX_NAMES = {
    "SNSX50": "SENSEX50",
    "SNXT50": "BSESENSEXNEXT50",
    "MID150": "BSE150MIDCAPINDEX",
    "LMI250": "BSE250LARGEMIDCAPINDEX",
    "MSL400": "BSE400MIDSMALLCAPINDEX",
    "AUTO": "BSEAUTO",
    "BSE CG": "BSECAPITALGOODS",
    "CARBON": "BSECARBONEX",
    "BSE CD": "BSECONSUMERDURABLES",
    "CPSE": "BSECPSE",
    "DOL100": "BSEDOLLEX100",
    "DOL200": "BSEDOLLEX200",
    "DOL30": "BSEDOLLEX30",
    "ENERGY": "BSEENERGY",
    "BSEFMC": "BSEFASTMOVINGCONSUMERGOODS",
    "FINSER": "BSEFINANCIALSERVICES",
    "GREENX": "BSEGREENEX",
    "BSE HC": "BSEHEALTHCARE",
    "INFRA": "BSEINDIAINFRASTRUCTUREINDEX",
    "INDSTR": "BSEINDUSTRIALS",
    "BSE IT": "BSEINFORMATIONTECHNOLOGY",
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
DERIVATIVE_TYPES = ("FUT", "CE", "PE")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

MASTER_FILE = "instruments.csv"
INDEX_FILE = "kite-index.json"
INDEX_FORMAT = "oaws-kite-index-1"

# Columns of the index rows: the oaws name first, then Kite's fields (token an int).
(
    SYMBOL,
    EXCHANGE,
    TOKEN,
    EXCHANGE_TOKEN,
    TRADINGSYMBOL,
    NAME,
    EXPIRY,
    STRIKE,
    TICK,
    LOT,
    TYPE,
    SEGMENT,
    KITE_EXCHANGE,
) = range(13)
_EXCHANGE_ORDER = {exchange: i for i, exchange in enumerate(EXCHANGES)}
_NORMALISE = re.compile(r"[\s\-_.]+")

Row = tuple[Any, ...]


def normalise(text: str) -> str:
    return _NORMALISE.sub("", text).upper()


def _float(text: str, default: float = 0.0) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def _int(text: str, default: int = 0) -> int:
    try:
        return int(float(text))
    except ValueError:
        return default


def strike_text(strike: float) -> str:
    """A strike as OpenAlgo writes it in a symbol: 24000 for 24000.0, 83.25 as is."""
    return str(int(strike)) if strike == int(strike) else str(strike)


def expiry_text(expiry: str) -> str:
    """Kite's ``2024-12-26`` as OpenAlgo writes it in a symbol (``26DEC24``); '' when it is not a date."""
    try:
        day = date.fromisoformat(expiry)
    except ValueError:
        return ""
    return f"{day.day:02d}{_MONTHS[day.month - 1]}{day.year % 100:02d}"


def oaws_name(tradingsymbol: str, name: str, expiry: str, strike: str, instrument_type: str, segment: str,
              exchange: str) -> tuple[str, str] | None:  # fmt: skip
    """(SYMBOL, EXCHANGE) of a Kite row as oaws (and OpenAlgo) writes it; None for rows oaws leaves out."""
    symbol = tradingsymbol.strip().upper()
    if segment == INDEX_SEGMENT:
        oaws_exchange = INDEX_EXCHANGE_MAP.get(exchange)
        if oaws_exchange is None:
            return None
        if oaws_exchange == "NSE_INDEX":
            symbol = NSE_INDEX_NAMES.get(symbol) or (
                symbol.replace(" ", "") if symbol in NSE_INDEX_SQUEEZED else symbol
            )
        elif oaws_exchange == "BSE_INDEX":
            symbol = BSE_INDEX_NAMES.get(symbol, symbol)
        return symbol, oaws_exchange
    oaws_exchange = EXCHANGE_MAP.get(exchange)
    if oaws_exchange is None:
        return None
    if oaws_exchange == "GLOBAL_INDEX":
        return symbol.replace(" ", ""), oaws_exchange
    underlying, when = name.strip().upper(), expiry_text(expiry)
    if instrument_type in DERIVATIVE_TYPES and underlying and when:
        if instrument_type == "FUT":
            return f"{underlying}{when}FUT", oaws_exchange
        return f"{underlying}{when}{strike_text(_float(strike))}{instrument_type}", oaws_exchange
    return symbol, oaws_exchange


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an instrument lives on Kite: its ticker token and the dump's fields (Kite's exchange and segment)."""

    token: int
    exchange: str
    segment: str
    tradingsymbol: str
    name: str
    instrument_type: str
    expiry: str
    strike: float
    lot_size: int
    tick_size: float
    #: how oaws writes it (``NIFTY26DEC2424000CE:NFO``), whichever name resolved to it
    instrument: str = ""


@dataclass(frozen=True, slots=True)
class Match:
    """A search result, with the ``SYMBOL:EXCHANGE`` that oaws commands accept for it."""

    instrument: str
    tradingsymbol: str
    token: int
    exchange: str
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
            "type": self.instrument_type or "EQ",
            "expiry": self.expiry,
            "strike": strike_column(self.strike),
            "lot": str(self.lot_size),
            "name": self.name,
            "kite symbol": self.tradingsymbol,
            "token": str(self.token),
        }


def _instrument(instrument: Instrument | str) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    symbol, _, exchange = str(instrument).rpartition(":")
    return Instrument(symbol.upper(), exchange.upper())


class Master:
    """Kite's instrument dump in memory, with the lookups resolution and search need."""

    def __init__(self, rows: list[Row], source: str = "", built: float = 0.0) -> None:
        self.rows = rows
        self.source = source
        self.built = built
        self._by_name: dict[tuple[str, str], Row] = {}
        self._by_token: dict[int, Row] = {}
        indices = frozenset(INDEX_EXCHANGE_MAP.values()) | {"GLOBAL_INDEX"}
        later: list[tuple[tuple[str, str], Row]] = []
        for row in rows:
            exchange = row[EXCHANGE]
            self._by_token.setdefault(row[TOKEN], row)
            if exchange in indices:
                self._by_name.setdefault((exchange, normalise(row[SYMBOL])), row)
                later.append(((exchange, normalise(row[TRADINGSYMBOL])), row))
                later.append(((exchange, normalise(row[NAME])), row))
            else:
                self._by_name.setdefault((exchange, row[SYMBOL]), row)
                later.append(((exchange, row[TRADINGSYMBOL].upper()), row))
        for key, row in later:  # an oaws name wins over a Kite tradingsymbol or name
            if key[1]:
                self._by_name.setdefault(key, row)

    def __len__(self) -> int:
        return len(self.rows)

    def options(self, underlying: str) -> list[OptionContract]:
        """Every option (type CE or PE) of NFO and BFO on ``underlying``, Kite's ``name``
        (``NIFTY``, ``RELIANCE``), any expiry, under its oaws (OpenAlgo) symbol."""
        wanted = underlying.strip().upper()
        found = []
        for row in self.rows:
            if row[TYPE] not in ("CE", "PE") or row[EXCHANGE] not in ("NFO", "BFO") or row[NAME].upper() != wanted:
                continue
            try:
                expiry = date.fromisoformat(row[EXPIRY])
            except ValueError:
                continue
            if row[STRIKE] > 0:
                found.append(
                    OptionContract(
                        wanted, expiry, float(row[STRIKE]), row[TYPE], row[SYMBOL], row[EXCHANGE], row[LOT] or 1
                    )
                )
        found.sort(key=lambda c: (c.expiry, c.strike, c.right))
        return found

    # Resolution ------------------------------------------------------------------
    def find(self, instrument: Instrument | str) -> Row | None:
        instrument = _instrument(instrument)
        symbol = instrument.symbol.strip().upper()
        if instrument.exchange.endswith("_INDEX"):
            symbol = normalise(symbol)
        return self._by_name.get((instrument.exchange, symbol))

    def resolve(self, instrument: Instrument | str) -> Resolved:
        """Kite's token and fields for ``instrument``; raises Rejection(SYMBOL_NOT_FOUND) with one sentence."""
        instrument = _instrument(instrument)
        if instrument.exchange not in EXCHANGES:
            served = ", ".join(EXCHANGES)
            raise Rejection(SYMBOL_NOT_FOUND, f"Zerodha Kite does not serve {instrument.exchange} (it serves {served})")
        row = self.find(instrument)
        if row is None:
            raise Rejection(SYMBOL_NOT_FOUND, self._not_found(instrument))
        return Resolved(
            token=row[TOKEN],
            exchange=row[KITE_EXCHANGE],
            segment=row[SEGMENT],
            tradingsymbol=row[TRADINGSYMBOL],
            name=row[NAME],
            instrument_type=row[TYPE],
            expiry=row[EXPIRY],
            strike=row[STRIKE],
            lot_size=row[LOT],
            tick_size=row[TICK],
            instrument=f"{row[SYMBOL]}:{row[EXCHANGE]}",
        )

    def _not_found(self, instrument: Instrument) -> str:
        message = f"{instrument} is not in Kite's instrument dump"
        if instrument.exchange in ("NSE", "BSE", "MCX"):
            index = Instrument(instrument.symbol, INDEX_EXCHANGE_MAP[instrument.exchange])
            row = self.find(index)
            if row is not None:
                return f"{message}; the index is {row[SYMBOL]}:{row[EXCHANGE]}"
        word = instrument.symbol.split()[0] if instrument.symbol.split() else instrument.symbol
        return f"{message}; try: oaws instruments search {word} --broker kite"

    def instrument_of(self, token: int) -> str | None:
        """``SYMBOL:EXCHANGE`` (OpenAlgo's name) of Kite's ``instrument_token``; None when the dump lacks it."""
        row = self._by_token.get(token)
        return None if row is None else f"{row[SYMBOL]}:{row[EXCHANGE]}"

    def row_for_token(self, token: int) -> Row | None:
        return self._by_token.get(token)

    # Search ----------------------------------------------------------------------
    def search(self, text: str, exchange: str | None = None, limit: int = 20) -> list[Match]:
        """Instruments whose oaws symbol, tradingsymbol or name holds ``text``: exact, then prefix, then anywhere."""
        needle = text.strip().upper()
        if not needle:
            return []
        wanted = exchange.upper() if exchange else None
        squeezed = normalise(needle)
        scored: list[tuple[int, int, int, str, str, Row]] = []
        for row in self.rows:
            if wanted is not None and row[EXCHANGE] != wanted:
                continue
            symbol, kite, name = row[SYMBOL], row[TRADINGSYMBOL].upper(), row[NAME].upper()
            if needle in (symbol, kite, name) or squeezed in (normalise(symbol), normalise(name)):
                rank = 0
            elif symbol.startswith(needle) or kite.startswith(needle) or name.startswith(needle):
                rank = 1
            elif needle in symbol or needle in kite or needle in name:
                rank = 2
            else:
                continue
            derivative = 1 if row[EXPIRY] else 0  # cash and indices before contracts, NSE before BSE
            scored.append((rank, derivative, _EXCHANGE_ORDER.get(row[EXCHANGE], 99), row[EXPIRY], symbol, row))
        scored.sort(key=lambda s: s[:5])
        return [self._match(row) for *_, row in scored[:limit]]

    @staticmethod
    def _match(row: Row) -> Match:
        return Match(
            instrument=f"{row[SYMBOL]}:{row[EXCHANGE]}",
            tradingsymbol=row[TRADINGSYMBOL],
            token=row[TOKEN],
            exchange=row[KITE_EXCHANGE],
            segment=row[SEGMENT],
            name=row[NAME],
            instrument_type=row[TYPE],
            expiry=row[EXPIRY],
            strike=row[STRIKE],
            lot_size=row[LOT],
        )


# Files -----------------------------------------------------------------------------
def rows_from_csv(data: bytes) -> list[Row]:
    """Index rows of Kite's instrument dump; raises ValueError (one phrase) when it is not a whole one.

    Rows of exchanges oaws does not serve are left out; a row with a token that is not a
    number is skipped and counted in the log. A row with fewer fields than the header
    (a download cut short) refuses the whole dump.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not a CSV file (not UTF-8 text)") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("an empty file") from None
    except csv.Error as exc:
        raise ValueError(f"not a CSV file ({exc})") from None
    header = [h.strip() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"not Kite's instrument dump (no {', '.join(missing)} column)")
    at = [header.index(c) for c in CSV_COLUMNS]
    width = len(header)
    rows: list[Row] = []
    bad = left_out = 0
    try:
        for number, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) < width:
                raise ValueError(f"line {number} has {len(record)} of {width} fields (a download cut short?)")
            token_text, exchange_token, tradingsymbol, name, _, expiry, strike, tick, lot, kind, segment, exchange = (
                record[i].strip() for i in at
            )
            try:
                token = int(token_text)
            except ValueError:
                bad += 1
                continue
            named = oaws_name(tradingsymbol, name, expiry, strike, kind, segment, exchange)
            if named is None:
                left_out += 1
                continue
            rows.append(
                (
                    *named,
                    token,
                    exchange_token,
                    tradingsymbol,
                    name,
                    expiry,
                    _float(strike),
                    _float(tick),
                    _int(lot, 1),
                    kind,
                    segment,
                    exchange,
                )
            )
    except csv.Error as exc:
        raise ValueError(f"not a CSV file ({exc})") from None
    if not rows:
        raise ValueError("no instrument in it")
    if bad:
        log.warning("skipped %d rows of the Kite instrument dump whose instrument_token is not a number", bad)
    if left_out:
        log.info("left out %d rows of exchanges oaws does not serve from Kite", left_out)
    return rows


def index_bytes(rows: list[Row], source: str, built: float | None = None) -> bytes:
    return orjson.dumps({"format": INDEX_FORMAT, "source": source, "built": built or time.time(), "rows": rows})


def read_master(path: Path) -> Master:
    """An oaws index or Kite's CSV dump; raises KiteMasterMissing with the reason, in one sentence."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KiteMasterMissing(f"cannot read the Kite instrument master {path}: {exc.strerror}") from None
    if data[:1] == b"{":
        try:
            parsed = orjson.loads(data)
            if not isinstance(parsed, dict) or parsed.get("format") != INDEX_FORMAT:
                raise ValueError("an unknown format")
            rows = [tuple(r) for r in parsed["rows"]]
            if any(len(r) != 13 or not isinstance(r[TOKEN], int) for r in rows):
                raise ValueError("a row of the wrong shape")
            return Master(rows, str(parsed.get("source", path)), float(parsed.get("built", 0)))
        except (ValueError, KeyError, TypeError) as exc:
            raise KiteMasterMissing(
                f"{path} is not a readable Kite instrument index ({exc}): run `oaws instruments update --broker kite`"
            ) from None
    try:
        return Master(rows_from_csv(data), str(path), path.stat().st_mtime)
    except ValueError as exc:
        raise KiteMasterMissing(f"{path} is not Kite's instrument dump: {exc}") from None


def master_dir() -> Path:
    return config.cache_dir() / "kite"


def load_master(instruments: str | os.PathLike[str] | None = None) -> Master:
    """The master from ``instruments`` (Kite's CSV or oaws's index) if given, else the cached index."""
    if instruments:
        return read_master(Path(instruments).expanduser())
    index = master_dir() / INDEX_FILE
    if not index.exists():
        raise KiteMasterMissing(
            "no Kite instrument master: run `oaws instruments update --broker kite` or pass --instruments FILE"
        )
    master = read_master(index)
    if (days := stale_days(master.built)) is not None:
        log.warning(
            "the Kite instrument master is %d days old; `oaws instruments update --broker kite` refreshes it", days
        )
    return master


class MasterNotSaved(KiteError):
    """The cache directory cannot take the instrument master (missing, not a directory, read-only, full)."""


def update_master(
    url: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> tuple[Path, int]:
    """Download Kite's dump (from ``url``, else ``{api_url}/instruments``) into the cache and index it.

    ``progress(done, total)`` is called as bytes arrive (total from Content-Length, None
    when unknown). 429 and 5xx are retried a few times, then KiteUnavailable; a body cut
    short or that is not Kite's CSV raises KiteMasterMissing; either way the files from
    the last update stay in place (the new ones are written beside and renamed over).
    Returns (the index's path, how many instruments).
    """
    from oaws.brokers.kite import session as kite_session

    if url is None:
        from oaws.brokers.kite.settings import load_settings

        settings = load_settings()
        url = f"{settings.api_url.rstrip('/')}/instruments"
        headers = {**kite_session.auth_headers(settings), **(headers or {})}
    address, public = url, kite_session.public(url)
    directory = master_dir()
    what = "the Kite instrument master"

    def parse(data: bytes) -> list[Row]:
        try:
            return rows_from_csv(data)
        except ValueError as exc:
            raise KiteMasterMissing(
                f"{public} did not send Kite's instrument dump ({exc}); the old one is kept"
            ) from None

    def unreachable(exc: Exception) -> KiteUnavailable:
        reason = kite_session.describe_request_error(exc, address)
        return KiteUnavailable(f"cannot download {what} from {public}: {reason}")

    # Content-Length counts the bytes on the wire (compressed, when Kite gzips the dump):
    # progress and the cut-short check count those too (wire=True), the file gets the decoded CSV
    index_path, rows = save_download(
        directory,
        MASTER_FILE,
        INDEX_FILE,
        open_response=lambda: kite_session.request(
            "GET", address, what="the instrument dump", timeout=timeout, headers=headers, stream=True
        ),
        parse=parse,
        index=lambda rows: index_bytes(rows, public),
        not_saved=lambda exc: MasterNotSaved(
            f"cannot save the Kite instrument master in {directory}: {exc.strerror or exc}"
        ),
        bad_status=lambda status: KiteUnavailable(f"cannot download {what} from {public}: {status}"),
        unreachable=unreachable,
        cut_short=lambda done, total: KiteMasterMissing(
            f"the download of {what} broke off ({done} of {total} bytes); the old one is kept"
        ),
        progress=progress,
        wire=True,
        announce=True,
    )
    return index_path, len(rows)


def _completion_rows(instruments: str | None) -> list[Any]:
    """The index's rows as parsed (not a whole Master with its lookup tables), a CSV through read_master;
    [] without one."""
    path = Path(instruments).expanduser() if instruments else master_dir() / INDEX_FILE
    if not path.is_file():
        return []
    try:
        data = path.read_bytes()
        parsed = orjson.loads(data) if data[:1] == b"{" else None
        if isinstance(parsed, dict) and parsed.get("format") == INDEX_FORMAT and isinstance(parsed.get("rows"), list):
            return [r for r in parsed["rows"] if isinstance(r, list) and len(r) == 13]
        return list(read_master(path).rows)
    except (KiteMasterMissing, OSError, ValueError):
        return []


def completion_names(instruments: str | None = None) -> dict[str, str]:
    """``SYMBOL:EXCHANGE`` -> the dump's name (the company's: ``RELIANCE INDUSTRIES``) of every
    instrument that is not a future or option (theirs is only the underlying); {} without a master."""
    return {
        f"{row[SYMBOL]}:{row[EXCHANGE]}": row[NAME]
        for row in _completion_rows(instruments)
        if row[NAME] and row[TYPE] not in DERIVATIVE_TYPES
    }


def completion_instruments(instruments: str | None = None) -> list[str]:
    """Every instrument as ``SYMBOL:EXCHANGE``, for the watch's completion; [] (quietly) without a master."""
    from oaws.instruments import EXCHANGES as KNOWN
    from oaws.instruments import valid_symbol

    rows = _completion_rows(instruments)
    known = frozenset(KNOWN)
    found: dict[str, None] = {}
    for row in rows:
        if row[EXCHANGE] in known and valid_symbol(row[SYMBOL]):
            found[f"{row[SYMBOL]}:{row[EXCHANGE]}"] = None
    return list(found)


class KiteMaster:
    """Kite's instrument dump as the broker plugin offers it (``oaws.brokers.api.InstrumentMaster``)."""

    exchanges = EXCHANGES

    def update(self, url: str | None, progress: Callable[[int, int | None], None] | None) -> tuple[Path, int]:
        return update_master(url, progress=progress)

    def search(self, text: str, exchange: str | None, limit: int, source: str | None) -> list[Match]:
        from oaws.brokers.kite.settings import load_settings

        return load_master(load_settings(instruments=source).instruments).search(text, exchange, limit)

    def instruments(self) -> list[str]:
        from oaws.brokers.kite.settings import load_settings

        return completion_instruments(load_settings().instruments)

    def options(self, underlying: str) -> list[OptionContract]:
        """Every option contract on ``underlying`` the dump lists (the option chain's source);
        [] when there is none or no dump."""
        from oaws.brokers.kite.settings import load_settings

        try:
            return load_master(load_settings().instruments).options(underlying)
        except KiteMasterMissing:
            return []

    def names(self) -> dict[str, str]:
        """Company names of the dump's equities and indices, for the add dialog's search by name."""
        from oaws.brokers.kite.settings import load_settings

        return completion_names(load_settings().instruments)
