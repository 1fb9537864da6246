"""Readable contract names and company names (oaws/names.py), checked against the brokers' own masters.

The simulators' masters know each contract's underlying, expiry, strike and kind in columns
of their own; ``readable`` works them out from OpenAlgo's symbol alone. The two must agree
on every contract of every master.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date
from importlib import import_module

import pytest

from oaws.brokers.angel.simulator import fixture_master_bytes
from oaws.brokers.dhan.scrips import master_csv
from oaws.brokers.kite.dump import build_dump
from oaws.brokers.noren.symbols import master_files, scrips
from oaws.brokers.sim.feed import known_symbols
from oaws.instruments import DEFAULT_WATCHLIST, parse
from oaws.names import MONTHS, NAMES, contract, expiry_text, name_of, readable

# the modules themselves (each broker package has a ``master`` function of that name too)
angel, dhan, kite, noren = (import_module(f"oaws.brokers.{b}.master") for b in ("angel", "dhan", "kite", "noren"))
DEC_2024 = date(2024, 12, 1)


@pytest.mark.parametrize(
    ("instrument", "shown"),
    [
        ("NIFTY26DEC2424000CE:NFO", "NIFTY 26 DEC 24000 CE"),
        ("NIFTY26DEC2424000PE:NFO", "NIFTY 26 DEC 24000 PE"),
        ("BANKNIFTY24DEC24FUT:NFO", "BANKNIFTY 24 DEC FUT"),
        ("USDINR26DEC2484.5CE:CDS", "USDINR 26 DEC 84.5 CE"),
        ("USDINR27DEC2483.25PE:BCD", "USDINR 27 DEC 83.25 PE"),
        ("NIFTYNXT5026DEC24FUT:NFO", "NIFTYNXT50 26 DEC FUT"),  # a base that ends in digits
        ("M&M26DEC242900CE:NFO", "M&M 26 DEC 2900 CE"),
        ("BAJAJ-AUTO26DEC24FUT:NFO", "BAJAJ-AUTO 26 DEC FUT"),
        ("CRUDEOIL19DEC24FUT:MCX", "CRUDEOIL 19 DEC FUT"),
        ("SENSEX27DEC2480000CE:BFO", "SENSEX 27 DEC 80000 CE"),
        ("RELIANCE:NSE", "RELIANCE"),  # equities and indices as they are
        ("NIFTY:NSE_INDEX", "NIFTY"),
        ("NIFTY 50:NSE_INDEX", "NIFTY 50"),
        ("NIFTY26DEC2424000CE:NSE", "NIFTY26DEC2424000CE"),  # not a derivative exchange: left alone
        ("NIFTY31FEB2424000CE:NFO", "NIFTY31FEB2424000CE"),  # no such day: not a contract
        ("NIFTY24D2624000CE:NFO", "NIFTY24D2624000CE"),  # Kite's own weekly spelling: another format
    ],
)
def test_openalgo_symbols_are_spelt_out_and_others_left_alone(instrument, shown):
    assert readable(parse(instrument), DEC_2024) == shown


def test_the_year_shows_only_outside_the_twelve_months_from_a_month_ago():
    assert expiry_text(date(2024, 12, 26), DEC_2024) == "26 DEC"
    assert expiry_text(date(2025, 10, 30), DEC_2024) == "30 OCT"  # eleven months ahead
    assert expiry_text(date(2024, 11, 28), DEC_2024) == "28 NOV"  # just expired
    assert expiry_text(date(2025, 12, 24), DEC_2024) == "24 DEC 2025"  # a year ahead: "24 DEC" would be ambiguous
    assert expiry_text(date(2024, 6, 27), DEC_2024) == "27 JUN 2024"  # long expired (a recording)
    assert readable(parse("NIFTY26DEC2424000CE:NFO"), date(2026, 12, 2)) == "NIFTY 26 DEC 2024 24000 CE"
    assert readable("NIFTY26DEC2424000CE", DEC_2024) == "NIFTY 26 DEC 24000 CE"  # a bare symbol too


def spelt(base: str, expiry: date, strike: float | str, kind: str, on: date) -> str:
    """What the master's own columns say the contract is, written as ``readable`` should write it."""
    when = expiry_text(expiry, on)
    if kind == "FUT":
        return f"{base} {when} FUT"
    value = float(strike)
    text = str(int(value)) if value.is_integer() else f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{base} {when} {text} {kind}"


def day(text: str, pattern: str) -> date:
    from datetime import datetime

    return datetime.strptime(text.title(), pattern).date()


def kite_contracts(on: date):
    for row in kite.rows_from_csv(build_dump(on)):
        if row[kite.TYPE] in ("FUT", "CE", "PE"):
            expiry = date.fromisoformat(row[kite.EXPIRY])
            yield (
                row[kite.SYMBOL],
                row[kite.EXCHANGE],
                spelt(row[kite.NAME], expiry, row[kite.STRIKE], row[kite.TYPE], on),
            )


def dhan_contracts(on: date):
    for row in dhan.rows_from_csv(master_csv(on)):
        if row[dhan.TYPE] in ("FUT", "CE", "PE"):
            expiry = day(row[dhan.EXPIRY], "%d-%b-%y")
            yield (
                row[dhan.SYMBOL],
                row[dhan.EXCHANGE],
                spelt(row[dhan.NAME], expiry, row[dhan.STRIKE] or 0, row[dhan.TYPE], on),
            )


def noren_contracts(on: date):
    rows = []
    for file, data in master_files(list(scrips(on))).items():
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            text = archive.read(archive.namelist()[0])
        rows += noren.rows_of_bytes(text, file.split("_")[0])
    for row, (symbol, exchange) in noren.Master(rows).titles.items():
        if row[noren.EXPIRY]:
            kind = "FUT" if row[noren.OTYPE] in ("", "XX") else row[noren.OTYPE]
            expiry = day(row[noren.EXPIRY], "%d-%b-%Y")
            yield symbol, exchange, spelt(row[noren.NAME], expiry, row[noren.STRIKE], kind, on)


def angel_contracts(on: date):
    naming = angel.Master([])
    for row in angel.rows_from_raw(fixture_master_bytes()):
        if row[angel.EXPIRY]:
            symbol, _, exchange = naming.instrument_of(row).rpartition(":")
            if not symbol.endswith(("FUT", "CE", "PE")):  # Angel's NCDEX GUARSEED1020FEB25: not OpenAlgo's format
                yield symbol, exchange, symbol
                continue
            kind = "FUT" if row[angel.TYPE].startswith("FUT") else symbol[-2:]
            strike = float(row[angel.STRIKE]) / 100  # Angel writes strikes in paise
            yield symbol, exchange, spelt(row[angel.NAME], day(row[angel.EXPIRY], "%d%b%Y"), strike, kind, on)


@pytest.mark.parametrize("contracts", [kite_contracts, dhan_contracts, noren_contracts, angel_contracts])
@pytest.mark.parametrize("on", [date(2026, 12, 2), date(2025, 3, 10)])
def test_readable_agrees_with_every_contract_of_the_simulators_masters(contracts, on):
    seen = list(contracts(on))
    assert len(seen) >= 10  # futures and options of several exchanges
    assert {kind for *_, shown in seen for kind in ("FUT", "CE", "PE") if shown.endswith(kind)} == {"FUT", "CE", "PE"}
    wrong = [
        (s, e, shown, readable(parse(f"{s}:{e}"), on))
        for s, e, shown in seen
        if readable(parse(f"{s}:{e}"), on) != shown
    ]
    assert wrong == []


def test_contract_gives_the_parts():
    parts = contract("USDINR26DEC2484.5CE")
    assert parts is not None and (parts.base, parts.expiry, parts.strike, parts.kind) == (
        "USDINR",
        date(2024, 12, 26),
        "84.5",
        "CE",
    )
    assert contract("RELIANCE") is None and len(MONTHS) == 12


def test_the_built_in_names_cover_the_simulated_market_and_the_default_list():
    missing = [s for s in [*known_symbols(), *DEFAULT_WATCHLIST] if not name_of(s)]
    assert missing == []
    assert NAMES["INFY:NSE"] == "Infosys" and name_of(parse("RELIANCE:BSE")) == "Reliance Industries"
    assert name_of("FOOBAR:NSE") == ""
