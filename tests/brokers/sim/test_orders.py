"""The simulated market's orders: OpenAlgo's states, and the updates the feed publishes."""

from __future__ import annotations

import orjson
import pytest

from oaws.brokers.sim.feed import SimFeed
from oaws.brokers.sim.orders import OrderBook
from oaws.instruments import Instrument
from oaws.protocol.orders import MAX_QUANTITY, OrderRequest, OrderRequestError

RELIANCE = Instrument("RELIANCE", "NSE")


def buy(quantity: int = 10, price: float | None = None, action: str = "BUY") -> OrderRequest:
    return OrderRequest("n", action, RELIANCE, quantity, price)


def statuses(orders) -> list[str]:
    return [o.status for o in orders]


def test_a_market_order_opens_and_fills_whole_at_the_last_price():
    book = OrderBook()
    opened, filled = book.place(buy(), ltp=1480.5, lower=1300, upper=1600)
    assert (opened.status, filled.status) == ("open", "complete")
    assert (filled.filled, filled.average_price) == (10, 1480.5)
    message = filled.message("sim")
    assert (message["filled_quantity"], message["pending_quantity"], message["average_price"]) == (10, 0, 1480.5)


def test_a_limit_order_rests_until_the_market_reaches_it_and_fills_at_the_trade():
    book = OrderBook()
    assert statuses(book.place(buy(price=1470.0), ltp=1480.0, lower=1300, upper=1600)) == ["open"]
    assert book.trade(RELIANCE, 1475.0) == []
    (filled,) = book.trade(RELIANCE, 1469.5)
    assert (filled.status, filled.average_price) == ("complete", 1469.5)
    assert book.resting == {}
    assert book.trade(RELIANCE, 1400.0) == []


def test_a_sell_limit_fills_at_or_above_its_price_and_a_marketable_one_at_once():
    book = OrderBook()
    assert statuses(book.place(buy(5, 1490.0, "SELL"), ltp=1480.0, lower=1300, upper=1600)) == ["open"]
    assert statuses(book.trade(RELIANCE, 1490.0)) == ["complete"]
    assert statuses(book.place(buy(5, 1470.0, "SELL"), ltp=1480.0, lower=1300, upper=1600)) == ["open", "complete"]


def test_too_large_an_order_or_a_limit_outside_the_circuits_is_rejected_with_a_reason():
    book = OrderBook()
    _, rejected = book.place(buy(MAX_QUANTITY + 1), ltp=1480.0, lower=1300, upper=1600)
    assert rejected.status == "rejected" and "freeze quantity" in rejected.reason
    assert rejected.message("sim")["rejection_reason"] == rejected.reason
    _, rejected = book.place(buy(price=2000.0), ltp=1480.0, lower=1300, upper=1600)
    assert rejected.status == "rejected" and "circuit" in rejected.reason


def test_only_an_open_order_is_cancelled():
    book = OrderBook()
    (opened,) = book.place(buy(price=1400.0), ltp=1480.0, lower=1300, upper=1600)
    (cancelled,) = book.cancel(opened.orderid)
    assert cancelled.status == "cancelled"
    assert book.trade(RELIANCE, 1300.0) == []
    with pytest.raises(OrderRequestError, match="only an open order"):
        book.cancel(opened.orderid)
    with pytest.raises(OrderRequestError, match="no order"):
        book.cancel("SIM999999")


class Recorder:
    def __init__(self) -> None:
        self.orders: list[tuple[str, dict]] = []

    def publish(self, instrument, mode, payload) -> None:
        pass

    def publish_order(self, user_id: str, message: bytes) -> None:
        self.orders.append((user_id, orjson.loads(message)))


def test_the_feed_publishes_an_update_per_change_at_its_own_price():
    feed = SimFeed(seed=7)
    bus = Recorder()
    feed.attach(bus)
    orderid = feed.order(buy())
    ltp = feed.latest(RELIANCE)["ltp"]
    assert [(u, m["orderid"], m["order_status"]) for u, m in bus.orders] == [
        ("oaws", orderid, "open"),
        ("oaws", orderid, "complete"),
    ]
    assert bus.orders[-1][1]["average_price"] == ltp
    assert bus.orders[-1][1]["broker"] == "sim"


def test_a_resting_order_of_a_watched_instrument_fills_as_the_market_moves():
    feed = SimFeed(seed=7, rate=1000)
    bus = Recorder()
    feed.attach(bus)
    feed.want(RELIANCE, 1)
    ltp = feed.latest(RELIANCE)["ltp"]
    feed.order(buy(price=ltp - 0.05))
    now = 0.0
    while bus.orders[-1][1]["order_status"] == "open" and now < 100:
        now += 0.01
        feed._fire_due(now)
    assert bus.orders[-1][1]["order_status"] == "complete"
    assert bus.orders[-1][1]["average_price"] <= ltp - 0.05
