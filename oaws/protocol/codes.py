"""The client protocol's vocabulary (SPEC §1): actions, error codes, error replies, limits.

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

#: WebSocket close code: the client did not authenticate in time (OpenAlgo's too)
CLOSE_NOT_AUTHENTICATED = 4401

ACTIONS = (
    "authenticate",
    "auth",
    "subscribe",
    "unsubscribe",
    "unsubscribe_all",
    "get_subscriptions",
    "ping",
    "get_broker_info",
)


class Refused(Exception):
    """An instrument the server will not serve; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error(code: str, message: str, **extra: Any) -> JSON:
    return {"type": "error", "status": "error", "code": code, "message": message, **extra}


@dataclass(frozen=True, slots=True)
class Limits:
    #: instruments in one subscribe / unsubscribe request
    per_request: int = 1000
    #: (instrument, mode) pairs one client may hold
    per_client: int = 3000
