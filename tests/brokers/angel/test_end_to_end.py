"""`oaws serve --broker angel` as a whole: Service -> AngelFeed.from_settings -> simulator, and a client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from oaws.brokers.angel.master import update_master
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from tests.brokers.fields import assert_openalgo_tick


async def _reply(ws: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == kind:
                return message


async def test_a_client_of_serve_broker_angel_gets_angel_ticks(sim, monkeypatch):
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    await asyncio.to_thread(update_master, sim.master_url)
    service = Service(ServeSettings(broker="angel", port=0, bus="tcp://127.0.0.1:*"))
    await service.start()
    try:
        async with connect(service.url) as ws:
            await ws.send(json.dumps({"action": "subscribe", "symbol": "RELIANCE", "exchange": "NSE", "mode": 2}))
            tick = await _reply(ws, "market_data")
            assert (tick["symbol"], tick["exchange"], tick["mode"], tick["broker"]) == ("RELIANCE", "NSE", 2, "angel")
            packet = sim.packet(tick["data"]["seq"])
            assert tick["data"]["ltp"] == packet.ltp / 100 and tick["data"]["close"] == packet.close / 100
            await ws.send(
                json.dumps({"action": "subscribe", "symbols": [{"symbol": "NOSUCHCO", "exchange": "NSE"}], "mode": 1})
            )
            refused = await _reply(ws, "subscribe")
            assert refused["subscriptions"][0]["code"] == "SYMBOL_NOT_FOUND"
            await ws.send(json.dumps({"action": "get_broker_info"}))
            info = await _reply(ws, "broker_info")
            assert info["broker"] == "angel"
    finally:
        await service.stop()
    assert sim.logins == 1


ANGEL_INSTRUMENTS = [
    ("RELIANCE", "NSE"),
    ("NIFTY", "NSE_INDEX"),
    ("NIFTY26DEC24FUT", "NFO"),
    ("MCXCOMDEX", "MCX_INDEX"),
    ("GUARSEED1020FEB25", "NCDEX"),
    ("USDINR27DEC24FUT", "CDS"),
]


@pytest.mark.parametrize("mode", [1, 2, 3])
async def test_every_field_of_each_mode_reaches_a_client_with_openalgos_name(sim, monkeypatch, mode):
    """Angel simulator -> AngelFeed -> bus -> proxy -> client, checked against the packets sent."""
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    await asyncio.to_thread(update_master, sim.master_url)
    service = Service(ServeSettings(broker="angel", port=0, bus="tcp://127.0.0.1:*"))
    await service.start()
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        async with connect(service.url, max_queue=None) as ws:
            await ws.send(json.dumps({"action": "authenticate", "api_key": "any"}))
            symbols = [{"symbol": s, "exchange": e} for s, e in ANGEL_INSTRUMENTS]
            await ws.send(json.dumps({"action": "subscribe", "symbols": symbols, "mode": mode}))
            async with asyncio.timeout(10):
                while len(seen) < len(ANGEL_INSTRUMENTS):
                    message = json.loads(await ws.recv())
                    if message.get("type") == "market_data" and message["mode"] == mode:
                        seen[(message["symbol"], message["exchange"])] = message["data"]
    finally:
        await service.stop()
    for (symbol, exchange), data in seen.items():
        assert (data["symbol"], data["exchange"]) == (symbol, exchange)
        assert_openalgo_tick(data, mode)
        packet = sim.packet(data["seq"])
        divisor = 10_000_000 if exchange == "CDS" else 100
        assert data["ltp"] == packet.ltp / divisor and data["ltt"] == packet.exchange_timestamp
        if mode >= 2:
            assert data["average_price"] == packet.avg_traded_price / divisor
            assert (data["open"], data["close"]) == (packet.open / divisor, packet.close / divisor)
        if mode == 3:
            assert data["last_quantity"] == packet.last_traded_quantity
            assert data["upper_circuit"] == packet.upper_circuit / divisor
            best_bid = next(e for e in packet.best_five if e.flag == 1)
            assert data["depth"]["buy"][0] == {
                "price": best_bid.price / divisor,
                "quantity": best_bid.quantity,
                "orders": best_bid.orders,
            }
