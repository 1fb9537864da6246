"""Order updates: the ``order_update`` message, its bus topic, and a placed order's request.

OpenAlgo relays an order's every change of state to the clients that sent
``subscribe_orders``. Its order-update subscriber publishes each on the bus under the
topic ``{BROKER}_{USER_ID}_orders`` (``ANALYZE_{USER_ID}_orders`` for its sandbox), the
payload already the message a client receives; its proxy recognises the topic by the
``_orders`` suffix and relays the payload as it is. oaws does the same, so a feed of
either may publish to a proxy of either (docs/protocol.md, "Order updates").

ZeroMQ filters by prefix, not suffix: a proxy subscribes ``{BROKER}_`` for every broker
it knows (no exchange is named after a broker) while some client wants orders, and
takes from it the topics that end in ``_orders``.

A user places an order on the simulated market with ``oaws sim order``; the request
travels to the feed as a bus subscription (the one message a SUB socket can send up):
``_oaws.order`` followed by the JSON of ``OrderRequest``. The feed answers on
``_oaws.order.<nonce>`` with ``{"status": "success", "orderid": ...}`` or
``{"status": "error", "message": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from oaws.instruments import Instrument, InstrumentError, make

ORDERS_SUFFIX = b"_orders"
#: OpenAlgo's sandbox publishes its orders under this segment instead of a broker's name
ANALYZE = "ANALYZE"
ORDER_REQUEST = b"_oaws.order"
ORDER_REPLY = b"_oaws.order."

#: OpenAlgo's ``order_status`` vocabulary (lower case, as its order adapters map every broker's)
OPEN = "open"
COMPLETE = "complete"
REJECTED = "rejected"
CANCELLED = "cancelled"
TRIGGER_PENDING = "trigger pending"
FINAL = frozenset({COMPLETE, REJECTED, CANCELLED})

ACTIONS = ("BUY", "SELL")
PRICE_TYPES = ("MARKET", "LIMIT")
PRODUCTS = ("MIS", "CNC", "NRML")

#: the largest quantity the simulated market accepts in one order (a freeze quantity)
MAX_QUANTITY = 100_000
#: the bytes of a request that travel up the bus (a subscription is a short message)
MAX_REQUEST = 4096


def order_topic(broker: str, user_id: str) -> bytes:
    """``{BROKER}_{USER_ID}_orders``, as OpenAlgo's subscriber names it."""
    return f"{broker.upper()}_{user_id}_orders".encode()


def broker_prefix(broker: str) -> bytes:
    """What a proxy subscribes to hear a broker's order topics."""
    return broker.upper().encode() + b"_"


def is_order_topic(topic: bytes) -> bool:
    return topic.endswith(ORDERS_SUFFIX) and not topic.startswith(b"_")


def order_update(
    *,
    user_id: str,
    broker: str,
    orderid: str,
    instrument: Instrument,
    action: str,
    quantity: int,
    price: float,
    pricetype: str,
    product: str,
    order_status: str,
    filled_quantity: int = 0,
    average_price: float = 0.0,
    rejection_reason: str = "",
    trigger_price: float = 0.0,
    mode: str = "live",
) -> dict[str, Any]:
    """The message a client receives, key for key as OpenAlgo's subscriber builds it."""
    return {
        "type": "order_update",
        "user_id": user_id,
        "mode": mode,
        "broker": broker,
        "orderid": orderid,
        "symbol": instrument.symbol,
        "exchange": instrument.exchange,
        "action": action,
        "quantity": quantity,
        "price": price,
        "trigger_price": trigger_price,
        "pricetype": pricetype,
        "product": product,
        "order_status": order_status,
        "filled_quantity": filled_quantity,
        "pending_quantity": 0 if order_status in FINAL else quantity - filled_quantity,
        "average_price": average_price,
        "rejection_reason": rejection_reason,
    }


class OrderRequestError(ValueError):
    """A request to place or cancel an order that makes no sense; one sentence for the user."""


@dataclass(frozen=True)
class OrderRequest:
    """Place (``action`` BUY or SELL) or cancel (``action`` CANCEL, with ``orderid``) an order.
    ``nonce`` makes each request's bus message unique and names the topic of its reply."""

    nonce: str
    action: str
    instrument: Instrument | None = None
    quantity: int = 0
    price: float | None = None
    product: str = "MIS"
    orderid: str = ""

    @property
    def pricetype(self) -> str:
        return "MARKET" if self.price is None else "LIMIT"

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {"nonce": self.nonce, "action": self.action}
        if self.action == "CANCEL":
            body["orderid"] = self.orderid
        else:
            assert self.instrument is not None
            body |= {
                "symbol": self.instrument.symbol,
                "exchange": self.instrument.exchange,
                "quantity": self.quantity,
                "price": self.price,
                "product": self.product,
            }
        return ORDER_REQUEST + orjson.dumps(body)

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> OrderRequest:
        """A request from the bus (anyone's bytes): raises OrderRequestError, nothing else."""
        nonce = body.get("nonce")
        if not isinstance(nonce, str) or not nonce.isalnum() or len(nonce) > 64:
            raise OrderRequestError("the request has no nonce")
        action = str(body.get("action", "")).upper()
        if action == "CANCEL":
            orderid = body.get("orderid")
            if not isinstance(orderid, str) or not orderid:
                raise OrderRequestError("a cancel needs the order's id")
            return cls(nonce, action, orderid=orderid)
        if action not in ACTIONS:
            raise OrderRequestError(f"the action must be BUY or SELL, not {body.get('action')!r}")
        try:
            instrument = make(body.get("symbol"), body.get("exchange"))
        except InstrumentError as exc:
            raise OrderRequestError(str(exc)) from None
        quantity = body.get("quantity")
        if type(quantity) is not int or quantity <= 0:
            raise OrderRequestError("the quantity must be a whole number above 0")
        price = body.get("price")
        if price is not None and (type(price) not in (int, float) or not 0 < price < 1e9):
            raise OrderRequestError("the price must be a number above 0")
        product = str(body.get("product", "MIS")).upper()
        if product not in PRODUCTS:
            raise OrderRequestError(f"the product must be one of {', '.join(PRODUCTS)}")
        return cls(nonce, action, instrument, quantity, None if price is None else float(price), product)
