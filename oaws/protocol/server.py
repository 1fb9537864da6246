"""The server half of the client protocol (SPEC §1), without I/O.

A ``Session`` is one client's state. ``Session.handle`` takes a frame as received and
returns what to do: the replies to send, how the instruments this client receives
changed, and which latest ticks to send at once. The proxy applies that; tests drive it
with no socket at all.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from oaws import instruments as ins
from oaws.instruments import Instrument, InstrumentError
from oaws.protocol.codes import (
    ACTIONS,
    AUTHENTICATION_ERROR,
    INVALID_ACTION,
    INVALID_DEPTH,
    INVALID_JSON,
    INVALID_MODE,
    INVALID_PARAMETERS,
    JSON,
    LIMIT_EXCEEDED,
    NOT_AUTHENTICATED,
    SYMBOL_NOT_FOUND,
    Limits,
    Refused,
    error,
)


@dataclass(slots=True)
class Change:
    """The mode at which this client receives ``instrument`` went from ``old`` to ``new``
    (None: not at all). The proxy moves the client between routes accordingly."""

    instrument: Instrument
    old: int | None
    new: int | None


@dataclass(slots=True)
class Outcome:
    replies: list[JSON] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    #: instruments whose latest tick (at the client's mode) goes out right after the replies
    snapshots: list[Instrument] = field(default_factory=list)


def _accept_all(instrument: Instrument) -> None:
    return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Session:
    """One client's protocol state.

    ``check`` raises ``Refused`` for instruments that cannot be served (the proxy passes
    the feed's check when it runs in the same process). ``broker_info`` returns the feed's
    figures for ``get_broker_info``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        broker: Callable[[], str] = lambda: "sim",
        broker_info: Callable[[], JSON] = lambda: {"adapter_status": "unknown"},
        check: Callable[[Instrument], None] = _accept_all,
        depths: Callable[[], tuple[int, ...]] = lambda: (5,),
        limits: Limits = Limits(),
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.api_key = api_key
        self.authenticated = api_key is None
        self.broker = broker
        self.broker_info = broker_info
        self.check = check
        self.depths = depths
        self.limits = limits
        self.clock_ms = clock_ms
        self.subs: dict[Instrument, set[int]] = {}
        self.failed_auth = 0

    # The mode at which a client receives an instrument: its highest subscribed mode.
    def effective(self, instrument: Instrument) -> int | None:
        modes = self.subs.get(instrument)
        return max(modes) if modes else None

    def pairs(self) -> int:
        return sum(len(m) for m in self.subs.values())

    # Entry point ---------------------------------------------------------------
    def handle(self, frame: str | bytes) -> Outcome:
        out = Outcome()
        if isinstance(frame, bytes):
            out.replies.append(error(INVALID_JSON, "binary frames are not accepted; send JSON as text"))
            return out
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            out.replies.append(error(INVALID_JSON, f"invalid JSON: {exc.args[0] if exc.args else exc}"))
            return out
        if not isinstance(request, dict):
            out.replies.append(error(INVALID_JSON, "a request must be a JSON object"))
            return out
        action = request.get("action") or request.get("type")  # OpenAlgo reads "type" too
        if not isinstance(action, str) or action.lower() not in ACTIONS:
            out.replies.append(error(INVALID_ACTION, f"unknown action {action!r}; known: {', '.join(ACTIONS)}"))
            return out
        action = action.lower()
        if action in ("authenticate", "auth"):
            out.replies.append(self._authenticate(request))
            return out
        if not self.authenticated:
            out.replies.append(
                error(NOT_AUTHENTICATED, 'authenticate first: {"action":"authenticate","api_key":"..."}')
            )
            return out
        getattr(self, "_" + action)(request, out)
        return out

    # Actions -------------------------------------------------------------------
    def _authenticate(self, request: JSON) -> JSON:
        key = request.get("api_key", request.get("apikey"))
        if self.api_key is not None and (
            not isinstance(key, str) or not hmac.compare_digest(key.encode(), self.api_key.encode())
        ):
            self.failed_auth += 1
            return error(AUTHENTICATION_ERROR, "invalid API key")
        self.authenticated = True
        return {
            "type": "auth",
            "status": "success",
            "message": "Authentication successful",
            "broker": self.broker(),
            "user_id": "oaws",
            "supported_features": {"ltp": True, "quote": True, "depth": True},
        }

    def _entries(self, request: JSON, out: Outcome, kind: str) -> list[Any] | None:
        """The request's instruments as raw entries, or None after an error reply."""
        if "symbols" in request:
            entries = request["symbols"]
            if not isinstance(entries, list) or not entries:
                out.replies.append(
                    self._err(request, INVALID_PARAMETERS, "'symbols' must be a non-empty list of {symbol, exchange}")
                )
                return None
            if len(entries) > self.limits.per_request:
                out.replies.append(
                    self._err(
                        request, LIMIT_EXCEEDED, f"at most {self.limits.per_request} instruments per {kind} request"
                    )
                )
                return None
            return entries
        if "symbol" in request or "exchange" in request:
            return [request]
        out.replies.append(self._err(request, INVALID_PARAMETERS, "give 'symbol' and 'exchange', or 'symbols': [...]"))
        return None

    def _err(self, request: JSON, code: str, message: str) -> JSON:
        reply = error(code, message)
        if "request_id" in request:
            reply["request_id"] = request["request_id"]
        return reply

    @staticmethod
    def _instrument(entry: Any) -> Instrument:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("symbol"), str)
            or not isinstance(entry.get("exchange"), str)
        ):
            raise Refused(INVALID_PARAMETERS, "each instrument needs string 'symbol' and 'exchange'")
        try:
            return ins.make(entry["symbol"].strip(), entry["exchange"].strip())
        except InstrumentError as exc:
            raise Refused(SYMBOL_NOT_FOUND, str(exc)) from None

    def _mode(self, request: JSON, entry: Any, default: int | None) -> int | None:
        # the instrument's own mode, else the request's, else the default; null counts as not given
        raw = entry.get("mode") if isinstance(entry, dict) else None
        if raw is None:
            raw = request.get("mode")
        if raw is None:
            return default
        try:
            return ins.parse_mode(raw)
        except InstrumentError as exc:
            raise Refused(INVALID_MODE, str(exc)) from None

    def _subscribe(self, request: JSON, out: Outcome) -> None:
        single = "symbols" not in request
        depth = request.get("depth", 5)
        if depth not in self.depths() or isinstance(depth, bool):
            out.replies.append(
                self._err(request, INVALID_DEPTH, f"depth {depth!r} is not offered; use one of {list(self.depths())}")
            )
            return
        entries = self._entries(request, out, "subscribe")
        if entries is None:
            return
        results: list[JSON] = []
        for entry in entries:
            try:
                instrument = self._instrument(entry)
                mode = self._mode(request, entry, 2)
                assert mode is not None
                self.check(instrument)
                modes = self.subs.get(instrument, set())
                if mode not in modes and self.pairs() >= self.limits.per_client:
                    raise Refused(LIMIT_EXCEEDED, f"at most {self.limits.per_client} subscriptions per client")
            except Refused as exc:
                results.append(self._entry_error(entry, exc))
                continue
            old = self.effective(instrument)
            self.subs.setdefault(instrument, set()).add(mode)
            new = self.effective(instrument)
            if new != old:
                out.changes.append(Change(instrument, old, new))
            out.snapshots.append(instrument)
            results.append(
                {"symbol": instrument.symbol, "exchange": instrument.exchange, "mode": mode, "status": "success"}
            )
        out.replies.append(self._summary(request, "subscribe", "subscription", single, results))

    def _unsubscribe(self, request: JSON, out: Outcome) -> None:
        single = "symbols" not in request
        entries = self._entries(request, out, "unsubscribe")
        if entries is None:
            return
        results: list[JSON] = []
        for entry in entries:
            try:
                instrument = self._instrument(entry)
                mode = self._mode(request, entry, None)
            except Refused as exc:
                results.append(self._entry_error(entry, exc))
                continue
            # Unsubscribing from what one does not hold succeeds, as in OpenAlgo: the
            # client's wish (not to receive it) is met; the message says so.
            held = self.subs.get(instrument, set())
            removed = sorted(held) if mode is None else [m for m in (mode,) if m in held]
            self._drop(instrument, removed, out)
            result: JSON = {"symbol": instrument.symbol, "exchange": instrument.exchange, "status": "success"}
            if mode is not None:
                result["mode"] = mode
            if not removed:
                result["message"] = "was not subscribed"
            results.append(result)
        out.replies.append(self._summary(request, "unsubscribe", "unsubscription", single, results))

    def _unsubscribe_all(self, request: JSON, out: Outcome) -> None:
        removed = [
            {"symbol": i.symbol, "exchange": i.exchange, "mode": m, "status": "success"}
            for i, modes in self.subs.items()
            for m in sorted(modes)
        ]
        for instrument in list(self.subs):
            self._drop(instrument, sorted(self.subs[instrument]), out)
        reply: JSON = {
            "type": "unsubscribe",
            "status": "success",
            "message": f"unsubscribed from {len(removed)} subscriptions",
            "subscriptions": removed,
        }
        if "request_id" in request:
            reply["request_id"] = request["request_id"]
        out.replies.append(reply)

    def _get_subscriptions(self, request: JSON, out: Outcome) -> None:
        subs = [
            {"symbol": i.symbol, "exchange": i.exchange, "mode": m}
            for i, modes in self.subs.items()
            for m in sorted(modes)
        ]
        out.replies.append({"type": "subscriptions", "status": "success", "count": len(subs), "subscriptions": subs})

    def _ping(self, request: JSON, out: Outcome) -> None:
        reply: JSON = {"type": "pong", "status": "success", "server_timestamp": self.clock_ms()}
        for echoed, key in (("timestamp", "timestamp"), ("timestamp", "client_timestamp"), ("_pingId", "_pingId")):
            if echoed in request:
                reply[key] = request[echoed]
        out.replies.append(reply)

    def _get_broker_info(self, request: JSON, out: Outcome) -> None:
        out.replies.append({"type": "broker_info", "status": "success", "broker": self.broker(), **self.broker_info()})

    # Helpers -------------------------------------------------------------------
    def drop(self, instrument: Instrument, modes: list[int]) -> Change | None:
        """Forget ``modes`` of ``instrument`` (the feed refused it); the route change, if any."""
        out = Outcome()
        self._drop(instrument, [m for m in modes if m in self.subs.get(instrument, ())], out)
        return out.changes[0] if out.changes else None

    def _drop(self, instrument: Instrument, modes: list[int], out: Outcome) -> None:
        held = self.subs.get(instrument)
        if not held:
            return
        old = self.effective(instrument)
        held.difference_update(modes)
        if not held:
            del self.subs[instrument]
        new = self.effective(instrument)
        if new != old:
            out.changes.append(Change(instrument, old, new))

    @staticmethod
    def _entry_error(entry: Any, exc: Refused) -> JSON:
        result: JSON = {"status": "error", "code": exc.code, "message": exc.message}
        if isinstance(entry, dict):
            result = {"symbol": entry.get("symbol"), "exchange": entry.get("exchange"), **result}
        return result

    def _summary(self, request: JSON, kind: str, single_kind: str, single: bool, results: list[JSON]) -> JSON:
        if single:
            result = results[0]
            if result["status"] == "success":
                reply = {"type": single_kind, **result}
            else:
                reply = error(
                    result["code"], result["message"], symbol=result.get("symbol"), exchange=result.get("exchange")
                )
        else:
            ok = sum(r["status"] == "success" for r in results)
            status = "success" if ok == len(results) else "partial" if ok else "error"
            reply = {"type": kind, "status": status, "subscriptions": results}
            if status != "success":
                reply["message"] = f"{len(results) - ok} of {len(results)} instruments failed"
        if "request_id" in request:
            reply["request_id"] = request["request_id"]
        return reply

    def close(self) -> list[Change]:
        """The client went away: every instrument it received stops."""
        out = Outcome()
        for instrument in list(self.subs):
            self._drop(instrument, sorted(self.subs[instrument]), out)
        return out.changes


def encode(reply: JSON) -> bytes:
    return orjson.dumps(reply)
