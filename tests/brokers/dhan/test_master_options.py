"""Dhan's scrip master lists the option contracts the chain is built from."""

from __future__ import annotations

from datetime import date

from oaws.brokers.dhan.master import DhanMaster, Master, rows_from_csv
from oaws.options import OptionContract
from tests.brokers.dhan.test_master import FIXTURE


def test_options_are_the_nfo_and_bfo_option_lines_of_the_underlying_under_openalgo_symbols() -> None:
    master = Master(rows_from_csv(FIXTURE))
    # the weekly and the monthly of one month share Dhan's trading symbol: two contracts here
    assert master.options("nifty") == [
        OptionContract("NIFTY", date(2024, 10, 3), 25800.0, "CE", "NIFTY03OCT2425800CE", "NFO", 25),
        OptionContract("NIFTY", date(2024, 10, 24), 25800.0, "CE", "NIFTY24OCT2425800CE", "NFO", 25),
        OptionContract("NIFTY", date(2024, 12, 26), 24000.0, "PE", "NIFTY26DEC2424000PE", "NFO", 75),
    ]
    assert [(c.symbol, c.exchange) for c in master.options("SENSEX")] == [("SENSEX24DEC2480000CE", "BFO")]
    assert master.options("USDINR") == []  # currency options are not chained
    assert master.options("BAJAJ-AUTO") == []  # a future only


def test_the_plugins_master_is_quiet_without_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("OAWS_INSTRUMENTS", raising=False)
    assert DhanMaster().options("NIFTY") == []
