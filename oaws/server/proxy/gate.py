"""The HTTP side of the handshake, before a connection is a WebSocket: ``/health`` and the
browser origins allowed to connect.

Origins matter because a browser lets any page open a WebSocket to 127.0.0.1 or to a
host on the network: without a check, a page elsewhere would read the feed. Scripts
and SDKs send no Origin (or the server's own) and are never refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from oaws.server.proxy.options import ProxyOptions

log = logging.getLogger(__name__)


class Gate:
    """Answers ``/health`` with ``stats()`` and refuses pages of foreign origins."""

    def __init__(self, options: ProxyOptions, stats: Callable[[], dict[str, Any]]) -> None:
        self.options = options
        self.stats = stats

    def origins(self) -> list[str | None] | None:
        """What websockets' own Origin check allows (None: no check): the allowed origins,
        and clients that send none."""
        allowed = self.options.allowed_origins
        return [*allowed, None] if allowed else None

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """An HTTP response instead of the WebSocket handshake, or None to go on with it."""
        origin = request.headers.get("Origin")
        if origin is not None and self.options.same_origin and not self.options.allowed_origins:
            host = request.headers.get("Host", "")
            if urlsplit(origin).netloc.lower() != host.lower():
                log.warning("refused a browser page from %s: allow it with --allowed-origin", origin)
                return connection.respond(
                    HTTPStatus.FORBIDDEN, f"Origin {origin} is not allowed (see --allowed-origin)\n"
                )
        if urlsplit(request.path).path.rstrip("/") != "/health":
            return None
        body = orjson.dumps(self.stats())
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
        )
        return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)
