"""The proxy's settings, one place for the knobs of every job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oaws.protocol.codes import Limits


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = None
    broker: str = "sim"
    #: ``get_supported_brokers``: the brokers registered with this oaws (with any a feed announces)
    brokers: tuple[str, ...] = ()
    limits: Limits = Limits()
    #: (instrument, mode) pairs the broker holds across every client (its ``BrokerLimits.subscriptions``;
    #: None: no known limit); the entries of a subscribe past it get LIMIT_EXCEEDED, the rest are served
    quota: int | None = None
    #: bytes of unsent data past which a client is conflated
    soft_limit: int = 256 * 1024
    #: bytes of unsent data past which a client is aborted, whatever queued them (None:
    #: ``soft_limit`` plus four frames' worth, room for the replies of the largest request)
    hard_limit: int | None = None
    #: seconds a client may stay conflated before it is closed with 1008
    slow_timeout: float = 3.0
    auth_timeout: float = 15.0
    #: a larger frame closes the connection with 1009 (OpenAlgo's too: websockets' default)
    max_frame: int = 1024 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    reuse_port: bool = False
    #: instruments a client may change per second, a ping or any other request counting 1
    #: (a token bucket of twice that); a flood is answered with LIMIT_EXCEEDED, and a
    #: client that goes on is closed with 1008
    work_rate: float = 5000.0
    flood_close: int = 1000
    #: browser origins allowed to connect (None: see same_origin); clients that send no Origin always may
    allowed_origins: tuple[str, ...] | None = None
    #: with no allowed_origins: refuse a browser whose page is not served from this very
    #: host and port (on by default off loopback: a page elsewhere must not reach the feed)
    same_origin: bool = False
    ssl: Any = None
    #: connections open at once (None: no limit); one more is refused at the handshake with 503
    max_connections: int | None = 1000
    #: connections open at once from one address (None: no limit but ``max_connections``)
    max_connections_per_address: int | None = None

    @property
    def hard_cap(self) -> int:
        return self.hard_limit if self.hard_limit is not None else self.soft_limit + 4 * self.max_frame
