"""``oaws sim order``'s way to the feed: a request up the bus, the answer and the order's
updates down it (``oaws.protocol.orders`` describes the messages).

A SUB socket's only message upstream is a subscription, and an XPUB feed (or a forwarder
in front of feeds) hears every one: the request is a subscription to ``_oaws.order{...}``.
The socket first subscribes to the answer's topic and to the brokers' order topics, and
ZeroMQ sends subscriptions in order, so nothing the feed says in answer is missed. The bus
is the feed's (``tcp://127.0.0.1:5555`` unless ``--bus`` says otherwise): it reaches a
feed that binds the bus, or a forwarder, not a feed that connects to a proxy that binds.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import zmq

from oaws.protocol.orders import ORDER_REPLY, OrderRequest, broker_prefix, is_order_topic
from oaws.server.bus import BIND_MARK, BusError


def send_order(
    endpoint: str, request: OrderRequest, brokers: list[str], timeout: float = 5.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The feed's answer to ``request`` and the order updates of its order that came
    before the answer. Raises BusError when no feed answers within ``timeout``."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    reply_topic = ORDER_REPLY + request.nonce.encode()
    try:
        sock.setsockopt(zmq.SUBSCRIBE, reply_topic)
        for broker in brokers:
            sock.setsockopt(zmq.SUBSCRIBE, broker_prefix(broker))
        sock.setsockopt(zmq.SUBSCRIBE, request.to_bytes())
        try:
            sock.connect(endpoint.removeprefix(BIND_MARK))
        except zmq.ZMQError as exc:
            raise BusError(f"cannot connect to the bus at {endpoint}: {exc.strerror}") from None
        updates: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000)):
                break
            frames = sock.recv_multipart()
            if len(frames) < 2:
                continue
            topic, payload = frames[0], frames[1]
            if topic == reply_topic:
                answer = orjson.loads(payload)
                orderid = answer.get("orderid")
                return answer, [u for u in updates if u.get("orderid") == orderid]
            if is_order_topic(topic):
                updates.append(orjson.loads(payload))
        raise BusError(
            f"no feed on the bus at {endpoint} answered; is `oaws serve --broker sim` running with that bus?"
        )
    finally:
        sock.close(0)
        ctx.term()
