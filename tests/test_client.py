"""oaws's client against a server that behaves like OpenAlgo's (websocket_proxy/server.py):
no `topic`, errors without `type`, one message per frame, `?batch=1` ignored, auth first."""

from __future__ import annotations

import asyncio

import orjson
from websockets.asyncio.server import serve

from oaws.client import Client, ServerError, Tick
from oaws.instruments import Instrument


async def openalgo_like(ws) -> None:
    authenticated = False
    async for frame in ws:
        msg = orjson.loads(frame)
        action = msg.get("action") or msg.get("type")
        if action in ("authenticate", "auth"):
            if msg.get("api_key") != "oa-key":
                await ws.send(
                    orjson.dumps(
                        {"status": "error", "code": "AUTHENTICATION_ERROR", "message": "Invalid API key"}
                    ).decode()
                )
                continue
            authenticated = True
            await ws.send(
                orjson.dumps(
                    {
                        "type": "auth",
                        "status": "success",
                        "message": "Authentication successful",
                        "broker": "angel",
                        "user_id": "u1",
                    }
                ).decode()
            )
        elif not authenticated:
            await ws.send(
                orjson.dumps(
                    {"status": "error", "code": "NOT_AUTHENTICATED", "message": "You must authenticate first"}
                ).decode()
            )
        elif action == "subscribe":
            entries = msg.get("symbols") or [{"symbol": msg["symbol"], "exchange": msg["exchange"]}]
            subs = []
            for e in entries:
                if e["symbol"] == "NOSUCH":
                    subs.append(
                        {
                            "symbol": e["symbol"],
                            "exchange": e["exchange"],
                            "status": "error",
                            "message": "Symbol NOSUCH not found for exchange NSE",
                            "broker": "angel",
                        }
                    )
                else:
                    subs.append(
                        {
                            "symbol": e["symbol"],
                            "exchange": e["exchange"],
                            "status": "success",
                            "mode": "LTP",
                            "depth": 5,
                            "broker": "angel",
                        }
                    )
            await ws.send(
                orjson.dumps(
                    {
                        "type": "subscribe",
                        "status": "partial" if len(subs) > 1 else "success",
                        "subscriptions": subs,
                        "message": "Subscription processing complete",
                        "broker": "angel",
                    }
                ).decode()
            )
            for i in range(3):
                for e in entries:
                    if e["symbol"] != "NOSUCH":
                        await ws.send(
                            orjson.dumps(
                                {
                                    "type": "market_data",
                                    "symbol": e["symbol"],
                                    "exchange": e["exchange"],
                                    "mode": 1,
                                    "broker": "angel",
                                    "data": {
                                        "ltp": 100.0 + i,
                                        "ltt": 1,
                                        "symbol": e["symbol"],
                                        "exchange": e["exchange"],
                                        "mode": 1,
                                        "timestamp": 2,
                                    },
                                }
                            ).decode()
                        )


async def test_client_against_an_openalgo_style_server():
    async with serve(openalgo_like, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = Client(
            f"ws://127.0.0.1:{port}",
            api_key="oa-key",
            mode=1,
            instruments=[Instrument("RELIANCE", "NSE"), Instrument("NOSUCH", "NSE")],
        )
        ticks, errors = [], []
        async with asyncio.timeout(5), client:
            async for event in client:
                if isinstance(event, Tick):
                    ticks.append(event)
                elif isinstance(event, ServerError):
                    errors.append(event)
                if len(ticks) == 3:
                    break
        assert [t.data["ltp"] for t in ticks] == [100.0, 101.0, 102.0]
        assert ticks[0].instrument == Instrument("RELIANCE", "NSE") and ticks[0].mode == 1
        assert len(errors) == 1 and errors[0].instrument == Instrument("NOSUCH", "NSE")
        assert "not found" in errors[0].message


async def test_client_reports_typeless_auth_error():
    import pytest

    from oaws.client import AuthError

    async with serve(openalgo_like, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(AuthError, match="Invalid API key"):
            async for _ in Client(f"ws://127.0.0.1:{port}", api_key="bad"):
                pass
