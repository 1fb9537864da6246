"""The OpenAlgo feed end to end: a client of oaws in front of an "OpenAlgo" upstream (a
second oaws server, which speaks OpenAlgo's protocol) receives its ticks; the upstream holds
only what the front's clients want, and gets it again after it restarts; a wrong key stands
the feed down with one sentence."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import pytest
from websockets.asyncio.client import connect

from oaws.brokers.openalgo.feed import OpenAlgoAuthError
from oaws.instruments import Instrument
from oaws.server.service import Service, ServiceError
from tests.brokers.openalgo.conftest import front_settings, upstream_settings
from tests.helpers import eventually, recv_json, send_json

RELIANCE = Instrument("RELIANCE", "NSE")


def held(upstream: Service) -> dict[Instrument, set[int]]:
    """What the upstream's clients (the front's feed) hold, merged."""
    assert upstream.proxy is not None
    out: dict[Instrument, set[int]] = {}
    for client in upstream.proxy.clients:
        for instrument, modes in client.session.subs.items():
            out.setdefault(instrument, set()).update(modes)
    return out


async def next_tick(ws, timeout: float = 10.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = await recv_json(ws, timeout)
            if message.get("type") == "market_data":
                return message


async def test_front_clients_get_the_upstreams_ticks_and_it_holds_only_what_they_want(upstream):
    front = Service(front_settings(upstream.url))
    await front.start()
    try:
        async with connect(front.url) as a, connect(front.url) as b:
            await send_json(a, action="subscribe", symbol="RELIANCE", exchange="NSE", mode=2)
            tick = await next_tick(a)
            assert (tick["symbol"], tick["exchange"], tick["mode"]) == ("RELIANCE", "NSE", 2)
            assert tick["broker"] == "openalgo"
            assert tick["data"]["symbol"] == "RELIANCE" and tick["data"]["ltp"] > 0 and "volume" in tick["data"]
            assert held(upstream) == {RELIANCE: {2}}
            # a second client of the same instrument and mode costs the upstream nothing more
            await send_json(b, action="subscribe", symbol="RELIANCE", exchange="NSE", mode=2)
            await next_tick(b)
            await send_json(a, action="subscribe", symbol="INFY", exchange="NSE", mode=1)
            await eventually(lambda: held(upstream) == {RELIANCE: {2}, Instrument("INFY", "NSE"): {1}})
            assert len(upstream.proxy.clients) == 1
            await send_json(a, action="unsubscribe", symbol="RELIANCE", exchange="NSE", mode=2)
            await asyncio.sleep(0.3)
            assert held(upstream) == {RELIANCE: {2}, Instrument("INFY", "NSE"): {1}}  # b still wants it
            await send_json(b, action="unsubscribe", symbol="RELIANCE", exchange="NSE", mode=2)
            await eventually(
                lambda: held(upstream) == {Instrument("INFY", "NSE"): {1}}, what=lambda: f"held {held(upstream)}"
            )
        await eventually(lambda: held(upstream) == {}, what=lambda: f"nothing held upstream, not {held(upstream)}")
        assert front.feed.status()["adapter_status"] == "connected"
        assert front.feed.status()["upstream_broker"] == "sim"
    finally:
        await front.stop()


async def test_the_feed_resubscribes_after_the_upstream_restarts(upstream):
    front = Service(front_settings(upstream.url))
    await front.start()
    port = upstream.proxy.port
    try:
        async with connect(front.url) as ws:
            await send_json(ws, action="subscribe", symbol="SBIN", exchange="NSE", mode=1)
            await next_tick(ws)
            await upstream.stop()
            again = Service(upstream_settings(port))
            await again.start()
            try:
                await eventually(lambda: held(again) == {Instrument("SBIN", "NSE"): {1}}, timeout=20)
                restarted = time.time() * 1000
                while (await next_tick(ws))["data"]["timestamp"] < restarted:
                    pass  # until a tick from the restarted upstream arrives
                assert front.feed.status()["reconnects"] >= 1
                assert "OpenAlgo closed the connection" in front.feed.status()["last_disconnect"]
            finally:
                await again.stop()
    finally:
        await front.stop()


async def test_a_refused_key_is_tried_once_more_then_the_feed_stands_down(upstream, monkeypatch, caplog):
    monkeypatch.setenv("OPENALGO_API_KEY", "not-the-key")
    front = Service(front_settings(upstream.url))
    await front.start()
    try:
        watched = caplog.at_level(logging.WARNING, logger="oaws.brokers.openalgo")
        with watched, pytest.raises(OpenAlgoAuthError) as refused:
            await asyncio.wait_for(front.wait(), 20)
        message = str(refused.value)
        assert message.startswith(f"OpenAlgo at {upstream.url} refused the API key twice (AUTHENTICATION_ERROR: ")
        assert message.count(". ") == 0 and "not-the-key" not in message and "\n" not in message
        retries = [r.getMessage() for r in caplog.records if "logging in again" in r.getMessage()]
        assert len(retries) == 1, retries
        assert not any("not-the-key" in r.getMessage() for r in caplog.records)
    finally:
        await front.stop()


async def test_missing_key_or_upstream_is_one_sentence(upstream, monkeypatch):
    with pytest.raises(ServiceError, match=r"^the OpenAlgo feed needs its server's address: --upstream ws://HOST:8765"):
        await Service(front_settings("")).start()
    monkeypatch.delenv("OPENALGO_API_KEY")
    with pytest.raises(ServiceError, match=r"^the OpenAlgo API key is missing: set OPENALGO_API_KEY \(or api_key in"):
        await Service(front_settings(upstream.url)).start()
    monkeypatch.setenv("OPENALGO_API_KEY", "k")
    with pytest.raises(ServiceError, match="is not a ws:// or wss:// URL"):
        await Service(front_settings("http://example.com")).start()


async def test_an_upstream_refusal_reaches_the_front_client():
    from oaws.protocol.codes import Limits

    stingy = Service(upstream_settings().replace(limits=Limits(per_client=1)))
    await stingy.start()
    front = Service(front_settings(stingy.url))
    await front.start()
    try:
        async with connect(front.url) as ws:
            await send_json(ws, action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1)
            await next_tick(ws)
            await send_json(ws, action="subscribe", symbol="INFY", exchange="NSE", mode=1)
            async with asyncio.timeout(10):
                while (m := await recv_json(ws)).get("status") != "error":
                    pass
            assert (m["code"], m["symbol"], m["exchange"], m["mode"]) == ("LIMIT_EXCEEDED", "INFY", "NSE", 1)
            assert (Instrument("INFY", "NSE"), 1) not in front.feed.connection.keys
            assert (await next_tick(ws))["symbol"] == "RELIANCE"  # the rest goes on
    finally:
        await front.stop()
        await stingy.stop()


def test_market_data_is_cut_to_its_mode_and_keeps_no_upstream_count():
    from oaws.brokers.openalgo.feed import OpenAlgoFeed

    feed = OpenAlgoFeed("ws://127.0.0.1:1", "k")
    sent: list[tuple[Instrument, int, bytes]] = []

    class Bus:
        def publish(self, instrument, mode, payload):
            sent.append((instrument, mode, payload))

        def reject(self, *args):
            raise AssertionError(args)

    feed.attach(Bus())
    feed.connection.keys.add((RELIANCE, 1))
    quote = {"fseq": 9, "ltp": 1.5, "volume": 10, "open": 1.0, "mode": 2}
    message = {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "data": quote}
    assert feed.on_market_data(message) == (RELIANCE, 1)
    assert feed.on_market_data({**message, "symbol": "INFY"}) == (Instrument("INFY", "NSE"), 1)  # not wanted
    assert [(i, m, orjson.loads(p)) for i, m, p in sent] == [
        (RELIANCE, 1, {"ltp": 1.5, "mode": 1, "symbol": "RELIANCE", "exchange": "NSE"})
    ]
    assert feed.unexpected == 1
