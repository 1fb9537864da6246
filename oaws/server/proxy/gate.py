"""The HTTP side of the handshake, before a connection is a WebSocket: ``/health``, the
browser origins allowed to connect, and the number of connections admitted.

Origins matter because a browser lets any page open a WebSocket to 127.0.0.1 or to a
host on the network: without a check, a page elsewhere would read the feed. Scripts
and SDKs send no Origin (or the server's own) and are never refused.

With an API key configured, ``/health`` gives its figures (pid, bus, every client's
address) only to a request that sends the key, as ``Authorization: Bearer KEY`` or
``X-API-Key: KEY``; any other gets 401 and only ``{"status": "ok", "version": ...}``.

A connection past ``max_connections`` (or ``max_connections_per_address`` from one
address) is refused at the handshake with 503 and a one-line body. A request the proxy
cannot make sense of (two Origin headers) gets 400; such refusals are logged at a
bounded rate, since a client can cause them at will.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers, MultipleValuesError
from websockets.http11 import Request, Response

from oaws import __version__
from oaws.server.proxy.logs import Throttled
from oaws.server.proxy.options import ProxyOptions

log = logging.getLogger(__name__)
refusals = Throttled(log)


def _json(status: HTTPStatus, body: dict[str, Any]) -> Response:
    data = orjson.dumps(body)
    headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Connection", "close")]
    )
    return Response(status.value, status.phrase, headers, data)


def _text(status: HTTPStatus, line: str) -> Response:
    data = (line + "\n").encode()
    headers = Headers(
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))), ("Connection", "close")]
    )
    return Response(status.value, status.phrase, headers, data)


class Gate:
    """Answers ``/health`` with ``stats()``, refuses pages of foreign origins and
    connections past the limits (``connections()``: how many are open; ``from_address(ip)``:
    how many from that address)."""

    def __init__(
        self,
        options: ProxyOptions,
        stats: Callable[[], dict[str, Any]],
        connections: Callable[[], int] = lambda: 0,
        from_address: Callable[[str], int] = lambda ip: 0,
    ) -> None:
        self.options = options
        self.stats = stats
        self.connections = connections
        self.from_address = from_address
        #: handshakes refused for the number of connections
        self.refused = 0

    def origins(self) -> list[str | None] | None:
        """What websockets' own Origin check allows (None: no check): the allowed origins,
        and clients that send none."""
        allowed = self.options.allowed_origins
        return [*allowed, None] if allowed else None

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """An HTTP response instead of the WebSocket handshake, or None to go on with it."""
        try:
            return self._process(connection, request)
        except MultipleValuesError as exc:
            refusals.warning("refused a request with repeated %s headers", exc)
            return _text(HTTPStatus.BAD_REQUEST, f"more than one {exc} header")
        except Exception as exc:  # a bad request must not cost a traceback each
            refusals.warning("refused a request the proxy could not handle: %s", exc)
            return _text(HTTPStatus.BAD_REQUEST, "bad request")

    def _process(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers
        origin = headers.get("Origin")
        if origin is not None and self.options.same_origin and not self.options.allowed_origins:
            host = headers.get("Host", "")
            if urlsplit(origin).netloc.lower() != host.lower():
                refusals.warning("refused a browser page from %s: allow it with --allowed-origin", origin[:200])
                return _text(HTTPStatus.FORBIDDEN, f"Origin {origin[:200]} is not allowed (see --allowed-origin)")
        if urlsplit(request.path).path.rstrip("/") == "/health":
            return self._health(headers)
        return self._admit(connection)

    def _health(self, headers: Headers) -> Response:
        key = self.options.api_key
        if key is not None and not self._has_key(headers, key):
            return _json(
                HTTPStatus.UNAUTHORIZED,
                {
                    "status": "ok",
                    "version": __version__,
                    "error": "the figures need the API key: Authorization: Bearer KEY, or X-API-Key: KEY",
                },
            )
        return _json(HTTPStatus.OK, self.stats())

    @staticmethod
    def _has_key(headers: Headers, key: str) -> bool:
        given = headers.get("X-API-Key")
        if given is None:
            auth = headers.get("Authorization") or ""
            scheme, _, token = auth.partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        return given is not None and hmac.compare_digest(given.encode(), key.encode())

    def _admit(self, connection: ServerConnection) -> Response | None:
        o = self.options
        if o.max_connections is not None and self.connections() >= o.max_connections:
            self.refused += 1
            refusals.warning("refused a connection: %d open, the limit (--max-connections)", o.max_connections)
            return _text(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"too many connections: this server takes at most {o.max_connections}; try again later",
            )
        limit = o.max_connections_per_address
        if limit is not None:
            ip = str(connection.remote_address[0]) if connection.remote_address else "?"
            if self.from_address(ip) >= limit:
                self.refused += 1
                refusals.warning("refused a connection from %s: %d open from there, the limit", ip, limit)
                return _text(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    f"too many connections from {ip}: at most {limit} per address; try again later",
                )
        return None
