"""Angel's order-status socket: decoding, the AngelFeed's connection, and placeOrder end to end.

The oracle for placing orders is smartapi-python's own ``SmartConnect.placeOrder`` against the
simulator's REST route; the simulator then pushes AB01 (open) and AB05 (complete) on its
order-status socket, which the feed decodes onto the bus as OpenAlgo's ``order_update``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pyotp
import pytest
from websockets.asyncio.client import connect

from oaws.brokers.angel import orders
from oaws.brokers.angel.master import update_master
from oaws.brokers.angel.simulator import AngelSimulator
from oaws.brokers.angel.smartapi import new_smart_connect
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from tests.brokers.angel.conftest import make_feed
from tests.brokers.bus import FeedBus as Bus
from tests.helpers import eventually

RELIANCE = {"tradingsymbol": "RELIANCE-EQ", "symboltoken": "2885", "exchange": "NSE"}


def frame(code: str, **data: Any) -> str:
    order = {
        "orderid": "261200000000001",
        **RELIANCE,
        "transactiontype": "BUY",
        "producttype": "DELIVERY",
        "ordertype": "LIMIT",
        "quantity": "10",
        "price": 2950.5,
        "triggerprice": 0,
        "filledshares": "4",
        "unfilledshares": "6",
        "averageprice": 2950.0,
        "text": "RMS: margin exceeds",
        "updatetime": "01-Dec-2026 09:15:02",
        "exchtime": "01-Dec-2026 09:15:03",
        **data,
    }
    return json.dumps({"user-id": "S9990001", "status-code": "200", "order-status": code, "orderData": order})


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AB01", "open"),
        ("AB02", "cancelled"),
        ("AB03", "rejected"),
        ("AB04", "open"),
        ("AB05", "complete"),
        ("AB06", "open"),
        ("AB07", "cancelled"),
        ("AB08", "open"),
        ("AB09", "open"),
        ("AB10", "trigger pending"),
        ("AB11", "open"),
    ],
)
def test_every_status_code_becomes_openalgos_word(master, code, status):
    update = orders.decode(frame(code), master)
    assert update is not None and update.user_id == "S9990001"
    m = update.message
    assert m["order_status"] == status
    assert m["rejection_reason"] == ("RMS: margin exceeds" if status == "rejected" else "")
    assert (m["type"], m["broker"], m["orderid"]) == ("order_update", "angel", "261200000000001")
    assert (m["symbol"], m["exchange"], m["action"], m["product"], m["pricetype"]) == (
        "RELIANCE",
        "NSE",
        "BUY",
        "CNC",
        "LIMIT",
    )
    assert (m["quantity"], m["filled_quantity"], m["pending_quantity"]) == (10, 4, 6)
    assert (m["price"], m["trigger_price"], m["average_price"]) == (2950.5, 0.0, 2950.0)
    assert (m["updatetime"], m["exchtime"]) == ("01-Dec-2026 09:15:02", "01-Dec-2026 09:15:03")


@pytest.mark.parametrize(("angel", "openalgo"), [("DELIVERY", "CNC"), ("INTRADAY", "MIS"), ("CARRYFORWARD", "NRML")])
def test_products_map_to_openalgos(master, angel, openalgo):
    update = orders.decode(frame("AB01", producttype=angel, ordertype="STOPLOSS_LIMIT", triggerprice="2940"), master)
    assert update is not None
    assert (update.message["product"], update.message["pricetype"], update.message["trigger_price"]) == (
        openalgo,
        "SL",
        2940.0,
    )


def test_the_acknowledgement_and_pong_carry_no_order(master):
    assert orders.decode(json.dumps({"order-status": "AB00", "orderData": {}}), master) is None
    assert orders.decode("pong", master) is None


def test_a_token_the_master_does_not_know_keeps_angels_tradingsymbol(master):
    update = orders.decode(frame("AB01", symboltoken="999999", tradingsymbol="NEWCO-EQ"), master)
    assert update is not None and (update.message["symbol"], update.message["exchange"]) == ("NEWCO-EQ", "NSE")
    no_master = orders.decode(frame("AB01"), None, user_id="x")
    assert no_master is not None and no_master.message["symbol"] == "RELIANCE-EQ"


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        b"\x00\x01",
        "[1, 2]",
        json.dumps({"order-status": "AB99", "orderData": {"orderid": "1"}}),
        json.dumps({"orderData": {"orderid": "1"}}),
        json.dumps({"order-status": "AB01"}),
        json.dumps({"order-status": "AB01", "orderData": {"orderid": "1", "exchange": "NSE"}}),
        frame("AB01", quantity="ten"),
        frame("AB01", exchange="MARS", symboltoken=""),
    ],
)
def test_malformed_frames_raise_one_error(master, bad):
    with pytest.raises(orders.MalformedOrderFrame):
        orders.decode(bad, master)


# The feed's order-status connection -----------------------------------------------------
def place_order(sim: AngelSimulator, quantity: int = 5, **params: Any) -> str:
    """smartapi-python's placeOrder against the simulator (blocking): the order id."""
    smart = new_smart_connect(api_key=sim.api_key, root=sim.api_url, timeout=5)
    smart.generateSession(sim.client_code, sim.pin, pyotp.TOTP(sim.totp_secret).now())
    order = {
        "variety": "NORMAL",
        "tradingsymbol": "RELIANCE-EQ",
        "symboltoken": "2885",
        "transactiontype": "BUY",
        "exchange": "NSE",
        "ordertype": "MARKET",
        "producttype": "INTRADAY",
        "duration": "DAY",
        "price": "0",
        "squareoff": "0",
        "stoploss": "0",
        "quantity": str(quantity),
        **params,
    }
    orderid = smart.placeOrder(order)
    assert isinstance(orderid, str) and orderid
    return orderid


TOPIC = "ANGEL_S9990001_orders"


async def updates(bus: Bus, count: int) -> list[dict[str, Any]]:
    return [(await bus.next(TOPIC))[1] for _ in range(count)]


async def test_placed_order_reaches_the_bus_open_then_complete(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe(TOPIC)
        await eventually(lambda: len(sim.order_connections) == 1)
        orderid = await asyncio.to_thread(place_order, sim, 7)
        opened, done = await updates(bus, 2)
    assert [opened["order_status"], done["order_status"]] == ["open", "complete"]
    for m in (opened, done):
        assert (m["orderid"], m["symbol"], m["exchange"], m["action"], m["product"], m["pricetype"]) == (
            orderid,
            "RELIANCE",
            "NSE",
            "BUY",
            "MIS",
            "MARKET",
        )
        assert m["quantity"] == 7 and m["broker"] == "angel" and m["user_id"] == sim.client_code
    assert (opened["filled_quantity"], opened["pending_quantity"]) == (0, 7)
    assert (done["filled_quantity"], done["pending_quantity"]) == (7, 0) and done["average_price"] > 0
    assert feed.status()["order_updates"] == 2
    assert sim.logins == 2  # the feed's, and place_order's own SmartConnect session


async def test_a_dropped_order_socket_reconnects(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe(TOPIC)
        await eventually(lambda: len(sim.order_connections) == 1)
        sim.drop_orders()
        await eventually(lambda: sim.order_handshakes == 2 and len(sim.order_connections) == 1)
        await asyncio.to_thread(place_order, sim)
        assert [m["order_status"] for m in await updates(bus, 2)] == ["open", "complete"]
        assert feed.status()["order_reconnects"] == 1 and feed.reconnects == 0  # the tick feed stayed up


async def test_a_refused_token_logs_in_again_once(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path, store_session=False)
    run = asyncio.create_task(feed.run())
    try:
        await eventually(lambda: len(sim.order_connections) == 1)
        assert sim.logins == 1
        sim.expire_tokens(drop=False)  # every jwt refused from now on; the tick feed's socket stays
        sim.drop_orders()
        await eventually(lambda: sim.order_refused and len(sim.order_connections) == 1)
        assert sim.order_refused == [(401, "Invalid Auth Token")]
        assert sim.logins == 2 and feed.logins == 2  # one fresh login, in the Sessions the tick feed shares
        assert not run.done() and feed.reconnects == 0
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def test_fresh_tokens_refused_stop_the_order_updates_not_the_ticks(sim, master, tmp_path, caplog):
    sim.refuse_orders = "Invalid Auth Token"
    feed = make_feed(sim, master, tmp_path, store_session=False)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await eventually(lambda: feed.status()["order_status"] == "error")
        assert sim.order_refused == [(401, "Invalid Auth Token")] * 2 and sim.logins == 2  # one re-login, no storm
        assert "Angel order status stopped" in caplog.text
        await bus.next("NSE_RELIANCE_LTP")  # the tick feed goes on
        assert feed.status()["adapter_status"] == "connected"


async def test_garbage_frames_are_counted_and_skipped(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe(TOPIC)
        await eventually(lambda: len(sim.order_connections) == 1)
        for junk in ("garbage", b"\xff\x00", json.dumps({"order-status": "AB42"}), "[]"):
            await sim.send_order_frame(junk)
        await eventually(lambda: feed.malformed_orders == 4)
        await asyncio.to_thread(place_order, sim)
        assert [m["order_status"] for m in await updates(bus, 2)] == ["open", "complete"]
        assert sim.order_handshakes == 1 and feed.status()["malformed_order_frames"] == 4


def test_place_order_refuses_a_bad_token_and_unknown_instruments(sim):
    with pytest.raises(AssertionError):
        place_order(sim, symboltoken="999999")
    status, reply = sim.rest("POST", "/rest/secure/angelbroking/order/v1/placeOrder", {}, b"{}")
    assert status == 401 and reply["errorcode"] == "AG8001"


# End to end: serve --broker angel, two clients ------------------------------------------
async def _next_order(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = orjson.loads(await ws.recv())
            if message.get("type") == "order_update":
                return message


async def test_a_client_that_subscribed_orders_gets_angels_updates_and_another_none(sim, monkeypatch):
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    await asyncio.to_thread(update_master, sim.master_url)
    service = Service(ServeSettings(broker="angel", port=0, bus="tcp://127.0.0.1:*"))
    await service.start()
    try:
        async with connect(service.url) as wants, connect(service.url) as other:
            await wants.send(json.dumps({"action": "subscribe_orders"}))
            assert orjson.loads(await wants.recv())["status"] == "success"
            await eventually(lambda: len(sim.order_connections) == 1)
            await asyncio.sleep(0.3)  # the proxy's bus subscription travels to the feed
            orderid = await asyncio.to_thread(place_order, sim, 3, transactiontype="SELL", producttype="DELIVERY")
            opened, done = await _next_order(wants), await _next_order(wants)
            assert [opened["order_status"], done["order_status"]] == ["open", "complete"]
            assert (done["orderid"], done["symbol"], done["exchange"], done["action"], done["product"]) == (
                orderid,
                "RELIANCE",
                "NSE",
                "SELL",
                "CNC",
            )
            assert (done["quantity"], done["filled_quantity"], done["pending_quantity"]) == (3, 3, 0)
            await other.send(json.dumps({"action": "ping"}))
            assert orjson.loads(await other.recv())["type"] == "pong"  # no order update came before it
    finally:
        await service.stop()
