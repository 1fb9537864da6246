"""Dhan's scrip master: parsing (cross-checked with pandas, as Dhan's own tooling reads it),
OpenAlgo's names, resolution both ways, search, the download and its faults, the cached index."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import orjson
import pandas as pd
import pytest

from oaws.brokers.api import Rejection
from oaws.brokers.dhan.errors import DhanMasterMissing, DhanUnavailable
from oaws.brokers.dhan.master import (
    INDEX_FILE,
    MASTER_FILE,
    DhanMaster,
    Master,
    load_master,
    master_dir,
    rows_from_csv,
    update_master,
)
from oaws.instruments import parse
from oaws.protocol.codes import SYMBOL_NOT_FOUND
from tests.helpers import free_port

HEADER = (
    "SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,SEM_EXPIRY_CODE,SEM_TRADING_SYMBOL,"
    "SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,SEM_OPTION_TYPE,SEM_TICK_SIZE,"
    "SEM_EXPIRY_FLAG,SEM_EXCH_INSTRUMENT_TYPE,SEM_SERIES,SM_SYMBOL_NAME"
)
#: lines in the shape of public copies of Dhan's compact master: a weekly and the monthly option of
#: one month share Dhan's trading symbol; one security id in two segments; BSE currency and F&O
FIXTURE = "\r\n".join(
    (
        HEADER,
        "NSE,I,13,INDEX,0,NIFTY,1.0,Nifty 50,,-0.01000,XX,5.0000,NA,INDEX,NA,NIFTY",
        "NSE,I,21,INDEX,0,INDIA VIX,1.0,India VIX,,-0.01000,XX,5.0000,NA,INDEX,NA,INDIA VIX",
        "NSE,I,38,INDEX,0,NIFTY NEXT 50,1.0,Nifty Next 50,,-0.01000,XX,5.0000,NA,INDEX,NA,NIFTY NEXT 50",
        "BSE,I,51,INDEX,0,SENSEX,1.0,SENSEX,,-0.01000,XX,5.0000,NA,INDEX,NA,SENSEX",
        "BSE,I,83,INDEX,0,SNSX50,1.0,SENSEX 50,,-0.01000,XX,5.0000,NA,INDEX,NA,SNSX50",
        "NSE,E,2885,EQUITY,0,RELIANCE,1.0,Reliance Industries,,-0.01000,XX,5.0000,NA,ES,EQ,RELIANCE INDUSTRIES LTD",
        "NSE,E,99885,EQUITY,0,RELIANCE,1.0,Reliance Industries,,-0.01000,XX,5.0000,NA,ES,BL,RELIANCE INDUSTRIES LTD",
        "BSE,E,500325,EQUITY,0,RELIANCE,1.0,Reliance Industries,,-0.01000,XX,5.0000,NA,ES,A,RELIANCE INDUSTRIES LTD",
        "NSE,D,44430,OPTIDX,0,NIFTY-Oct2024-25800-CE,25.0,NIFTY 24 OCT 25800 CALL,2024-10-24 14:30:00,"
        "25800.00000,CE,5.0000,W,OP,NA,NIFTY",
        "NSE,D,58548,OPTIDX,0,NIFTY-Oct2024-25800-CE,25.0,NIFTY 03 OCT 25800 CALL,2024-10-03 14:30:00,"
        "25800.00000,CE,5.0000,W,OP,NA,NIFTY",
        "NSE,D,45002,FUTIDX,0,NIFTY-Dec2024-FUT,75.0,NIFTY DEC FUT,2024-12-26 14:30:00,-0.01000,XX,10.0000,M,FUT,NA,"
        "NIFTY",
        "NSE,D,45003,OPTIDX,0,NIFTY-Dec2024-24000-PE,75.0,NIFTY DEC 24000 PUT,2024-12-26 14:30:00,24000.00000,PE,"
        "5.0000,M,OP,NA,NIFTY",
        "NSE,D,45010,FUTSTK,0,BAJAJ-AUTO-Dec2024-FUT,75.0,BAJAJ-AUTO DEC FUT,2024-12-26 14:30:00,-0.01000,XX,"
        "10.0000,M,FUT,NA,BAJAJ-AUTO",
        "BSE,D,45002,OPTIDX,0,SENSEX-Dec2024-80000-CE,10.0,SENSEX 24 DEC 80000 CALL,2024-12-24 14:30:00,"
        "80000.00000,CE,5.0000,W,OP,NA,SENSEX",
        "NSE,C,8001,FUTCUR,0,USDINR-Dec2024-FUT,1.0,USDINR DEC FUT,2024-12-27 12:00:00,-0.01000,XX,0.2500,M,FUT,NA,"
        "USDINR",
        "NSE,C,8002,OPTCUR,0,USDINR-Dec2024-83.25-CE,1.0,USDINR 27 DEC 83.25 CALL,2024-12-27 12:00:00,83.25000,CE,"
        "0.2500,W,OP,NA,USDINR",
        "BSE,C,9001,FUTCUR,0,EURINR-Dec2024-FUT,1.0,EURINR DEC FUT,2024-12-27 12:00:00,-0.01000,XX,0.2500,M,FUT,NA,"
        "EURINR",
        "MCX,M,430000,FUTCOM,0,CRUDEOIL-Dec2024-FUT,100.0,CRUDEOIL DEC FUT,2024-12-18 23:30:00,-0.01000,XX,100.0000,"
        "M,FUT,NA,CRUDEOIL",
        "MCX,M,430001,OPTFUT,0,CRUDEOIL-Dec2024-6000-CE,100.0,CRUDEOIL 16 DEC 6000 CALL,2024-12-16 23:30:00,"
        "6000.00000,CE,10.0000,M,OP,NA,CRUDEOIL",
        "NCDEX,D,1,FUTCOM,0,GUAR-Dec2024-FUT,5.0,GUAR DEC FUT,2024-12-20 17:00:00,-0.01000,XX,100.0000,M,FUT,NA,GUAR",
        "",
    )
).encode()


@pytest.fixture
def fixture_master() -> Master:
    return Master(rows_from_csv(FIXTURE), "fixture")


def resolve(master: Master, text: str):
    return master.resolve(parse(text))


# Parsing, cross-checked ------------------------------------------------------------
#: (SEM_EXM_EXCH_ID, SEM_SEGMENT) -> Dhan's exchange segment: Dhan's own letters, another way than oaws's
LETTERS = {
    ("NSE", "I"): "IDX_I",
    ("BSE", "I"): "IDX_I",
    ("NSE", "E"): "NSE_EQ",
    ("BSE", "E"): "BSE_EQ",
    ("NSE", "D"): "NSE_FNO",
    ("BSE", "D"): "BSE_FNO",
    ("NSE", "C"): "NSE_CURRENCY",
    ("BSE", "C"): "BSE_CURRENCY",
    ("MCX", "M"): "MCX_COMM",
}


def pandas_frame(data: bytes) -> pd.DataFrame:
    """The master as dhanhq's fetch_security_list reads it (pandas.read_csv), every field as text."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


async def test_the_simulators_master_parses_as_pandas_reads_it(dhan_sim):
    data = dhan_sim.scrips_bytes()
    frame = pandas_frame(data)
    rows = rows_from_csv(data)
    assert len(rows) == len(frame) > 50
    expected = {
        (LETTERS[(r.SEM_EXM_EXCH_ID, r.SEM_SEGMENT)], r.SEM_SMST_SECURITY_ID) for r in frame.itertuples(index=False)
    }
    assert {(row[1], row[0]) for row in rows} == expected
    master = Master(rows)
    for record in frame.itertuples(index=False):
        segment = LETTERS[(record.SEM_EXM_EXCH_ID, record.SEM_SEGMENT)]
        from oaws.brokers.dhan.master import SEGMENT_CODES

        instrument = master.instrument_of(SEGMENT_CODES[segment], record.SEM_SMST_SECURITY_ID)
        assert instrument is not None
        resolved = master.resolve(parse(instrument))
        assert (resolved.segment, resolved.security_id) == (segment, record.SEM_SMST_SECURITY_ID)
        assert resolved.tradingsymbol == record.SEM_TRADING_SYMBOL
        assert resolved.lot_size == int(float(record.SEM_LOT_UNITS))
        # OpenAlgo's expiry: pandas.to_datetime, then "%d-%b-%y" in capitals
        when = pd.to_datetime(record.SEM_EXPIRY_DATE, errors="coerce")
        assert resolved.expiry == ("" if pd.isna(when) else when.strftime("%d-%b-%y").upper())
        if record.SEM_OPTION_TYPE in ("CE", "PE"):
            # the same name built from the expiry and strike columns, not from the custom symbol oaws reads
            strike = f"{float(record.SEM_STRIKE_PRICE):g}"
            under = record.SEM_TRADING_SYMBOL.rsplit("-", 3)[0]
            assert instrument.split(":")[0] == f"{under}{when:%d%b%y}".upper() + strike + record.SEM_OPTION_TYPE
            assert resolved.strike == float(record.SEM_STRIKE_PRICE)


def test_a_csv_read_with_the_csv_module_gives_the_same_lines(fixture_master):
    records = list(csv.DictReader(io.StringIO(FIXTURE.decode())))
    served = [r for r in records if r["SEM_EXM_EXCH_ID"] in ("NSE", "BSE", "MCX")]
    assert len(fixture_master) == len(served) == len(records) - 1  # NCDEX is not Dhan's
    assert {row[0] for row in fixture_master.rows} == {r["SEM_SMST_SECURITY_ID"] for r in served}


# OpenAlgo's names ------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed, security_id",
    [
        ("NIFTY:NSE_INDEX", "13"),
        ("NIFTY 50:NSE_INDEX", "13"),
        ("nifty50:NSE_INDEX", "13"),
        ("INDIAVIX:NSE_INDEX", "21"),
        ("India VIX:NSE_INDEX", "21"),
        ("NIFTYNXT50:NSE_INDEX", "38"),
        ("Nifty Next 50:NSE_INDEX", "38"),
        ("SENSEX:BSE_INDEX", "51"),
        ("SENSEX50:BSE_INDEX", "83"),
        ("SNSX50:BSE_INDEX", "83"),
    ],
)
def test_indices_answer_to_openalgos_names_and_to_the_names_people_type(fixture_master, typed, security_id):
    resolved = resolve(fixture_master, typed)
    assert (resolved.segment, resolved.segment_code, resolved.security_id) == ("IDX_I", 0, security_id)
    assert resolved.instrument_type == "INDEX"


def test_the_way_back_gives_openalgos_index_names(fixture_master):
    assert fixture_master.instrument_of(0, "13") == "NIFTY:NSE_INDEX"
    assert fixture_master.instrument_of(0, 21) == "INDIAVIX:NSE_INDEX"
    assert fixture_master.instrument_of(0, "38") == "NIFTYNXT50:NSE_INDEX"
    assert fixture_master.instrument_of(0, "83") == "SENSEX50:BSE_INDEX"


@pytest.mark.parametrize(
    "openalgo, dhan, segment, security_id",
    [
        ("NIFTY26DEC24FUT:NFO", "NIFTY-Dec2024-FUT:NFO", "NSE_FNO", "45002"),
        ("NIFTY26DEC2424000PE:NFO", "NIFTY-Dec2024-24000-PE:NFO", "NSE_FNO", "45003"),
        ("BAJAJ-AUTO26DEC24FUT:NFO", "BAJAJ-AUTO-Dec2024-FUT:NFO", "NSE_FNO", "45010"),
        ("SENSEX24DEC2480000CE:BFO", "SENSEX-Dec2024-80000-CE:BFO", "BSE_FNO", "45002"),
        ("USDINR27DEC24FUT:CDS", "USDINR-Dec2024-FUT:CDS", "NSE_CURRENCY", "8001"),
        ("USDINR27DEC2483.25CE:CDS", "USDINR-Dec2024-83.25-CE:CDS", "NSE_CURRENCY", "8002"),
        ("EURINR27DEC24FUT:BCD", "EURINR-Dec2024-FUT:BCD", "BSE_CURRENCY", "9001"),
        ("CRUDEOIL18DEC24FUT:MCX", "CRUDEOIL-Dec2024-FUT:MCX", "MCX_COMM", "430000"),
        ("CRUDEOIL16DEC246000CE:MCX", "CRUDEOIL-Dec2024-6000-CE:MCX", "MCX_COMM", "430001"),
    ],
)
def test_derivatives_in_openalgos_format_and_dhans_own_are_one_contract(
    fixture_master, openalgo, dhan, segment, security_id
):
    by_openalgo, by_dhan = resolve(fixture_master, openalgo), resolve(fixture_master, dhan)
    assert by_openalgo == by_dhan
    assert (by_openalgo.segment, by_openalgo.security_id, by_openalgo.instrument) == (segment, security_id, openalgo)
    codes = {"NSE_FNO": 2, "NSE_CURRENCY": 3, "MCX_COMM": 5, "BSE_CURRENCY": 7, "BSE_FNO": 8}
    assert by_openalgo.segment_code == codes[segment]
    assert fixture_master.instrument_of(codes[segment], security_id) == openalgo


def test_one_security_id_in_two_segments_is_two_instruments(fixture_master):
    assert fixture_master.instrument_of(2, "45002") == "NIFTY26DEC24FUT:NFO"
    assert fixture_master.instrument_of(8, "45002") == "SENSEX24DEC2480000CE:BFO"
    assert fixture_master.instrument_of(1, "45002") is None


def test_an_equity_is_its_trading_symbol_and_series_eq_wins(fixture_master):
    nse, bse = resolve(fixture_master, "RELIANCE:NSE"), resolve(fixture_master, "RELIANCE:BSE")
    assert (nse.segment, nse.segment_code, nse.security_id, nse.instrument_type) == ("NSE_EQ", 1, "2885", "EQ")
    assert (bse.segment, bse.segment_code, bse.security_id) == ("BSE_EQ", 4, "500325")
    assert nse.tick_size == 0.05 and nse.lot_size == 1
    assert fixture_master.instrument_of(1, "2885") == "RELIANCE:NSE"


# Refusals --------------------------------------------------------------------------
def refusal(master: Master, text: str) -> str:
    with pytest.raises(Rejection) as caught:
        resolve(master, text)
    assert caught.value.code == SYMBOL_NOT_FOUND
    message = str(caught.value.message)
    assert "\n" not in message
    return message


def test_an_unknown_symbol_is_refused_with_a_search_hint(fixture_master):
    message = refusal(fixture_master, "NOSUCH:NSE")
    assert message.startswith("NOSUCH:NSE is not in Dhan's scrip master")
    assert "oaws instruments search NOSUCH --broker dhan" in message


def test_an_index_asked_on_the_cash_exchange_is_pointed_at_its_index(fixture_master):
    assert refusal(fixture_master, "NIFTY:NSE").endswith("the index is NIFTY:NSE_INDEX")


def test_an_exchange_dhan_does_not_serve_is_refused_with_those_it_does(fixture_master):
    message = refusal(fixture_master, "GUAR20DEC24FUT:NCDEX")
    assert "does not serve NCDEX" in message and "NFO" in message and "BCD" in message


def test_a_dhan_symbol_of_two_contracts_is_refused_with_both_names(fixture_master):
    message = refusal(fixture_master, "NIFTY-Oct2024-25800-CE:NFO")
    assert "names 2 contracts" in message
    assert "NIFTY03OCT2425800CE:NFO" in message and "NIFTY24OCT2425800CE:NFO" in message
    # each of them by its own name
    assert resolve(fixture_master, "NIFTY03OCT2425800CE:NFO").security_id == "58548"
    assert resolve(fixture_master, "NIFTY24OCT2425800CE:NFO").security_id == "44430"


# Search ----------------------------------------------------------------------------
def test_search_finds_cash_before_contracts_and_keeps_to_the_exchange(fixture_master):
    found = fixture_master.search("reliance")
    assert [m.instrument for m in found[:2]] == ["RELIANCE:NSE", "RELIANCE:BSE"]
    nfo = fixture_master.search("nifty", "NFO")
    assert nfo and all(m.instrument.endswith(":NFO") for m in nfo)
    assert {"NIFTY26DEC24FUT:NFO", "NIFTY26DEC2424000PE:NFO"} <= {m.instrument for m in nfo}
    assert fixture_master.search("nifty 50", "NSE_INDEX")[0].instrument == "NIFTY:NSE_INDEX"
    assert len(fixture_master.search("nifty", limit=2)) == 2
    assert fixture_master.search("  ") == []
    match = fixture_master.search("USDINR27DEC2483.25CE", "CDS")[0]
    assert match.columns()["instrument"] == "USDINR27DEC2483.25CE:CDS"
    assert orjson.loads(orjson.dumps(match.as_dict()))["security_id"] == "8002"


# Files -----------------------------------------------------------------------------
def test_without_a_master_the_sentence_says_how_to_get_one():
    with pytest.raises(DhanMasterMissing) as caught:
        load_master()
    assert str(caught.value) == (
        "no Dhan scrip master: run `oaws instruments update --broker dhan` or pass --instruments FILE"
    )
    assert DhanMaster().instruments() == []


def test_a_local_copy_of_dhans_csv_is_read_directly(tmp_path):
    path = tmp_path / "api-scrip-master.csv"
    path.write_bytes(FIXTURE)
    assert resolve(load_master(path), "NIFTY26DEC24FUT:NFO").security_id == "45002"


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x00\xff\xfe garbage", "not text"),
        (b"<html><body>Service Unavailable</body></html>\n", "header lacks"),
        (b'{"format": "something else"}', "not an oaws index"),
        (b'{"format": "oaws-dhan-index-1", "rows": [[1, 2]]}', "rows are not"),
        (b"{not json", "not a Dhan scrip master"),
        (FIXTURE[: FIXTURE.index(b"NIFTY-Dec2024-FUT") + 5], "cut short"),
        (b"", "empty"),
    ],
)
def test_a_corrupt_master_or_index_is_one_sentence(tmp_path, content, reason):
    path = tmp_path / "master"
    path.write_bytes(content)
    with pytest.raises(DhanMasterMissing) as caught:
        load_master(path)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a Dhan scrip master: ") and reason in message
    assert "\n" not in message


def test_a_corrupt_cached_index_is_one_sentence():
    master_dir().mkdir(parents=True)
    (master_dir() / INDEX_FILE).write_bytes(b'{"format": "oaws-dhan-index-1", "rows": 7}')
    with pytest.raises(DhanMasterMissing) as caught:
        load_master()
    assert str(caught.value).startswith(f"{master_dir() / INDEX_FILE} is not a Dhan scrip master")
    assert DhanMaster().instruments() == []


async def test_update_downloads_the_simulators_master_with_progress(dhan_sim):
    seen: list[tuple[int, int | None]] = []
    path, count = await asyncio.to_thread(DhanMaster().update, dhan_sim.master_url, lambda d, t: seen.append((d, t)))
    data = dhan_sim.scrips_bytes()
    assert path == master_dir() / INDEX_FILE and (master_dir() / MASTER_FILE).read_bytes() == data
    assert count == len(rows_from_csv(data))
    assert seen[-1] == (len(data), len(data))
    assert all(done <= total for done, total in seen if total is not None)
    master = load_master()
    assert len(master) == count and resolve(master, "NIFTY:NSE_INDEX").security_id == "13"
    completion = DhanMaster().instruments()
    assert {"NIFTY:NSE_INDEX", "RELIANCE:NSE", "SENSEX:BSE_INDEX"} <= set(completion)
    assert len(completion) == count


# A master server of the test's own, for what the simulator does not do ------------
class Answers(BaseHTTPRequestHandler):
    #: (status, headers, body, declared Content-Length or None) for each request in turn; the last repeats
    script: ClassVar[list[tuple[int, dict[str, str], bytes, int | None]]] = []
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        status, headers, body, length = self.script[min(len(self.seen), len(self.script)) - 1]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def master_server(*script: tuple[int, dict[str, str], bytes, int | None]) -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (Answers,), {"script": list(script), "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api-scrip-master.csv", handler.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def cached() -> tuple[bytes, bytes]:
    return (master_dir() / MASTER_FILE).read_bytes(), (master_dir() / INDEX_FILE).read_bytes()


@pytest.fixture
def previous() -> tuple[bytes, bytes]:
    """A master already in the cache (the fixture's)."""
    with master_server((200, {}, FIXTURE, None)) as (url, _):
        update_master(url)
    return cached()


@pytest.mark.parametrize(
    "answer, reason",
    [
        ((200, {}, FIXTURE[:-400], len(FIXTURE)), "broke off"),  # the connection closes early
        ((200, {}, b"<html>maintenance</html>", None), "did not send Dhan's scrip master"),
        ((200, {}, FIXTURE[: FIXTURE.index(b"CRUDEOIL-Dec2024-FUT") + 4], None), "cut short"),
    ],
)
def test_a_broken_download_keeps_the_previous_master(previous, answer, reason):
    with master_server(answer) as (url, _), pytest.raises((DhanMasterMissing, DhanUnavailable)) as caught:
        update_master(url)
    message = str(caught.value)
    assert reason in message and "\n" not in message
    assert cached() == previous
    assert sorted(p.name for p in master_dir().iterdir()) == sorted([INDEX_FILE, MASTER_FILE])
    assert resolve(load_master(), "NIFTY26DEC24FUT:NFO").security_id == "45002"


def test_a_busy_master_server_is_tried_again(monkeypatch):
    from oaws.brokers.dhan import session

    monkeypatch.setattr(session, "FIRST_DELAY", 0.01)
    busy = (503, {}, b"busy", None)
    with master_server(busy, (429, {"Retry-After": "0"}, b"", None), (200, {}, FIXTURE, None)) as (url, seen):
        path, count = update_master(url)
    assert len(seen) == 3 and count == len(rows_from_csv(FIXTURE)) and path.exists()


def test_a_master_server_busy_for_good_is_dhan_unavailable(monkeypatch, previous):
    from oaws.brokers.dhan import session

    monkeypatch.setattr(session, "FIRST_DELAY", 0.01)
    with master_server((503, {}, b"busy", None)) as (url, seen), pytest.raises(DhanUnavailable) as caught:
        update_master(url)
    assert str(caught.value) == f"cannot download the Dhan scrip master from {url}: HTTP 503 Service Unavailable"
    assert len(seen) == session.ATTEMPTS
    assert cached() == previous


def test_an_unreachable_master_server_is_one_sentence(monkeypatch):
    from oaws.brokers.dhan import session

    monkeypatch.setattr(session, "FIRST_DELAY", 0.01)
    url = f"http://127.0.0.1:{free_port()}/api-scrip-master.csv"
    with pytest.raises(DhanUnavailable) as caught:
        update_master(url)
    assert str(caught.value) == f"cannot download the Dhan scrip master from {url}: connection refused"


def test_a_malformed_line_in_the_middle_is_skipped_and_counted(caplog):
    lines = FIXTURE.split(b"\r\n")
    broken = b"\r\n".join([*lines[:3], b"NSE,E,77,EQUITY,0,HALF", *lines[3:]])
    with caplog.at_level("WARNING", logger="oaws.brokers.dhan.master"):
        rows = rows_from_csv(broken)
    assert rows == rows_from_csv(FIXTURE)
    assert [r.getMessage() for r in caplog.records] == [
        "the Dhan scrip master has 1 malformed lines; they were skipped"
    ]


def test_an_index_of_rows_not_of_text_is_one_sentence_and_no_completion(tmp_path):
    path = tmp_path / "index.json"
    path.write_bytes(orjson.dumps({"format": "oaws-dhan-index-1", "rows": [list(range(13))]}))
    with pytest.raises(DhanMasterMissing) as caught:
        load_master(path)
    assert str(caught.value).startswith(f"{path} is not a Dhan scrip master: ")
    from oaws.brokers.dhan.master import completion_instruments

    assert completion_instruments(str(path)) == []
