"""Kite's instrument dump lists the option contracts the chain is built from."""

from __future__ import annotations

from datetime import date

from oaws.brokers.kite.master import KiteMaster, Master, rows_from_csv
from oaws.options import OptionContract
from tests.brokers.kite.test_master import dump


def test_options_are_the_nfo_and_bfo_option_rows_of_the_underlying_under_openalgo_symbols() -> None:
    master = Master(rows_from_csv(dump()))
    assert master.options("nifty") == [
        # Kite's weekly tradingsymbol (NIFTY24D2624000CE) becomes OpenAlgo's; the future is left out
        OptionContract("NIFTY", date(2024, 12, 26), 24000.0, "CE", "NIFTY26DEC2424000CE", "NFO", 25),
        OptionContract("NIFTY", date(2024, 12, 26), 24000.0, "PE", "NIFTY26DEC2424000PE", "NFO", 25),
    ]
    assert [(c.symbol, c.exchange) for c in master.options("SENSEX")] == [("SENSEX27DEC2480000CE", "BFO")]
    assert master.options("USDINR") == []  # currency options are not chained
    assert master.options("INFY") == []


def test_the_plugins_master_is_quiet_without_a_dump(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("OAWS_INSTRUMENTS", raising=False)
    assert KiteMaster().options("NIFTY") == []
