"""oaws's client against a server that behaves like OpenAlgo's (tests/openalgo_server.py,
from its websocket_proxy/server.py): no `topic`, errors without `type`, one message per
frame, `?batch=1` ignored, authentication first and slow, no-mode unsubscribe meaning Quote."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from websockets.asyncio.server import serve

from oaws.client import BrokerInfo, Client, ConnectError, Pong, ServerError, Status, Subscribed, Tick, Unsubscribed
from oaws.instruments import Instrument
from tests.helpers import eventually, tick
from tests.openalgo_server import OpenAlgoServer

REL, INFY, NOSUCH = Instrument("RELIANCE", "NSE"), Instrument("INFY", "NSE"), Instrument("NOSUCH", "NSE")


def held(*pairs: tuple[Instrument, int]) -> set[tuple[str, str, int]]:
    return {(i.symbol, i.exchange, mode) for i, mode in pairs}


async def next_event(events, kind):
    async for event in events:
        if isinstance(event, kind):
            return event
    raise AssertionError("the events ended")


async def test_client_against_an_openalgo_server():
    async with OpenAlgoServer() as server:
        client = Client(server.url, api_key="oa-key", mode=1, instruments=[REL, NOSUCH])
        ticks, errors, subscribed = [], [], []
        async with asyncio.timeout(5), client:
            async for event in client:
                if isinstance(event, Tick):
                    ticks.append(event)
                elif isinstance(event, ServerError):
                    errors.append(event)
                elif isinstance(event, Subscribed):
                    subscribed.append(event)
                if len(ticks) == 3:
                    break
        assert [t.instrument for t in ticks] == [REL] * 3 and all(t.mode == 1 for t in ticks)
        assert ticks[1].data["ltp"] > ticks[0].data["ltp"] and not any(t.snapshot for t in ticks)
        assert [(e.instrument, e.mode) for e in subscribed] == [(REL, 1)]  # OpenAlgo's label "LTP" read as 1
        assert len(errors) == 1 and errors[0].instrument == NOSUCH and "not found" in errors[0].message


async def test_client_reports_typeless_auth_error():
    from oaws.client import AuthError

    async with OpenAlgoServer() as server:
        with pytest.raises(AuthError, match="Invalid API key"):
            async for _ in Client(server.url, api_key="bad"):
                pass


async def test_a_slow_authentication_is_waited_for_and_said_once():
    async with OpenAlgoServer(auth_delay=1.5) as server:
        client = Client(server.url, api_key="oa-key", mode=2, instruments=[REL])
        statuses = []
        async with asyncio.timeout(10), client:
            async for event in client:
                if isinstance(event, Status):
                    statuses.append((event.state, event.detail))
                if isinstance(event, Tick):
                    break
        assert [s for s, _ in statuses] == ["connecting", "authenticating", "connected"]
        assert statuses[1][1] == f"waiting for {server.url} to answer authenticate (up to 30 s)"
        assert server.auth_times[0] >= 1.5 and server.connections == 1


async def test_an_authentication_slower_than_the_clients_patience_is_one_sentence():
    async with OpenAlgoServer(auth_delay=3) as server:
        with pytest.raises(ConnectError, match=r"did not answer authenticate within 0.5 s$"):
            async for _ in Client(server.url, api_key="oa-key", instruments=[REL], auth_timeout=0.5):
                pass


async def test_with_retry_auth_a_first_connection_whose_broker_fails_is_retried_until_it_authenticates():
    async with OpenAlgoServer(broker_failures=2) as server:
        client = Client(server.url, api_key="oa-key", instruments=[REL], retry_auth=True, backoff=(0.01, 0.05))
        reasons = []
        async with asyncio.timeout(10), client:
            async for event in client:
                if isinstance(event, Status) and event.state == "reconnecting":
                    reasons.append(event.detail)
                if isinstance(event, Tick):
                    break
        assert server.connections == 3 and len(reasons) == 2
        assert (
            reasons[0] == f"{server.url} could not authenticate: Failed to connect to broker (BROKER_CONNECTION_ERROR)"
        )
        # without retry_auth, a command's first connection says why and ends
        server.broker_failures = 1
        with pytest.raises(ConnectError, match="could not authenticate"):
            async for _ in Client(server.url, api_key="oa-key", instruments=[REL]):
                pass
        # and nothing listening is the answer at once, retry_auth or not
        url = server.url
    with pytest.raises(ConnectError, match="connection refused"):
        async for _ in Client(url, api_key="oa-key", retry_auth=True):
            pass


async def test_a_client_that_never_authenticates_is_closed_with_4401_and_told_why():
    from oaws.client import AuthError

    async with OpenAlgoServer(auth_grace=0.3) as server:
        client = Client(server.url, instruments=[REL], retry_first=True)  # no key: OpenAlgo wants one
        errors = []
        with pytest.raises(AuthError, match="closed the connection: auth timeout"):
            async with asyncio.timeout(5):
                async for event in client:
                    if isinstance(event, ServerError):
                        errors.append(event)
        assert errors and errors[0].code == "NOT_AUTHENTICATED" and errors[0].fatal
        await eventually(lambda: server.closed == [(1, 4401)], what=lambda: server.closed)


async def test_client_holds_several_modes_and_unsubscribes_each_on_an_openalgo_server():
    async with OpenAlgoServer() as server:
        client = Client(server.url, api_key="oa-key", instruments=[REL, INFY], mode=1, backoff=(0.01, 0.02))
        async with asyncio.timeout(5), client:
            events = client.events()
            for _ in range(2):
                await next_event(events, Subscribed)
            await client.subscribe([REL], 3)
            assert (await next_event(events, Subscribed)).mode == 3
            assert server.subscriptions() == held((REL, 1), (INFY, 1), (REL, 3))

            await client.unsubscribe([REL], mode=3)
            await next_event(events, Unsubscribed)
            assert server.subscriptions() == held((REL, 1), (INFY, 1))
            await client.unsubscribe([INFY])  # every mode: named, since OpenAlgo would take none for Quote
            await next_event(events, Unsubscribed)
            assert server.subscriptions() == held((REL, 1)) and client.wanted == {REL: {1}}

            await client.subscribe([INFY], 2)
            await client.subscribe([INFY], 3)
            await client.ws.close()  # a drop: the next connection resubscribes each mode, grouped
            assert (await next_event(events, Status)).state == "reconnecting"
            assert (await next_event(events, Status)).state == "connecting"
            assert (await next_event(events, Status)).state == "connected"
            for _ in range(3):
                await next_event(events, Subscribed)
            resubscribed = [(r["mode"], [e["symbol"] for e in r["symbols"]]) for r in server.sent("subscribe")[-3:]]
            assert server.connections == 2 and resubscribed == [(1, ["RELIANCE"]), (2, ["INFY"]), (3, ["INFY"])]
            assert server.subscriptions() == held((REL, 1), (INFY, 2), (INFY, 3))

            await client.ping(1234)
            pong = await next_event(events, Pong)
            assert pong.body["client_timestamp"] == 1234
            await client.get_broker_info()
            info = await next_event(events, BrokerInfo)
            assert (info.body["broker"], info.body["user_id"]) == ("angel", "oa-user")

            await client.unsubscribe([REL, INFY])
            await next_event(events, Unsubscribed)
            assert server.subscriptions() == set() and client.wanted == {}
        assert all("mode" in e for u in server.sent("unsubscribe") for e in u["symbols"])


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


async def test_the_tick_oaws_proxy_sends_at_subscribe_is_a_marked_snapshot(bus, proxy):
    """The client half and oaws's proxy agree on the mark: the last tick held, sent at once to
    a new subscriber, is ``Tick.snapshot``; the trades after it are not."""
    first = Client(proxy.url, instruments=[REL], mode=1)
    async with asyncio.timeout(5), first:
        events = first.events()
        await next_event(events, Subscribed)
        await bus.subscription()
        bus.publish("NSE_RELIANCE_LTP", tick(ltp=1400.0))
        assert not (await next_event(events, Tick)).snapshot  # a trade as it happens
        second = Client(proxy.url, instruments=[REL], mode=1)
        async with second:
            later = second.events()
            held = await next_event(later, Tick)
            assert held.snapshot and held.data["ltp"] == 1400.0 and held.message["snapshot"] is True
            bus.publish("NSE_RELIANCE_LTP", tick(ltp=1401.0))
            live = await next_event(later, Tick)
            assert not live.snapshot and live.data["ltp"] == 1401.0


async def test_verbose_logs_the_clients_steps_and_masks_the_key(bus, proxy, caplog):
    """Issue 19 #10: ``-v`` printed nothing more for ``tail`` or ``subscribe``: the client
    logged nothing. Now it logs what it sends (the key masked) and what it is answered."""
    caplog.set_level(logging.DEBUG, logger="oaws.client")
    client = Client(proxy.url, api_key="a-secret-key", instruments=[REL, INFY])
    async with asyncio.timeout(5), client:
        async for event in client:
            if isinstance(event, Subscribed) and event.instrument == INFY:
                break
    said = "\n".join(r.getMessage() for r in caplog.records if r.name == "oaws.client")
    assert "a-secret-key" not in said and '"api_key":"***"' in said
    assert f"connecting to {proxy.url}/?batch=1&feed_status=1" in said
    assert '"action":"subscribe"' in said and "received subscribed: INFY:NSE mode 2" in said
