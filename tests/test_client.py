"""oaws's client against a server that behaves like OpenAlgo's (websocket_proxy/server.py):
no `topic`, errors without `type`, one message per frame, `?batch=1` ignored, auth first."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.server import serve

from oaws.client import BrokerInfo, Client, ConnectError, Pong, ServerError, Status, Subscribed, Tick, Unsubscribed
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
    from oaws.client import AuthError

    async with serve(openalgo_like, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(AuthError, match="Invalid API key"):
            async for _ in Client(f"ws://127.0.0.1:{port}", api_key="bad"):
                pass


class OpenAlgoBook:
    """OpenAlgo's bookkeeping of one connection's subscriptions: (symbol, exchange, mode), the
    subscribe request's top-level mode for every entry, an unsubscribe entry's mode taken as 2
    (Quote) when missing, replies with ``successful`` / ``failed``; ping and broker info."""

    def __init__(self) -> None:
        self.held: set[tuple[str, str, int]] = set()
        self.subscribes: list[tuple[int, list[str]]] = []
        self.connections = 0

    async def handler(self, ws) -> None:
        self.connections += 1
        self.held.clear()
        async for frame in ws:
            msg = orjson.loads(frame)
            action = msg.get("action")
            if action == "subscribe":
                mode = msg.get("mode", "Quote")
                self.subscribes.append((mode, [e["symbol"] for e in msg["symbols"]]))
                subs = []
                for e in msg["symbols"]:
                    self.held.add((e["symbol"], e["exchange"], mode))
                    subs.append({"symbol": e["symbol"], "exchange": e["exchange"], "status": "success", "mode": mode})
                await ws.send(orjson.dumps({"type": "subscribe", "status": "success", "subscriptions": subs}).decode())
            elif action == "unsubscribe":
                done = []
                for e in msg["symbols"]:
                    self.held.discard((e["symbol"], e["exchange"], e.get("mode", 2)))
                    done.append({"symbol": e["symbol"], "exchange": e["exchange"], "status": "success"})
                reply = {"type": "unsubscribe", "status": "success", "successful": done, "failed": []}
                await ws.send(orjson.dumps(reply).decode())
            elif action == "ping":
                reply = {
                    "type": "pong",
                    "status": "success",
                    "server_timestamp": 7,
                    "client_timestamp": msg["timestamp"],
                }
                await ws.send(orjson.dumps(reply).decode())
            elif action == "get_broker_info":
                reply = {"type": "broker_info", "status": "success", "broker": "angel", "adapter_status": "connected"}
                await ws.send(orjson.dumps(reply).decode())


async def next_event(events, kind):
    async for event in events:
        if isinstance(event, kind):
            return event
    raise AssertionError("the events ended")


async def test_client_holds_several_modes_and_unsubscribes_each_on_an_openalgo_style_server():
    book = OpenAlgoBook()
    rel, infy = Instrument("RELIANCE", "NSE"), Instrument("INFY", "NSE")
    async with serve(book.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = Client(f"ws://127.0.0.1:{port}", instruments=[rel, infy], mode=1, backoff=(0.01, 0.02))
        async with asyncio.timeout(5), client:
            events = client.events()
            for _ in range(2):
                await next_event(events, Subscribed)
            await client.subscribe([rel], 3)
            assert (await next_event(events, Subscribed)).mode == 3
            assert book.held == {("RELIANCE", "NSE", 1), ("INFY", "NSE", 1), ("RELIANCE", "NSE", 3)}

            await client.unsubscribe([rel], mode=3)
            await next_event(events, Unsubscribed)
            assert book.held == {("RELIANCE", "NSE", 1), ("INFY", "NSE", 1)}
            await client.unsubscribe([infy])  # every mode: named, since OpenAlgo would take none for Quote
            await next_event(events, Unsubscribed)
            assert book.held == {("RELIANCE", "NSE", 1)} and client.wanted == {rel: {1}}

            await client.subscribe([infy], 2)
            await client.subscribe([infy], 3)
            await client.ws.close()  # a drop: the next connection resubscribes each mode, grouped
            assert (await next_event(events, Status)).state == "reconnecting"
            assert (await next_event(events, Status)).state == "connecting"
            assert (await next_event(events, Status)).state == "connected"
            for _ in range(3):
                await next_event(events, Subscribed)
            assert book.connections == 2 and book.subscribes[-3:] == [(1, ["RELIANCE"]), (2, ["INFY"]), (3, ["INFY"])]
            assert book.held == {("RELIANCE", "NSE", 1), ("INFY", "NSE", 2), ("INFY", "NSE", 3)}

            await client.ping(1234)
            pong = await next_event(events, Pong)
            assert pong.body["client_timestamp"] == 1234
            await client.get_broker_info()
            assert (await next_event(events, BrokerInfo)).body["broker"] == "angel"


class FlakyAuth:
    """Answers the first ``failures`` authentications with OpenAlgo's broker error (no type), or
    not at all when ``silent``; then accepts."""

    def __init__(self, failures: int, *, silent: bool = False) -> None:
        self.failures = failures
        self.silent = silent

    async def handler(self, ws) -> None:
        async for frame in ws:
            if orjson.loads(frame).get("action") != "authenticate":
                continue
            if self.failures:
                self.failures -= 1
                if not self.silent:
                    error = {"status": "error", "code": "BROKER_CONNECTION_ERROR", "message": "broker down"}
                    await ws.send(orjson.dumps(error).decode())
                continue
            await ws.send(orjson.dumps({"type": "auth", "status": "success"}).decode())


@pytest.mark.parametrize(
    ("silent", "reason"),
    [(False, "could not authenticate: broker down (BROKER_CONNECTION_ERROR)"), (True, "did not answer authenticate")],
)
async def test_an_authentication_that_fails_on_the_servers_side_is_retried_on_a_new_connection(silent, reason):
    flaky = FlakyAuth(1, silent=silent)
    async with serve(flaky.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = Client(url, api_key="k", retry_first=True, backoff=(0.01, 0.02), auth_timeout=0.3)
        statuses = []
        async with asyncio.timeout(5), client:
            async for event in client:
                if isinstance(event, Status):
                    statuses.append((event.state, event.detail))
                    if event.state == "connected":
                        break
        assert [s for s, _ in statuses] == ["connecting", "reconnecting", "connecting", "connected"]
        assert reason in statuses[1][1]

        # a command does not wait: the first connection's failure is the answer
        flaky.failures = 1
        with pytest.raises(ConnectError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            async for _ in Client(url, api_key="k", auth_timeout=0.3, instruments=[Instrument("RELIANCE", "NSE")]):
                pass
