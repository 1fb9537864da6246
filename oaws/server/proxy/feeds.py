"""Feed control: what the feeds on the bus say about themselves (``_oaws.info``) and what
they refuse to serve (``_oaws.reject``), SPEC §3 and ``oaws.protocol.bus``.

A proxy in another process than its feed learns from them the broker's name (which
labels every ``market_data`` message), the depths a client may ask for, whether the feed
is alive, and which subscriptions to take back from clients with an error (the one mode
refused, not the instrument's other modes; for Depth, the depth refused, found by the
refusal's topic). The bus is
another process's output: a control message that is not what it should be is ignored,
never raised on, since it arrives among the ticks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from oaws.instruments import DEFAULT_DEPTH
from oaws.protocol.bus import INFO_TOPIC, REJECT_TOPIC
from oaws.protocol.codes import BROKER_ERROR, error
from oaws.server.proxy.fanout import Fanout

log = logging.getLogger(__name__)

#: seconds a feed's announcement holds (each feed announces itself every second)
FRESH = 3.5
#: seconds after which a silent feed is forgotten
FORGET_AFTER = 60


def _offered_depths(info: dict[str, Any]) -> list[int]:
    depths = info.get("depths")
    return [d for d in depths if type(d) is int] if isinstance(depths, list) else []


class Feeds:
    """The feeds heard on the bus. ``broker`` names the feed until one announces itself;
    ``depths`` and ``status`` are the feed's own when it runs in this process, and then
    stand instead of what the announcements say."""

    def __init__(
        self,
        fanout: Fanout,
        *,
        broker: str,
        brokers: tuple[str, ...] = (),
        depths: tuple[int, ...] | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.fanout = fanout
        self.default_broker = broker
        self.registered = brokers
        self.own_depths = depths
        self.own_status = status
        #: what each feed on the bus last announced (by feed id), and when
        self.announced: dict[str, tuple[dict[str, Any], float]] = {}
        #: subscriptions taken back from clients because a feed refused them
        self.rejected = 0

    # What clients are told -------------------------------------------------------
    def broker(self) -> str:
        names = sorted({str(info.get("broker")) for info, _ in self.fresh()})
        return "+".join(names) if names else self.default_broker

    def brokers(self) -> list[str]:
        """``get_supported_brokers``: the brokers registered with this oaws, and any other
        a feed on the bus announces."""
        return sorted({*self.registered, *(str(info.get("broker")) for info, _ in self.fresh())})

    def depths(self) -> tuple[int, ...]:
        if self.own_depths:
            return self.own_depths
        depths = {d for info, _ in self.fresh() for d in _offered_depths(info)}
        return tuple(sorted(depths)) or (5,)

    def broker_info(self) -> dict[str, Any]:
        if self.own_status is not None:
            return self.own_status()
        statuses = sorted({str(info.get("adapter_status", "connected")) for info, _ in self.fresh()})
        return {"adapter_status": "+".join(statuses) if statuses else "no feed on the bus"}

    def fresh(self) -> list[tuple[dict[str, Any], float]]:
        """The feeds heard from in the last few seconds."""
        now = time.time()
        return [(info, at) for info, at in self.announced.values() if now - at < FRESH]

    # What the feeds say ----------------------------------------------------------
    def on_control(self, topic: bytes, payload: bytes) -> None:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict):
            return
        if topic == INFO_TOPIC:
            self._announced(body)
        elif topic == REJECT_TOPIC:
            self._refused(body)

    def _announced(self, info: dict[str, Any]) -> None:
        old = self.broker()
        now = time.time()
        self.announced = {fid: heard for fid, heard in self.announced.items() if now - heard[1] < FORGET_AFTER}
        self.announced[str(info.get("fid", ""))] = (info, now)
        if self.broker() != old:
            self.fanout.relabel(self.broker())

    def _refused(self, body: dict[str, Any]) -> None:
        topic = body.get("topic")
        route = self.fanout.routes.get(topic.encode()) if isinstance(topic, str) else None
        if route is None:
            return
        reply = error(
            str(body.get("code", BROKER_ERROR)),
            str(body.get("message", "the feed refused it")),
            symbol=route.instrument.symbol,
            exchange=route.instrument.exchange,
            mode=route.mode,
            **({"depth": route.depth} if route.depth != DEFAULT_DEPTH else {}),
        )
        for c in list(route.single | route.batched):
            change = c.session.drop(route.stream)
            if change is not None:
                self.fanout.apply(c, change)
            c.send(reply)
            self.rejected += 1
