"""Kite's instrument dump: parsing (against kiteconnect's own parser), OpenAlgo's names, search, the cached index.

The expected oaws names are built here from OpenAlgo's rules (broker/zerodha/database/
master_contract_db.py: name + DDMMMYY + strike + CE/PE, name + DDMMMYY + FUT, its index
tables), not copied from the adapter's output.
"""

from __future__ import annotations

import os
from datetime import date

import pytest
from kiteconnect import KiteConnect

from oaws.brokers.api import Rejection
from oaws.brokers.kite.errors import KiteMasterMissing, KiteUnavailable
from oaws.brokers.kite.master import (
    INDEX_FILE,
    MASTER_FILE,
    TOKEN,
    TRADINGSYMBOL,
    KiteMaster,
    Master,
    index_bytes,
    load_master,
    master_dir,
    rows_from_csv,
)
from oaws.instruments import Instrument
from oaws.protocol.codes import SYMBOL_NOT_FOUND

HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
    "instrument_type,segment,exchange"
)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

# Rows shaped as Kite writes them (tokens are exchange_token << 8 | segment byte).
ROWS = [
    "256265,1001,NIFTY 50,NIFTY 50,24050,,0,0,0,EQ,INDICES,NSE",
    "260105,1016,NIFTY BANK,NIFTY BANK,52300,,0,0,0,EQ,INDICES,NSE",
    "257801,1007,NIFTY FIN SERVICE,NIFTY FIN SERVICE,23600,,0,0,0,EQ,INDICES,NSE",
    "288009,1125,NIFTY MID SELECT,NIFTY MID SELECT,12650,,0,0,0,EQ,INDICES,NSE",
    "264969,1035,INDIA VIX,INDIA VIX,13.25,,0,0,0,EQ,INDICES,NSE",
    "270857,1058,NIFTY NEXT 50,NIFTY NEXT 50,70400,,0,0,0,EQ,INDICES,NSE",
    "265,1,SENSEX,SENSEX,80200,,0,0,0,EQ,INDICES,BSE",
    "274441,1072,BANKEX,BANKEX,59300,,0,0,0,EQ,INDICES,BSE",
    "999001,3902,SNSX50,SNSX50,25000,,0,0,0,EQ,INDICES,BSE",
    "738561,2885,RELIANCE,RELIANCE INDUSTRIES,2950,,0,0.05,1,EQ,NSE,NSE",
    "128083204,500325,RELIANCE,RELIANCE INDUSTRIES,2950,,0,0.05,1,EQ,BSE,BSE",
    '12345602,48225,NIFTY24D2624000CE,"NIFTY",120.5,2024-12-26,24000,0.05,25,CE,NFO-OPT,NFO',
    '12345858,48226,NIFTY24DEC24000PE,"NIFTY",110,2024-12-26,24000,0.05,25,PE,NFO-OPT,NFO',
    '12346114,48227,NIFTY24DECFUT,"NIFTY",24100,2024-12-26,0,0.05,25,FUT,NFO-FUT,NFO',
    '12346373,48228,SENSEX24DEC80000CE,"SENSEX",500,2024-12-27,80000,0.05,10,CE,BFO-OPT,BFO',
    '412675,1612,USDINR24DEC83.25CE,"USDINR",0.1,2024-12-27,83.25,0.0025,1,CE,CDS-OPT,CDS',
    '412931,1613,USDINR24DECFUT,"USDINR",84.1,2024-12-27,0,0.0025,1,FUT,CDS-FUT,CDS',
    '5126,20,USDINR24DECFUT,"USDINR",84.1,2024-12-27,0,0.0025,1,FUT,BCD-FUT,BCD',
    '109127431,426279,CRUDEOIL24DECFUT,"CRUDEOIL",6100,2024-12-19,0,1,100,FUT,MCX-FUT,MCX',
    '2828,11,GOLDM24DECFUT,"GOLDM",76000,2024-12-05,0,1,10,FUT,NCO-FUT,NCO',
    "777,3,USDINR,USDINR,84,,0,0,0,EQ,INDICES,CDS",
]


def dump(*rows: str) -> bytes:
    return ("\n".join((HEADER, *(rows or ROWS))) + "\n").encode()


def openalgo_option(name: str, expiry: date, strike: float, kind: str) -> str:
    text = str(int(strike)) if strike == int(strike) else str(strike)
    return f"{name}{expiry:%d}{MONTHS[expiry.month - 1]}{expiry:%y}{text}{kind}"


def openalgo_future(name: str, expiry: date) -> str:
    return f"{name}{expiry:%d}{MONTHS[expiry.month - 1]}{expiry:%y}FUT"


@pytest.fixture
def master() -> Master:
    return Master(rows_from_csv(dump()))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("OAWS_INSTRUMENTS", raising=False)
    for name in ("KITE_API_KEY", "KITE_API_SECRET", "KITE_ACCESS_TOKEN", "KITE_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


@pytest.mark.parametrize(
    ("typed", "token"),
    [
        ("NIFTY:NSE_INDEX", 256265),
        ("NIFTY 50:NSE_INDEX", 256265),
        ("nifty50:NSE_INDEX", 256265),
        ("BANKNIFTY:NSE_INDEX", 260105),
        ("NIFTY BANK:NSE_INDEX", 260105),
        ("FINNIFTY:NSE_INDEX", 257801),
        ("MIDCPNIFTY:NSE_INDEX", 288009),
        ("INDIAVIX:NSE_INDEX", 264969),
        ("INDIA VIX:NSE_INDEX", 264969),
        ("NIFTYNXT50:NSE_INDEX", 270857),
        ("SENSEX:BSE_INDEX", 265),
        ("BANKEX:BSE_INDEX", 274441),
        ("SENSEX50:BSE_INDEX", 999001),
        ("SNSX50:BSE_INDEX", 999001),
        ("RELIANCE:NSE", 738561),
        ("RELIANCE:BSE", 128083204),
    ],
)
def test_indices_by_openalgo_name_and_by_the_name_users_type_and_equities_as_written(master, typed, token):
    symbol, _, exchange = typed.rpartition(":")
    assert master.resolve(Instrument(symbol.upper(), exchange)).token == token
    assert master.resolve(typed).token == token  # "SYMBOL:EXCHANGE" text too


@pytest.mark.parametrize(
    ("kite", "openalgo", "exchange", "token"),
    [
        ("NIFTY24D2624000CE", openalgo_option("NIFTY", date(2024, 12, 26), 24000, "CE"), "NFO", 12345602),
        ("NIFTY24DEC24000PE", openalgo_option("NIFTY", date(2024, 12, 26), 24000, "PE"), "NFO", 12345858),
        ("NIFTY24DECFUT", openalgo_future("NIFTY", date(2024, 12, 26)), "NFO", 12346114),
        ("SENSEX24DEC80000CE", openalgo_option("SENSEX", date(2024, 12, 27), 80000, "CE"), "BFO", 12346373),
        ("USDINR24DEC83.25CE", openalgo_option("USDINR", date(2024, 12, 27), 83.25, "CE"), "CDS", 412675),
        ("USDINR24DECFUT", openalgo_future("USDINR", date(2024, 12, 27)), "CDS", 412931),
        ("USDINR24DECFUT", openalgo_future("USDINR", date(2024, 12, 27)), "BCD", 5126),
        ("CRUDEOIL24DECFUT", openalgo_future("CRUDEOIL", date(2024, 12, 19)), "MCX", 109127431),
        ("GOLDM24DECFUT", openalgo_future("GOLDM", date(2024, 12, 5)), "NCO", 2828),
    ],
)
def test_a_contract_by_openalgo_name_and_by_kite_tradingsymbol_is_one_token(master, kite, openalgo, exchange, token):
    by_openalgo = master.resolve(f"{openalgo}:{exchange}")
    by_kite = master.resolve(f"{kite}:{exchange}")
    assert by_openalgo.token == by_kite.token == token
    assert by_kite.tradingsymbol == kite and by_kite.instrument == f"{openalgo}:{exchange}"
    assert master.instrument_of(token) == f"{openalgo}:{exchange}"


def test_the_spelled_out_examples_of_the_brief(master):
    assert master.resolve("NIFTY26DEC2424000CE:NFO").token == 12345602
    assert master.resolve("NIFTY26DEC24FUT:NFO").token == 12346114
    assert master.instrument_of(256265) == "NIFTY:NSE_INDEX"
    assert master.instrument_of(265) == "SENSEX:BSE_INDEX"
    assert master.instrument_of(738561) == "RELIANCE:NSE"
    assert master.instrument_of(424242) is None


def test_resolved_carries_kites_own_fields(master):
    resolved = master.resolve("USDINR24DEC83.25CE:CDS")
    assert (resolved.exchange, resolved.segment, resolved.name, resolved.instrument_type) == (
        "CDS",
        "CDS-OPT",
        "USDINR",
        "CE",
    )
    assert (resolved.expiry, resolved.strike, resolved.lot_size, resolved.tick_size) == ("2024-12-27", 83.25, 1, 0.0025)


def test_cds_indices_have_no_oaws_exchange_and_are_left_out(master):
    assert 777 not in [row[TOKEN] for row in master.rows]
    assert master.instrument_of(777) is None


@pytest.mark.parametrize(
    ("typed", "sentence"),
    [
        ("NIFTY:NSE", "NIFTY:NSE is not in Kite's instrument dump; the index is NIFTY:NSE_INDEX"),
        ("SENSEX:BSE", "SENSEX:BSE is not in Kite's instrument dump; the index is SENSEX:BSE_INDEX"),
        (
            "NOSUCH:NSE",
            "NOSUCH:NSE is not in Kite's instrument dump; try: oaws instruments search NOSUCH --broker kite",
        ),
        ("NIFTY26DEC2424100CE:NFO", "NIFTY26DEC2424100CE:NFO is not in Kite's instrument dump"),
        ("BTCUSD:CRYPTO", "Zerodha Kite does not serve CRYPTO (it serves NSE, BSE, NFO"),
        ("RELIANCE:NCDEX", "Zerodha Kite does not serve NCDEX"),
    ],
)
def test_symbol_not_found_is_one_sentence(master, typed, sentence):
    with pytest.raises(Rejection) as caught:
        master.resolve(typed)
    assert caught.value.code == SYMBOL_NOT_FOUND
    assert str(caught.value.message).startswith(sentence)
    assert "\n" not in caught.value.message and "Traceback" not in caught.value.message


def test_search_ranks_exact_names_first_and_filters_by_exchange(master):
    first = master.search("nifty", limit=3)
    assert first[0].instrument == "NIFTY:NSE_INDEX"
    nfo = master.search("nifty", "NFO", limit=10)
    assert {m.instrument.rpartition(":")[2] for m in nfo} == {"NFO"}
    assert {m.tradingsymbol for m in nfo} == {"NIFTY24D2624000CE", "NIFTY24DEC24000PE", "NIFTY24DECFUT"}
    assert master.search("NIFTY 50")[0].instrument == "NIFTY:NSE_INDEX"
    assert master.search("usdinr", "BCD")[0].token == 5126
    assert len(master.search("i", limit=2)) == 2
    assert master.search("  ") == []
    assert master.search("zzzz") == []


def test_our_rows_are_the_rows_kiteconnect_reads(master):
    """kiteconnect's own parser of the dump (the oracle) reads the same tokens, symbols, strikes and expiries."""
    theirs = KiteConnect(api_key="x")._parse_instruments(dump())
    served = [r for r in theirs if not (r["segment"] == "INDICES" and r["exchange"] == "CDS")]
    ours = rows_from_csv(dump())
    assert [(r[TOKEN], r[TRADINGSYMBOL]) for r in ours] == [(r["instrument_token"], r["tradingsymbol"]) for r in served]
    for row, record in zip(ours, served, strict=True):
        resolved = master.resolve(f"{row[0]}:{row[1]}")
        assert resolved.token == record["instrument_token"]
        assert resolved.strike == record["strike"] and resolved.lot_size == record["lot_size"]
        assert resolved.tick_size == record["tick_size"]
        assert resolved.expiry == (record["expiry"].isoformat() if record["expiry"] else "")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "an empty file"),
        (b"<html><body>502 Bad Gateway</body></html>", r"not Kite's instrument dump \(no instrument_token,"),
        (b"\xff\xfe\x00garbage", "not a CSV file"),
        (dump(*ROWS[:3]) + b"738561,2885,RELIA", "line 5 has 3 of 12 fields"),
        (f"{HEADER}\n".encode(), "no instrument in it"),
    ],
)
def test_what_is_not_a_whole_dump_is_refused_with_the_reason(data, reason):
    with pytest.raises(ValueError, match=reason):
        rows_from_csv(data)


def test_a_row_with_a_token_that_is_no_number_is_skipped(master):
    rows = rows_from_csv(dump("abc,1,BAD,BAD,0,,0,0,1,EQ,NSE,NSE", ROWS[9]))
    assert [r[TRADINGSYMBOL] for r in rows] == ["RELIANCE"]


def test_load_master_without_a_cache_names_the_command(cache):
    with pytest.raises(KiteMasterMissing) as caught:
        load_master()
    assert str(caught.value) == (
        "no Kite instrument master: run `oaws instruments update --broker kite` or pass --instruments FILE"
    )


def test_load_master_reads_kites_csv_and_our_index(cache, tmp_path):
    csv_path = tmp_path / "instruments.csv"
    csv_path.write_bytes(dump())
    from_csv = load_master(csv_path)
    index_path = tmp_path / "index.json"
    index_path.write_bytes(index_bytes(from_csv.rows, "test"))
    from_index = load_master(str(index_path))
    assert from_index.rows == from_csv.rows
    assert from_index.resolve("NIFTY 50:NSE_INDEX").token == 256265


@pytest.mark.parametrize(
    "content",
    [b'{"format": "oaws-kite-index-1", "rows": [[1, 2]]}', b'{"format": "other"}', b"{not json", b"{}"],
)
def test_a_corrupt_index_is_one_sentence(cache, content):
    master_dir().mkdir(parents=True)
    (master_dir() / INDEX_FILE).write_bytes(content)
    with pytest.raises(KiteMasterMissing) as caught:
        load_master()
    message = str(caught.value)
    assert "is not a readable Kite instrument index" in message and "oaws instruments update --broker kite" in message
    assert "\n" not in message


def test_an_unreadable_file_is_one_sentence(cache, tmp_path):
    with pytest.raises(KiteMasterMissing, match=r"cannot read the Kite instrument master .*: No such file"):
        load_master(tmp_path / "nowhere.csv")


def test_update_from_an_unreachable_address_keeps_the_old_cache(cache, monkeypatch):
    monkeypatch.setattr("oaws.brokers.kite.session.FIRST_DELAY", 0.01)
    directory = master_dir()
    directory.mkdir(parents=True)
    (directory / INDEX_FILE).write_bytes(index_bytes(rows_from_csv(dump()), "before"))
    with pytest.raises(
        KiteUnavailable,
        match=r"^cannot reach Kite for the instrument dump at http://127.0.0.1:9/instruments: connection refused$",
    ):
        KiteMaster().update("http://127.0.0.1:9/instruments?x=1", None)
    assert load_master().source == "before"
    assert sorted(os.listdir(directory)) == [INDEX_FILE]
    assert MASTER_FILE not in os.listdir(directory)


# Against the simulator's dump -----------------------------------------------------
def expected_names(record: dict) -> set[str]:
    """The oaws names a row of kiteconnect's parse must resolve by: OpenAlgo's (rebuilt here) and Kite's own."""
    exchange, kind, symbol = record["exchange"], record["instrument_type"], record["tradingsymbol"]
    if record["segment"] == "INDICES":
        openalgo = {
            "NIFTY 50": "NIFTY",
            "NIFTY BANK": "BANKNIFTY",
            "NIFTY FIN SERVICE": "FINNIFTY",
            "NIFTY MID SELECT": "MIDCPNIFTY",
            "INDIA VIX": "INDIAVIX",
            "NIFTY NEXT 50": "NIFTYNXT50",
            "NIFTY IT": "NIFTYIT",
        }.get(symbol, symbol)
        where = {"NSE": "NSE_INDEX", "BSE": "BSE_INDEX"}[exchange]
        return {f"{openalgo}:{where}", f"{symbol}:{where}", f"{symbol.replace(' ', '')}:{where}"}
    if kind == "FUT":
        return {f"{openalgo_future(record['name'], record['expiry'])}:{exchange}", f"{symbol}:{exchange}"}
    if kind in ("CE", "PE"):
        option = openalgo_option(record["name"], record["expiry"], record["strike"], kind)
        return {f"{option}:{exchange}", f"{symbol}:{exchange}"}
    return {f"{symbol}:{exchange}"}


def test_every_row_of_the_simulators_dump_resolves_by_both_names(kite_sim):
    records = KiteConnect(api_key="x")._parse_instruments(kite_sim.dump_bytes())
    master = Master(rows_from_csv(kite_sim.dump_bytes()))
    assert len(master) == len(records) > 300
    kinds = set()
    for record in records:
        kinds.add((record["exchange"], record["segment"]))
        for name in expected_names(record):
            assert master.resolve(name).token == record["instrument_token"], name
        assert master.instrument_of(record["instrument_token"]) in expected_names(record)
    assert {e for e, _ in kinds} >= {"NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCO"}


async def test_kiteconnects_instruments_call_and_our_download_read_the_same_rows(kite_sim, cache):
    import asyncio

    kite = KiteConnect(api_key=kite_sim.api_key, root=kite_sim.api_url, timeout=5)
    theirs = await asyncio.to_thread(kite.instruments)
    calls: list[tuple[int, int | None]] = []
    path, count = await asyncio.to_thread(
        KiteMaster().update, f"{kite_sim.api_url}/instruments", lambda done, total: calls.append((done, total))
    )
    assert path == master_dir() / INDEX_FILE and count == len(theirs)
    assert (master_dir() / MASTER_FILE).read_bytes() == kite_sim.dump_bytes()
    size = len(kite_sim.dump_bytes())
    assert calls[0] == (0, size) and calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    loaded = load_master()
    assert [r[TOKEN] for r in loaded.rows] == [r["instrument_token"] for r in theirs]
    assert loaded.source == f"{kite_sim.api_url}/instruments"


async def test_update_without_a_url_downloads_from_kite_api_url(kite_sim, cache, monkeypatch):
    import asyncio

    monkeypatch.setenv("KITE_API_URL", kite_sim.api_url)
    _, count = await asyncio.to_thread(KiteMaster().update, None, None)
    assert count == len(KiteConnect(api_key="x")._parse_instruments(kite_sim.dump_bytes()))
    assert ("GET", "/instruments") in kite_sim.rest_requests
    assert kite_sim.rest_headers[-1].get("x-kite-version") == "3"
    matches = KiteMaster().search("nifty", "NFO", 5, None)
    assert len(matches) == 5 and all(m.instrument.endswith(":NFO") for m in matches)
    assert "NIFTY:NSE_INDEX" in KiteMaster().instruments()


async def test_a_busy_kite_is_retried_then_the_download_succeeds(kite_sim, cache, monkeypatch):
    import asyncio

    monkeypatch.setattr("oaws.brokers.kite.session.FIRST_DELAY", 0.01)
    kite_sim.rest_fault(429, count=1, retry_after=0.05)
    kite_sim.rest_fault(503, count=1)
    _, count = await asyncio.to_thread(KiteMaster().update, f"{kite_sim.api_url}/instruments", None)
    assert count > 300 and kite_sim.rest_requests.count(("GET", "/instruments")) == 3


def _seed_cache() -> None:
    master_dir().mkdir(parents=True)
    (master_dir() / INDEX_FILE).write_bytes(index_bytes(rows_from_csv(dump()), "before"))


async def test_kite_down_for_good_keeps_the_old_cache(kite_sim, cache, monkeypatch):
    import asyncio

    monkeypatch.setattr("oaws.brokers.kite.session.FIRST_DELAY", 0.01)
    _seed_cache()
    kite_sim.rest_fault(503, count=10, html=True)
    url = f"{kite_sim.api_url}/instruments"
    with pytest.raises(KiteUnavailable) as caught:
        await asyncio.to_thread(KiteMaster().update, url, None)
    assert str(caught.value) == f"cannot reach Kite for the instrument dump at {url}: HTTP 503 Service Unavailable"
    assert load_master().source == "before"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>maintenance</body></html>", "did not send Kite's instrument dump (not Kite's instrument dump"),
        (dump()[:-40], "did not send Kite's instrument dump (line"),
    ],
)
async def test_garbage_or_a_cut_dump_is_refused_and_the_old_cache_kept(cache, body, reason):
    import asyncio

    from oaws.brokers.kite.simulator import KiteSimulator

    _seed_cache()
    async with KiteSimulator(dump=body) as sim:
        with pytest.raises(KiteMasterMissing) as caught:
            await asyncio.to_thread(KiteMaster().update, f"{sim.api_url}/instruments", None)
    message = str(caught.value)
    assert reason in message and message.endswith("the old one is kept") and "\n" not in message
    assert load_master().source == "before"
    assert sorted(os.listdir(master_dir())) == [INDEX_FILE]


async def test_a_body_shorter_than_its_content_length_is_refused(cache):
    """A server that promises more bytes than it sends (a dropped connection mid-download)."""
    import asyncio

    _seed_cache()
    body = dump()

    async def short(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body[: len(body) // 2])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(short, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises((KiteMasterMissing, KiteUnavailable)) as caught:
            await asyncio.to_thread(KiteMaster().update, f"http://127.0.0.1:{port}/instruments", None)
    finally:
        server.close()
        await server.wait_closed()
    assert "broke off" in str(caught.value)
    assert load_master().source == "before"


def test_completion_lists_the_oaws_names_and_is_quiet_without_a_master(cache, tmp_path):
    from oaws.brokers.kite.master import completion_instruments

    assert completion_instruments() == []
    (tmp_path / "broken.json").write_bytes(b"{broken")
    assert completion_instruments(str(tmp_path / "broken.json")) == []
    _seed_cache()
    names = completion_instruments()
    assert "NIFTY:NSE_INDEX" in names and "SENSEX50:BSE_INDEX" in names
    assert openalgo_option("NIFTY", date(2024, 12, 26), 24000, "CE") + ":NFO" in names
    csv_path = tmp_path / "dump.csv"
    csv_path.write_bytes(dump())
    assert completion_instruments(str(csv_path)) == names
