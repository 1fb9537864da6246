"""The simulator's /sim control endpoints: real HTTP requests, felt by real feed clients.

``oaws angel-sim`` users have no Python object to call ``drop_all()`` on; these endpoints
must have the same effect on a plain websockets client and on the adapter itself.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import requests
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from oaws.brokers.angel import wire
from oaws.brokers.angel.session import login
from oaws.brokers.angel.simulator import AngelSimulator
from tests.brokers.angel.conftest import make_feed, settings_for
from tests.brokers.bus import FeedBus as Bus
from tests.helpers import eventually

RELIANCE = json.dumps(wire.request(wire.SUBSCRIBE, wire.LTP, {wire.NSE_CM: ["2885"]}, "abcde12345"))


async def _post(sim: AngelSimulator, path: str, method: str = "POST") -> requests.Response:
    return await asyncio.to_thread(requests.request, method, f"{sim.api_url}{path}", timeout=5)


async def _client(sim: AngelSimulator) -> tuple[ClientConnection, dict[str, str]]:
    """A feed connection subscribed to RELIANCE LTP, after its first tick."""
    session = await asyncio.to_thread(login, settings_for(sim))
    headers = {
        "Authorization": session.authorization,
        "x-api-key": sim.api_key,
        "x-client-code": sim.client_code,
        "x-feed-token": session.feed_token,
    }
    ws = await connect(sim.feed_url, additional_headers=headers, open_timeout=3)
    await ws.send(RELIANCE)
    await _next_packet(ws)
    return ws, headers


async def _next_packet(ws: ClientConnection, timeout: float = 3.0) -> wire.Packet:
    async with asyncio.timeout(timeout):
        while isinstance(frame := await ws.recv(), str):
            pass
    return wire.decode(frame)


def _one_line_json(response: requests.Response) -> dict:
    assert response.headers["Content-Type"] == "application/json"
    assert response.text.endswith("\n") and response.text.count("\n") == 1
    return response.json()


async def test_post_sim_drop_disconnects_the_feed_client(sim):
    ws, _ = await _client(sim)
    response = await _post(sim, "/sim/drop")
    assert response.status_code == 200
    assert _one_line_json(response) == {
        "action": "drop",
        "connections": 1,
        "message": "dropped 1 feed connection without a close frame",
    }
    with pytest.raises(ConnectionClosedError) as caught:
        async with asyncio.timeout(3):
            while True:
                await ws.recv()
    assert caught.value.rcvd is None  # no close frame: a network failure, not a goodbye
    await eventually(lambda: sim.connections == [])
    assert sim.controls == ["drop"]


async def test_post_sim_garbage_sends_the_client_a_malformed_frame(sim):
    ws, _ = await _client(sim)
    response = await _post(sim, "/sim/garbage")
    assert response.status_code == 200
    assert _one_line_json(response)["message"] == "sent a malformed frame on 1 feed connection"
    async with asyncio.timeout(3):
        while True:
            frame = await ws.recv()
            try:
                wire.decode(frame)
            except wire.MalformedFrame:
                break
    await _next_packet(ws)  # the connection stays and ticks on
    await ws.close()


async def test_post_sim_silent_stops_ticks_and_pongs_for_the_given_seconds(sim):
    ws, _ = await _client(sim)
    response = await _post(sim, "/sim/silent?seconds=0.6")
    posted = time.monotonic()
    assert response.status_code == 200
    reply = _one_line_json(response)
    assert (reply["action"], reply["connections"], reply["seconds"]) == ("silent", 1, 0.6)
    assert reply["message"] == "1 feed connection silent (no ticks, no pongs) for 0.6 s"
    last = sim._seq  # ticks sent before the request may still be in flight
    await ws.send("ping")
    async with asyncio.timeout(3):
        while True:
            frame = await ws.recv()
            assert frame != "pong", "a silent connection answered a text ping"
            if wire.decode(frame).sequence > last:
                break
    assert time.monotonic() - posted >= 0.45  # about 10 tick intervals of silence, then ticks again
    await ws.close()


async def test_post_sim_silent_without_seconds_lasts_past_the_adapters_window(sim):
    ws, _ = await _client(sim)
    reply = _one_line_json(await _post(sim, "/sim/silent"))
    assert reply["seconds"] == 60 and sim.connections[0].silent
    await ws.close()


async def test_post_sim_expire_drops_and_refuses_the_old_tokens(sim):
    ws, headers = await _client(sim)
    reply = _one_line_json(await _post(sim, "/sim/expire"))
    assert reply["message"] == "expired every token issued so far and dropped 1 feed connection"
    with pytest.raises(ConnectionClosedError):
        async with asyncio.timeout(3):
            while True:
                await ws.recv()
    with pytest.raises(InvalidStatus) as caught:
        await connect(sim.feed_url, additional_headers=headers, open_timeout=3)
    assert caught.value.response.status_code == 401


@pytest.mark.parametrize(
    "method, path, status, error",
    [
        ("POST", "/sim/reboot", 404, "no such simulator control /sim/reboot; use POST /sim/drop, "),
        ("POST", "/sim", 404, "no such simulator control /sim; use POST "),
        ("GET", "/sim/drop", 405, "use POST for /sim/drop"),
        ("POST", "/sim/silent?seconds=soon", 400, "seconds must be a number above 0 and at most 3600, not 'soon'"),
        ("POST", "/sim/silent?seconds=0", 400, "seconds must be a number above 0 and at most 3600, not '0'"),
        ("POST", "/sim/silent?seconds=nan", 400, "seconds must be a number above 0 and at most 3600, not 'nan'"),
    ],
)
async def test_control_mistakes_are_one_line_and_change_nothing(sim, method, path, status, error):
    ws, _ = await _client(sim)
    response = await _post(sim, path, method)
    assert response.status_code == status
    assert _one_line_json(response)["error"].startswith(error)
    assert sim.controls == [] and not sim.connections[0].silent
    await _next_packet(ws)
    await ws.close()


async def test_the_adapter_feels_sim_drop_and_sim_garbage(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        await bus.next("NSE_RELIANCE_QUOTE")
        assert (await _post(sim, "/sim/garbage")).status_code == 200
        await eventually(lambda: feed.malformed == 1)
        assert (await _post(sim, "/sim/drop")).status_code == 200
        await eventually(lambda: feed.reconnects == 1 and sim.handshakes == 2 and len(sim.subscriptions()) == 1)
        last = sim._seq
        _, tick = await bus.next("NSE_RELIANCE_QUOTE")
        while tick["seq"] <= last:
            _, tick = await bus.next("NSE_RELIANCE_QUOTE")
