"""Noren's symbol masters: the simulator's files parsed, the mapping to SYMBOL:EXCHANGE, search, bad downloads."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import pytest

from oaws.brokers.api import Rejection
from oaws.brokers.noren import symbols
from oaws.brokers.noren.errors import NorenMasterMissing, NorenUnavailable
from oaws.brokers.noren.master import (
    Master,
    NorenMaster,
    index_path,
    load_master,
    openalgo_symbol,
    rows_of_bytes,
    update_master,
)
from oaws.brokers.noren.simulator import NorenSimulator
from oaws.instruments import Instrument


def sim_master(sim: NorenSimulator) -> Master:
    rows = [row for name, data in sim.masters().items() if name.endswith(".zip") for row in rows_of_bytes(data)]
    return Master(rows, sim.host.name, "sim")


def scrip(sim: NorenSimulator, tsym: str) -> symbols.Scrip:
    return next(s for s in sim.scrips if s.trading_symbol == tsym)


def test_every_line_of_every_file_is_read(noren_sim: NorenSimulator) -> None:
    master = sim_master(noren_sim)
    assert len(master) == len(noren_sim.scrips)  # lines end with a comma: nothing lost, nothing invented
    for s in noren_sim.scrips:
        row = master.row_of(s.exchange, s.token)
        assert row is not None and row[2] == s.trading_symbol


def test_cash_symbols_are_written_as_users_do(noren_sim: NorenSimulator) -> None:
    master = sim_master(noren_sim)
    for name in ("RELIANCE", "reliance", "RELIANCE-EQ"):
        resolved = master.resolve(Instrument(name, "NSE"))
        assert (resolved.exchange, resolved.token, resolved.tsym) == ("NSE", "2885", "RELIANCE-EQ")
        assert resolved.instrument == Instrument("RELIANCE", "NSE")
    bse = master.resolve(Instrument("RELIANCE", "BSE"))
    assert (bse.exchange, bse.token) == ("BSE", "500325")
    assert master.instrument_of("NSE", "2885") == Instrument("RELIANCE", "NSE")


@pytest.mark.parametrize(
    ("typed", "token"),
    [
        ("NIFTY", "26000"),
        ("NIFTY 50", "26000"),
        ("nifty50", "26000"),
        ("NIFTY INDEX", "26000"),
        ("BANKNIFTY", "26009"),
        ("Nifty Bank", "26009"),
        ("FINNIFTY", "26037"),
        ("MIDCPNIFTY", "26074"),
        ("INDIAVIX", "26017"),
        ("India VIX", "26017"),
    ],
)
def test_nse_indices_by_openalgo_and_noren_names(noren_sim: NorenSimulator, typed: str, token: str) -> None:
    resolved = sim_master(noren_sim).resolve(Instrument(typed, "NSE_INDEX"))
    assert (resolved.exchange, resolved.token) == ("NSE", token)


def test_index_instruments_are_named_as_openalgo_names_them(noren_sim: NorenSimulator) -> None:
    master = sim_master(noren_sim)
    assert master.instrument_of("NSE", "26000") == Instrument("NIFTY", "NSE_INDEX")
    assert master.instrument_of("NSE", "26009") == Instrument("BANKNIFTY", "NSE_INDEX")
    assert master.instrument_of("BSE", "1") == Instrument("SENSEX", "BSE_INDEX")
    sensex = master.resolve(Instrument("SENSEX", "BSE_INDEX"))
    assert (sensex.exchange, sensex.token) == ("BSE", "1")


def test_an_index_asked_on_the_cash_exchange_gets_a_hint(noren_sim: NorenSimulator) -> None:
    with pytest.raises(Rejection) as refused:
        sim_master(noren_sim).resolve(Instrument("NIFTY", "NSE"))
    assert refused.value.code == "SYMBOL_NOT_FOUND" and "NIFTY:NSE_INDEX" in refused.value.message
    with pytest.raises(Rejection, match="oaws instruments search NOSUCH --broker shoonya"):
        sim_master(noren_sim).resolve(Instrument("NOSUCH", "NSE"))
    with pytest.raises(Rejection, match="does not serve NCDEX"):
        sim_master(noren_sim).resolve(Instrument("X", "NCDEX"))


def test_derivatives_by_openalgo_names_and_by_noren_trading_symbols(noren_sim: NorenSimulator) -> None:
    master = sim_master(noren_sim)
    for s in noren_sim.scrips:
        if s.exchange not in ("NFO", "BFO", "CDS", "MCX"):
            continue
        day, month, year = s.expiry.split("-")
        expiry = f"{day}{month.upper()}{year[-2:]}"
        if s.option_type == "XX":
            openalgo = f"{s.symbol}{expiry}FUT"
        else:
            openalgo = f"{s.symbol}{expiry}{int(float(s.strike))}{s.option_type}"
        by_openalgo = master.resolve(Instrument(openalgo, s.exchange))
        by_noren = master.resolve(Instrument(s.trading_symbol, s.exchange))
        assert by_openalgo.token == by_noren.token == s.token, openalgo
        assert master.instrument_of(s.exchange, s.token) == Instrument(openalgo, s.exchange)


def test_strikes_with_decimals_keep_them() -> None:
    row = ("CDS", "9", "USDINR27DEC24C84.25", "USDINR", "OPTCUR", "27-DEC-2024", "CE", "84.2500", "1", "0.0025")
    assert openalgo_symbol(row) == "USDINR27DEC2484.25CE"


def test_flattrade_style_csv_headers_are_read_too() -> None:
    text = (
        "Exchange,Token,Lotsize,Symbol,Tradingsymbol,Instrument,Expiry,Strike,Optiontype\n"
        "NFO,43650,75,NIFTY,NIFTY26DEC24F,FUTIDX,26-DEC-2024,0,XX\n"
        "NFO,43651,75,NIFTY,NIFTY26DEC24C24000,OPTIDX,26-DEC-2024,24000,CE\n"
    )
    master = Master(rows_of_bytes(text.encode()), "flattrade")
    assert master.resolve(Instrument("NIFTY26DEC24FUT", "NFO")).token == "43650"
    assert master.resolve(Instrument("NIFTY26DEC2424000CE", "NFO")).token == "43651"
    bse = "Exchange,Token,Lotsize,Symbol,Tradingsymbol,Instrument\nBSE,1,1,SENSEX,SENSEX,UNDIND\n"
    assert Master(rows_of_bytes(bse.encode())).instrument_of("BSE", "1") == Instrument("SENSEX", "BSE_INDEX")


def test_search_ranks_exact_then_prefix_and_filters_by_exchange(noren_sim: NorenSimulator) -> None:
    master = sim_master(noren_sim)
    found = master.search("reliance")
    assert [m.instrument for m in found[:2]] == ["RELIANCE:NSE", "RELIANCE:BSE"]
    assert found[0].noren_symbol == "RELIANCE-EQ" and found[0].token == "2885"
    assert [m.instrument for m in master.search("nifty", exchange="NSE_INDEX", limit=1)] == ["NIFTY:NSE_INDEX"]
    options = master.search("NIFTY", exchange="NFO", limit=500)
    assert options and all(m.instrument.endswith(":NFO") for m in options)
    assert master.search("   ") == []
    assert "RELIANCE:NSE" in master.instruments() and "NIFTY:NSE_INDEX" in master.instruments()


# Download, the cache ------------------------------------------------------------------------------
async def test_update_downloads_every_exchange_with_progress(noren_sim: NorenSimulator) -> None:
    seen: list[tuple[int, int | None]] = []
    path, master = await asyncio.to_thread(
        update_master, "shoonya", noren_sim.master_url, lambda d, t: seen.append((d, t))
    )
    assert path == index_path("shoonya") and len(master) == len(noren_sim.scrips)
    total = sum(len(data) for data in noren_sim.masters().values())
    assert seen[-1][0] == total and all(t is not None and d <= t for d, t in seen)
    requested = {r.rsplit("/", 1)[1] for r in noren_sim.rest_requests if r.startswith("GET")}
    assert requested == set(noren_sim.masters())
    loaded = load_master("shoonya")
    assert loaded.resolve(Instrument("RELIANCE", "NSE")).token == "2885"


async def test_flattrade_updates_from_its_own_csv_files(flattrade_sim: NorenSimulator) -> None:
    _, master = await asyncio.to_thread(update_master, "flattrade", flattrade_sim.master_url)
    requested = {r.rsplit("/", 1)[1] for r in flattrade_sim.rest_requests if r.startswith("GET")}
    assert requested and all(name.endswith(".csv") for name in requested)
    assert len(master) == len(flattrade_sim.scrips)
    fut, token = next(
        (s.trading_symbol, s.token) for s in flattrade_sim.scrips if s.exchange == "NFO" and s.option_type == "XX"
    )
    assert master.resolve(Instrument(fut, "NFO")).token == token
    assert master.resolve(Instrument("NIFTY", "NSE_INDEX")).token == "26000"
    assert master.instrument_of("BSE", "1") == Instrument("SENSEX", "BSE_INDEX")
    assert load_master("flattrade").resolve(Instrument("RELIANCE", "NSE")).token == "2885"


async def test_a_bad_download_keeps_the_old_master(noren_sim: NorenSimulator) -> None:
    await asyncio.to_thread(update_master, "shoonya", noren_sim.master_url)
    before = index_path("shoonya").read_bytes()
    noren_sim.rest_fault(503, count=1)
    with pytest.raises(NorenUnavailable, match="HTTP 503"):
        await asyncio.to_thread(update_master, "shoonya", noren_sim.master_url)
    assert index_path("shoonya").read_bytes() == before
    noren_sim._masters["BFO_symbols.txt.zip"] = noren_sim._masters["BFO_symbols.txt.zip"][:40]  # truncated zip
    with pytest.raises(NorenMasterMissing, match=r"BFO_symbols\.txt\.zip.*old master is kept"):
        await asyncio.to_thread(update_master, "shoonya", noren_sim.master_url)
    assert index_path("shoonya").read_bytes() == before
    assert not list(index_path("shoonya").parent.glob(".*part"))


def test_no_master_says_how_to_get_one() -> None:
    with pytest.raises(NorenMasterMissing, match="oaws instruments update --broker flattrade"):
        load_master("flattrade")


def test_a_local_file_in_norens_format_is_a_master(noren_sim: NorenSimulator, tmp_path: Path) -> None:
    path = tmp_path / "NSE_symbols.txt.zip"
    path.write_bytes(noren_sim.masters()["NSE_symbols.txt.zip"])
    assert load_master("shoonya", path).resolve(Instrument("INFY", "NSE")).token == "1594"
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        text = tmp_path / "NSE_symbols.txt"
        text.write_bytes(archive.read("NSE_symbols.txt"))
    assert load_master("shoonya", text).resolve(Instrument("INFY", "NSE")).token == "1594"
    junk = tmp_path / "junk.txt"
    junk.write_text("hello,world\n1,2\n")
    with pytest.raises(NorenMasterMissing, match="not a Noren symbol master"):
        load_master("shoonya", junk)


async def test_the_plugin_master_updates_searches_and_completes(
    noren_sim: NorenSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOONYA_MASTER_URL", noren_sim.master_url)
    plugin = NorenMaster("shoonya")
    assert plugin.instruments() == []  # quietly, without a master
    path, count = await asyncio.to_thread(plugin.update, None, None)
    assert count == len(noren_sim.scrips) and path.exists()
    assert plugin.search("INFY", None, 5, None)[0].instrument == "INFY:NSE"
    assert "SBIN:NSE" in plugin.instruments()
