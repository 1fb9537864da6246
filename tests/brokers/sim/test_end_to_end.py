"""The simulated market's ticks as a client of ``oaws serve`` reads them: OpenAlgo's names in
every mode, on every exchange OpenAlgo serves (sim feed -> bus -> proxy -> client)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from oaws.brokers.sim.options import option_contracts
from oaws.names import today
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from tests.brokers.fields import assert_openalgo_tick

#: an option the calendar lists today
OPTION = next(c for c in option_contracts("NIFTY", today()) if c.strike == 26000 and c.right == "CE")
INSTRUMENTS = [
    ("RELIANCE", "NSE"),
    ("NIFTY", "NSE_INDEX"),
    (OPTION.symbol, OPTION.exchange),
    ("GUARSEED10", "NCDEX"),
    ("CRUDEOIL19DEC25FUT", "NCO"),
    ("MCXCOMDEX", "MCX_INDEX"),
    ("US30", "GLOBAL_INDEX"),
    ("BTCUSDT", "CRYPTO"),
]
LABELS = {1: "LTP", 2: "Quote", 3: "Depth"}


@pytest.fixture
async def service():
    s = Service(ServeSettings(port=0, bus="tcp://127.0.0.1:*", feed={"seed": 7, "rate": 50.0}))
    await s.start()
    yield s
    await s.stop()


async def ticks_of(url: str, mode: int, wanted: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``wanted`` ticks of each instrument, subscribed at ``mode`` the way OpenAlgo's SDK does."""
    seen: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in INSTRUMENTS}
    async with connect(url, max_queue=None) as ws:
        await ws.send(json.dumps({"action": "authenticate", "api_key": "any"}))
        symbols = [{"symbol": s, "exchange": e} for s, e in INSTRUMENTS]
        await ws.send(json.dumps({"action": "subscribe", "symbols": symbols, "mode": LABELS[mode]}))
        async with asyncio.timeout(10):
            while any(len(ticks) < wanted for ticks in seen.values()):
                message = json.loads(await ws.recv())
                if message.get("type") == "market_data" and message["mode"] == mode:
                    seen[(message["symbol"], message["exchange"])].append(message["data"])
    return seen


@pytest.mark.parametrize("mode", [1, 2, 3])
async def test_every_field_of_each_mode_has_openalgos_name_on_every_exchange(service, mode):
    for (symbol, exchange), ticks in (await ticks_of(service.url, mode, 2)).items():
        for data in ticks:
            assert (data["symbol"], data["exchange"]) == (symbol, exchange)
            assert_openalgo_tick(data, mode)


async def test_depth_has_last_quantity_and_indices_stay_empty(service):
    seen = await ticks_of(service.url, 3, 2)
    stock = seen[("RELIANCE", "NSE")][-1]
    assert stock["last_quantity"] == stock["last_trade_quantity"] >= 1
    assert stock["depth"]["buy"][0]["price"] < stock["depth"]["sell"][0]["price"]
    for index in ("NSE_INDEX", "MCX_INDEX", "GLOBAL_INDEX"):
        data = next(ticks for (_, e), ticks in seen.items() if e == index)[-1]
        assert data["volume"] == data["last_quantity"] == 0
        assert all(level["price"] == 0 for level in data["depth"]["buy"] + data["depth"]["sell"])
    assert seen[("BTCUSDT", "CRYPTO")][-1]["oi"] > 0  # crypto perpetuals are derivatives in OpenAlgo
