"""The server half of the client protocol (docs/protocol.md), without I/O.

A ``Session`` is one client's state. ``Session.handle`` takes a frame as received and
returns what to do: the replies to send, the streams (instrument, mode and, for Depth,
depth) this client starts or stops receiving, and which latest ticks to send at once. The
proxy applies that; tests drive it with no socket at all.

Replies are OpenAlgo's (its ``websocket_proxy/server.py``), field for field, with oaws's
extras only as additional fields. Two families of clients are told apart by one rule: a
connection that has authenticated is an OpenAlgo client; one that has not (possible only
when oaws has no API key) is a seed-style client, whose single-form subscribe and
unsubscribe get the seed replies (``subscription``, ``unsubscription``) and whose
unsubscribe without a mode drops every mode, where OpenAlgo's means Quote.

A client holds one Depth stream of an instrument, at the depth it last asked for (5 by
default, 20 where the feed offers it): both would be ``market_data`` messages of mode 3
for the same symbol, which the client could not tell apart. Subscribing Depth at another
depth moves it there; unsubscribing Depth drops the depth held.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import orjson

from oaws import instruments as ins
from oaws.instruments import DEFAULT_DEPTH, DEPTH, MODE_LABELS, QUOTE, Instrument, InstrumentError, Stream
from oaws.protocol.codes import (
    ACTIONS,
    AUTHENTICATION_ERROR,
    BEFORE_AUTHENTICATION,
    BROKER_ERROR,
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

#: the ``user_id`` of oaws's one user, in ``auth`` and ``broker_info`` replies
USER_ID = "oaws"

_ABSENT: Any = object()

#: the most of a request's own value (``request_id``, a ping's ``timestamp``, a refused
#: entry's ``symbol``) a reply echoes: what is queued for a client stays bounded, and a
#: value nested too deep to encode again is never echoed
MAX_ECHO = 1024
#: entries of a subscribe or unsubscribe handled in one go; a larger request is handled
#: in slices of this many, the proxy's other work going on between them (``Session.steps``)
SLICE = 200


def echoable(value: Any) -> Any:
    """``value`` as a reply may echo it: a string cut to ``MAX_ECHO`` characters; any other
    value as it is if its JSON is at most ``MAX_ECHO`` bytes, else a short note."""
    if value is None or isinstance(value, bool | int | float):
        return value if not isinstance(value, int) or -(2**63) <= value < 2**64 else str(value)[:MAX_ECHO]
    if isinstance(value, str):
        return value if len(value) <= MAX_ECHO else value[:MAX_ECHO] + "..."
    try:
        # within a reply the value sits up to three levels deep (reply, list, entry)
        size = len(orjson.dumps([[[value]]])) - 6
    except (orjson.JSONEncodeError, TypeError):
        return f"<a {type(value).__name__} too deep to echo>"
    return value if size <= MAX_ECHO else f"<a {type(value).__name__} of {size} bytes, not echoed>"


@dataclass(frozen=True, slots=True)
class Change:
    """This client starts (``on``) or stops receiving ``instrument`` at ``mode`` (and, for
    Depth, ``depth`` levels a side): one message per tick per mode held, each at its own
    mode. The proxy moves the client onto or off that stream's route (one bus topic)."""

    instrument: Instrument
    mode: int
    on: bool
    depth: int = DEFAULT_DEPTH

    @property
    def stream(self) -> Stream:
        return Stream(self.instrument, self.mode, self.depth)


@dataclass(slots=True)
class Outcome:
    replies: list[JSON] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    #: streams whose latest tick goes out right after the replies, marked as a snapshot
    snapshots: list[Stream] = field(default_factory=list)
    #: what the request cost: the instruments it named (at least 1), for flood control
    work: int = 1


@dataclass(slots=True)
class Quota:
    """The broker's room for subscriptions, shared by every client of one proxy: at most
    ``limit`` streams (None: no known limit), of which ``used()`` are held; a stream
    ``served`` already costs nothing more to join. ``pending``: new streams that requests
    still being handled in slices have taken (``Session.steps``)."""

    limit: int | None = None
    used: Callable[[], int] = lambda: 0
    served: Callable[[Stream], bool] = lambda stream: False
    pending: int = 0

    def reserve(self, n: int) -> None:
        self.pending += n


class ModeError(ValueError):
    """A mode OpenAlgo refuses; the message is OpenAlgo's own."""


def normalize_mode(value: Any) -> int:
    """1, 2, 3 or LTP / Quote / Depth in any case, as OpenAlgo's ``mode_utils`` reads them."""
    if isinstance(value, bool):
        raise ModeError(f"Mode must be int or str, got bool ({value!r})")
    if isinstance(value, int):
        if value not in MODE_LABELS:
            raise ModeError(f"Invalid mode {value}; expected 1 (LTP), 2 (Quote), or 3 (Depth)")
        return value
    if isinstance(value, str):
        for mode, label in MODE_LABELS.items():
            if value.strip().upper() == label.upper():
                return mode
        raise ModeError(f"Invalid mode {echoable(value)!r}; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)")
    raise ModeError(f"Mode must be int or str, got {type(value).__name__}")


def _accept_all(instrument: Instrument) -> None:
    return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Session:
    """One client's protocol state.

    ``check`` raises ``Refused`` for instruments that cannot be served (the proxy passes
    the feed's check when it runs in the same process). ``broker_info`` returns the feed's
    figures for ``get_broker_info``, ``brokers`` the names for ``get_supported_brokers``,
    ``depths`` the depths a Depth subscription may ask for; ``quota`` is the broker's room.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        broker: Callable[[], str] = lambda: "sim",
        broker_info: Callable[[], JSON] = lambda: {"adapter_status": "unknown"},
        brokers: Callable[[], list[str]] = lambda: ["sim"],
        check: Callable[[Instrument], None] = _accept_all,
        depths: Callable[[], tuple[int, ...]] = lambda: (5,),
        limits: Limits = Limits(),
        quota: Quota | None = None,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.api_key = api_key
        #: authenticated on this connection: an OpenAlgo client (else seed-style)
        self.authenticated = False
        self.broker = broker
        self.broker_info = broker_info
        self.brokers = brokers
        self.check = check
        self.depths = depths
        self.limits = limits
        self.quota = quota if quota is not None else Quota()
        self.clock_ms = clock_ms
        self.subs: dict[Instrument, set[int]] = {}
        #: the depth of each Depth stream held at other than five levels a side
        self.deep: dict[Instrument, int] = {}
        self._pairs = 0
        #: receives ``order_update`` messages (``subscribe_orders``)
        self.orders = False
        self.failed_auth = 0
        #: streams of the request being handled in slices, counted in ``quota.pending``
        self._reserved = 0

    @property
    def openalgo(self) -> bool:
        """Whether this client is answered as an OpenAlgo client (it authenticated) or seed-style."""
        return self.authenticated

    @property
    def admitted(self) -> bool:
        """Whether requests other than ``BEFORE_AUTHENTICATION`` are served."""
        return self.authenticated or self.api_key is None

    def holds(self, stream: Stream) -> bool:
        """Whether this client holds ``stream``."""
        return (
            stream.mode in self.subs.get(stream.instrument, ())
            and self.stream(stream.instrument, stream.mode) == stream
        )

    def pairs(self) -> int:
        """The (instrument, mode) pairs this client holds."""
        return self._pairs

    def stream(self, instrument: Instrument, mode: int) -> Stream:
        """The stream this client holds (or would hold) of ``instrument`` at ``mode``."""
        return Stream(instrument, mode, self.deep.get(instrument, DEFAULT_DEPTH) if mode == DEPTH else DEFAULT_DEPTH)

    # Entry point ---------------------------------------------------------------
    def handle(self, frame: str | bytes) -> Outcome:
        """One frame, text or binary (OpenAlgo parses both as JSON), handled whole."""
        steps = self.steps(frame)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def steps(self, frame: str | bytes) -> Generator[None, None, Outcome]:
        """``handle`` in slices: a subscribe or unsubscribe of more than ``SLICE`` entries
        yields after each slice, so that the proxy can let the event loop run between them
        (one client's large requests never hold up the fan-out to everyone). Nothing of
        the request is seen outside the session until it returns its ``Outcome``: replies,
        route changes and snapshots all come at the end, in the same order as ever."""
        out = Outcome()
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            out.replies.append(error(INVALID_JSON, "Invalid JSON message"))
            return out
        if not isinstance(request, dict):
            out.replies.append(error(INVALID_JSON, "a request must be a JSON object"))
            return out
        action = request.get("action") or request.get("type")  # OpenAlgo reads "type" too
        if not isinstance(action, str) or action not in ACTIONS:
            out.replies.append(self._err(request, INVALID_ACTION, f"Invalid action: {echoable(action)}"))
            return out
        if action not in BEFORE_AUTHENTICATION and not self.admitted:
            out.replies.append(self._err(request, NOT_AUTHENTICATED, "You must authenticate first"))
            return out
        handler = getattr(self, "_" + ("authenticate" if action == "auth" else action))
        sliced = handler(request, out)
        if sliced is not None:
            yield from sliced
        return out

    # Actions -------------------------------------------------------------------
    def _authenticate(self, request: JSON, out: Outcome) -> None:
        key = request.get("api_key") or request.get("apikey")
        if not key:
            self.failed_auth += 1
            out.replies.append(error(AUTHENTICATION_ERROR, "API key is required"))
            return
        if self.api_key is not None and (
            not isinstance(key, str) or not hmac.compare_digest(key.encode(), self.api_key.encode())
        ):
            self.failed_auth += 1
            out.replies.append(error(AUTHENTICATION_ERROR, "Invalid API key"))
            return
        self.authenticated = True
        out.replies.append(
            {
                "type": "auth",
                "status": "success",
                "message": "Authentication successful",
                "broker": self.broker(),
                "user_id": USER_ID,
                "supported_features": {"ltp": True, "quote": True, "depth": True},
            }
        )

    def _mode(self, value: Any, default: int | None) -> int | None:
        """A request's or an entry's mode; absent (or, for a seed-style client, null) is ``default``."""
        if value is _ABSENT or (value is None and not self.openalgo):
            return default
        return normalize_mode(value)

    def _entries(self, request: JSON, out: Outcome, missing: str) -> tuple[list[Any], bool] | None:
        """The request's entries and whether it is the single form; None after an error reply."""
        symbols = request.get("symbols") or []
        if not symbols and request.get("symbol") and request.get("exchange"):
            return [request], True
        if not symbols:
            out.replies.append(self._err(request, INVALID_PARAMETERS, missing))
            return None
        if not isinstance(symbols, list):
            out.replies.append(self._err(request, INVALID_PARAMETERS, "'symbols' must be a list of {symbol, exchange}"))
            return None
        out.work = max(1, len(symbols))
        return symbols, False

    def _subscribe(self, request: JSON, out: Outcome) -> Generator[None, None, None] | None:
        try:
            mode = self._mode(request.get("mode", _ABSENT), QUOTE)
        except ModeError as exc:
            out.replies.append(self._err(request, INVALID_MODE, str(exc)))
            return None
        assert mode is not None
        found = self._entries(request, out, "At least one symbol must be specified")
        if found is None:
            return None
        entries, single = found
        work = self._subscribe_entries(request, out, mode, entries, single)
        if len(entries) <= SLICE:
            for _ in work:  # a small request: no slices
                pass
            return None
        return work

    def _subscribe_entries(
        self, request: JSON, out: Outcome, mode: int, entries: list[Any], single: bool
    ) -> Generator[None, None, None]:
        depth = request.get("depth", 5)
        broker = self.broker()
        results: list[JSON] = []
        joined = 0  # pairs this request adds that no client of the proxy holds yet
        quota = self.quota
        try:
            for n, entry in enumerate(entries):
                if n and n % SLICE == 0:
                    # between slices, other clients' subscribes see this one's new streams as taken
                    quota.reserve(joined - self._reserved)
                    self._reserved = joined
                    yield
                joined += self._subscribe_entry(entry, mode, depth, broker, joined, results, out)
        finally:
            quota.reserve(-self._reserved)
            self._reserved = 0
        if single and not self.openalgo:
            out.replies.append(self._seed_reply(request, "subscription", results[0], mode))
            return
        reply: JSON = {
            "type": "subscribe",
            "status": "success" if all(r["status"] == "success" for r in results) else "partial",
            "subscriptions": results,
            "message": "Subscription processing complete",
            "broker": broker,
        }
        out.replies.append(self._echo(request, reply))

    def _subscribe_entry(
        self, entry: Any, mode: int, depth: Any, broker: str, joined: int, results: list[JSON], out: Outcome
    ) -> int:
        """One entry of a subscribe: its result in ``results``; the streams it adds that no
        client of the proxy holds yet (0 or 1)."""
        # OpenAlgo passes over an entry without a symbol or an exchange, without a word
        if not isinstance(entry, dict) or not entry.get("symbol") or not entry.get("exchange"):
            return 0
        added = 0
        try:
            if mode == DEPTH and (isinstance(depth, bool) or depth not in self.depths()):
                offered = " or ".join(str(d) for d in self.depths())
                raise Refused(INVALID_DEPTH, f"Invalid depth level {echoable(depth)}. Must be {offered}")
            instrument = self._instrument(entry)
            self._check(instrument)
            stream = Stream(instrument, mode, int(depth) if mode == DEPTH else DEFAULT_DEPTH)
            held = self.subs.get(instrument, ())
            holds = self.holds(stream)
            if not holds:
                self._room(stream, joined, moving=mode in held)
                added = int(not self.quota.served(stream))
        except Refused as exc:
            results.append(self._entry_error(entry, exc, broker))
            return 0
        if not holds:
            if mode in held:  # Depth at another depth: the one held makes way
                self._drop(instrument, [mode], out)
            self._hold(stream, out)
        out.snapshots.append(stream)
        results.append(
            {
                "symbol": instrument.symbol,
                "exchange": instrument.exchange,
                "status": "success",
                "mode": MODE_LABELS[mode],
                "depth": echoable(depth),
                "broker": broker,
            }
        )
        return added

    def _hold(self, stream: Stream, out: Outcome) -> None:
        instrument, mode, depth = stream
        self.subs.setdefault(instrument, set()).add(mode)
        if depth != DEFAULT_DEPTH:
            self.deep[instrument] = depth
        self._pairs += 1
        out.changes.append(Change(instrument, mode, True, depth))

    def _room(self, stream: Stream, joined: int, moving: bool) -> None:
        """Refuse a new stream past this client's limit or the broker's quota (a Depth
        stream ``moving`` to another depth takes no more of this client's room)."""
        if self._pairs >= self.limits.per_client and not moving:
            raise Refused(LIMIT_EXCEEDED, f"at most {self.limits.per_client} subscriptions per client")
        quota = self.quota
        total, limit = self.limits.total, quota.limit
        if (total is None and limit is None) or quota.served(stream):
            return
        # this request's own streams reserved between its slices count in ``joined``
        used = quota.used() + quota.pending - self._reserved + joined
        if total is not None and used >= total:
            raise Refused(LIMIT_EXCEEDED, f"this server holds at most {total} subscriptions in total; all are in use")
        if limit is not None and used >= limit:
            raise Refused(LIMIT_EXCEEDED, f"the broker holds at most {limit} subscriptions; all are in use")

    def _unsubscribe(self, request: JSON, out: Outcome) -> Generator[None, None, None] | None:
        if request.get("action") == "unsubscribe_all" or request.get("type") == "unsubscribe_all":
            self._unsubscribe_all(request, out)
            return None
        found = self._entries(request, out, "Either symbols or unsubscribe_all is required")
        if found is None:
            return None
        entries, single = found
        work = self._unsubscribe_entries(request, out, entries, single)
        if len(entries) <= SLICE:
            for _ in work:
                pass
            return None
        return work

    def _unsubscribe_entries(
        self, request: JSON, out: Outcome, entries: list[Any], single: bool
    ) -> Generator[None, None, None]:
        # no mode: Quote for an OpenAlgo client (as OpenAlgo reads it), every mode for a seed-style one
        default = QUOTE if self.openalgo else None
        broker = self.broker()
        if single:
            try:
                mode = self._mode(request.get("mode", _ABSENT), default)
            except ModeError as exc:
                out.replies.append(self._err(request, INVALID_MODE, str(exc)))
                return
            result = self._drop_entry(request, mode, broker, out)
            if not self.openalgo:
                out.replies.append(self._seed_reply(request, "unsubscription", result, mode))
            else:
                out.replies.append(self._unsubscribe_reply(request, "success", [result], [], broker))
            return
        # OpenAlgo reads each entry's mode only; a seed-style client's request mode stands in for a missing one
        fallback = _ABSENT if self.openalgo else request.get("mode", _ABSENT)
        successful: list[JSON] = []
        failed: list[JSON] = []
        for n, entry in enumerate(entries):
            if n and n % SLICE == 0:
                yield
            if not isinstance(entry, dict):
                continue
            value = entry.get("mode", _ABSENT)
            if value is _ABSENT or (value is None and not self.openalgo):
                value = fallback
            try:
                mode = self._mode(value, default)
            except ModeError as exc:
                failed.append(self._entry_error(entry, Refused(INVALID_MODE, str(exc)), broker))
                continue
            if entry.get("symbol") and entry.get("exchange"):
                successful.append(self._drop_entry(entry, mode, broker, out))
        status = "success" if not failed else "partial" if successful else "error"
        out.replies.append(self._unsubscribe_reply(request, status, successful, failed, broker))

    def _drop_entry(self, entry: JSON, mode: int | None, broker: str, out: Outcome) -> JSON:
        """Drop ``mode`` (None: every mode) of an entry's instrument; its ``successful`` entry.

        Unsubscribing from what one does not hold succeeds, as in OpenAlgo: the client's
        wish (not to receive it) is met; the extra ``message`` says so."""
        try:
            instrument = self._instrument(entry)
        except Refused:
            instrument = None
        held = self.subs.get(instrument, set()) if instrument is not None else set()
        removed = sorted(held) if mode is None else [mode] if mode in held else []
        depth = None  # said when other than five, OpenAlgo's entry having none
        if instrument is not None:
            if mode == DEPTH and DEPTH in removed:
                depth = self.deep.get(instrument)
            self._drop(instrument, removed, out)
        result: JSON = {
            "symbol": instrument.symbol if instrument else echoable(entry.get("symbol")),
            "exchange": instrument.exchange if instrument else echoable(entry.get("exchange")),
            "status": "success",
            "broker": broker,
        }
        if mode is not None:
            result["mode"] = MODE_LABELS[mode]
        if depth is not None:
            result["depth"] = depth
        if not removed:
            result["message"] = "was not subscribed"
        return result

    def _unsubscribe_all(self, request: JSON, out: Outcome) -> None:
        broker = self.broker()
        successful = [
            {
                "symbol": i.symbol,
                "exchange": i.exchange,
                "status": "success",
                "broker": broker,
                "mode": MODE_LABELS[m],
            }
            for i, modes in self.subs.items()
            for m in sorted(modes)
        ]
        out.work = max(1, len(successful))
        for instrument in list(self.subs):
            self._drop(instrument, sorted(self.subs[instrument]), out)
        out.replies.append(self._unsubscribe_reply(request, "success", successful, [], broker))

    def _unsubscribe_reply(
        self, request: JSON, status: str, successful: list[JSON], failed: list[JSON], broker: str
    ) -> JSON:
        reply: JSON = {
            "type": "unsubscribe",
            "status": status,
            "message": "Unsubscription processing complete",
            "successful": successful,
            "failed": failed,
            "broker": broker,
        }
        return self._echo(request, reply)

    def _subscribe_orders(self, request: JSON, out: Outcome) -> None:
        self.orders = True
        reply = {"type": "subscribe_orders", "status": "success", "message": "Subscribed to order updates"}
        out.replies.append(self._echo(request, reply))

    def _unsubscribe_orders(self, request: JSON, out: Outcome) -> None:
        self.orders = False
        reply = {"type": "unsubscribe_orders", "status": "success", "message": "Unsubscribed from order updates"}
        out.replies.append(self._echo(request, reply))

    def _get_subscriptions(self, request: JSON, out: Outcome) -> None:
        subs: list[JSON] = []
        for i, modes in self.subs.items():
            for m in sorted(modes):
                entry: JSON = {"symbol": i.symbol, "exchange": i.exchange, "mode": m}
                if m == DEPTH:
                    entry["depth"] = self.stream(i, m).depth
                subs.append(entry)
        out.replies.append({"type": "subscriptions", "status": "success", "count": len(subs), "subscriptions": subs})

    def _ping(self, request: JSON, out: Outcome) -> None:
        reply: JSON = {"type": "pong", "status": "success", "server_timestamp": self.clock_ms()}
        timestamp, ping_id = request.get("timestamp"), request.get("_pingId")
        if timestamp is not None:
            reply["client_timestamp"] = echoable(timestamp)
            reply["timestamp"] = reply["client_timestamp"]  # oaws's own name for it, kept for its clients
        if ping_id is not None:
            reply["_pingId"] = echoable(ping_id)
        out.replies.append(reply)

    def _get_broker_info(self, request: JSON, out: Outcome) -> None:
        out.replies.append(
            {
                "adapter_status": "unknown",
                **self.broker_info(),
                "type": "broker_info",
                "status": "success",
                "broker": self.broker(),
                "user_id": USER_ID,
            }
        )

    def _get_supported_brokers(self, request: JSON, out: Outcome) -> None:
        names = list(self.brokers())
        out.replies.append({"type": "supported_brokers", "status": "success", "brokers": names, "count": len(names)})

    # Helpers -------------------------------------------------------------------
    def drop(self, stream: Stream) -> Change | None:
        """Forget ``stream`` (the feed refused it) if this client holds it; the route change, if any."""
        out = Outcome()
        instrument, mode, _ = stream
        if mode in self.subs.get(instrument, ()) and self.stream(instrument, mode) == stream:
            self._drop(instrument, [mode], out)
        return out.changes[0] if out.changes else None

    def _drop(self, instrument: Instrument, modes: list[int], out: Outcome) -> None:
        held = self.subs.get(instrument)
        if not held:
            return
        for mode in modes:
            if mode in held:
                depth = self.stream(instrument, mode).depth
                held.discard(mode)
                if mode == DEPTH:
                    self.deep.pop(instrument, None)
                self._pairs -= 1
                out.changes.append(Change(instrument, mode, False, depth))
        if not held:
            del self.subs[instrument]

    def _check(self, instrument: Instrument) -> None:
        try:
            self.check(instrument)
        except Refused:
            raise
        except Exception as exc:  # the feed's bug: this entry fails, not the request
            raise Refused(BROKER_ERROR, f"the feed cannot check {instrument}: {exc}") from exc

    @staticmethod
    def _instrument(entry: JSON) -> Instrument:
        symbol, exchange = entry.get("symbol"), entry.get("exchange")
        try:
            if not isinstance(symbol, str) or not isinstance(exchange, str):
                raise InstrumentError(f"Symbol {echoable(symbol)} not found for exchange {echoable(exchange)}")
            if len(symbol) > MAX_ECHO or len(exchange) > MAX_ECHO:
                raise InstrumentError(f"Symbol {echoable(symbol)} not found for exchange {echoable(exchange)}")
            return ins.make(symbol.strip(), exchange.strip())
        except InstrumentError as exc:
            raise Refused(SYMBOL_NOT_FOUND, str(exc)) from None

    @staticmethod
    def _entry_error(entry: JSON, exc: Refused, broker: str) -> JSON:
        """A failed entry as OpenAlgo lists it, with oaws's ``code``."""
        return {
            "symbol": echoable(entry.get("symbol")),
            "exchange": echoable(entry.get("exchange")),
            "status": "error",
            "message": exc.message,
            "broker": broker,
            "code": exc.code,
        }

    def _seed_reply(self, request: JSON, kind: str, result: JSON, mode: int | None) -> JSON:
        """The single form's reply to a seed-style client: the entry itself, or an error."""
        if result["status"] == "success":
            reply: JSON = {"type": kind, "status": "success"}
            reply.update(symbol=result["symbol"], exchange=result["exchange"])
            if mode is not None:
                reply["mode"] = mode
            if "message" in result:
                reply["message"] = result["message"]
        else:
            reply = error(result["code"], result["message"], symbol=result["symbol"], exchange=result["exchange"])
        return self._echo(request, reply)

    def _err(self, request: JSON, code: str, message: str) -> JSON:
        return self._echo(request, error(code, message))

    @staticmethod
    def _echo(request: JSON, reply: JSON) -> JSON:
        request_id = request.get("request_id")
        if request_id is not None:
            reply["request_id"] = echoable(request_id)
        return reply

    def close(self) -> list[Change]:
        """The client went away: every pair it received stops."""
        out = Outcome()
        for instrument in list(self.subs):
            self._drop(instrument, sorted(self.subs[instrument]), out)
        return out.changes


def encode(reply: JSON) -> bytes:
    return orjson.dumps(reply)
