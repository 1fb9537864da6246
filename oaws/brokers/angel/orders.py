"""Angel One's order-status WebSocket: its messages decoded into OpenAlgo's ``order_update``.

Angel pushes one JSON text frame per change of an order's state on
``wss://tns.angelone.in/smart-order-update`` (``Authorization: Bearer <jwt>`` at the
handshake): ``{"user-id", "status-code", "order-status": "AB01", "error-message",
"orderData": {...}}``. ``AB00`` is the acknowledgement sent after connecting (no order);
``AB01``..``AB11`` are the order's states, mapped here to OpenAlgo's ``order_status``
words. ``orderData`` carries the order book's fields (``orderid``, ``tradingsymbol``,
``symboltoken``, ``exchange``, ``transactiontype``, ``producttype``, ``ordertype``,
``quantity``, ``price``, ``triggerprice``, ``filledshares``, ``unfilledshares``,
``averageprice``, ``text``...). No I/O here: ``decode`` is a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from oaws.brokers.angel.master import SEGMENT_TYPES, Master
from oaws.instruments import Instrument, InstrumentError, make, parse
from oaws.protocol.orders import CANCELLED, COMPLETE, OPEN, REJECTED, TRIGGER_PENDING

#: the acknowledgement Angel sends once the socket is open; it carries no order
ACK = "AB00"
#: Angel's order-status codes -> OpenAlgo's order_status words
STATUS_CODES = {
    "AB01": OPEN,
    "AB02": CANCELLED,
    "AB03": REJECTED,
    "AB04": OPEN,  # modified
    "AB05": COMPLETE,
    "AB06": OPEN,  # after-market order received
    "AB07": CANCELLED,  # after-market order cancelled
    "AB08": OPEN,  # after-market modification received
    "AB09": OPEN,  # open pending
    "AB10": TRIGGER_PENDING,
    "AB11": OPEN,  # modify pending
}
#: Angel's product types -> OpenAlgo's products
PRODUCTS = {"DELIVERY": "CNC", "INTRADAY": "MIS", "CARRYFORWARD": "NRML", "MARGIN": "NRML"}
#: Angel's order types -> OpenAlgo's price types
PRICE_TYPES = {"MARKET": "MARKET", "LIMIT": "LIMIT", "STOPLOSS_LIMIT": "SL", "STOPLOSS_MARKET": "SL-M"}


class MalformedOrderFrame(ValueError):
    """A frame that is not an order-status message oaws can read; the reason in one phrase."""


@dataclass(frozen=True)
class OrderStatus:
    """One decoded order update: who it belongs to and the ``order_update`` message."""

    user_id: str
    message: dict[str, Any]


def decode(
    frame: str | bytes, master: Master | None, *, broker: str = "angel", user_id: str = ""
) -> OrderStatus | None:
    """The update a frame carries; None for the acknowledgement (and Angel's text ``pong``).

    Raises MalformedOrderFrame for anything else that is not an order-status message.
    """
    if frame in ("pong", b"pong"):
        return None
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise MalformedOrderFrame("not JSON") from None
    if not isinstance(message, dict):
        raise MalformedOrderFrame("not a JSON object")
    code = str(message.get("order-status") or "").upper()
    data = message.get("orderData")
    if code == ACK:
        return None
    if code not in STATUS_CODES:
        raise MalformedOrderFrame(f"unknown order-status {code!r}" if code else "no order-status")
    if not isinstance(data, dict) or not data.get("orderid"):
        raise MalformedOrderFrame(f"{code} without an order")
    status = STATUS_CODES[code]
    try:
        filled = _int(data.get("filledshares"))
        unfilled = _int(data.get("unfilledshares"))
        quantity = _int(data.get("quantity")) or filled + unfilled
        price, trigger, average = (_float(data.get(k)) for k in ("price", "triggerprice", "averageprice"))
    except (TypeError, ValueError):
        raise MalformedOrderFrame(f"{code} with a quantity or price that is not a number") from None
    instrument = _instrument(data, master)
    action = str(data.get("transactiontype") or "").upper()
    ordertype = str(data.get("ordertype") or "").upper()
    product = str(data.get("producttype") or "").upper()
    owner = str(message.get("user-id") or user_id)
    update = {
        "type": "order_update",
        "user_id": owner,
        "mode": "live",
        "broker": broker,
        "orderid": str(data["orderid"]),
        "symbol": instrument.symbol,
        "exchange": instrument.exchange,
        "action": action,
        "quantity": quantity,
        "price": price,
        "trigger_price": trigger,
        "pricetype": PRICE_TYPES.get(ordertype, ordertype),
        "product": PRODUCTS.get(product, product),
        "order_status": status,
        "filled_quantity": filled,
        "pending_quantity": unfilled,
        "average_price": average,
        "rejection_reason": str(data.get("text") or "") if status == REJECTED else "",
        # Angel's own times, kept as it writes them ("01-Dec-2026 09:15:02")
        "updatetime": str(data.get("updatetime") or ""),
        "exchtime": str(data.get("exchtime") or ""),
    }
    return OrderStatus(owner, update)


def _instrument(data: dict[str, Any], master: Master | None) -> Instrument:
    """The oaws instrument of the order: the master's by token where it knows it, else Angel's tradingsymbol."""
    exchange = str(data.get("exchange") or "").upper()
    token = str(data.get("symboltoken") or "")
    exchange_type = SEGMENT_TYPES.get(exchange)
    if master is not None and exchange_type is not None and token:
        row = master.row_for_token(exchange_type, token)
        if row is not None:
            try:
                return parse(master.instrument_of(row))
            except InstrumentError:
                pass
    try:
        return make(str(data.get("tradingsymbol") or ""), exchange)
    except InstrumentError:
        raise MalformedOrderFrame("an order with no readable symbol or exchange") from None


def _int(value: object) -> int:
    return int(float(value or 0))  # type: ignore[arg-type]


def _float(value: object) -> float:
    return float(value or 0)  # type: ignore[arg-type]
