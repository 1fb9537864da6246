"""Angel One's instrument master lists the option contracts the chain is built from."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

from oaws.brokers.angel.master import AngelMaster, Master, expiry_date, rows_from_raw
from oaws.brokers.angel.simulator import fixture_master_bytes
from oaws.options import OptionContract


def record(symbol: str, name: str, expiry: str, strike: str, kind: str, segment: str, lot: str = "75") -> dict:
    return {
        "token": str(abs(hash(symbol)) % 10**6),
        "symbol": symbol,
        "name": name,
        "expiry": expiry,
        "strike": strike,
        "lotsize": lot,
        "instrumenttype": kind,
        "exch_seg": segment,
        "tick_size": "5.000000",
    }


RECORDS = [
    record("NIFTY29DEC2626000CE", "NIFTY", "29DEC2026", "2600000.000000", "OPTIDX", "NFO"),
    record("NIFTY29DEC2626000PE", "NIFTY", "29DEC2026", "2600000.000000", "OPTIDX", "NFO"),
    record("NIFTY08DEC2626050CE", "NIFTY", "08DEC2026", "2605000.000000", "OPTIDX", "NFO"),
    record("NIFTY29DEC26FUT", "NIFTY", "29DEC2026", "-1.000000", "FUTIDX", "NFO"),  # a future: not an option
    record("RELIANCE29DEC261500CE", "RELIANCE", "29DEC2026", "150000.000000", "OPTSTK", "NFO", "500"),
    record("SENSEX10DEC2682000PE", "SENSEX", "10DEC2026", "8200000.000000", "OPTIDX", "BFO", "20"),
    record("NIFTY29DEC2627000XX", "NIFTY", "29DEC2026", "2700000.000000", "OPTIDX", "NFO"),  # no right
    record("NIFTY31FEB2627000CE", "NIFTY", "31FEB2026", "2700000.000000", "OPTIDX", "NFO"),  # no such day
    record("RELIANCE-EQ", "RELIANCE", "", "-1.000000", "", "NSE", "1"),
]


def master_of(records: list[dict]) -> Master:
    return Master(rows_from_raw(orjson.dumps(records)), "test")


def test_options_are_the_option_rows_of_the_underlying_with_strikes_in_rupees() -> None:
    found = master_of(RECORDS).options("NIFTY")
    assert found == [
        OptionContract("NIFTY", date(2026, 12, 8), 26050.0, "CE", "NIFTY08DEC2626050CE", "NFO", 75),
        OptionContract("NIFTY", date(2026, 12, 29), 26000.0, "CE", "NIFTY29DEC2626000CE", "NFO", 75),
        OptionContract("NIFTY", date(2026, 12, 29), 26000.0, "PE", "NIFTY29DEC2626000PE", "NFO", 75),
    ]


def test_stock_options_and_bse_index_options_are_found_by_name_in_any_case() -> None:
    m = master_of(RECORDS)
    assert [(c.symbol, c.strike, c.lot_size) for c in m.options("reliance")] == [("RELIANCE29DEC261500CE", 1500.0, 500)]
    assert [(c.exchange, c.right, c.expiry) for c in m.options("SENSEX")] == [("BFO", "PE", date(2026, 12, 10))]
    assert m.options("INFY") == []


def test_the_shipped_sim_master_lists_options() -> None:
    # angel-sim's own master: every NIFTY option it lists is a well-formed contract of NFO
    options = Master(rows_from_raw(fixture_master_bytes())).options("NIFTY")
    assert options
    assert all(c.exchange == "NFO" and c.right in ("CE", "PE") and c.strike > 0 for c in options)
    assert all(c.symbol.startswith("NIFTY") and c.symbol.endswith(c.right) for c in options)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29DEC2026", date(2026, 12, 29)),
        ("08dec2026", date(2026, 12, 8)),
        ("", None),
        ("31FEB2026", None),
        ("2026-12-29", None),
    ],
)
def test_expiry_dates_are_read_in_english_whatever_the_locale(text: str, expected: date | None) -> None:
    assert expiry_date(text) == expected


def test_the_plugins_master_reads_the_configured_master_and_is_quiet_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert AngelMaster().options("NIFTY") == []  # no master downloaded: nothing, no error
    path = tmp_path / "OpenAPIScripMaster.json"
    path.write_bytes(orjson.dumps(RECORDS))
    monkeypatch.setenv("OAWS_INSTRUMENTS", str(path))
    assert len(AngelMaster().options("NIFTY")) == 3
