"""The simulator speaks Angel's protocol: checked with a plain websockets client and plain HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from oaws.brokers.angel import wire
from oaws.brokers.angel.session import Session, login
from oaws.brokers.angel.simulator import AngelSimulator
from tests.brokers.angel.conftest import settings_for


async def _session(sim: AngelSimulator) -> Session:
    return await asyncio.to_thread(login, settings_for(sim))


def _headers(sim: AngelSimulator, session: Session, **change: str) -> dict[str, str]:
    headers = {
        "Authorization": session.authorization,
        "x-api-key": sim.api_key,
        "x-client-code": sim.client_code,
        "x-feed-token": session.feed_token,
    }
    return headers | change


async def _open(sim: AngelSimulator, session: Session) -> ClientConnection:
    return await connect(sim.feed_url, additional_headers=_headers(sim, session), open_timeout=3)


async def _next_binary(ws: ClientConnection) -> bytes:
    async with asyncio.timeout(3):
        while isinstance(frame := await ws.recv(), str):
            pass
    return frame


def _subscribe(mode: int, exchange_type: int, *tokens: str, action: int = 1, correlation: str = "abcde12345") -> str:
    return json.dumps(wire.request(action, mode, {exchange_type: list(tokens)}, correlation))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"Authorization": "Bearer nope"}, "Invalid Auth Token"),
        ({"x-feed-token": "nope"}, "Invalid Feed Token"),
        ({"x-api-key": "nope"}, "Invalid API Key"),
        ({"x-client-code": "nope"}, "Invalid Client Code"),
    ],
)
async def test_a_bad_handshake_header_is_401_with_x_error_message(sim, change, message):
    session = await _session(sim)
    with pytest.raises(InvalidStatus) as caught:
        await connect(sim.feed_url, additional_headers=_headers(sim, session, **change), open_timeout=3)
    assert caught.value.response.status_code == 401
    assert caught.value.response.headers["x-error-message"] == message


async def test_connections_per_client_code_are_limited(sim):
    session = await _session(sim)
    open_ = [await _open(sim, session) for _ in range(sim.max_connections)]
    with pytest.raises(InvalidStatus) as caught:
        await _open(sim, session)
    assert caught.value.response.status_code == 429
    for ws in open_:
        await ws.close()


async def test_both_heartbeats_are_answered(sim):
    async with await _open(sim, await _session(sim)) as ws:
        await ws.send("ping")
        async with asyncio.timeout(3):
            assert await ws.recv() == "pong"
            await (await ws.ping())  # a protocol ping's pong


async def test_invalid_requests_get_e1001(sim):
    async with await _open(sim, await _session(sim)) as ws:
        for bad in (
            "{not json",
            json.dumps({"action": 1, "params": {"mode": 9, "tokenList": []}}),
            json.dumps(
                {
                    "correlationID": "x1",
                    "action": 1,
                    "params": {"mode": 1, "tokenList": [{"exchangeType": 6, "tokens": ["1"]}]},
                }
            ),
        ):
            await ws.send(bad)
            async with asyncio.timeout(3):
                error = json.loads(await ws.recv())
            assert error["errorCode"] == "E1001" and error["errorMessage"] == "Invalid Request Payload."
        assert error["correlationID"] == "x1"


async def test_subscribe_tick_and_unsubscribe(sim):
    async with await _open(sim, await _session(sim)) as ws:
        await ws.send(_subscribe(wire.QUOTE, wire.NSE_CM, "2885", "99999999"))
        packet = wire.decode(await _next_binary(ws))
        assert (packet.mode, packet.exchange_type, packet.token) == (2, 1, "2885")  # the unknown token never ticks
        assert sim.packet(packet.sequence) == packet
        await ws.send(_subscribe(wire.QUOTE, wire.NSE_CM, "2885", "99999999", action=0))
        await asyncio.sleep(0.15)
        while True:  # drain what was in flight, then silence
            try:
                async with asyncio.timeout(0.2):
                    await ws.recv()
            except TimeoutError:
                break
        assert sim.connections[0].subscriptions == set()


async def test_past_the_token_limit_the_request_gets_e1002(sim):
    sim.tokens_per_connection = 2
    async with await _open(sim, await _session(sim)) as ws:
        await ws.send(_subscribe(wire.LTP, wire.NSE_CM, "2885", "3045", "1594", correlation="lim0000001"))
        async with asyncio.timeout(3):
            error = json.loads(await ws.recv())
    assert error == {
        "correlationID": "lim0000001",
        "errorCode": "E1002",
        "errorMessage": "Invalid Request. Subscription Limit Exceeded",
    }


async def test_depth_20_only_on_nse_cash_within_its_quota_and_decodable(sim):
    sim.depth_quota = 2
    async with await _open(sim, await _session(sim)) as ws:
        await ws.send(_subscribe(wire.DEPTH, wire.NSE_FO, "35003"))
        async with asyncio.timeout(3):
            assert json.loads(await ws.recv())["errorCode"] == "E1002"
        await ws.send(_subscribe(wire.DEPTH, wire.NSE_CM, "2885", "3045", "1594"))
        async with asyncio.timeout(3):
            assert json.loads(await ws.recv())["errorCode"] == "E1002"
        await ws.send(_subscribe(wire.DEPTH, wire.NSE_CM, "2885"))
        frame = await _next_binary(ws)
    packet = wire.decode(frame)
    assert len(frame) == 443 and packet in sim.sent_depth
    assert len(packet.depth_buy) == len(packet.depth_sell) == 20
    assert packet.depth_buy[0].price < packet.depth_sell[0].price
    parsed = _sdk_parser()._parse_binary_data(frame)  # smartapi-python's decoder reads it alike
    assert (parsed["subscription_mode"], parsed["token"]) == (4, "2885")
    assert parsed["packet_received_time"] == packet.packet_received_time  # its exchange timestamp: defect 7
    assert [(lv["quantity"], lv["price"], lv["num_of_orders"]) for lv in parsed["depth_20_buy_data"]] == list(
        packet.depth_buy
    )
    assert [(lv["quantity"], lv["price"], lv["num_of_orders"]) for lv in parsed["depth_20_sell_data"]] == list(
        packet.depth_sell
    )


def _sdk_parser():
    from oaws.brokers.angel.smartapi import smart_connect_class

    smart_connect_class()  # import SmartApi through the guard first (no network, no logs/)
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    return object.__new__(SmartWebSocketV2)  # the parser needs no state; __init__ would create logs/


async def test_profile_requires_the_bearer_token(sim):
    session = await _session(sim)
    url = f"{sim.api_url}/rest/secure/angelbroking/user/v1/getProfile"
    refused = await asyncio.to_thread(requests.get, url, timeout=3)
    assert refused.status_code == 401 and refused.json()["errorcode"] == "AG8001"
    ok = await asyncio.to_thread(requests.get, url, headers={"Authorization": session.authorization}, timeout=3)
    assert ok.json()["data"]["clientcode"] == sim.client_code


async def test_expired_tokens_are_refused_everywhere(sim):
    session = await _session(sim)
    sim.expire_tokens()
    with pytest.raises(InvalidStatus):
        await _open(sim, session)
    url = f"{sim.api_url}/rest/secure/angelbroking/user/v1/getProfile"
    refused = await asyncio.to_thread(requests.get, url, headers={"Authorization": session.authorization}, timeout=3)
    assert refused.status_code == 401


async def test_tokens_expire_with_their_ttl():
    async with AngelSimulator(token_ttl=0.5) as sim:
        session = await _session(sim)
        await asyncio.sleep(0.6)
        with pytest.raises(InvalidStatus):
            await _open(sim, session)
