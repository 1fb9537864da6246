"""The order-update message, its bus topic, and a placed order's request (no sockets)."""

from __future__ import annotations

import orjson
import pytest

from oaws.instruments import Instrument
from oaws.protocol.orders import (
    ORDER_REQUEST,
    OrderRequest,
    OrderRequestError,
    broker_prefix,
    is_order_topic,
    order_topic,
    order_update,
)

RELIANCE = Instrument("RELIANCE", "NSE")

#: the keys of OpenAlgo's subscribers/wsproxy_subscriber.py's payload, in its order
OPENALGO_KEYS = [
    "type", "user_id", "mode", "broker", "orderid", "symbol", "exchange", "action", "quantity", "price",
    "trigger_price", "pricetype", "product", "order_status", "filled_quantity", "pending_quantity",
    "average_price", "rejection_reason",
]  # fmt: skip


def test_the_message_has_openalgos_keys_in_its_order():
    message = order_update(
        user_id="oaws", broker="sim", orderid="SIM000001", instrument=RELIANCE, action="BUY", quantity=10,
        price=0.0, pricetype="MARKET", product="MIS", order_status="open",
    )  # fmt: skip
    assert list(message) == OPENALGO_KEYS
    assert message["type"] == "order_update"
    assert message["pending_quantity"] == 10


def test_a_final_order_has_nothing_pending():
    for status in ("complete", "rejected", "cancelled"):
        message = order_update(
            user_id="u", broker="sim", orderid="1", instrument=RELIANCE, action="SELL", quantity=5, price=1.0,
            pricetype="LIMIT", product="CNC", order_status=status,
        )  # fmt: skip
        assert message["pending_quantity"] == 0


def test_the_topic_is_openalgos_and_the_proxy_finds_it_by_its_suffix():
    assert order_topic("sim", "oaws") == b"SIM_oaws_orders"
    assert order_topic("angel", "user_with_underscores") == b"ANGEL_user_with_underscores_orders"
    assert order_topic("sim", "oaws").startswith(broker_prefix("sim"))
    assert is_order_topic(b"ANALYZE_admin_orders")
    assert not is_order_topic(b"NSE_RELIANCE_LTP")
    assert not is_order_topic(b"_oaws.x_orders")


def test_a_request_survives_its_trip_up_the_bus():
    request = OrderRequest("abc123", "BUY", RELIANCE, 10, 1500.5, "CNC")
    raw = request.to_bytes()
    assert raw.startswith(ORDER_REQUEST + b"{")
    assert OrderRequest.parse(orjson.loads(raw[len(ORDER_REQUEST) :])) == request
    assert request.pricetype == "LIMIT"
    cancel = OrderRequest("n1", "CANCEL", orderid="SIM000001")
    assert OrderRequest.parse(orjson.loads(cancel.to_bytes()[len(ORDER_REQUEST) :])) == cancel


GOOD = {"nonce": "n1", "action": "BUY", "symbol": "RELIANCE", "exchange": "NSE", "quantity": 1}


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": None},
        {"nonce": "not/alnum"},
        {"nonce": "x" * 65},
        {"action": "HOLD"},
        {"action": 7},
        {"exchange": "XX"},
        {"symbol": {"a": 1}},
        {"quantity": 0},
        {"quantity": -3},
        {"quantity": 1.5},
        {"quantity": True},
        {"quantity": "10"},
        {"price": -1},
        {"price": "1"},
        {"price": 1e300},
        {"product": "BO"},
        {"action": "CANCEL"},
        {"action": "CANCEL", "orderid": 5},
    ],
)
def test_a_request_that_makes_no_sense_is_refused_with_a_sentence(change):
    with pytest.raises(OrderRequestError):
        OrderRequest.parse({**GOOD, **change})


def test_a_request_without_a_price_is_a_market_order():
    request = OrderRequest.parse({**GOOD, "action": "sell"})
    assert (request.action, request.pricetype, request.product) == ("SELL", "MARKET", "MIS")
