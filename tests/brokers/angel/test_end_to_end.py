"""`oaws serve --broker angel` as a whole: Service -> AngelFeed.from_settings -> simulator, and a client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import connect

from oaws.brokers.angel.master import update_master
from oaws.server.service import Service
from oaws.server.settings import ServeSettings


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
