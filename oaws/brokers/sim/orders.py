"""The simulated market's orders: placed by a user (``oaws sim order``), moved through
OpenAlgo's states, each change an ``order_update`` message.

A market order opens and then fills, whole, at the instrument's last price; a limit order
opens and fills, at the last price, once the market trades at its limit or better (a buy
at or below, a sell at or above), or stays open until cancelled; the price of an
instrument that no client watches stands still. An order over the freeze quantity, or a limit
outside the day's circuits, is rejected. No I/O here: the feed says when the price moves
and publishes what this returns.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

from oaws.instruments import Instrument
from oaws.protocol.orders import (
    CANCELLED,
    COMPLETE,
    MAX_QUANTITY,
    OPEN,
    REJECTED,
    OrderRequest,
    OrderRequestError,
    order_update,
)

#: the user the simulated market's orders belong to: they go out as ``SIM_oaws_orders``
USER_ID = "oaws"


@dataclass(frozen=True)
class Order:
    orderid: str
    request: OrderRequest
    status: str
    filled: int = 0
    average_price: float = 0.0
    reason: str = ""

    def message(self, broker: str) -> dict[str, Any]:
        r = self.request
        assert r.instrument is not None
        return order_update(
            user_id=USER_ID,
            broker=broker,
            orderid=self.orderid,
            instrument=r.instrument,
            action=r.action,
            quantity=r.quantity,
            price=r.price or 0.0,
            pricetype=r.pricetype,
            product=r.product,
            order_status=self.status,
            filled_quantity=self.filled,
            average_price=self.average_price,
            rejection_reason=self.reason,
        )


class OrderBook:
    """The orders of one simulated market: ``place`` and ``cancel`` from the user,
    ``trade`` from the market; each returns the orders whose state changed, in order."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.orders: dict[str, Order] = {}
        #: the open limit orders of each instrument
        self.resting: dict[Instrument, list[str]] = {}

    def place(self, request: OrderRequest, ltp: float, lower: float, upper: float) -> list[Order]:
        assert request.instrument is not None
        orderid = f"SIM{next(self._ids):06d}"
        opened = self._set(Order(orderid, request, OPEN))
        if request.quantity > MAX_QUANTITY:
            reason = f"quantity {request.quantity} is over the freeze quantity {MAX_QUANTITY}"
            return [opened, self._set(replace(opened, status=REJECTED, reason=reason))]
        if request.price is not None and not lower <= request.price <= upper:
            reason = f"price {request.price:g} is outside the circuit limits {lower:g} to {upper:g}"
            return [opened, self._set(replace(opened, status=REJECTED, reason=reason))]
        if request.price is None:
            return [opened, self._fill(opened, ltp)]
        self.resting.setdefault(request.instrument, []).append(orderid)
        return [opened, *self.trade(request.instrument, ltp)]

    def cancel(self, orderid: str) -> list[Order]:
        order = self.orders.get(orderid)
        if order is None:
            raise OrderRequestError(f"there is no order {orderid}")
        if order.status != OPEN:
            raise OrderRequestError(f"order {orderid} is {order.status}; only an open order can be cancelled")
        assert order.request.instrument is not None
        self._unrest(order.request.instrument, orderid)
        return [self._set(replace(order, status=CANCELLED))]

    def trade(self, instrument: Instrument, ltp: float) -> list[Order]:
        """The market traded ``instrument`` at ``ltp``: the limit orders it reaches fill."""
        ids = self.resting.get(instrument)
        if not ids:
            return []
        filled = []
        for orderid in list(ids):
            order = self.orders[orderid]
            limit = order.request.price
            assert limit is not None
            if (order.request.action == "BUY" and ltp <= limit) or (order.request.action == "SELL" and ltp >= limit):
                self._unrest(instrument, orderid)
                filled.append(self._fill(order, ltp))
        return filled

    def _fill(self, order: Order, price: float) -> Order:
        return self._set(replace(order, status=COMPLETE, filled=order.request.quantity, average_price=price))

    def _set(self, order: Order) -> Order:
        self.orders[order.orderid] = order
        return order

    def _unrest(self, instrument: Instrument, orderid: str) -> None:
        ids = self.resting[instrument]
        ids.remove(orderid)
        if not ids:
            del self.resting[instrument]
