"""The Kite simulator, checked by Zerodha's own code (kiteconnect 5.2.2), not by oaws's.

Frames captured from the simulator's ticker are decoded by ``KiteTicker._parse_binary``
and compared with the ticks the simulator meant (``KiteSimulator.ticks_of(frame)``); the
REST side is driven by ``KiteConnect`` pointed at the simulator (``root=sim.api_url``).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import json
import logging
import re
import struct
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from kiteconnect import KiteConnect, KiteTicker
from kiteconnect import exceptions as kex
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from oaws.brokers.kite.dump import WEEKLY_MONTH, build_dump
from oaws.brokers.kite.simulator import GARBAGE_FRAMES, KiteSimulator, Tick
from tests.helpers import eventually

from .conftest import open_ticker, send

#: the packet sizes of Kite's documentation (not the simulator's): (index?, mode) -> bytes
SIZES = {
    (False, "ltp"): 8,
    (False, "quote"): 44,
    (False, "full"): 184,
    (True, "ltp"): 8,
    (True, "quote"): 28,
    (True, "full"): 32,
}


def ticker() -> KiteTicker:
    return KiteTicker("k", "t")


def rows_of(sim: KiteSimulator) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(sim.dump_bytes().decode())))


def token_of(sim: KiteSimulator, **match: str) -> int:
    """The first instrument token of the dump whose columns match."""
    for row in rows_of(sim):
        if all(row[k] == v for k, v in match.items()):
            return int(row["instrument_token"])
    raise AssertionError(f"no row matches {match}")


async def frame_with(
    sim: KiteSimulator, ws: ClientConnection, token: int, mode: str, timeout: float = 5.0
) -> tuple[bytes, Tick]:
    """The next binary message holding a packet of ``token`` in ``mode``, and that tick as meant."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes) and len(frame) > 1:
                for tick in sim.ticks_of(frame):
                    if tick.instrument_token == token and tick.mode == mode:
                        return frame, tick


def expected(tick: Tick) -> dict[str, Any]:
    """What kiteconnect's documentation says a tick of each packet type holds, from the simulator's tick."""
    p = tick.price
    out: dict[str, Any] = {
        "tradable": not tick.is_index,
        "mode": tick.mode,
        "instrument_token": tick.instrument_token,
        "last_price": p(tick.last_price),
    }
    if tick.mode == "ltp":
        return out
    close = p(tick.close)
    out["change"] = (p(tick.last_price) - close) * 100 / close if close else 0
    if tick.is_index:
        out["ohlc"] = {"high": p(tick.high), "low": p(tick.low), "open": p(tick.open), "close": close}
        if tick.mode == "full":
            out["exchange_timestamp"] = datetime.fromtimestamp(tick.exchange_timestamp)
        return out
    out |= {
        "last_traded_quantity": tick.last_quantity,
        "average_traded_price": p(tick.average_price),
        "volume_traded": tick.volume,
        "total_buy_quantity": tick.buy_quantity,
        "total_sell_quantity": tick.sell_quantity,
        "ohlc": {"open": p(tick.open), "high": p(tick.high), "low": p(tick.low), "close": close},
    }
    if tick.mode == "full":
        out |= {
            "last_trade_time": datetime.fromtimestamp(tick.last_trade_time),
            "oi": tick.oi,
            "oi_day_high": tick.oi_day_high,
            "oi_day_low": tick.oi_day_low,
            "exchange_timestamp": datetime.fromtimestamp(tick.exchange_timestamp),
            "depth": {
                side: [{"quantity": d.quantity, "price": p(d.price), "orders": d.orders} for d in entries]
                for side, entries in (("buy", tick.depth[:5]), ("sell", tick.depth[5:]))
            },
        }
    return out


# The ticker's packets, decoded by Zerodha's parser --------------------------------------------------
INSTRUMENTS = {
    "NSE equity": {"exchange": "NSE", "tradingsymbol": "INFY"},
    "BSE equity": {"exchange": "BSE", "tradingsymbol": "RELIANCE"},
    "NSE index": {"exchange": "NSE", "tradingsymbol": "NIFTY 50"},
    "BSE index": {"exchange": "BSE", "tradingsymbol": "SENSEX"},
    "NFO option": {"exchange": "NFO", "instrument_type": "CE"},
    "CDS future (divisor 1e7)": {"exchange": "CDS", "instrument_type": "FUT"},
    "CDS option (divisor 1e7)": {"exchange": "CDS", "instrument_type": "PE"},
    "BCD future (divisor 1e4)": {"exchange": "BCD", "instrument_type": "FUT"},
    "NCO future (divisor 1e4)": {"exchange": "NCO", "instrument_type": "FUT"},
    "MCX future": {"exchange": "MCX", "instrument_type": "FUT"},
}


@pytest.mark.parametrize("mode", ["ltp", "quote", "full"])
@pytest.mark.parametrize("what", list(INSTRUMENTS))
async def test_kiteconnect_decodes_every_packet_to_the_values_meant(kite_sim, what, mode):
    token = token_of(kite_sim, **INSTRUMENTS[what])
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [token])
        await send(ws, "mode", [mode, [token]])
        for _ in range(3):  # the snapshot after the mode, then two ticks of the interval
            frame, tick = await frame_with(kite_sim, ws, token, mode)
            packets = ticker()._split_packets(frame)
            assert len(packets) == 1 and len(packets[0]) == SIZES[(tick.is_index, mode)]
            assert ticker()._parse_binary(frame) == [expected(tick)]


async def test_the_divisor_follows_the_segment_byte(kite_sim):
    """Rupees times 1e7 for CDS, 1e4 for BCD and NCO, 100 elsewhere: the library reads the same price."""
    cases = {"CDS": 10_000_000, "BCD": 10_000, "NCO": 10_000, "MCX": 100, "NFO": 100}
    async with open_ticker(kite_sim) as ws:
        for exchange, factor in cases.items():
            token = token_of(kite_sim, exchange=exchange, instrument_type="FUT")
            row = next(r for r in rows_of(kite_sim) if int(r["instrument_token"]) == token)
            await send(ws, "subscribe", [token])
            frame, tick = await frame_with(kite_sim, ws, token, "quote")
            assert tick.divisor == factor
            (decoded,) = [t for t in ticker()._parse_binary(frame) if t["instrument_token"] == token]
            # the dump's previous close, within a few ticks, read back through Zerodha's divisor
            assert decoded["ohlc"]["close"] == pytest.approx(float(row["last_price"]), abs=float(row["tick_size"]))


async def test_one_message_carries_a_packet_for_each_token_in_its_own_mode(kite_sim):
    equity, index, cds = (
        token_of(kite_sim, tradingsymbol="SBIN", exchange="NSE"),
        token_of(kite_sim, tradingsymbol="NIFTY BANK"),
        token_of(kite_sim, exchange="CDS", instrument_type="FUT"),
    )
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [equity, index, cds])
        await send(ws, "mode", ["full", [equity]])
        await send(ws, "mode", ["ltp", [cds]])
        async with asyncio.timeout(5):
            while True:
                frame = await ws.recv()
                if isinstance(frame, bytes) and len(kite_sim.ticks_of(frame)) == 3:
                    ticks = kite_sim.ticks_of(frame)
                    if {t.mode for t in ticks} == {"full", "quote", "ltp"}:
                        break
    assert ticker()._parse_binary(frame) == [expected(t) for t in ticks]
    assert {t.instrument_token: t.mode for t in ticks} == {equity: "full", index: "quote", cds: "ltp"}
    assert struct.unpack(">H", frame[:2]) == (3,)


async def test_the_index_packet_holds_a_signed_net_change_after_the_close(kite_sim):
    """kiteconnect does not read bytes 24-28 of an index packet; Kite's docs put a signed net change there."""
    token = token_of(kite_sim, tradingsymbol="INDIA VIX")
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [token])
        frame, tick = await frame_with(kite_sim, ws, token, "quote")
    (packet,) = ticker()._split_packets(frame)
    (net,) = struct.unpack(">i", packet[24:28])
    assert net == tick.last_price - tick.close


async def test_volume_rises_and_depth_sits_around_the_last_price(kite_sim):
    token = token_of(kite_sim, exchange="NFO", instrument_type="FUT")
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [token])
        await send(ws, "mode", ["full", [token]])
        decoded = [ticker()._parse_binary((await frame_with(kite_sim, ws, token, "full"))[0])[0] for _ in range(5)]
    volumes = [t["volume_traded"] for t in decoded]
    assert volumes == sorted(volumes) and volumes[-1] > volumes[0]
    for t in decoded:
        bids, offers = [d["price"] for d in t["depth"]["buy"]], [d["price"] for d in t["depth"]["sell"]]
        assert bids == sorted(bids, reverse=True) and offers == sorted(offers)
        assert bids[0] < t["last_price"] < offers[0]
        assert t["oi"] > 0 and t["oi_day_low"] <= t["oi"] <= t["oi_day_high"]
        assert t["ohlc"]["low"] <= t["last_price"] <= t["ohlc"]["high"]


async def test_heartbeats_are_one_byte_and_the_library_ignores_them(kite_sim):
    async with open_ticker(kite_sim) as ws:
        async with asyncio.timeout(5):
            heartbeat = await ws.recv()  # nothing subscribed: only heartbeats come
    assert heartbeat == b"\x00"
    assert ticker()._split_packets(heartbeat) == [] and ticker()._parse_binary(heartbeat) == []
    got: list[Any] = []
    kt = ticker()
    kt.on_ticks = lambda _ws, ticks: got.append(ticks)
    kt._on_message(None, heartbeat, True)
    assert got == []


# Text messages, parsed by Zerodha's parser ----------------------------------------------------------
def listening_ticker() -> tuple[KiteTicker, dict[str, list[Any]]]:
    kt = ticker()
    seen: dict[str, list[Any]] = {"order": [], "error": [], "ticks": []}
    kt.on_order_update = lambda _ws, data: seen["order"].append(data)
    kt.on_error = lambda _ws, code, reason: seen["error"].append((code, reason))
    kt.on_ticks = lambda _ws, ticks: seen["ticks"].append(ticks)
    return kt, seen


async def next_text(ws: ClientConnection) -> str:
    async with asyncio.timeout(5):
        while isinstance(message := await ws.recv(), bytes):
            pass
    return message


@pytest.mark.parametrize("status", ["OPEN", "COMPLETE", "CANCELLED", "REJECTED", "TRIGGER PENDING", "UPDATE"])
async def test_order_updates_reach_on_order_update(kite_sim, status):
    async with open_ticker(kite_sim) as ws:
        await eventually(lambda: kite_sim.connections == 1)
        sent = kite_sim.push_order({"status": status, "tradingsymbol": "SBIN", "exchange": "NSE", "quantity": 10})
        text = await next_text(ws)
    kt, seen = listening_ticker()
    kt._parse_text_message(text)
    assert seen == {"order": [sent], "error": [], "ticks": []}
    order = seen["order"][0]
    assert order["status"] == status and order["instrument_token"] == token_of(kite_sim, tradingsymbol="SBIN")
    assert order["filled_quantity"] + order["pending_quantity"] + order["cancelled_quantity"] <= order["quantity"] == 10
    for name in ("order_id", "exchange", "transaction_type", "order_type", "product", "price", "trigger_price"):
        assert name in order
    assert datetime.strptime(order["order_timestamp"], "%Y-%m-%d %H:%M:%S")


async def test_errors_reach_on_error_and_messages_nothing(kite_sim):
    async with open_ticker(kite_sim) as ws:
        await eventually(lambda: kite_sim.connections == 1)
        kite_sim.send_error("Invalid instrument token")
        error = await next_text(ws)
        kite_sim.send_message("Market opens soon")
        message = await next_text(ws)
    kt, seen = listening_ticker()
    kt._parse_text_message(error)
    kt._parse_text_message(message)
    assert seen == {"order": [], "error": [(0, "Invalid instrument token")], "ticks": []}
    assert json.loads(message) == {"type": "message", "data": "Market opens soon"}


# The ticker's requests and limits -------------------------------------------------------------------
async def test_subscribe_sets_quote_mode_and_unsubscribe_stops_the_ticks(kite_sim):
    infy, sbin = token_of(kite_sim, tradingsymbol="INFY"), token_of(kite_sim, tradingsymbol="SBIN")
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [infy, sbin])
        await eventually(lambda: kite_sim.subscriptions() == {infy: "quote", sbin: "quote"})
        await send(ws, "mode", ["full", [sbin]])
        await eventually(lambda: kite_sim.subscriptions() == {infy: "quote", sbin: "full"})
        await send(ws, "unsubscribe", [infy])
        await eventually(lambda: kite_sim.subscriptions() == {sbin: "full"})
        # frames sent before the unsubscribe may still wait in the socket (a loaded machine):
        # the first frame without INFY is past it, and every frame after it must hold SBIN alone
        for _ in range(200):
            frame, _tick = await frame_with(kite_sim, ws, sbin, "full")
            if [t["instrument_token"] for t in ticker()._parse_binary(frame)] == [sbin]:
                break
        else:
            raise AssertionError("INFY still ticks long after its unsubscribe")
        for _ in range(5):
            frame, _tick = await frame_with(kite_sim, ws, sbin, "full")
            assert [t["instrument_token"] for t in ticker()._parse_binary(frame)] == [sbin]


async def test_mode_of_a_token_not_subscribed_is_ignored(kite_sim):
    infy = token_of(kite_sim, tradingsymbol="INFY")
    async with open_ticker(kite_sim) as ws:
        await send(ws, "mode", ["full", [infy]])
        await send(ws, "subscribe", [infy])
        await eventually(lambda: kite_sim.subscriptions() == {infy: "quote"})


async def test_unknown_tokens_are_accepted_and_never_tick(kite_sim):
    known, unknown = token_of(kite_sim, tradingsymbol="TCS"), 999_999 << 8 | 1
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [unknown, known])
        for _ in range(3):
            frame, _tick = await frame_with(kite_sim, ws, known, "quote")
            assert [t["instrument_token"] for t in ticker()._parse_binary(frame)] == [known]
    assert unknown not in {t.instrument_token for t in kite_sim.ticks_of(frame)}


@pytest.mark.parametrize(
    "request_text",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"a": "subscribe"}),
        json.dumps({"a": "subscribe", "v": ["408065"]}),
        json.dumps({"a": "subscribe", "v": [True]}),
        json.dumps({"a": "mode", "v": ["deep", [408065]]}),
        json.dumps({"a": "mode", "v": [[408065]]}),
        json.dumps({"a": "explode", "v": [408065]}),
    ],
)
async def test_a_malformed_request_gets_an_error_text_and_the_connection_stays(kite_sim, request_text):
    async with open_ticker(kite_sim) as ws:
        await ws.send(request_text)
        reply = json.loads(await next_text(ws))
        assert reply["type"] == "error" and isinstance(reply["data"], str) and reply["data"]
        await send(ws, "subscribe", [408065])
        await frame_with(kite_sim, ws, 408065, "quote")


async def test_past_3000_tokens_on_a_connection_the_rest_are_refused_with_an_error(kite_sim):
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [(100_000 + i) << 8 | 1 for i in range(3000)])  # 3000 unknown NSE tokens
        await eventually(lambda: len(kite_sim.subscriptions()) == 3000)
        await send(ws, "subscribe", [408065, 738561])
        reply = json.loads(await next_text(ws))
    assert reply["type"] == "error" and "3000" in reply["data"]
    assert len(kite_sim.subscriptions()) == 3000 and 408065 not in kite_sim.subscriptions()


async def test_a_bad_or_expired_token_is_refused_with_403_at_the_handshake(kite_sim):
    for token in ("nonsense", ""):
        with pytest.raises(InvalidStatus) as refused:
            async with open_ticker(kite_sim, access_token=token):
                pass
        assert refused.value.response.status_code == 403
    good = kite_sim.issue_access_token()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{kite_sim.feed_url}/?api_key=another_key&access_token={good}", open_timeout=5):
            pass
    assert refused.value.response.status_code == 403
    kite_sim.expire_tokens()
    with pytest.raises(InvalidStatus) as refused:
        async with open_ticker(kite_sim, access_token=good):
            pass
    assert refused.value.response.status_code == 403


async def test_a_fourth_connection_of_one_api_key_is_refused_with_429(kite_sim):
    first, second, third = open_ticker(kite_sim), open_ticker(kite_sim), open_ticker(kite_sim)
    async with first, second, third:
        with pytest.raises(InvalidStatus) as refused:
            async with open_ticker(kite_sim):
                pass
        assert refused.value.response.status_code == 429
    await eventually(lambda: kite_sim.connections == 0)
    async with open_ticker(kite_sim):
        await eventually(lambda: kite_sim.connections == 1)


async def test_expire_tokens_drops_open_connections_without_a_close_frame(kite_sim):
    async with open_ticker(kite_sim) as ws:
        await eventually(lambda: kite_sim.connections == 1)
        kite_sim.expire_tokens()
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is None  # no close frame: the TCP connection was cut
    assert kite_sim.access_tokens == set()


async def test_drop_all_cuts_every_connection_without_a_close_frame(kite_sim):
    async with open_ticker(kite_sim) as a, open_ticker(kite_sim) as b:
        await eventually(lambda: kite_sim.connections == 2)
        kite_sim.drop_all()
        for ws in (a, b):
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd is None


async def test_restart_closes_with_1012_refuses_with_503_then_recovers(kite_sim):
    async with open_ticker(kite_sim) as ws:
        await eventually(lambda: kite_sim.connections == 1)
        kite_sim.restart(seconds=0.5)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    with pytest.raises(InvalidStatus) as refused:
        async with open_ticker(kite_sim):
            pass
    assert refused.value.response.status_code == 503
    async with asyncio.timeout(5):
        while True:
            try:
                async with open_ticker(kite_sim) as ws:
                    await send(ws, "subscribe", [408065])
                    await frame_with(kite_sim, ws, 408065, "quote")
                    break
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                await asyncio.sleep(0.05)


async def test_go_silent_stops_ticks_and_heartbeats_for_the_time_given(kite_sim):
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [408065])
        await frame_with(kite_sim, ws, 408065, "quote")
        await eventually(lambda: kite_sim.heartbeats > 0)
        kite_sim.go_silent(seconds=1.0)
        sent = (kite_sim.frames_sent, kite_sim.heartbeats)
        await asyncio.sleep(0.5)  # a window of silence: longer than 5 tick intervals and 2 heartbeats
        assert (kite_sim.frames_sent, kite_sim.heartbeats) == sent
        await frame_with(kite_sim, ws, 408065, "quote")  # it speaks again after the silence
        await eventually(lambda: kite_sim.heartbeats > sent[1])


async def test_a_silence_concerns_only_the_connections_open_then(kite_sim):
    async with open_ticker(kite_sim) as first:
        await eventually(lambda: kite_sim.connections == 1)
        kite_sim.go_silent()
        async with open_ticker(kite_sim) as second:
            await send(second, "subscribe", [408065])
            await frame_with(kite_sim, second, 408065, "quote")
            await send(first, "subscribe", [408065])
            await eventually(lambda: [c.silent for c in kite_sim.open_connections()] == [True, False])
            kite_sim.go_silent(silent=False)
            await frame_with(kite_sim, first, 408065, "quote")


# Garbage -----------------------------------------------------------------------------------------
async def test_garbage_frames_are_what_they_say_to_kiteconnect_and_the_connection_stays(kite_sim):
    async with open_ticker(kite_sim) as ws:
        await send(ws, "subscribe", [408065])
        await frame_with(kite_sim, ws, 408065, "quote")
        kite_sim.send_garbage()
        wanted = list(GARBAGE_FRAMES.values())
        got: list[Any] = []
        async with asyncio.timeout(5):
            while len(got) < len(wanted):
                frame = await ws.recv()
                if frame in wanted:
                    got.append(frame)
        assert got == wanted  # in order, byte for byte
        await frame_with(kite_sim, ws, 408065, "quote")  # still ticking
    kt, seen = listening_ticker()
    for name in ("count beyond the data", "three bytes"):
        with pytest.raises(struct.error):  # Zerodha's own parser raises on these
            kt._parse_binary(GARBAGE_FRAMES[name])
    for name in ("length beyond the data", "unknown packet size", "truncated full packet"):
        frame = GARBAGE_FRAMES[name]
        assert isinstance(frame, bytes) and kt._parse_binary(frame) == []  # skipped silently
    for name in ("text that is not JSON", "unknown text message type"):
        text = GARBAGE_FRAMES[name]
        assert isinstance(text, str)
        kt._parse_text_message(text)
    assert seen == {"order": [], "error": [], "ticks": []}


async def test_send_garbage_sends_the_frame_given(kite_sim):
    async with open_ticker(kite_sim) as ws:
        await eventually(lambda: kite_sim.connections == 1)
        kite_sim.send_garbage(b"\xff\xff\x00")
        async with asyncio.timeout(5):
            while (frame := await ws.recv()) == b"\x00":
                pass
    assert frame == b"\xff\xff\x00"


# REST, through KiteConnect -----------------------------------------------------------------------
def kite(sim: KiteSimulator, **options: Any) -> KiteConnect:
    return KiteConnect(options.pop("api_key", sim.api_key), root=sim.api_url, **options)


async def test_generate_session_returns_the_access_token_and_a_request_token_works_once(kite_sim):
    kc = kite(kite_sim)
    request_token = kite_sim.issue_request_token()
    session = await asyncio.to_thread(kc.generate_session, request_token, kite_sim.api_secret)
    assert session["access_token"] in kite_sim.access_tokens and kc.access_token == session["access_token"]
    assert isinstance(session["login_time"], datetime)  # kiteconnect parsed "YYYY-MM-DD HH:MM:SS"
    assert session["user_id"] == kite_sim.user_id and session["broker"] == "ZERODHA"
    assert session["api_key"] == kite_sim.api_key
    for name in ("user_name", "user_shortname", "email", "user_type", "exchanges", "products", "order_types"):
        assert session[name]
    for name in ("public_token", "enctoken", "refresh_token", "meta", "avatar_url"):
        assert name in session
    with pytest.raises(kex.TokenException) as again:
        await asyncio.to_thread(kite(kite_sim).generate_session, request_token, kite_sim.api_secret)
    assert again.value.code == 403 and str(again.value) == "Token is invalid or has expired."


async def test_the_login_time_is_india_time(kite_sim):
    kc = kite(kite_sim)
    before = datetime.now().astimezone()
    session = await asyncio.to_thread(kc.generate_session, kite_sim.issue_request_token(), kite_sim.api_secret)
    india = before.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Kolkata")).replace(tzinfo=None)
    assert abs(session["login_time"] - india) < timedelta(seconds=5)


async def test_a_wrong_secret_or_api_key_is_refused(kite_sim):
    request_token = kite_sim.issue_request_token()
    with pytest.raises(kex.TokenException) as wrong:
        await asyncio.to_thread(kite(kite_sim).generate_session, request_token, "not the secret")
    assert wrong.value.code == 403 and "checksum" in str(wrong.value)
    with pytest.raises(kex.KiteException) as wrong_key:
        await asyncio.to_thread(kite(kite_sim, api_key="another").generate_session, request_token, kite_sim.api_secret)
    assert wrong_key.value.code in (400, 403)
    # the refusals did not use the request token up
    session = await asyncio.to_thread(kite(kite_sim).generate_session, request_token, kite_sim.api_secret)
    assert session["access_token"] in kite_sim.access_tokens


async def test_the_login_page_redirects_with_a_fresh_request_token(kite_sim):
    kc = kite(kite_sim)
    kc._default_login_uri = kite_sim.login_url  # the URL kiteconnect would send a browser to, at the simulator
    reply = await asyncio.to_thread(requests.get, kc.login_url(), allow_redirects=False, timeout=5)
    assert reply.status_code == 302
    location = urlsplit(reply.headers["Location"])
    params = {k: v[-1] for k, v in parse_qs(location.query).items()}
    assert params["status"] == "success" and params["action"] == "login"
    session = await asyncio.to_thread(kc.generate_session, params["request_token"], kite_sim.api_secret)
    assert session["access_token"] in kite_sim.access_tokens
    wrong = await asyncio.to_thread(requests.get, kite_sim.login_url, params={"api_key": "x"}, timeout=5)
    assert wrong.status_code == 400


async def test_the_checksum_is_sha256_of_key_token_secret(kite_sim):
    """The exchange with a hand-made form (not kiteconnect's): the checksum rule of Kite's docs."""
    request_token = kite_sim.issue_request_token()
    checksum = hashlib.sha256(f"{kite_sim.api_key}{request_token}{kite_sim.api_secret}".encode()).hexdigest()
    form = {"api_key": kite_sim.api_key, "request_token": request_token, "checksum": checksum}
    headers = {"X-Kite-Version": "3"}
    reply = await asyncio.to_thread(
        requests.post, f"{kite_sim.api_url}/session/token", data=form, headers=headers, timeout=5
    )
    assert reply.status_code == 200 and reply.json()["status"] == "success"
    missing = await asyncio.to_thread(
        requests.post, f"{kite_sim.api_url}/session/token", data={"api_key": "k"}, headers=headers, timeout=5
    )
    assert missing.status_code == 400 and missing.json()["error_type"] == "InputException"
    assert missing.json()["status"] == "error" and missing.json()["data"] is None


async def test_profile_needs_the_token_and_fails_after_expiry(kite_sim):
    kc = kite(kite_sim)
    await asyncio.to_thread(kc.generate_session, kite_sim.issue_request_token(), kite_sim.api_secret)
    profile = await asyncio.to_thread(kc.profile)
    assert profile["user_id"] == kite_sim.user_id
    kite_sim.expire_tokens()
    with pytest.raises(kex.TokenException) as expired:
        await asyncio.to_thread(kc.profile)
    assert expired.value.code == 403
    hooked: list[bool] = []
    kc.set_session_expiry_hook(lambda: hooked.append(True))
    with pytest.raises(kex.TokenException):
        await asyncio.to_thread(kc.profile)
    assert hooked == [True]  # the library recognises Kite's session-expiry answer


async def test_an_issued_access_token_works_as_is_and_invalidate_ends_it(kite_sim):
    kc = kite(kite_sim, access_token=kite_sim.issue_access_token())
    assert (await asyncio.to_thread(kc.profile))["user_id"] == kite_sim.user_id
    assert await asyncio.to_thread(kc.invalidate_access_token) is True
    with pytest.raises(kex.TokenException):
        await asyncio.to_thread(kc.profile)


async def test_the_api_needs_x_kite_version_3(kite_sim):
    token = kite_sim.issue_access_token()
    auth = {"Authorization": f"token {kite_sim.api_key}:{token}"}
    url = f"{kite_sim.api_url}/user/profile"
    bare = await asyncio.to_thread(requests.get, url, headers=auth, timeout=5)
    assert bare.status_code == 400 and bare.json()["error_type"] == "InputException"
    versioned = await asyncio.to_thread(requests.get, url, headers={**auth, "X-Kite-Version": "3"}, timeout=5)
    assert versioned.status_code == 200
    await asyncio.to_thread(kite(kite_sim, access_token=token).profile)
    assert kite_sim.rest_headers[-1]["x-kite-version"] == "3"  # what kiteconnect sends


async def test_quote_carries_the_circuit_limits(kite_sim):
    kc = kite(kite_sim, access_token=kite_sim.issue_access_token())
    quote = await asyncio.to_thread(kc.quote, "NSE:INFY", "NSE:NOSUCH")
    assert list(quote) == ["NSE:INFY"]
    infy = quote["NSE:INFY"]
    assert infy["instrument_token"] == 408065
    assert infy["lower_circuit_limit"] < infy["ohlc"]["close"] < infy["upper_circuit_limit"]
    assert isinstance(infy["timestamp"], datetime) and isinstance(infy["last_trade_time"], datetime)
    assert len(infy["depth"]["buy"]) == len(infy["depth"]["sell"]) == 5


# The instrument dump --------------------------------------------------------------------------------
SEGMENT_BYTE = {"NSE": 1, "NFO": 2, "CDS": 3, "BSE": 4, "BFO": 5, "BCD": 6, "MCX": 7, "INDICES": 9, "NCO": 12}

#: real Kite instrument tokens (from Kite's own dump), not the simulator's
REAL_TOKENS = {
    ("NSE", "RELIANCE"): 738561,
    ("NSE", "INFY"): 408065,
    ("NSE", "TCS"): 2953217,
    ("NSE", "HDFCBANK"): 341249,
    ("NSE", "SBIN"): 779521,
    ("NSE", "NIFTY 50"): 256265,
    ("NSE", "NIFTY BANK"): 260105,
    ("NSE", "NIFTY FIN SERVICE"): 257801,
    ("NSE", "NIFTY MID SELECT"): 288009,
    ("NSE", "INDIA VIX"): 264969,
    ("NSE", "NIFTY NEXT 50"): 270857,
    ("BSE", "SENSEX"): 265,
    ("BSE", "BANKEX"): 274441,
}


async def test_kiteconnect_parses_the_whole_dump(kite_sim):
    records = await asyncio.to_thread(kite(kite_sim).instruments)
    lines = kite_sim.dump_bytes().decode().strip().split("\n")
    assert len(records) == len(lines) - 1 > 300
    today = date.today()
    for r in records:
        assert isinstance(r["instrument_token"], int) and isinstance(r["strike"], float)
        assert isinstance(r["lot_size"], int) and isinstance(r["tick_size"], float)
        segment = r["segment"].split("-")[0] if r["segment"] != "INDICES" else "INDICES"
        assert r["instrument_token"] == int(r["exchange_token"]) << 8 | SEGMENT_BYTE[segment]
        if r["instrument_type"] in ("FUT", "CE", "PE"):
            assert isinstance(r["expiry"], date) and r["expiry"] >= today
            assert r["segment"] == f"{r['exchange']}-{'FUT' if r['instrument_type'] == 'FUT' else 'OPT'}"
            assert (r["strike"] > 0) == (r["instrument_type"] != "FUT")
        else:
            assert r["expiry"] == "" and r["strike"] == 0 and r["instrument_type"] == "EQ"
    assert len({r["instrument_token"] for r in records}) == len(records)
    by_name = {(r["exchange"], r["tradingsymbol"]): r for r in records}
    for key, token in REAL_TOKENS.items():
        assert by_name[key]["instrument_token"] == token
    assert by_name[("NSE", "NIFTY 50")]["segment"] == by_name[("BSE", "SENSEX")]["segment"] == "INDICES"
    for exchange in ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCO"):
        assert any(r["exchange"] == exchange for r in records), exchange
    assert {r["tick_size"] for r in records if r["exchange"] == "CDS"} == {0.0025}


async def test_weekly_and_monthly_tradingsymbols_spell_their_expiry(kite_sim):
    records = await asyncio.to_thread(kite(kite_sim).instruments, "NFO")
    assert records and {r["exchange"] for r in records} == {"NFO"}
    weekly = re.compile(r"^NIFTY(\d\d)([1-9OND])(\d\d)(\d+)(CE|PE)$")
    monthly = re.compile(r"^([A-Z]+)(\d\d)([A-Z]{3})(?:(\d+(?:\.\d+)?)(CE|PE)|FUT)$")
    weeklies = monthlies = 0
    for r in records:
        if found := weekly.match(r["tradingsymbol"]):
            yy, month, dd, strike, kind = found.groups()
            e = r["expiry"]
            assert (int(yy), "123456789OND".index(month) + 1, int(dd)) == (e.year % 100, e.month, e.day)
            assert float(strike) == r["strike"] and kind == r["instrument_type"]
            weeklies += 1
        else:
            found = monthly.match(r["tradingsymbol"])
            assert found, r["tradingsymbol"]
            name, yy, mon, _strike, _kind = found.groups()
            e = r["expiry"]
            assert name == r["name"] and int(yy) == e.year % 100 and mon == e.strftime("%b").upper()
            monthlies += 1
    assert weeklies and monthlies


async def test_the_dump_is_served_with_its_length_and_without_auth(kite_sim):
    reply = await asyncio.to_thread(requests.get, f"{kite_sim.api_url}/instruments", timeout=5)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/csv")
    assert int(reply.headers["Content-Length"]) == len(reply.content) and reply.content == kite_sim.dump_bytes()
    with_auth = await asyncio.to_thread(
        requests.get,
        f"{kite_sim.api_url}/instruments/CDS",
        headers={"Authorization": f"token {kite_sim.api_key}:expired", "X-Kite-Version": "3"},
        timeout=5,
    )
    assert with_auth.status_code == 200
    rows = list(csv.DictReader(io.StringIO(with_auth.text)))
    assert rows and {r["exchange"] for r in rows} == {"CDS"}


async def test_a_gzipped_dump_is_what_kiteconnect_reads_and_its_length_is_the_compressed_size():
    async with KiteSimulator(gzip_dump=True, tick_interval=0.05) as sim:
        records = await asyncio.to_thread(kite(sim).instruments)
        assert len(records) == sim.dump_bytes().decode().strip().count("\n")
        raw = await asyncio.to_thread(
            requests.get, f"{sim.api_url}/instruments", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=5
        )
        body = raw.raw.read(decode_content=False)
        assert raw.headers["Content-Encoding"] == "gzip" and int(raw.headers["Content-Length"]) == len(body)
        assert len(body) < len(sim.dump_bytes()) and gzip.decompress(body) == sim.dump_bytes()
        plain = await asyncio.to_thread(
            requests.get, f"{sim.api_url}/instruments", headers={"Accept-Encoding": "identity"}, timeout=5
        )
        assert "Content-Encoding" not in plain.headers and plain.content == sim.dump_bytes()


async def test_a_dump_given_is_the_dump_served():
    dump = b"instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
    dump += b"instrument_type,segment,exchange\n408065,1594,INFY,INFOSYS,1500,,0,0.05,1,EQ,NSE,NSE\n"
    async with KiteSimulator(dump=dump, tick_interval=0.05) as sim:
        assert await asyncio.to_thread(kite(sim).instruments) == [
            {
                "instrument_token": 408065,
                "exchange_token": "1594",
                "tradingsymbol": "INFY",
                "name": "INFOSYS",
                "last_price": 1500.0,
                "expiry": "",
                "strike": 0.0,
                "tick_size": 0.05,
                "lot_size": 1,
                "instrument_type": "EQ",
                "segment": "NSE",
                "exchange": "NSE",
            }
        ]
        async with open_ticker(sim) as ws:
            await send(ws, "subscribe", [408065, 738561])
            frame, _tick = await frame_with(sim, ws, 408065, "quote")
            assert [t["instrument_token"] for t in ticker()._parse_binary(frame)] == [408065]  # not in this dump


@pytest.mark.parametrize("offset", range(0, 400, 7))
def test_the_built_in_dump_never_goes_stale_and_is_deterministic(offset):
    day = date(2026, 1, 1) + timedelta(days=offset)
    dump = build_dump(day)
    assert dump == build_dump(day)
    rows = list(csv.DictReader(io.StringIO(dump.decode())))
    expiries = [date.fromisoformat(r["expiry"]) for r in rows if r["expiry"]]
    assert expiries and min(expiries) >= day and min(expiries) <= day + timedelta(days=8)
    assert len({r["instrument_token"] for r in rows}) == len(rows)
    for r in rows:
        if r["instrument_type"] in ("CE", "PE") and r["name"] == "NIFTY":
            e = date.fromisoformat(r["expiry"])
            weekly = f"NIFTY{e:%y}{WEEKLY_MONTH[e.month - 1]}{e.day:02d}"
            assert r["tradingsymbol"].startswith(weekly) or r["tradingsymbol"].startswith(f"NIFTY{e:%y}{e:%b}".upper())


# REST faults, through KiteConnect ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, kex.NetworkException),
        (500, kex.GeneralException),
        (502, kex.NetworkException),
        (503, kex.NetworkException),
        (504, kex.NetworkException),
    ],
)
async def test_rest_faults_reach_kiteconnect_as_its_exceptions(kite_sim, status, error):
    kc = kite(kite_sim, access_token=kite_sim.issue_access_token())
    kite_sim.rest_fault(status, count=2)
    for _ in range(2):
        with pytest.raises(error) as failed:
            await asyncio.to_thread(kc.profile)
        assert failed.value.code == status
    assert (await asyncio.to_thread(kc.profile))["user_id"] == kite_sim.user_id


async def test_a_429_says_when_to_retry_and_an_html_page_is_a_data_exception(kite_sim):
    kite_sim.rest_fault(429, retry_after=2)
    reply = await asyncio.to_thread(requests.get, f"{kite_sim.api_url}/instruments", timeout=5)
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "2"
    assert reply.json() == {
        "status": "error",
        "message": "Too many requests",
        "error_type": "NetworkException",
        "data": None,
    }
    kite_sim.rest_fault(503, html=True)
    with pytest.raises(kex.DataException):
        await asyncio.to_thread(kite(kite_sim).instruments)


# Control over HTTP (oaws sim kite) -----------------------------------------------------------------
def control(sim: KiteSimulator, action: str, method: str = "POST", **options: Any) -> requests.Response:
    return requests.request(method, f"{sim.api_url}/sim/{action}", timeout=5, **options)


async def test_controls_over_http_act_on_the_open_connections(kite_sim):
    async with open_ticker(kite_sim) as ws:
        await eventually(lambda: kite_sim.connections == 1)
        reply = await asyncio.to_thread(control, kite_sim, "order", data=json.dumps({"status": "REJECTED"}))
        assert reply.status_code == 200 and reply.json()["action"] == "order" and reply.json()["connections"] == 1
        assert json.loads(await next_text(ws))["data"]["status"] == "REJECTED"
        reply = await asyncio.to_thread(control, kite_sim, "error", params={"text": "bad thing"})
        assert json.loads(await next_text(ws)) == {"type": "error", "data": "bad thing"}
        reply = await asyncio.to_thread(control, kite_sim, "rest-fault", params={"status": "429", "count": "1"})
        assert reply.status_code == 200
        with pytest.raises(kex.NetworkException):
            await asyncio.to_thread(kite(kite_sim).instruments)
        reply = await asyncio.to_thread(control, kite_sim, "drop")
        assert reply.json()["action"] == "drop"
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
    assert kite_sim.controls == ["order", "error", "rest-fault", "drop"]


@pytest.mark.parametrize(
    ("action", "method", "params", "status"),
    [
        ("nothing", "POST", {}, 404),
        ("drop", "GET", {}, 405),
        ("silent", "POST", {"seconds": "nan"}, 400),
        ("silent", "POST", {"seconds": "-1"}, 400),
        ("restart", "POST", {"seconds": "99999"}, 400),
        ("rest-fault", "POST", {"status": "200"}, 400),
        ("rest-fault", "POST", {"count": "many"}, 400),
    ],
)
async def test_control_mistakes_are_answered_in_one_json_line(kite_sim, action, method, params, status):
    reply = await asyncio.to_thread(control, kite_sim, action, method, params=params)
    assert reply.status_code == status and reply.text.count("\n") == 1 and reply.json()["error"]
    assert kite_sim.controls == []


async def test_no_secret_reaches_the_logs(kite_sim, caplog):
    caplog.set_level(logging.DEBUG)
    kc = kite(kite_sim)
    request_token = kite_sim.issue_request_token()
    session = await asyncio.to_thread(kc.generate_session, request_token, kite_sim.api_secret)
    await asyncio.to_thread(kc.invalidate_access_token)
    access = kite_sim.issue_access_token()
    async with open_ticker(kite_sim, access_token=access) as ws:
        await send(ws, "subscribe", [408065])
        await frame_with(kite_sim, ws, 408065, "quote")
    with pytest.raises(InvalidStatus):
        async with open_ticker(kite_sim, access_token="refused-token-123"):
            pass
    ours = [r for r in caplog.records if r.name.startswith("oaws")]  # urllib3 and websockets log URLs themselves
    text = "".join(f"{r.getMessage()} {r.args}" for r in ours)
    for secret in (request_token, session["access_token"], access, kite_sim.api_secret, "refused-token-123"):
        assert secret not in text
    assert "kite-sim REST" in text  # the simulator did log its requests, without their query strings


async def test_a_request_token_past_its_lifetime_is_refused():
    async with KiteSimulator(request_token_ttl=0, tick_interval=0.05) as sim:
        with pytest.raises(kex.TokenException) as late:
            await asyncio.to_thread(kite(sim).generate_session, sim.issue_request_token(), sim.api_secret)
    assert str(late.value) == "Token is invalid or has expired."


async def test_invalidating_a_token_that_is_not_valid_is_refused(kite_sim):
    with pytest.raises(kex.TokenException):
        await asyncio.to_thread(kite(kite_sim, access_token="never-issued").invalidate_access_token)


async def test_subscriptions_are_the_fullest_mode_over_open_connections(kite_sim):
    infy, sbin = token_of(kite_sim, tradingsymbol="INFY"), token_of(kite_sim, tradingsymbol="SBIN")
    async with open_ticker(kite_sim) as a, open_ticker(kite_sim) as b:
        await send(a, "subscribe", [infy, sbin])
        await send(a, "mode", ["ltp", [infy, sbin]])
        await send(b, "subscribe", [infy])
        await send(b, "mode", ["full", [infy]])
        await eventually(lambda: kite_sim.subscriptions() == {infy: "full", sbin: "ltp"})
        per_connection = [c.modes for c in kite_sim.open_connections()]
        assert per_connection == [{infy: "ltp", sbin: "ltp"}, {infy: "full"}]
    await eventually(lambda: kite_sim.subscriptions() == {})
