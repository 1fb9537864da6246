"""``oaws serve``'s settings as one object: resolved once (command line > environment >
config file > defaults), handed to the service, and passed on as data.

A detached server and the extra proxy workers get the very object their parent resolved,
as JSON in the ``OAWS_SERVE_SETTINGS`` environment variable, never rebuilt into a command
line by hand: every setting reaches them, the CURVE keys included, and the API key stays
off every command line (``ps`` shows those; a process's environment only its owner reads).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from oaws.protocol.codes import Limits

ENV = "OAWS_SERVE_SETTINGS"
ROLES = ("all", "feed", "proxy", "forwarder")
#: the bus of a feed, proxy or forwarder given no --bus (role all gets a private one)
DEFAULT_BUS = "tcp://127.0.0.1:5555"


class SettingsError(Exception):
    """``OAWS_SERVE_SETTINGS`` cannot be read; one sentence."""


@dataclass(frozen=True)
class ServeSettings:
    broker: str = "sim"
    role: str = "all"
    host: str = "127.0.0.1"
    port: int = 8765
    #: the bus asked for; None: a private one for role all, else ``DEFAULT_BUS``
    bus: str | None = None
    api_key: str | None = field(default=None, repr=False)
    #: the broker's options (``seed``, ``rate``, ``replay``...: see its ``Broker.options``)
    feed: dict[str, Any] = field(default_factory=dict)
    slow_timeout: float = 3.0
    soft_limit: int = 256 * 1024
    limits: Limits = field(default_factory=Limits)
    #: connections open at once, and from one address (None: no limit)
    max_connections: int | None = 1000
    max_connections_per_address: int | None = None
    #: proxy processes sharing the port (SO_REUSEPORT); this one plus workers - 1
    workers: int = 1
    #: this process is one of those extra workers: reuse the port, exit when stdin closes
    worker: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    allowed_origins: tuple[str, ...] = ()
    #: a feed connects to the bus (a forwarder's feed side, or a proxy that binds it) instead of binding it
    bus_connect: bool = False
    #: the proxy binds the bus and feeds connect to it (OpenAlgo's wiring), instead of connecting
    bus_bind: bool = False
    #: the forwarder's feed side, which feeds connect to
    feeds: str = "tcp://127.0.0.1:5556"
    #: a directory made by `oaws keys generate`: CURVE on the bus
    curve_dir: str | None = None

    def replace(self, **changes: Any) -> ServeSettings:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        try:
            raw = orjson.loads(text)
            if not isinstance(raw, dict):
                raise TypeError("not an object")
            raw["limits"] = Limits(**raw.get("limits") or {})
            raw["allowed_origins"] = tuple(raw.get("allowed_origins") or ())
            return cls(**raw)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise SettingsError(f"{ENV} does not hold serve settings ({exc})") from None

    def environment(self) -> dict[str, str]:
        """This process's environment plus these settings: for a child that serves them."""
        return {**os.environ, ENV: self.to_json()}


def inherited() -> ServeSettings | None:
    """The settings a parent handed this process (a detached server, a worker), if any."""
    text = os.environ.get(ENV)
    return ServeSettings.from_json(text) if text else None
