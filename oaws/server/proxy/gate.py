"""The HTTP side of the handshake, before a connection is a WebSocket: ``/health``, the
browser origins allowed to connect, and the number of connections admitted.

Origins matter because a browser lets any page open a WebSocket to 127.0.0.1 or to a
host on the network: without a check, a page elsewhere would read the feed. Scripts
and SDKs send no Origin (or the server's own) and are never refused.

With an API key configured, ``/health`` gives its figures (pid, bus, every client's
address) only to a request that sends the key, as ``Authorization: Bearer KEY`` or
``X-API-Key: KEY``; any other gets 401 and only ``{"status": "ok", "version": ...}``.

``GET /history?symbol=RELIANCE&exchange=NSE&interval=5m&days=5`` (or ``start`` and ``end``:
epoch ms, or ISO dates or times in IST) answers the broker's candles in OpenAlgo's shape,
``{"status": "success", "data": [{"timestamp", "open", ...}]}``, asked of the feed over the
bus (``oaws.server.proxy.history``); an error is ``{"status": "error", "message": ...}``
with 400 (a bad query), 401 (no API key), 404 (the feed has none), 503 (no feed, or busy)
or 504 (the feed took too long).

A connection past ``max_connections`` (or ``max_connections_per_address`` from one
address) is refused at the handshake with 503 and a one-line body. A request the proxy
cannot make sense of (two Origin headers) gets 400; such refusals are logged at a
bounded rate, since a client can cause them at will.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers, MultipleValuesError
from websockets.http11 import Request, Response

from oaws import __version__
from oaws.bars.aggregator import IntervalError, parse_interval
from oaws.instruments import InstrumentError, make
from oaws.protocol import history as hist
from oaws.server.proxy.history import Histories, HistoryBusy
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
        histories: Histories | None = None,
    ) -> None:
        self.histories = histories
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

    def process_request(self, connection: ServerConnection, request: Request) -> Response | Awaitable[Response] | None:
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
        url = urlsplit(request.path)
        path = url.path.rstrip("/")
        if path == "/health":
            return self._health(headers)
        if path == "/history":
            return self._history(headers, url.query)
        return self._admit(connection)

    async def _history(self, headers: Headers, query: str) -> Response:
        try:
            return await self._answer_history(headers, query)
        except Exception as exc:  # a bad request must not cost a traceback each
            refusals.warning("refused a history request the proxy could not handle: %s", exc)
            return _json(HTTPStatus.BAD_REQUEST, hist.error("bad request"))

    async def _answer_history(self, headers: Headers, query: str) -> Response:
        key = self.options.api_key
        if key is not None and not self._has_key(headers, key):
            return _json(
                HTTPStatus.UNAUTHORIZED,
                hist.error("history needs the API key: Authorization: Bearer KEY, or X-API-Key: KEY"),
            )
        if self.histories is None or self.histories.reader is None:
            return _json(HTTPStatus.SERVICE_UNAVAILABLE, hist.error("this server does not serve history"))
        params = {k: v[-1] for k, v in parse_qs(query[:2000]).items()}
        try:
            instrument = make(params.get("symbol", "").upper(), params.get("exchange", "").upper())
            interval = parse_interval(params.get("interval", "1d"))
            start_ms, end_ms = _span(params)
        except (InstrumentError, IntervalError, hist.HistoryRequestError) as exc:
            return _json(HTTPStatus.BAD_REQUEST, hist.error(str(exc)))
        try:
            answer = await self.histories.ask(instrument, interval, start_ms, end_ms)
        except HistoryBusy:
            return _json(HTTPStatus.SERVICE_UNAVAILABLE, hist.error("too many history requests; try again shortly"))
        except TimeoutError:
            return _json(
                HTTPStatus.GATEWAY_TIMEOUT,
                hist.error("no feed on the bus answered the history request in time"),
            )
        ok = isinstance(answer, dict) and answer.get("status") == "success" and isinstance(answer.get("data"), list)
        if not ok:
            message = answer.get("message") if isinstance(answer, dict) else None
            text = str(message)[:300] if message else f"the feed gave no history of {instrument}"
            return _json(HTTPStatus.NOT_FOUND, hist.error(text))
        return _json(HTTPStatus.OK, {"status": "success", "data": answer["data"]})

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


def _span(params: dict[str, str]) -> tuple[int, int]:
    """[start, end) in epoch ms from ``days``, or ``start`` and ``end`` (OpenAlgo's
    ``start_date`` and ``end_date`` too); the last day when none is given."""
    now_ms = int(time.time() * 1000)
    start = params.get("start") or params.get("start_date")
    end = params.get("end") or params.get("end_date")
    if start is None:
        days = params.get("days", "1")
        if not days.isdigit():
            raise hist.HistoryRequestError("days is a whole number from 1 to 400")
        return hist.span_of_days(int(days), now_ms)
    start_ms = hist.parse_time(start)
    end_ms = hist.parse_time(end, end=True) if end else now_ms + 1
    if not 0 <= start_ms < end_ms:
        raise hist.HistoryRequestError("the start is before the end")
    if end_ms - start_ms > hist.MAX_SPAN_MS:
        raise hist.HistoryRequestError("the span is at most 400 days in one request")
    return start_ms, end_ms
