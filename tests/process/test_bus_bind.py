"""OpenAlgo's bus wiring served by ``oaws serve --role proxy --bus-bind``: the proxy binds,
a publisher connects a PUB socket and publishes as OpenAlgo's broker adapters do
(``websocket_proxy/base_adapter.py``: topic ``EXCHANGE_SYMBOL_MODE``, the tick as
``json.dumps`` of a dict, no ``fseq``), and a WebSocket client of the proxy receives it."""

from __future__ import annotations

import asyncio
import json
import time

import orjson
import zmq
from websockets.asyncio.client import connect

from tests.helpers import send_json, start_serve


def openalgo_ltp(symbol: str, exchange: str, ltp: float) -> dict:
    """An LTP tick as OpenAlgo's Angel adapter publishes it (its ``_normalize_market_data``)."""
    now = int(time.time() * 1000)
    return {"symbol": symbol, "exchange": exchange, "mode": 1, "ltp": ltp, "ltt": now, "timestamp": now}


async def test_openalgo_adapter_publishes_into_a_binding_proxy(cli_env, ipc_bus):
    proc, url = start_serve(cli_env, "--role", "proxy", "--bus-bind", "--bus", ipc_bus, "--port", "0")
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)  # as base_adapter._create_socket: PUB, connected to the proxy's bus
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(ipc_bus)
    try:
        async with connect(url) as ws:
            await send_json(ws, action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1)
            assert orjson.loads(await ws.recv())["status"] == "success"
            got = None
            async with asyncio.timeout(10):
                while got is None:
                    # a PUB socket drops what no subscription asks for yet: publish until it does
                    for topic, ltp in (("NSE_RELIANCE_LTP", 1424.5), ("NSE_RELIANCE_LTPX", 1.0), ("NSE_INFY_LTP", 2.0)):
                        symbol = topic.split("_")[1]
                        pub.send_multipart([topic.encode(), json.dumps(openalgo_ltp(symbol, "NSE", ltp)).encode()])
                    try:
                        frame = await asyncio.wait_for(ws.recv(), 0.1)
                    except TimeoutError:
                        continue
                    got = orjson.loads(frame)
            assert got["type"] == "market_data"
            assert (got["symbol"], got["exchange"], got["mode"]) == ("RELIANCE", "NSE", 1)
            assert got["data"]["ltp"] == 1424.5 and got["data"]["symbol"] == "RELIANCE"
            # routed by exact topic: a longer topic that ZeroMQ's prefix match lets through, and
            # an instrument nobody asked for, never reach the client
            for _ in range(20):
                for topic, ltp in (("NSE_RELIANCE_LTPX", 1.0), ("NSE_INFY_LTP", 2.0), ("NSE_RELIANCE_LTP", 1425.0)):
                    symbol = topic.split("_")[1]
                    pub.send_multipart([topic.encode(), json.dumps(openalgo_ltp(symbol, "NSE", ltp)).encode()])
            async with asyncio.timeout(5):
                for _ in range(20):
                    m = orjson.loads(await ws.recv())
                    assert m["symbol"] == "RELIANCE" and m["data"]["ltp"] in (1424.5, 1425.0), m
    finally:
        pub.close(0)
        ctx.term()
        proc.terminate()
        proc.wait(10)
