"""The client protocol's vocabulary (docs/protocol.md): actions, error codes, error replies, limits.

Shared by the server half (``oaws.protocol.server``), the client half
(``oaws.protocol.client``), the proxy and the feeds, so that no code is retyped as a string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

INVALID_JSON = "INVALID_JSON"
INVALID_ACTION = "INVALID_ACTION"
INVALID_PARAMETERS = "INVALID_PARAMETERS"
INVALID_MODE = "INVALID_MODE"
INVALID_DEPTH = "INVALID_DEPTH"
NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
AUTHENTICATION_ERROR = "AUTHENTICATION_ERROR"
SYMBOL_NOT_FOUND = "SYMBOL_NOT_FOUND"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
BROKER_ERROR = "BROKER_ERROR"
#: a request the server failed on (OpenAlgo's answer to an exception in its handler)
SERVER_ERROR = "SERVER_ERROR"

#: WebSocket close code: the client did not authenticate in time (OpenAlgo's too)
CLOSE_NOT_AUTHENTICATED = 4401

#: the actions OpenAlgo's server knows, and ``get_subscriptions`` (oaws's own)
ACTIONS = (
    "authenticate",
    "auth",
    "subscribe",
    "unsubscribe",
    "unsubscribe_all",
    "subscribe_orders",
    "unsubscribe_orders",
    "get_subscriptions",
    "ping",
    "get_broker_info",
    "get_supported_brokers",
)
#: the actions answered before authentication, as OpenAlgo does
BEFORE_AUTHENTICATION = ("authenticate", "auth", "ping", "get_supported_brokers")


class Refused(Exception):
    """An instrument the server will not serve; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error(code: str, message: str, **extra: Any) -> JSON:
    """An error reply: OpenAlgo's ``status``, ``code`` and ``message``, and oaws's ``type``."""
    return {"type": "error", "status": "error", "code": code, "message": message, **extra}


#: (oaws) the query parameter of a client that wants ``feed_status`` messages: OpenAlgo's
#: clients never send it, so they never see a message OpenAlgo does not send
FEED_STATUS_PARAMETER = "feed_status"
#: (oaws) the feed's states a ``feed_status`` message names: ticks flow (or may), no feed is
#: on the bus, the feed has ended (a replay past its end): no tick will come
FEED_LIVE, FEED_NONE, FEED_ENDED = "live", "no_feed", "ended"


def feed_status(state: str, message: str, broker: str) -> JSON:
    """(oaws) What a client that asked for it (``?feed_status=1``) is told when the feed
    behind its subscriptions changes state: ``{"type":"feed_status","state":"ended",...}``."""
    return {"type": "feed_status", "status": "success", "state": state, "message": message, "broker": broker}


@dataclass(frozen=True, slots=True)
class Limits:
    """What one proxy admits; the entries of a subscribe past a limit are answered with
    ``LIMIT_EXCEEDED`` and the rest served (a request is never refused for its size:
    OpenAlgo has no such cap)."""

    #: (instrument, mode) pairs one client may hold (all that Angel's three sessions hold)
    per_client: int = 3_000
    #: streams the proxy serves across all its clients, each counted once however many
    #: clients hold it (None: no limit but the broker's quota); what the feed and the
    #: fan-out work for
    total: int | None = 10_000
