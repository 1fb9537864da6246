"""The Dhan simulator, checked by Dhan's own client library (dhanhq), not by oaws's decoders."""

from __future__ import annotations

import json

from websockets.asyncio.client import connect

from oaws.brokers.dhan.simulator import DhanSimulator


def feed_url(sim: DhanSimulator, token: str | None = None, client_id: str | None = None) -> str:
    token = sim.access_token if token is None else token
    client_id = sim.client_id if client_id is None else client_id
    return f"{sim.feed_url}?version=2&token={token}&clientId={client_id}&authType=2"


def request(code: int, *instruments: tuple[str, str]) -> str:
    entries = [{"ExchangeSegment": seg, "SecurityId": sid} for seg, sid in instruments]
    return json.dumps({"RequestCode": code, "InstrumentCount": len(entries), "InstrumentList": entries})


async def test_a_subscribe_gets_market_status_previous_close_then_ticks(dhan_sim: DhanSimulator) -> None:
    async with connect(feed_url(dhan_sim)) as ws:
        await ws.send(request(15, ("NSE_EQ", "2885")))
        codes = [(await ws.recv())[0] for _ in range(4)]
    assert codes == [7, 6, 2, 2]
    assert dhan_sim.handshakes == 1
