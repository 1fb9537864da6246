"""A Noren broker's symbol masters list the option contracts the chain is built from."""

from __future__ import annotations

from datetime import date

from oaws.brokers.noren.master import Master, NorenMaster, rows_of_bytes
from oaws.options import OptionContract

TEXT = (
    "Exchange,Token,Lotsize,Symbol,Tradingsymbol,Instrument,Expiry,Strike,Optiontype\n"
    "NFO,43650,75,NIFTY,NIFTY26DEC24F,FUTIDX,26-DEC-2024,0,XX\n"
    "NFO,43651,75,NIFTY,NIFTY26DEC24C24000,OPTIDX,26-DEC-2024,24000,CE\n"
    "NFO,43652,75,NIFTY,NIFTY26DEC24P24000,OPTIDX,26-DEC-2024,24000.00,PE\n"
    "NFO,43653,75,NIFTY,NIFTY26DEC24X24000,OPTIDX,26-DEC-2024,24000,XX\n"
    "NFO,51000,500,RELIANCE,RELIANCE26DEC24C1500,OPTSTK,26-DEC-2024,1500,CE\n"
    "BFO,82000,20,SENSEX,SENSEX24DEC24P80000,OPTIDX,24-DEC-2024,80000,PE\n"
    "CDS,9,1,USDINR,USDINR27DEC24C84.25,OPTCUR,27-DEC-2024,84.25,CE\n"
)


def test_options_are_the_nfo_and_bfo_option_rows_of_the_underlying_under_openalgo_symbols() -> None:
    master = Master(rows_of_bytes(TEXT.encode()), "flattrade")
    assert master.options("nifty") == [
        OptionContract("NIFTY", date(2024, 12, 26), 24000.0, "CE", "NIFTY26DEC2424000CE", "NFO", 75),
        OptionContract("NIFTY", date(2024, 12, 26), 24000.0, "PE", "NIFTY26DEC2424000PE", "NFO", 75),
    ]
    assert [(c.symbol, c.lot_size) for c in master.options("RELIANCE")] == [("RELIANCE26DEC241500CE", 500)]
    assert [(c.symbol, c.exchange) for c in master.options("SENSEX")] == [("SENSEX24DEC2480000PE", "BFO")]
    assert master.options("USDINR") == []  # currency options are not chained


def test_the_plugins_master_is_quiet_without_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("OAWS_INSTRUMENTS", raising=False)
    assert NorenMaster("shoonya").options("NIFTY") == []
