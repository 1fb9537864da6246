"""Instrument master: resolution rules, search, index files, download from the simulator."""

from __future__ import annotations

import asyncio
import os

import orjson
import pytest

from oaws.brokers.angel.errors import AngelUnavailable, MasterMissing
from oaws.brokers.angel.master import (
    INDEX_FILE,
    MASTER_FILE,
    MasterNotSaved,
    index_bytes,
    load_master,
    master_dir,
    read_master,
    rows_from_raw,
    update_master,
)
from oaws.brokers.angel.simulator import fixture_master_bytes
from oaws.brokers.api import Rejection
from oaws.instruments import parse


@pytest.mark.parametrize(
    "text, exchange_type, token, angel_symbol",
    [
        ("RELIANCE:NSE", 1, "2885", "RELIANCE-EQ"),
        ("SBIN:NSE", 1, "3045", "SBIN-EQ"),
        ("M&M:NSE", 1, "2031", "M&M-EQ"),
        ("RELIANCE-EQ:NSE", 1, "2885", "RELIANCE-EQ"),
        ("SMEXAMPLE:NSE", 1, "21808", "SMEXAMPLE-SM"),
        ("NIFTY:NSE_INDEX", 1, "99926000", "Nifty 50"),
        ("BANKNIFTY:NSE_INDEX", 1, "99926009", "Nifty Bank"),
        ("FINNIFTY:NSE_INDEX", 1, "99926037", "Nifty Fin Service"),
        ("NIFTY 50:NSE_INDEX", 1, "99926000", "Nifty 50"),
        ("INDIAVIX:NSE_INDEX", 1, "99926017", "India VIX"),
        ("SENSEX:BSE_INDEX", 3, "99919000", "SENSEX"),
        ("RELIANCE:BSE", 3, "500325", "RELIANCE"),
        ("NIFTY26DEC24FUT:NFO", 2, "35003", "NIFTY26DEC24FUT"),
        ("NIFTY26DEC2424000CE:NFO", 2, "35010", "NIFTY26DEC2424000CE"),
        ("SENSEX27DEC2480000CE:BFO", 4, "1142950", "SENSEX27DEC2480000CE"),
        ("CRUDEOIL19DEC24FUT:MCX", 5, "429116", "CRUDEOIL19DEC24FUT"),
        ("USDINR27DEC24FUT:CDS", 13, "1470", "USDINR27DEC24FUT"),
        ("MCXCOMDEX:MCX_INDEX", 5, "99920000", "MCXCOMDEX"),
        ("GUARSEED1020FEB25:NCDEX", 7, "105210", "GUARSEED1020FEB25"),
    ],
)
def test_instruments_resolve_to_angel_tokens(master, text, exchange_type, token, angel_symbol):
    resolved = master.resolve(parse(text))
    assert (resolved.exchange_type, resolved.token, resolved.angel_symbol) == (exchange_type, token, angel_symbol)


def test_prices_are_paise_except_currencies(master):
    assert master.resolve(parse("RELIANCE:NSE")).divisor == 100
    assert master.resolve(parse("USDINR27DEC24FUT:CDS")).divisor == 10_000_000


def test_an_unknown_symbol_is_symbol_not_found_with_a_hint(master):
    with pytest.raises(Rejection) as caught:
        master.resolve(parse("NOSUCHCO:NSE"))
    assert caught.value.code == "SYMBOL_NOT_FOUND"
    assert "oaws instruments search NOSUCHCO" in caught.value.message


def test_an_index_written_as_a_stock_points_to_the_index(master):
    with pytest.raises(Rejection, match="the index is NIFTY:NSE_INDEX"):
        master.resolve(parse("NIFTY:NSE"))


@pytest.mark.parametrize("exchange", ["BCD", "NCO", "GLOBAL_INDEX", "CRYPTO"])
def test_an_exchange_angel_does_not_serve_is_refused(master, exchange):
    with pytest.raises(Rejection) as caught:
        master.resolve(parse(f"USDINR:{exchange}"))
    assert caught.value.code == "SYMBOL_NOT_FOUND" and f"does not serve {exchange}" in caught.value.message
    assert "MCX_INDEX" in caught.value.message and "NCDEX" in caught.value.message


def test_an_mcx_index_is_an_index_not_a_commodity(master):
    assert master.find(parse("MCXCOMDEX:MCX")) is None
    with pytest.raises(Rejection, match="the index is MCXCOMDEX:MCX_INDEX"):
        master.resolve(parse("MCXCOMDEX:MCX"))
    assert [m.instrument for m in master.search("mcxcomdex", "MCX_INDEX")] == ["MCXCOMDEX:MCX_INDEX"]


def test_search_puts_exact_matches_and_cash_first(master):
    found = master.search("reliance")
    assert [m.instrument for m in found] == ["RELIANCE:NSE", "RELIANCE:BSE", "RELIANCE26DEC24FUT:NFO"]
    assert found[0].token == "2885" and found[0].exchange_type == 1


def test_search_by_exchange_and_index_names(master):
    indices = [m.instrument for m in master.search("nifty", "NSE_INDEX")]
    assert indices[:2] == ["NIFTY:NSE_INDEX", "BANKNIFTY:NSE_INDEX"]
    options = master.search("NIFTY26DEC24", "NFO")
    assert {m.instrument for m in options} == {
        "NIFTY26DEC24FUT:NFO",
        "NIFTY26DEC2424000CE:NFO",
        "NIFTY26DEC2424000PE:NFO",
    }
    strike = next(m for m in options if m.instrument.endswith("CE:NFO"))
    assert (strike.strike, strike.lot_size, strike.expiry) == (24000.0, 25, "26DEC2024")


def test_search_results_resolve_back_to_the_same_token(master):
    for match in master.search("E", limit=100):
        assert master.resolve(parse(match.instrument)).token == match.token


def test_index_and_raw_files_load_alike(tmp_path, master):
    raw = tmp_path / "raw.json"
    raw.write_bytes(fixture_master_bytes())
    index = tmp_path / "index.json"
    index.write_bytes(index_bytes(rows_from_raw(fixture_master_bytes()), "test"))
    for path in (raw, index):
        loaded = read_master(path)
        assert len(loaded) == len(master) == 43
        assert loaded.resolve(parse("SBIN:NSE")).token == "3045"


def test_a_file_that_is_not_a_master_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(MasterMissing, match="is not an Angel One instrument master"):
        read_master(bad)
    with pytest.raises(MasterMissing, match="cannot read"):
        read_master(tmp_path / "missing.json")


def test_without_a_master_the_error_says_how_to_get_one():
    with pytest.raises(MasterMissing) as caught:
        load_master()
    message = str(caught.value)
    assert "oaws instruments update" in message and "OAWS_INSTRUMENTS" in message and "\n" not in message


async def test_update_downloads_from_the_simulator_with_progress(sim):
    seen: list[tuple[int, int | None]] = []
    path, _ = await asyncio.to_thread(update_master, sim.master_url, lambda done, total: seen.append((done, total)))
    # the simulator serves the fixture with today's simulated index options appended
    assert path == master_dir() / INDEX_FILE and (master_dir() / MASTER_FILE).read_bytes() == sim.master_bytes
    assert len(orjson.loads(sim.master_bytes)) > len(orjson.loads(fixture_master_bytes()))
    assert seen[-1] == (len(sim.master_bytes), len(sim.master_bytes))
    assert load_master().resolve(parse("RELIANCE:NSE")).token == "2885"
    assert orjson.loads(path.read_bytes())["source"] == sim.master_url
    assert not [p for p in os.listdir(master_dir()) if p.endswith(".part")]


async def test_update_failures_keep_the_old_master(sim):
    await asyncio.to_thread(update_master, sim.master_url)
    before = (master_dir() / INDEX_FILE).read_bytes()
    with pytest.raises(AngelUnavailable, match=r"HTTP 404 Not Found$"):
        await asyncio.to_thread(update_master, sim.api_url + "/no/such/file.json")
    with pytest.raises(AngelUnavailable, match=r"^cannot download .*OpenAPIScripMaster\.json: connection refused$"):
        await asyncio.to_thread(update_master, "http://127.0.0.1:9/OpenAPIScripMaster.json", None, 2.0)
    assert (master_dir() / INDEX_FILE).read_bytes() == before


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:1/x", "connection refused"),
        ("file:///tmp/OpenAPIScripMaster.json", "unsupported URL scheme 'file' (use http:// or https://)"),
        ("OpenAPIScripMaster.json", "not a URL (it needs http:// or https://)"),
        ("http://[::1/x", "not a valid URL"),
    ],
)
def test_a_failed_download_says_why_in_words(url, reason):
    with pytest.raises(AngelUnavailable) as caught:
        update_master(url, None, 2.0)
    assert str(caught.value) == f"cannot download the instrument master from {url}: {reason}"


async def test_an_unwritable_cache_fails_before_downloading(sim, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(MasterNotSaved) as caught:
        await asyncio.to_thread(update_master, sim.master_url)
    assert str(caught.value) == f"cannot save the instrument master in {master_dir()}: Not a directory"
    assert sim.rest_requests == []


async def test_a_cache_that_cannot_take_the_index_keeps_the_old_master(sim, monkeypatch):
    await asyncio.to_thread(update_master, sim.master_url)
    before = (master_dir() / INDEX_FILE).read_bytes()
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith(INDEX_FILE):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(MasterNotSaved, match=r"No space left on device$"):
        await asyncio.to_thread(update_master, sim.master_url)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (master_dir() / INDEX_FILE).read_bytes() == before
    assert not [p for p in os.listdir(master_dir()) if p.endswith(".part")]
