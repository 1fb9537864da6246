"""The Dhan simulator, checked by Dhan's own client library (dhanhq 2.3.0), not by oaws's decoders.

Each packet the simulator sends is decoded by dhanhq's ``MarketFeed.process_*`` or
``FullDepth.process_20_depth_data`` and compared with the values the simulator meant
(``sim.intended(frame).values``); dhanhq's own connect/subscribe code, login message and
REST calls run against the simulator. dhanhq's clients are synchronous or own their event
loops, so they run in worker threads while the simulator serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dhanhq import DhanContext, FullDepth, MarketFeed, OrderUpdate
from dhanhq._security import Security
from dhanhq.auth import DhanLogin
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from oaws.brokers.dhan import scrips
from oaws.brokers.dhan.simulator import (
    IST_OFFSET,
    DhanSimulator,
    Disconnect,
    Full,
    Quote,
    Sent,
    Ticker,
    encode,
    float32,
)
from tests.helpers import eventually

RELIANCE = ("NSE_EQ", "2885")
NIFTY = ("IDX_I", "13")


def feed_url(sim: DhanSimulator, token: str | None = None, client_id: str | None = None) -> str:
    token = sim.access_token if token is None else token
    client_id = sim.client_id if client_id is None else client_id
    return f"{sim.feed_url}?version=2&token={token}&clientId={client_id}&authType=2"


def depth_url(sim: DhanSimulator, token: str | None = None) -> str:
    token = sim.access_token if token is None else token
    return f"{sim.depth_url}?token={token}&clientId={sim.client_id}&authType=2"


def request(code: int, *instruments: tuple[str, str]) -> str:
    entries = [{"ExchangeSegment": seg, "SecurityId": sid} for seg, sid in instruments]
    return json.dumps({"RequestCode": code, "InstrumentCount": len(entries), "InstrumentList": entries})


def future_of(sim: DhanSimulator, underlying: str = "NIFTY") -> tuple[str, str]:
    """The (segment, id) of the nearest future of ``underlying`` in the simulator's master."""
    futures = sorted(
        (s for s in sim.scrips.values() if s.name == underlying and s.symbol.endswith("-FUT")),
        key=lambda s: int(s.security_id),
    )
    return futures[0].segment, futures[0].security_id


async def frames(ws: ClientConnection, count: int, timeout: float = 5.0) -> list[bytes]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            message = await ws.recv()
            assert isinstance(message, bytes), f"the feed sent text: {message!r}"
            out.append(message)
    return out


async def first_of(ws: ClientConnection, code: int, timeout: float = 5.0) -> bytes:
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.recv()
            if isinstance(message, bytes) and message[0] == code:
                return message


def price(value: float) -> str:
    """A price as dhanhq shows a float32 field: two decimals."""
    return f"{float32(value):.2f}"


def clock(ltt: int) -> str:
    """dhanhq's reading of an LTT field (it formats the seconds as UTC)."""
    return datetime.fromtimestamp(ltt, UTC).strftime("%H:%M:%S")


def build(fn: Any) -> Any:
    """Run a dhanhq constructor in a worker thread: they create and install event loops of their own."""
    return asyncio.to_thread(fn)


@pytest.fixture
async def oracle(dhan_sim: DhanSimulator) -> Any:
    """dhanhq's MarketFeed, constructed (never connected): its process_* methods decode our bytes."""
    feed = await build(lambda: MarketFeed(DhanContext(dhan_sim.client_id, dhan_sim.access_token), [], version="v2"))
    yield feed
    feed.loop.close()


@pytest.fixture
async def depth_oracle(dhan_sim: DhanSimulator) -> Any:
    depth = await build(lambda: FullDepth(DhanContext(dhan_sim.client_id, dhan_sim.access_token), [], 20))
    yield depth
    depth.loop.close()


def intended(sim: DhanSimulator, frame: bytes) -> Any:
    return sim.intended(frame).values


# Construction ------------------------------------------------------------------------------
async def test_constructing_the_dhanhq_oracles_touches_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    context = DhanContext("1000000001", "not-a-token")
    feed = await build(lambda: MarketFeed(context, [(1, "2885", 15)], version="v2"))
    depth = await build(lambda: FullDepth(context, [(1, "2885")], 20))
    OrderUpdate(context)
    feed.loop.close()
    depth.loop.close()
    assert attempts == []
    assert feed.ws is None and depth.ws is None


# The market feed, packet by packet --------------------------------------------------------------
async def test_ticker_packets_decode_with_dhanhq_to_the_values_sent(dhan_sim: DhanSimulator, oracle: Any) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(15, RELIANCE, NIFTY))
        tickers = []
        async with asyncio.timeout(5):
            while len(tickers) < 6:
                frame = (await frames(ws, 1))[0]
                if frame[0] == 2:
                    tickers.append(frame)
    segments = set()
    for frame in tickers:
        sent: Sent = dhan_sim.intended(frame)
        assert isinstance(sent.values, Ticker)
        decoded = oracle.process_data(frame)
        assert decoded["type"] == "Ticker Data"
        assert (decoded["exchange_segment"], str(decoded["security_id"])) == (
            scrips.SEGMENT_CODES[sent.segment],
            sent.security_id,
        )
        assert decoded["LTP"] == price(sent.values.ltp)
        assert decoded["LTT"] == clock(sent.values.ltt)
        # India-clock seconds counted as if UTC: dhanhq's "UTC" clock shows India's time of day
        assert abs(sent.values.ltt - (time.time() + IST_OFFSET)) < 30
        segments.add(decoded["exchange_segment"])
    assert segments == {0, 1}, "NIFTY (IDX_I, 0) and RELIANCE (NSE_EQ, 1) both ticked"


async def test_quote_oi_and_previous_close_decode_with_dhanhq(dhan_sim: DhanSimulator, oracle: Any) -> None:
    future = future_of(dhan_sim)
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(17, future))
        received = await frames(ws, 7)
    codes = [f[0] for f in received]
    assert codes[:4] == [7, 6, 4, 5], "market status, previous close, then a quote and, for a future, its OI"
    assert codes.count(6) == 1, "the previous close comes once per subscribe"
    for frame in received:
        values = intended(dhan_sim, frame)
        decoded = oracle.process_data(frame)
        if frame[0] == 6:
            assert decoded["type"] == "Previous Close"
            assert decoded["prev_close"] == price(values.prev_close)
            assert decoded["prev_OI"] == values.prev_oi
            assert values.prev_oi > 0
        elif frame[0] == 5:
            assert decoded == {
                "type": "OI Data",
                "exchange_segment": 2,
                "security_id": int(future[1]),
                "OI": values.oi,
            }
        elif frame[0] == 4:
            assert isinstance(values, Quote) and len(frame) == 50
            assert decoded == {
                "type": "Quote Data",
                "exchange_segment": 2,
                "security_id": int(future[1]),
                "LTP": price(values.ltp),
                "LTQ": values.ltq,
                "LTT": clock(values.ltt),
                "avg_price": price(values.atp),
                "volume": values.volume,
                "total_sell_quantity": values.total_sell_quantity,
                "total_buy_quantity": values.total_buy_quantity,
                "open": price(values.open),
                "close": price(values.close),
                "high": price(values.high),
                "low": price(values.low),
            }
            assert values.close == 0.0, "today's close is 0 while the market is open"
            assert values.low <= values.ltp <= values.high


async def test_full_packets_decode_with_dhanhq_including_five_levels(dhan_sim: DhanSimulator, oracle: Any) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(21, RELIANCE))
        fulls = [f for f in await frames(ws, 5) if f[0] == 8]
    assert len(fulls) >= 2
    for frame in fulls:
        values: Full = intended(dhan_sim, frame)
        decoded = oracle.process_full(frame)
        assert len(frame) == 162
        assert (decoded["exchange_segment"], decoded["security_id"]) == (1, 2885)
        assert decoded["LTP"] == price(values.ltp)
        assert (decoded["LTQ"], decoded["LTT"]) == (values.ltq, clock(values.ltt))
        assert decoded["avg_price"] == price(values.atp)
        assert (decoded["volume"], decoded["total_sell_quantity"], decoded["total_buy_quantity"]) == (
            values.volume,
            values.total_sell_quantity,
            values.total_buy_quantity,
        )
        assert (decoded["OI"], decoded["oi_day_high"], decoded["oi_day_low"]) == (
            values.oi,
            values.oi_high,
            values.oi_low,
        )
        assert [decoded[k] for k in ("open", "close", "high", "low")] == [
            price(values.open),
            price(values.close),
            price(values.high),
            price(values.low),
        ]
        assert decoded["depth"] == [
            {
                "bid_quantity": level.bid_quantity,
                "ask_quantity": level.ask_quantity,
                "bid_orders": level.bid_orders,
                "ask_orders": level.ask_orders,
                "bid_price": price(level.bid_price),
                "ask_price": price(level.ask_price),
            }
            for level in values.depth
        ]
        bids = [float(d["bid_price"]) for d in decoded["depth"]]
        asks = [float(d["ask_price"]) for d in decoded["depth"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]


async def test_market_status_is_what_dhanhq_dispatches_as_status(dhan_sim: DhanSimulator, oracle: Any) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(15, RELIANCE))
        first = (await frames(ws, 1))[0]
        assert dhan_sim.send_market_status() == 1
        again = await first_of(ws, 7)
    for frame in (first, again):
        assert frame[0] == 7 and struct.unpack("<BHBI", frame)[1] == len(frame) == 8
        assert oracle.process_data(frame) == "Markets Open"


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (805, "No. of active websocket connections exceeded"),
        (806, "Subscribe to Data APIs to continue"),
        (807, "Access Token is expired"),
        (808, "Invalid Client ID"),
        (809, "Authentication Failed"),
    ],
)
async def test_disconnect_packets_carry_reasons_dhanhq_names(
    dhan_sim: DhanSimulator, oracle: Any, capsys: pytest.CaptureFixture[str], reason: int, said: str
) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(15, RELIANCE))
        await frames(ws, 2)
        assert dhan_sim.disconnect(reason) == 1
        packet = await first_of(ws, 50)
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
    assert intended(dhan_sim, packet) == Disconnect(reason)
    assert len(packet) == 10
    capsys.readouterr()
    assert oracle.process_data(packet) is None
    assert said in capsys.readouterr().out
    await eventually(lambda: dhan_sim.connections == [], what="the connection to be gone")


# dhanhq's own connect and subscribe against the simulator --------------------------------------------
async def test_dhanhq_market_feed_subscribes_and_unsubscribes_against_the_simulator(
    dhan_sim: DhanSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MarketFeed, "market_feed_wss", dhan_sim.feed_url)
    future = future_of(dhan_sim)
    instruments = [
        (MarketFeed.NSE, "2885", MarketFeed.Ticker),
        (MarketFeed.IDX, "13", MarketFeed.Quote),
        (MarketFeed.NSE_FNO, future[1], MarketFeed.Full),
    ]
    subscribed, proceed = threading.Event(), threading.Event()
    unsubscribed, done = threading.Event(), threading.Event()
    decoded: list[Any] = []
    raw: list[bytes] = []

    def run() -> None:
        feed = MarketFeed(DhanContext(dhan_sim.client_id, dhan_sim.access_token), instruments, version="v2")
        try:
            feed.loop.run_until_complete(feed.connect())
            while len(raw) < 12:
                frame = feed.loop.run_until_complete(feed.ws.recv())
                raw.append(frame)
                decoded.append(feed.process_data(frame))
            subscribed.set()
            proceed.wait(10)
            feed.unsubscribe_symbols([(MarketFeed.NSE, "2885", MarketFeed.Ticker)])
            feed.loop.run_until_complete(asyncio.sleep(0.2))  # lets its scheduled send go out
            unsubscribed.set()
            done.wait(10)
            feed.loop.run_until_complete(feed.disconnect())
        finally:
            feed.loop.close()

    worker = asyncio.create_task(asyncio.to_thread(run))
    await eventually(subscribed.is_set, what="dhanhq's feed to receive packets")
    assert dhan_sim.subscriptions() == [{RELIANCE: 15, NIFTY: 17, future: 21}]
    proceed.set()
    await eventually(unsubscribed.is_set)
    await eventually(lambda: dhan_sim.subscriptions() == [{NIFTY: 17, future: 21}], what="the unsubscribe")
    done.set()
    await worker
    await eventually(lambda: dhan_sim.connections == [], what="dhanhq's disconnect to close the connection")
    requests = [r for stream, r in dhan_sim.feed_requests if stream == "feed"]
    assert sorted(r["RequestCode"] for r in requests) == [12, 15, 16, 17, 21]
    for frame, got in zip(raw, decoded, strict=True):
        values = intended(dhan_sim, frame)
        if isinstance(values, Ticker):
            assert got["LTP"] == price(values.ltp)
        elif isinstance(values, Quote):
            assert got["volume"] == values.volume
        elif isinstance(values, Full):
            assert got["OI"] == values.oi


# 20-level depth ------------------------------------------------------------------------------------------
async def test_twenty_depth_packets_decode_with_dhanhq_full_depth(dhan_sim: DhanSimulator) -> None:
    future = future_of(dhan_sim)
    received, done = [], threading.Event()

    def run() -> None:
        depth = FullDepth(
            DhanContext(dhan_sim.client_id, dhan_sim.access_token), [(1, "2885"), (2, future[1])], depth_level=20
        )
        depth.ws_url = dhan_sim.depth_url
        try:
            depth.loop.run_until_complete(depth.connect())
            while len(received) < 3:
                message = depth.loop.run_until_complete(depth.ws.recv())
                parsed, rest = [], message
                while rest:
                    update = depth.process_data(rest)
                    assert update is not None, "dhanhq could not read a depth packet"
                    rest = update.pop("remaining_data")
                    parsed.append(update)
                received.append((message, parsed))
            done.set()
            depth.loop.run_until_complete(depth.ws.close())
        finally:
            depth.loop.close()

    await asyncio.to_thread(run)
    assert done.is_set()
    for message, parsed in received:
        packets = [message[i : i + 332] for i in range(0, len(message), 332)]
        assert len(packets) == len(parsed) == 4, "a bid and an ask packet for each of the two instruments"
        for packet, update in zip(packets, parsed, strict=True):
            sent = dhan_sim.intended(packet)
            assert update["type"] == {"bid": "Bid", "ask": "Ask"}[sent.values.side]
            assert (update["exchange_segment"], str(update["security_id"])) == (
                scrips.SEGMENT_CODES[sent.segment],
                sent.security_id,
            )
            assert update["depth"] == [
                {"price": row.price, "quantity": row.quantity, "orders": row.orders} for row in sent.values.levels
            ]
            assert len(update["depth"]) == 20
        keys = {(p["exchange_segment"], p["security_id"], p["type"]) for p in parsed}
        assert keys == {(1, 2885, "Bid"), (1, 2885, "Ask"), (2, int(future[1]), "Bid"), (2, int(future[1]), "Ask")}


async def test_twenty_depth_takes_nse_only_and_at_most_50_instruments(
    dhan_sim: DhanSimulator, depth_oracle: Any
) -> None:
    async with connect(depth_url(dhan_sim)) as ws:
        await ws.send(request(23, RELIANCE, ("BSE_EQ", "500325"), NIFTY))
        await ws.recv()
        await eventually(lambda: dhan_sim.depth_subscriptions() == [{RELIANCE}])
        await ws.send(request(24, RELIANCE))
        await eventually(lambda: dhan_sim.depth_subscriptions() == [set()], what="the unsubscribe (24)")
        await ws.send(request(23, RELIANCE))
        await eventually(lambda: dhan_sim.depth_subscriptions() == [{RELIANCE}])
        many = [("NSE_EQ", str(100000 + i)) for i in range(50)]
        await ws.send(request(23, *many))
        async with asyncio.timeout(5):
            while True:
                packet = await ws.recv()
                if packet[2] == 50:
                    break
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert dhan_sim.refused == [("depth", 804)]
    assert struct.unpack("<hBBiI", packet) == (12, 50, 0, 0, 804)


async def test_twenty_depth_refuses_an_expired_token_in_dhanhqs_format(
    dhan_sim: DhanSimulator, depth_oracle: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dhan_sim.expire_token()
    async with connect(depth_url(dhan_sim)) as ws:
        packet = await asyncio.wait_for(ws.recv(), 5)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    capsys.readouterr()
    depth_oracle.process_data(packet)
    assert "Access Token is expired" in capsys.readouterr().out
    assert depth_oracle.on_close is True


# Order updates ----------------------------------------------------------------------------------------------
class _Got(Exception):
    pass


async def test_order_alerts_reach_dhanhq_order_update(dhan_sim: DhanSimulator) -> None:
    got: list[dict[str, Any]] = []

    def run() -> None:
        updates = OrderUpdate(DhanContext(dhan_sim.client_id, dhan_sim.access_token))
        updates.order_feed_wss = dhan_sim.order_url

        def on_update(message: dict[str, Any]) -> None:
            got.append(message)
            raise _Got

        updates.on_update = on_update
        with pytest.raises(_Got):
            asyncio.run(asyncio.wait_for(updates.connect_order_update(), 10))

    worker = asyncio.create_task(asyncio.to_thread(run))
    await eventually(lambda: len(dhan_sim.order_connections) == 1, what="dhanhq's login to be accepted")
    sent = dhan_sim.push_order(
        {"SecurityId": "2885", "TxnType": "S", "Quantity": 5, "TradedQty": 5, "Status": "Traded", "Price": 2950.5}
    )
    await worker
    assert got == [sent]
    data = got[0]["Data"]
    assert got[0]["Type"] == "order_alert"
    assert (data["Exchange"], data["Segment"], data["Symbol"], data["DisplayName"]) == (
        "NSE",
        "E",
        "RELIANCE",
        "RELIANCE",
    )
    assert (data["TxnType"], data["Quantity"], data["TradedQty"], data["Status"]) == ("S", 5, 5, "Traded")
    for name in ("OrderNo", "OrderType", "Product", "TriggerPrice", "AvgTradedPrice", "ReasonDescription"):
        assert name in data
    assert dhan_sim.order_messages == [sent]


async def test_the_order_stream_refuses_a_bad_login(dhan_sim: DhanSimulator) -> None:
    async with connect(dhan_sim.order_url) as ws:
        login = {"LoginReq": {"MsgCode": 42, "ClientId": dhan_sim.client_id, "Token": "wrong"}, "UserType": "SELF"}
        await ws.send(json.dumps(login))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert dhan_sim.order_connections == [] and dhan_sim.refused == [("orders", 809)]


# REST ----------------------------------------------------------------------------------------------------------
async def test_the_profile_through_dhanhq_and_its_invalid_token_answer(
    dhan_sim: DhanSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DhanLogin, "API_BASE_URL", f"{dhan_sim.api_url}/v2")
    profile = await asyncio.to_thread(DhanLogin(dhan_sim.client_id).user_profile, dhan_sim.access_token)
    assert profile["dhanClientId"] == dhan_sim.client_id
    validity = datetime.strptime(profile["tokenValidity"], "%d/%m/%Y %H:%M")
    now_ist = (datetime.now(UTC) + timedelta(seconds=IST_OFFSET)).replace(tzinfo=None)
    assert timedelta(hours=23) < validity - now_ist <= timedelta(hours=24)
    assert {"activeSegment", "ddpi", "mtf", "dataPlan", "dataValidity"} <= profile.keys()
    assert profile["dataPlan"] == "Active"

    with pytest.raises(Exception, match="DH-901"):
        await asyncio.to_thread(DhanLogin(dhan_sim.client_id).user_profile, "not-the-token")

    http = DhanContext(dhan_sim.client_id, "not-the-token").get_dhan_http()
    http.base_url = f"{dhan_sim.api_url}/v2"
    answer = await asyncio.to_thread(http.get, "/profile")
    assert answer["status"] == "failure"
    assert answer["remarks"]["error_code"] == "DH-901"
    assert answer["remarks"]["error_type"] == "Invalid_Authentication"
    assert answer["remarks"]["error_message"]


async def test_rest_faults_answer_with_dhans_error_body_then_recover(dhan_sim: DhanSimulator) -> None:
    http = DhanContext(dhan_sim.client_id, dhan_sim.access_token).get_dhan_http()
    http.base_url = f"{dhan_sim.api_url}/v2"
    dhan_sim.rest_fault(429, 2)
    dhan_sim.rest_fault(503)
    answers = [await asyncio.to_thread(http.get, "/profile") for _ in range(4)]
    assert [a["status"] for a in answers] == ["failure", "failure", "failure", "success"]
    assert [a["remarks"]["error_code"] for a in answers[:3]] == ["DH-904", "DH-904", "DH-908"]
    assert answers[0]["remarks"]["error_type"] == "Rate_Limit"
    assert answers[3]["data"]["dhanClientId"] == dhan_sim.client_id


async def test_the_scrip_master_is_served_whole_and_read_by_dhanhq(
    dhan_sim: DhanSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fetch() -> tuple[int, bytes]:
        with urllib.request.urlopen(dhan_sim.master_url, timeout=5) as response:
            return int(response.headers["Content-Length"]), response.read()

    length, body = await asyncio.to_thread(fetch)
    assert body == dhan_sim.scrips_bytes() and length == len(body)
    monkeypatch.setattr(Security, "COMPACT_CSV_URL", dhan_sim.master_url)
    frame = await asyncio.to_thread(Security.fetch_security_list, "compact", str(tmp_path / "master.csv"))
    assert tuple(frame.columns) == scrips.HEADER
    reliance = frame[(frame.SEM_EXM_EXCH_ID == "NSE") & (frame.SEM_TRADING_SYMBOL == "RELIANCE")]
    assert list(reliance.SEM_SMST_SECURITY_ID) == [2885]
    assert list(reliance.SEM_SEGMENT) == ["E"]


async def test_a_master_fault_fails_the_next_downloads_then_it_is_served(dhan_sim: DhanSimulator) -> None:
    def status() -> int:
        try:
            with urllib.request.urlopen(dhan_sim.master_url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    dhan_sim.master_fault(503, 2)
    assert [await asyncio.to_thread(status) for _ in range(3)] == [503, 503, 200]


def test_the_built_in_master_is_deterministic_real_where_known_and_never_stale() -> None:
    for today in (date(2026, 12, 2), date(2027, 3, 31), date(2027, 12, 30)):
        data = scrips.master_csv(today)
        assert data == scrips.master_csv(today)
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        ids = {
            (r["SEM_EXM_EXCH_ID"], r["SEM_SEGMENT"], r["SEM_TRADING_SYMBOL"]): r["SEM_SMST_SECURITY_ID"] for r in rows
        }
        for symbol, sid in (("RELIANCE", "2885"), ("INFY", "1594"), ("TCS", "11536"), ("HDFCBANK", "1333")):
            assert ids[("NSE", "E", symbol)] == sid
        for symbol, sid in (("NIFTY", "13"), ("BANKNIFTY", "25"), ("FINNIFTY", "27"), ("MIDCPNIFTY", "442")):
            assert ids[("NSE", "I", symbol)] == sid
        assert ids[("BSE", "I", "SENSEX")] == "51" and ids[("BSE", "I", "BANKEX")] == "69"
        assert ids[("NSE", "I", "INDIA VIX")] == "21" and ids[("BSE", "E", "RELIANCE")] == "500325"
        expiries = [date.fromisoformat(r["SEM_EXPIRY_DATE"][:10]) for r in rows if r["SEM_EXPIRY_DATE"]]
        assert expiries and min(expiries) >= today and max(expiries) <= today + timedelta(days=75)
        keys = {(scrips.SEGMENTS[(r["SEM_EXM_EXCH_ID"], r["SEM_SEGMENT"])], r["SEM_SMST_SECURITY_ID"]) for r in rows}
        assert len(keys) == len(rows), "(segment, security id) is unique"
        kinds = {(r["SEM_EXM_EXCH_ID"], r["SEM_INSTRUMENT_NAME"]) for r in rows}
        assert {("NSE", "OPTIDX"), ("NSE", "FUTIDX"), ("NSE", "FUTSTK"), ("BSE", "OPTIDX")} <= kinds
        assert {("MCX", "FUTCOM"), ("NSE", "FUTCUR"), ("BSE", "EQUITY"), ("NSE", "INDEX")} <= kinds
        options = [r for r in rows if r["SEM_OPTION_TYPE"] in ("CE", "PE")]
        assert all(r["SEM_TRADING_SYMBOL"].endswith("-" + r["SEM_OPTION_TYPE"]) for r in options)
        assert all(float(r["SEM_STRIKE_PRICE"]) > 0 for r in options)


# Logins and limits ---------------------------------------------------------------------------------------------------
async def test_a_sixth_connection_gets_disconnect_805(
    dhan_sim: DhanSimulator, oracle: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    opened = [await connect(feed_url(dhan_sim)) for _ in range(5)]
    try:
        await eventually(lambda: len(dhan_sim.connections) == 5)
        async with connect(feed_url(dhan_sim)) as sixth:
            packet = await asyncio.wait_for(sixth.recv(), 5)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(sixth.recv(), 5)
        capsys.readouterr()
        oracle.process_data(packet)
        assert "No. of active websocket connections exceeded" in capsys.readouterr().out
        assert dhan_sim.handshakes == 6 and len(dhan_sim.connections) == 5
        assert dhan_sim.refused == [("feed", 805)]
    finally:
        for ws in opened:
            await ws.close()


async def test_an_expired_token_disconnects_807_and_is_refused_everywhere(dhan_sim: DhanSimulator, oracle: Any) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(15, RELIANCE))
        await frames(ws, 2)
        dhan_sim.expire_token()
        packet = await first_of(ws, 50)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert struct.unpack("<BHBIH", packet)[4] == 807
    async with connect(feed_url(dhan_sim)) as again:
        assert struct.unpack("<BHBIH", await asyncio.wait_for(again.recv(), 5))[4] == 807
    http = DhanContext(dhan_sim.client_id, dhan_sim.access_token).get_dhan_http()
    http.base_url = f"{dhan_sim.api_url}/v2"
    assert (await asyncio.to_thread(http.get, "/profile"))["remarks"]["error_code"] == "DH-901"
    fresh = dhan_sim.new_token()
    async with connect(feed_url(dhan_sim, token=fresh)) as ok:
        await ok.send(request(15, RELIANCE))
        assert [f[0] for f in await frames(ok, 3)] == [7, 6, 2]


async def test_a_wrong_client_id_is_808_and_an_unknown_token_809(dhan_sim: DhanSimulator) -> None:
    for url, reason in ((feed_url(dhan_sim, client_id="1000000002"), 808), (feed_url(dhan_sim, token="x.y.z"), 809)):
        async with connect(url) as ws:
            packet = await asyncio.wait_for(ws.recv(), 5)
            assert struct.unpack("<BHBIH", packet) == (50, 10, 0, 0, reason)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
    assert dhan_sim.refused == [("feed", 808), ("feed", 809)]
    assert dhan_sim.connections == []
    dhan_sim.data_plan = False
    async with connect(feed_url(dhan_sim)) as ws:
        assert struct.unpack("<BHBIH", await asyncio.wait_for(ws.recv(), 5))[4] == 806


async def test_more_than_100_instruments_in_one_request_is_804(dhan_sim: DhanSimulator) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(15, *[("NSE_EQ", str(100000 + i)) for i in range(100)]))
        await ws.send(request(15, *[("NSE_EQ", str(200000 + i)) for i in range(101)]))
        packet = await first_of(ws, 50)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert struct.unpack("<BHBIH", packet)[4] == 804
    assert dhan_sim.refused == [("feed", 804)]


async def test_more_than_5000_instruments_on_one_connection_is_804(dhan_sim: DhanSimulator) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        for batch in range(50):
            await ws.send(request(15, *[("NSE_EQ", str(100000 + batch * 100 + i)) for i in range(100)]))
        await eventually(lambda: sum(map(len, dhan_sim.subscriptions())) == 5000, what=dhan_sim.subscriptions)
        await ws.send(request(15, ("NSE_EQ", "100000")))  # one already subscribed: still 5000
        await ws.send(request(15, ("NSE_EQ", "99")))
        packet = await first_of(ws, 50)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert struct.unpack("<BHBIH", packet)[4] == 804
    assert dhan_sim.refused == [("feed", 804)]


async def test_binary_and_malformed_requests_are_counted_and_the_connection_kept(dhan_sim: DhanSimulator) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(b"\x0c\x53\x00" + b"\0" * 80)  # dhanhq's v1-style header, as it sends after RequestCode 12
        await ws.send("not json")
        await ws.send(json.dumps({"RequestCode": 99}))
        await ws.send(request(15, ("NOPE", "1"), RELIANCE))
        assert [f[0] for f in await frames(ws, 3)] == [7, 6, 2]
    assert dhan_sim.binary_requests == 1
    assert dhan_sim.bad_requests == 3


# Faults --------------------------------------------------------------------------------------------------------------
async def test_drop_all_ends_connections_without_a_close_frame(dhan_sim: DhanSimulator) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(15, RELIANCE))
        await frames(ws, 2)
        assert dhan_sim.drop_all() == 1
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is None


async def test_go_silent_sends_nothing_then_speaks_again(dhan_sim: DhanSimulator) -> None:
    async with connect(feed_url(dhan_sim), ping_interval=None) as ws:
        await ws.send(request(15, RELIANCE))
        await frames(ws, 3)
        dhan_sim.go_silent(0.6)
        await asyncio.sleep(0.1)  # what was already on its way
        while True:
            try:
                await asyncio.wait_for(ws.recv(), 0.05)
            except TimeoutError:
                break
        pong = await ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pong), 0.3)
        assert (await frames(ws, 2))[0][0] == 2, "ticks resume after the silence"
        await asyncio.wait_for(pong, 5)


@pytest.mark.parametrize("kind", ["truncated", "length", "code"])
async def test_garbage_is_malformed_for_dhanhq_too(dhan_sim: DhanSimulator, oracle: Any, kind: str) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(17, RELIANCE))
        await frames(ws, 2)
        expected = dhan_sim.garbage_frame(kind)
        assert dhan_sim.send_garbage(kind=kind) == 1
        async with asyncio.timeout(5):
            while (junk := await ws.recv()) != expected:
                pass
    code, length = struct.unpack("<BH", junk[:3])
    if kind == "truncated":
        assert (code, length) == (4, 50) and len(junk) < 50
        with pytest.raises(struct.error):
            oracle.process_data(junk)
    elif kind == "length":
        assert code == 2 and length == 200 and len(junk) == 16
    else:
        assert code == 99 and oracle.process_data(junk) is None


# Control over HTTP, and secrets ------------------------------------------------------------------------------------
def _post(url: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_control_endpoints_trigger_the_same_faults(dhan_sim: DhanSimulator) -> None:
    base = f"{dhan_sim.api_url}/sim"
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(15, RELIANCE))
        await frames(ws, 2)
        status, reply = await asyncio.to_thread(_post, f"{base}/disconnect?code=806")
        assert status == 200 and reply["code"] == 806 and reply["connections"] == 1
        assert struct.unpack("<BHBIH", await first_of(ws, 50))[4] == 806
    status, reply = await asyncio.to_thread(_post, f"{base}/rest-fault?status=500&count=1")
    assert status == 200 and reply["status"] == 500
    http = DhanContext(dhan_sim.client_id, dhan_sim.access_token).get_dhan_http()
    http.base_url = f"{dhan_sim.api_url}/v2"
    assert (await asyncio.to_thread(http.get, "/profile"))["remarks"]["error_code"] == "DH-908"
    for bad in (
        "silent?seconds=0",
        "silent?seconds=nan",
        "garbage?kind=x",
        "disconnect?code=70000",
        "rest-fault?status=200",
    ):
        status, reply = await asyncio.to_thread(_post, f"{base}/{bad}")
        assert status == 400 and reply["error"], bad
    status, reply = await asyncio.to_thread(_post, f"{base}/nothing")
    assert status == 404 and "/sim/drop" in reply["error"]
    status, reply = await asyncio.to_thread(_post, f"{base}/order", b'{"Status": "Rejected"}')
    assert status == 200 and dhan_sim.order_messages[-1]["Data"]["Status"] == "Rejected"
    assert dhan_sim.controls == ["disconnect", "rest-fault", "order"]


async def test_the_simulator_logs_no_token(dhan_sim: DhanSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(21, RELIANCE))
        await frames(ws, 3)
    async with connect(depth_url(dhan_sim)) as ws:
        await ws.send(request(23, RELIANCE))
        await ws.recv()
    http = DhanContext(dhan_sim.client_id, dhan_sim.access_token).get_dhan_http()
    http.base_url = f"{dhan_sim.api_url}/v2"
    assert (await asyncio.to_thread(http.get, "/profile"))["status"] == "success"
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("oaws")]
    assert any("GET /v2/profile" in m for m in ours), "the simulator logged its requests at DEBUG"
    # (websockets' own client logs its request line, token included, at DEBUG: that is the test's client)
    assert not [m for m in ours if dhan_sim.access_token in m]
    assert dhan_sim.access_token not in repr(dhan_sim.connections)


def test_encode_is_pure_and_sized_as_dhan_documents() -> None:
    assert encode(1, 2885, Ticker(2950.05, 1_700_000_000)) == encode(1, 2885, Ticker(2950.05, 1_700_000_000))
    assert struct.unpack("<BHBIfI", encode(1, 2885, Ticker(2950.05, 7))) == (2, 16, 1, 2885, float32(2950.05), 7)
    assert len(encode(0, 0, Disconnect(807))) == 10
