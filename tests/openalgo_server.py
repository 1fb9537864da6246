"""A server that behaves like OpenAlgo's WebSocket proxy towards its clients, for testing
oaws's clients against it (tests of oaws's own server are elsewhere: this one is the
other side's).

Written from OpenAlgo's source (``websocket_proxy/server.py``, ``mode_utils.py`` and the
Angel adapter of marketcalls/openalgo, August 2026), its behaviour and not its code:

- ``authenticate`` (alias ``auth``; ``api_key`` or ``apikey``) is answered only once the
  user's broker adapter is set up, which takes ``auth_delay`` seconds (Zerodha's and
  Fyers' adapters: up to 15 s). The adapter is kept while the user has a connection and
  torn down with the last one, so that the next authentication is slow again. The key is
  accepted before the setup starts, so the 15 s grace close (4401 ``auth timeout``) hits
  only connections that never sent a good key.
- Errors carry no ``type``: ``{"status":"error","code":...,"message":...}``.
- ``subscribe``: one mode per request (1-3 or a label in any case, default Quote; a bad
  one is a top-level INVALID_MODE); the single form becomes a one-entry list; the reply
  is always ``{"type":"subscribe","status":"success|partial","subscriptions":[...],
  "message","broker"}`` with each entry's mode as a label. No snapshot follows.
- ``unsubscribe``: an entry's mode defaults to 2, Quote (so a client that names none
  leaves its LTP and Depth subscriptions held); the reply lists ``successful`` and
  ``failed``; an entry not held is a success all the same. ``unsubscribe_all`` drops
  everything.
- ``ping`` is answered before authentication; ``get_broker_info`` (with ``user_id``),
  ``get_supported_brokers``, ``subscribe_orders`` and ``unsubscribe_orders`` after it.
- Market data: ``{"type":"market_data","symbol","exchange","mode","data","broker"}``,
  no ``topic``, one message per frame (``?batch=1`` means nothing), for each tick one
  message per mode the connection holds, each at its mode.
- Frames up to 1 MiB (the websockets default OpenAlgo keeps).

With ``snapshots``, a subscription is followed by the last tick held, marked with a
top-level ``"snapshot": true`` as oaws's proxy marks it (OpenAlgo sends none).

``subscriptions()`` is what a test checks: the (symbol, exchange, mode) keys the server
holds for its open connections, as OpenAlgo's ``subscription_index`` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

LABELS = {1: "LTP", 2: "Quote", 3: "Depth"}
BY_LABEL = {"LTP": 1, "QUOTE": 2, "DEPTH": 3}

Key = tuple[str, str, int]


def normalize_mode(value: Any) -> int:
    """A mode as OpenAlgo reads one: 1, 2, 3 or LTP / Quote / Depth in any case; bool refused."""
    if isinstance(value, bool):
        raise TypeError(f"Mode must be int or str, got bool ({value!r})")
    if isinstance(value, int):
        if value not in LABELS:
            raise ValueError(f"Invalid mode {value}; expected 1 (LTP), 2 (Quote), or 3 (Depth)")
        return value
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper not in BY_LABEL:
            raise ValueError(f"Invalid mode {value!r}; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)")
        return BY_LABEL[upper]
    raise TypeError(f"Mode must be int or str, got {type(value).__name__}")


def market_data(symbol: str, exchange: str, mode: int, ltp: float) -> dict[str, Any]:
    """The ``data`` of a tick at ``mode``, with the Angel adapter's field names."""
    now = int(time.time() * 1000)
    data: dict[str, Any] = {"ltp": ltp, "ltt": now, "symbol": symbol, "exchange": exchange, "mode": mode}
    if mode >= 2:
        data.update(
            open=round(ltp * 0.99, 2),
            high=round(ltp * 1.01, 2),
            low=round(ltp * 0.98, 2),
            close=round(ltp * 0.995, 2),
            volume=123_456,
            last_trade_quantity=10,
            average_price=round(ltp * 0.999, 2),
            total_buy_quantity=5_000,
            total_sell_quantity=4_000,
        )
    if mode == 3:
        data.update(
            last_quantity=10,
            oi=0,
            upper_circuit=round(ltp * 1.2, 2),
            lower_circuit=round(ltp * 0.8, 2),
            depth={
                "buy": [{"price": round(ltp - 0.05 * (n + 1), 2), "quantity": 100, "orders": 2} for n in range(5)],
                "sell": [{"price": round(ltp + 0.05 * (n + 1), 2), "quantity": 100, "orders": 2} for n in range(5)],
            },
        )
    data["timestamp"] = now
    return data


class OpenAlgoServer:
    """OpenAlgo's proxy as its clients see it, on 127.0.0.1 and a free port.

    ``async with OpenAlgoServer() as server`` runs it on the test's loop; ``with
    server.running() as url`` runs it on a thread of its own, for clients that are
    processes. ``unknown`` symbols are refused per entry, as a broker's master would.
    ``broker_failures`` authentications fail first with OpenAlgo's broker error.
    """

    def __init__(
        self,
        *,
        api_key: str = "oa-key",
        broker: str = "angel",
        user_id: str = "oa-user",
        auth_delay: float = 0.0,
        auth_grace: float = 15.0,
        tick_every: float = 0.05,
        unknown: frozenset[str] = frozenset({"NOSUCH"}),
        broker_failures: int = 0,
        snapshots: dict[tuple[str, str], dict[str, Any]] | None = None,
    ) -> None:
        self.api_key = api_key
        self.broker = broker
        self.user_id = user_id
        self.auth_delay = auth_delay
        self.auth_grace = auth_grace
        self.tick_every = tick_every
        self.unknown = unknown
        self.broker_failures = broker_failures
        #: last ticks held, by (symbol, exchange): sent at subscribe marked ``"snapshot": true``,
        #: as oaws's proxy does (OpenAlgo's sends none: empty unless a test gives some)
        self.snapshots = snapshots or {}
        #: every request received, in order (connection number, request)
        self.requests: list[tuple[int, Any]] = []
        #: connections made so far, and how each ended: (number, close code or None)
        self.connections = 0
        self.closed: list[tuple[int, int | None]] = []
        #: authentications answered with success, and how long each took (s)
        self.auth_times: list[float] = []
        self._lock = threading.Lock()
        self._held: dict[int, set[Key]] = {}
        self._sockets: dict[int, ServerConnection] = {}
        self._users: set[int] = set()
        self._adapter_up = False
        self._prices: dict[tuple[str, str], float] = {}
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.url = ""

    # Running ---------------------------------------------------------------------
    async def start(self) -> str:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        self._ticker = asyncio.create_task(self._tick_forever())
        return self.url

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> OpenAlgoServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Run on a thread of its own (clients in other processes); the URL."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="openalgo-server", daemon=True)
        thread.start()
        try:
            yield asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    # What a test checks ------------------------------------------------------------
    def subscriptions(self) -> set[Key]:
        """Every (symbol, exchange, mode) held for an open connection."""
        with self._lock:
            return set().union(*self._held.values())

    def open_connections(self) -> int:
        with self._lock:
            return len(self._sockets)

    def sent(self, action: str) -> list[Any]:
        """The requests received with this action."""
        with self._lock:
            return [r for _, r in self.requests if isinstance(r, dict) and (r.get("action") or r.get("type")) == action]

    # One connection ------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        with self._lock:
            self.connections += 1
            number = self.connections
            self._held[number] = set()
            self._sockets[number] = ws
        deadline = asyncio.create_task(self._auth_deadline(number, ws))
        try:
            async for frame in ws:
                await self._process(number, ws, frame)
        except ConnectionClosed:
            pass
        finally:
            deadline.cancel()
            with self._lock:
                del self._held[number], self._sockets[number]
                self._users.discard(number)
                if not self._users:
                    self._adapter_up = False  # the user's last connection: the adapter is torn down
                self.closed.append((number, ws.close_code))

    async def _auth_deadline(self, number: int, ws: ServerConnection) -> None:
        await asyncio.sleep(self.auth_grace)
        if number not in self._users:
            await ws.close(4401, "auth timeout")

    async def _process(self, number: int, ws: ServerConnection, frame: str | bytes) -> None:
        try:
            data = json.loads(frame)
        except json.JSONDecodeError:
            await self._error(ws, "INVALID_JSON", "Invalid JSON message")
            return
        with self._lock:
            self.requests.append((number, data))
        if not isinstance(data, dict):
            await self._error(ws, "SERVER_ERROR", f"'{type(data).__name__}' object has no attribute 'get'")
            return
        action = data.get("action") or data.get("type")
        if action in ("authenticate", "auth"):
            await self._authenticate(number, ws, data)
        elif action == "ping":
            reply: dict[str, Any] = {"type": "pong", "status": "success", "server_timestamp": int(time.time() * 1000)}
            if data.get("timestamp") is not None:
                reply["client_timestamp"] = data["timestamp"]
            await self._send(ws, reply)
        elif action == "get_supported_brokers":
            await self._send(
                ws, {"type": "supported_brokers", "status": "success", "brokers": [self.broker], "count": 1}
            )
        elif action not in (
            "subscribe",
            "unsubscribe",
            "unsubscribe_all",
            "subscribe_orders",
            "unsubscribe_orders",
            "get_broker_info",
        ):
            await self._error(ws, "INVALID_ACTION", f"Invalid action: {action}")
        elif number not in self._users:
            await self._error(ws, "NOT_AUTHENTICATED", "You must authenticate first")
        elif action == "subscribe":
            await self._subscribe(number, ws, data)
        elif action in ("unsubscribe", "unsubscribe_all"):
            await self._unsubscribe(number, ws, data, everything=action == "unsubscribe_all")
        elif action == "get_broker_info":
            reply = {
                "type": "broker_info",
                "status": "success",
                "broker": self.broker,
                "adapter_status": "connected" if self._adapter_up else "disconnected",
                "user_id": self.user_id,
            }
            await self._send(ws, reply)
        else:
            what = "Subscribed to order updates" if action == "subscribe_orders" else "Unsubscribed from order updates"
            reply = {"type": action, "status": "success", "message": what}
            if data.get("request_id") is not None:
                reply["request_id"] = data["request_id"]
            await self._send(ws, reply)

    async def _authenticate(self, number: int, ws: ServerConnection, data: dict[str, Any]) -> None:
        key = data.get("api_key") or data.get("apikey")
        if not key:
            await self._error(ws, "AUTHENTICATION_ERROR", "API key is required")
            return
        if key != self.api_key:
            await self._error(ws, "AUTHENTICATION_ERROR", "Invalid API key")
            return
        started = time.monotonic()
        with self._lock:
            self._users.add(number)  # the key is known before the broker is set up
            setup = not self._adapter_up
        if setup:
            await asyncio.sleep(self.auth_delay)  # the broker adapter's login and connection
            if self.broker_failures:
                self.broker_failures -= 1
                await self._error(ws, "BROKER_CONNECTION_ERROR", "Failed to connect to broker")
                return
            self._adapter_up = True  # kept until the user's last connection closes, this one too
        self.auth_times.append(time.monotonic() - started)
        reply = {
            "type": "auth",
            "status": "success",
            "message": "Authentication successful",
            "broker": self.broker,
            "user_id": self.user_id,
            "supported_features": {"ltp": True, "quote": True, "depth": True},
        }
        await self._send(ws, reply)

    async def _subscribe(self, number: int, ws: ServerConnection, data: dict[str, Any]) -> None:
        entries = data.get("symbols") or []
        try:
            mode = normalize_mode(data.get("mode", "Quote"))
        except (ValueError, TypeError) as exc:
            await self._error(ws, "INVALID_MODE", str(exc))
            return
        if not entries and data.get("symbol") and data.get("exchange"):
            entries = [{"symbol": data["symbol"], "exchange": data["exchange"]}]
        if not entries:
            await self._error(ws, "INVALID_PARAMETERS", "At least one symbol must be specified")
            return
        if not self._adapter_up:
            await self._error(ws, "BROKER_ERROR", "Broker adapter not found")
            return
        results, ok = [], True
        for entry in entries:
            symbol, exchange = entry.get("symbol"), entry.get("exchange")
            if not symbol or not exchange:
                continue
            if symbol in self.unknown:
                ok = False
                results.append(
                    {
                        "symbol": symbol,
                        "exchange": exchange,
                        "status": "error",
                        "message": f"Symbol {symbol} not found for exchange {exchange}",
                        "broker": self.broker,
                    }
                )
                continue
            with self._lock:
                self._held[number].add((symbol, exchange, mode))
            results.append(
                {
                    "symbol": symbol,
                    "exchange": exchange,
                    "status": "success",
                    "mode": LABELS[mode],
                    "depth": data.get("depth", 5),
                    "broker": self.broker,
                }
            )
        reply = {
            "type": "subscribe",
            "status": "success" if ok else "partial",
            "subscriptions": results,
            "message": "Subscription processing complete",
            "broker": self.broker,
        }
        if data.get("request_id") is not None:
            reply["request_id"] = data["request_id"]
        await self._send(ws, reply)
        for result in results:
            held = self.snapshots.get((result["symbol"], result["exchange"]))
            if result["status"] == "success" and held is not None:
                message = {
                    "type": "market_data",
                    "symbol": result["symbol"],
                    "exchange": result["exchange"],
                    "mode": mode,
                    "data": held,
                    "broker": self.broker,
                    "snapshot": True,
                }
                await self._send(ws, message)

    async def _unsubscribe(self, number: int, ws: ServerConnection, data: dict[str, Any], *, everything: bool) -> None:
        entries = data.get("symbols") or []
        if not entries and not everything and data.get("symbol") and data.get("exchange"):
            try:
                mode = normalize_mode(data.get("mode", 2))
            except (ValueError, TypeError) as exc:
                await self._error(ws, "INVALID_MODE", str(exc))
                return
            entries = [{"symbol": data["symbol"], "exchange": data["exchange"], "mode": mode}]
        if not entries and not everything:
            await self._error(ws, "INVALID_PARAMETERS", "Either symbols or unsubscribe_all is required")
            return
        if not self._adapter_up:
            await self._error(ws, "BROKER_ERROR", "Broker adapter not found")
            return
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        with self._lock:
            held = self._held[number]
            if everything:
                done = [{"symbol": s, "exchange": e, "status": "success", "broker": self.broker} for s, e, _ in held]
                held.clear()
            for entry in [] if everything else entries:
                symbol, exchange = entry.get("symbol"), entry.get("exchange")
                try:
                    mode = normalize_mode(entry.get("mode", 2))  # no mode: Quote
                except (ValueError, TypeError) as exc:
                    failed.append(
                        {
                            "symbol": symbol,
                            "exchange": exchange,
                            "status": "error",
                            "message": str(exc),
                            "broker": self.broker,
                        }
                    )
                    continue
                if not symbol or not exchange:
                    continue
                held.discard((symbol, exchange, mode))
                done.append({"symbol": symbol, "exchange": exchange, "status": "success", "broker": self.broker})
        status = "success" if not failed else "partial" if done else "error"
        reply = {
            "type": "unsubscribe",
            "status": status,
            "message": "Unsubscription processing complete",
            "successful": done,
            "failed": failed,
            "broker": self.broker,
        }
        if data.get("request_id") is not None:
            reply["request_id"] = data["request_id"]
        await self._send(ws, reply)

    # Sending -----------------------------------------------------------------------
    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):  # as OpenAlgo's send_message: a gone client is no error
            await ws.send(json.dumps(message))

    async def _error(self, ws: ServerConnection, code: str, message: str) -> None:
        await self._send(ws, {"status": "error", "code": code, "message": message})

    async def _tick_forever(self) -> None:
        """For every instrument held, a tick each ``tick_every`` seconds: one message per mode held."""
        while True:
            await asyncio.sleep(self.tick_every)
            with self._lock:
                wanted = [(self._sockets[n], sorted(keys)) for n, keys in self._held.items() if keys]
            instruments = {(s, e) for _, keys in wanted for s, e, _ in keys}
            for instrument in instruments:
                price = self._prices.get(instrument, 1000.0 + len(self._prices))
                self._prices[instrument] = round(price + 0.05, 2)
            for ws, keys in wanted:
                for symbol, exchange, mode in keys:
                    message = {
                        "type": "market_data",
                        "symbol": symbol,
                        "exchange": exchange,
                        "mode": mode,
                        "data": market_data(symbol, exchange, mode, self._prices[(symbol, exchange)]),
                        "broker": self.broker,
                    }
                    await self._send(ws, message)
