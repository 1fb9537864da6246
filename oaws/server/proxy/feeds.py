"""Feed control: what the feeds on the bus say about themselves (``_oaws.info``) and what
they refuse to serve (``_oaws.reject``), SPEC §3 and ``oaws.protocol.bus``.

A proxy in another process than its feed learns from them the broker's name (which
labels every ``market_data`` message), the depths a client may ask for, whether the feed
is alive, and which subscriptions to take back from clients with an error (the one mode
refused, not the instrument's other modes; for Depth, the depth refused, found by the
refusal's topic). The bus is
another process's output: a control message that is not what it should be
(``oaws.protocol.bus.info_error`` / ``reject_error``) is dropped and counted
(``bus_dropped``), never raised on, since it arrives among the ticks. At most
``MAX_FEEDS`` feeds are kept; a refusal is honoured only from one of them, and only for
the route its topic names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from oaws.instruments import DEFAULT_DEPTH, parse_stream
from oaws.protocol.bus import INFO_TOPIC, MAX_CONTROL, REJECT_TOPIC, info_error, reject_error
from oaws.protocol.codes import BROKER_ERROR, FEED_ENDED, FEED_LIVE, FEED_NONE, error
from oaws.server.proxy.fanout import Fanout

log = logging.getLogger(__name__)

#: seconds a feed's announcement holds (each feed announces itself every second)
FRESH = 3.5
#: seconds after which a silent feed is forgotten
FORGET_AFTER = 60
#: the most feeds a proxy keeps (a bus with more is not a deployment but a flood)
MAX_FEEDS = 64
#: seconds a proxy listens to its bus before it says that no feed is there (feeds announce
#: themselves at once to a proxy that joins, then every second)
HEARD_WITHIN = 2.0


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
        #: since when (time.time) the proxy has listened to the bus
        self.listening_since = time.time()

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

    def state(self) -> str:
        """The feed's state as clients are told it (``feed_status``): ``FEED_ENDED`` when every
        feed says it has ended (``"ended": true`` in its status: a replay past its end),
        ``FEED_NONE`` when no feed has been heard on the bus (for ``HEARD_WITHIN`` seconds
        of listening at least), else ``FEED_LIVE``."""
        if self.own_status is not None:
            return FEED_ENDED if self.own_status().get("ended") is True else FEED_LIVE
        fresh = self.fresh()
        if not fresh:
            return FEED_NONE if time.time() - self.listening_since >= HEARD_WITHIN else FEED_LIVE
        return FEED_ENDED if all(info.get("ended") is True for info, _ in fresh) else FEED_LIVE

    def fresh(self) -> list[tuple[dict[str, Any], float]]:
        """The feeds heard from in the last few seconds."""
        now = time.time()
        return [(info, at) for info, at in self.announced.values() if now - at < FRESH]

    # What the feeds say ----------------------------------------------------------
    def on_control(self, topic: bytes, payload: bytes) -> None:
        if topic != INFO_TOPIC and topic != REJECT_TOPIC:
            return  # another control topic (an order's answer, a newer oaws's): not ours
        body = None
        if len(payload) <= MAX_CONTROL:
            try:
                body = orjson.loads(payload)
            except orjson.JSONDecodeError:
                pass
        if not isinstance(body, dict):
            self.fanout.drop(topic, f"not a JSON object in UTF-8 of at most {MAX_CONTROL} bytes")
        elif topic == INFO_TOPIC:
            self._announced(topic, body)
        else:
            self._refused(topic, body)

    def _announced(self, topic: bytes, info: dict[str, Any]) -> None:
        why = info_error(info)
        if why is not None:
            self.fanout.drop(topic, why)
            return
        fid = info["fid"]
        now = time.time()
        self.announced = {fid: heard for fid, heard in self.announced.items() if now - heard[1] < FORGET_AFTER}
        if fid not in self.announced and len(self.announced) >= MAX_FEEDS:
            self.fanout.drop(topic, f"{MAX_FEEDS} feeds are on the bus already")
            return
        old = self.broker()
        self.announced[fid] = (info, now)
        if self.broker() != old:
            self.fanout.relabel(self.broker())

    def _refused(self, topic: bytes, body: dict[str, Any]) -> None:
        why = reject_error(body)
        if why is None and body["fid"] not in self.announced:
            why = "it names a feed that never announced itself"
        if why is not None:
            self.fanout.drop(topic, why)
            return
        route = self.fanout.routes.get(body["topic"].encode())
        if route is None:
            return  # a stream another proxy on the bus asked for
        if parse_stream(body["topic"]) != route.stream:  # never, as instruments are made; but never act on it
            self.fanout.drop(topic, "its topic is not the route's instrument, mode and depth")
            return
        reply = error(
            body.get("code", BROKER_ERROR),
            body.get("message") or "the feed refused it",
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
