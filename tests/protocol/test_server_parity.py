"""Every request scenario against the session, each reply checked against OpenAlgo's.

The expected replies are written from OpenAlgo's own server (``websocket_proxy/server.py``
at its August 2026 head, with its Angel adapter answering the broker's part), as data:
each action in its single and batch form, with valid and invalid entries, authenticated
or not. A reply conforms when it has every field OpenAlgo's has, with the same value
(``ANY`` where the value is the server's own: a time, a user, a broker's wording), and
no field beyond them but oaws's documented extras (docs/protocol.md).

OpenAlgo always has an API key, so its scenarios run against a session with one.
Seed-style clients (no key on the server, never authenticated) have no OpenAlgo
counterpart: their rows hold oaws's own contract, and are marked so.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import orjson
import pytest

from oaws.protocol.codes import Refused
from oaws.protocol.server import Session

KEY = "k3y"
AUTH = {"action": "authenticate", "api_key": KEY}

#: fields oaws adds to OpenAlgo's: to an error reply (OpenAlgo's has no type, nor an echoed request_id)
ERROR_EXTRAS = {"type", "request_id"}
#: to a failed entry: the error code OpenAlgo's adapter gave and its server dropped
FAILED_ENTRY_EXTRAS = {"code"}
#: to an unsubscribe's successful entry: the mode dropped, and "was not subscribed"
UNSUBSCRIBED_ENTRY_EXTRAS = {"mode", "message"}
#: to a pong: the client's timestamp under oaws's older name too
PONG_EXTRAS = {"timestamp"}

NOT_AUTHENTICATED = {"status": "error", "code": "NOT_AUTHENTICATED", "message": "You must authenticate first"}


def err(code: str, message: Any = ANY) -> dict:
    return {"status": "error", "code": code, "message": message}


def sub(symbol: str, mode: str, depth: Any = 5, exchange: str = "NSE") -> dict:
    return {"symbol": symbol, "exchange": exchange, "status": "success", "mode": mode, "depth": depth, "broker": "sim"}


def sub_failed(symbol: Any, exchange: Any = "NSE", message: Any = ANY) -> dict:
    return {"symbol": symbol, "exchange": exchange, "status": "error", "message": message, "broker": "sim"}


def subscribed(*entries: dict, status: str = "success", **extra: Any) -> dict:
    return {
        "type": "subscribe",
        "status": status,
        "subscriptions": list(entries),
        "message": "Subscription processing complete",
        "broker": "sim",
        **extra,
    }


def unsub(symbol: Any, exchange: Any = "NSE") -> dict:
    return {"symbol": symbol, "exchange": exchange, "status": "success", "broker": "sim"}


def unsubscribed(successful=(), failed=(), status: str = "success", **extra: Any) -> dict:
    return {
        "type": "unsubscribe",
        "status": status,
        "message": "Unsubscription processing complete",
        "successful": list(successful),
        "failed": list(failed),
        "broker": "sim",
        **extra,
    }


AUTHENTICATED = {
    "type": "auth",
    "status": "success",
    "message": "Authentication successful",
    "broker": "sim",
    "user_id": ANY,
    "supported_features": {"ltp": True, "quote": True, "depth": True},
}
PONG = {"type": "pong", "status": "success", "server_timestamp": ANY}
BROKER_INFO = {"type": "broker_info", "status": "success", "broker": "sim", "adapter_status": ANY, "user_id": ANY}
BROKERS = {"type": "supported_brokers", "status": "success", "brokers": ["angel", "sim"], "count": 2}

REL = {"symbol": "RELIANCE", "exchange": "NSE"}
INFY = {"symbol": "INFY", "exchange": "NSE"}
BAD = {"symbol": "XYZ", "exchange": "NSE"}  # not listed: the check refuses it, as Angel's mapper does
HOLD = [{"action": "subscribe", "mode": m, **REL} for m in (1, 2, 3)]  # RELIANCE in every mode

INVALID_9 = "Invalid mode 9; expected 1 (LTP), 2 (Quote), or 3 (Depth)"
INVALID_FAST = "Invalid mode 'fast'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"

# (id, who, requests before, the request, OpenAlgo's reply); who: "openalgo" (authenticated),
# "unauth" (the server has a key, the client did not authenticate), "seed" (oaws's own)
SCENARIOS: list[tuple[str, str, list[Any], Any, dict]] = [
    # authenticate ------------------------------------------------------------------
    ("auth", "unauth", [], AUTH, AUTHENTICATED),
    ("auth-alias-apikey", "unauth", [], {"action": "auth", "apikey": KEY}, AUTHENTICATED),
    ("auth-as-type", "unauth", [], {"type": "authenticate", "api_key": KEY}, AUTHENTICATED),
    (
        "auth-wrong-key",
        "unauth",
        [],
        {"action": "authenticate", "api_key": "nope"},
        err("AUTHENTICATION_ERROR", "Invalid API key"),
    ),
    ("auth-no-key", "unauth", [], {"action": "authenticate"}, err("AUTHENTICATION_ERROR", "API key is required")),
    (
        "auth-empty-key",
        "unauth",
        [],
        {"action": "authenticate", "api_key": ""},
        err("AUTHENTICATION_ERROR", "API key is required"),
    ),
    ("auth-again", "openalgo", [], AUTH, AUTHENTICATED),
    (
        "auth-wrong-after-success",
        "openalgo",
        [],
        {"action": "auth", "api_key": "nope"},
        err("AUTHENTICATION_ERROR", "Invalid API key"),
    ),
    (
        "still-authenticated-after-wrong-key",
        "openalgo",
        [{"action": "auth", "api_key": "nope"}],
        {"action": "get_broker_info"},
        BROKER_INFO,
    ),
    # subscribe, single form --------------------------------------------------------
    (
        "subscribe-single-ltp",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 1, "depth": 5, **REL},
        subscribed(sub("RELIANCE", "LTP")),
    ),
    (
        "subscribe-single-default-quote",
        "openalgo",
        [],
        {"action": "subscribe", **REL},
        subscribed(sub("RELIANCE", "Quote")),
    ),
    (
        "subscribe-single-label-depth",
        "openalgo",
        [],
        {"action": "subscribe", "mode": "depth", **REL},
        subscribed(sub("RELIANCE", "Depth")),
    ),
    (
        "subscribe-single-label-upper",
        "openalgo",
        [],
        {"action": "subscribe", "mode": "QUOTE", **REL},
        subscribed(sub("RELIANCE", "Quote")),
    ),
    (
        "subscribe-single-as-type",
        "openalgo",
        [],
        {"type": "subscribe", "mode": 1, **REL},
        subscribed(sub("RELIANCE", "LTP")),
    ),
    (
        "subscribe-single-not-listed",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 1, **BAD},
        subscribed(sub_failed("XYZ"), status="partial"),
    ),
    (
        "subscribe-single-unknown-exchange",
        "openalgo",
        [],
        {"action": "subscribe", "symbol": "A", "exchange": "MOON"},
        subscribed(sub_failed("A", "MOON"), status="partial"),
    ),
    (
        "subscribe-single-mode-9",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 9, **REL},
        err("INVALID_MODE", INVALID_9),
    ),
    (
        "subscribe-single-mode-fast",
        "openalgo",
        [],
        {"action": "subscribe", "mode": "fast", **REL},
        err("INVALID_MODE", INVALID_FAST),
    ),
    (
        "subscribe-single-mode-null",
        "openalgo",
        [],
        {"action": "subscribe", "mode": None, **REL},
        err("INVALID_MODE", "Mode must be int or str, got NoneType"),
    ),
    (
        "subscribe-single-mode-bool",
        "openalgo",
        [],
        {"action": "subscribe", "mode": True, **REL},
        err("INVALID_MODE", "Mode must be int or str, got bool (True)"),
    ),
    (
        "subscribe-single-depth-20-in-depth",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 3, "depth": 20, **REL},
        subscribed(sub_failed("RELIANCE", message="Invalid depth level 20. Must be 5"), status="partial"),
    ),
    (
        "subscribe-single-depth-20-in-ltp",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 1, "depth": 20, **REL},
        subscribed(sub("RELIANCE", "LTP", depth=20)),
    ),
    (
        "subscribe-single-request-id",
        "openalgo",
        [],
        {"action": "subscribe", "request_id": "r1", **REL},
        subscribed(sub("RELIANCE", "Quote"), request_id="r1"),
    ),
    (
        "subscribe-single-held-again",
        "openalgo",
        [{"action": "subscribe", "mode": 1, **REL}],
        {"action": "subscribe", "mode": 1, **REL},
        subscribed(sub("RELIANCE", "LTP")),
    ),
    (
        "subscribe-symbol-only",
        "openalgo",
        [],
        {"action": "subscribe", "symbol": "RELIANCE"},
        err("INVALID_PARAMETERS", "At least one symbol must be specified"),
    ),
    (
        "subscribe-nothing",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 1},
        err("INVALID_PARAMETERS", "At least one symbol must be specified"),
    ),
    (
        "subscribe-null-symbols-single",
        "openalgo",
        [],
        {"action": "subscribe", "symbols": None, "mode": 1, **REL},
        subscribed(sub("RELIANCE", "LTP")),
    ),
    # subscribe, batch form ---------------------------------------------------------
    (
        "subscribe-batch",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 2, "symbols": [REL, INFY]},
        subscribed(sub("RELIANCE", "Quote"), sub("INFY", "Quote")),
    ),
    (
        "subscribe-batch-partial",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 1, "symbols": [REL, BAD]},
        subscribed(sub("RELIANCE", "LTP"), sub_failed("XYZ"), status="partial"),
    ),
    (
        "subscribe-batch-all-failed",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 1, "symbols": [BAD]},
        subscribed(sub_failed("XYZ"), status="partial"),
    ),
    (
        "subscribe-batch-entry-without-symbol",
        "openalgo",
        [],
        {"action": "subscribe", "symbols": [{"exchange": "NSE"}, REL]},
        subscribed(sub("RELIANCE", "Quote")),
    ),
    (
        "subscribe-batch-only-invalid-entries",
        "openalgo",
        [],
        {"action": "subscribe", "symbols": [{"symbol": "A"}]},
        subscribed(),
    ),
    (
        "subscribe-batch-empty",
        "openalgo",
        [],
        {"action": "subscribe", "symbols": []},
        err("INVALID_PARAMETERS", "At least one symbol must be specified"),
    ),
    (
        "subscribe-batch-entry-mode-not-read",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 3, "symbols": [{**REL, "mode": 1}]},
        subscribed(sub("RELIANCE", "Depth")),
    ),
    (
        "subscribe-batch-mode-9",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 9, "symbols": [REL]},
        err("INVALID_MODE", INVALID_9),
    ),
    (
        "subscribe-batch-request-id",
        "openalgo",
        [],
        {"action": "subscribe", "request_id": 7, "mode": 1, "symbols": [REL]},
        subscribed(sub("RELIANCE", "LTP"), request_id=7),
    ),
    (
        "subscribe-batch-depth-20",
        "openalgo",
        [],
        {"action": "subscribe", "mode": 3, "depth": 20, "symbols": [REL, INFY]},
        subscribed(
            sub_failed("RELIANCE", message="Invalid depth level 20. Must be 5"),
            sub_failed("INFY", message="Invalid depth level 20. Must be 5"),
            status="partial",
        ),
    ),
    ("subscribe-single-unauth", "unauth", [], {"action": "subscribe", **REL}, NOT_AUTHENTICATED),
    ("subscribe-batch-unauth", "unauth", [], {"action": "subscribe", "symbols": [REL]}, NOT_AUTHENTICATED),
    ("subscribe-bad-mode-unauth", "unauth", [], {"action": "subscribe", "mode": 9, **REL}, NOT_AUTHENTICATED),
    # unsubscribe, single form ------------------------------------------------------
    (
        "unsubscribe-single-held",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "mode": 1, **REL},
        unsubscribed([unsub("RELIANCE")]),
    ),
    (
        "unsubscribe-single-no-mode-is-quote",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", **REL},
        unsubscribed([unsub("RELIANCE")]),
    ),
    (
        "unsubscribe-single-not-held",
        "openalgo",
        [],
        {"action": "unsubscribe", "mode": 2, **INFY},
        unsubscribed([unsub("INFY")]),
    ),
    (
        "unsubscribe-single-mode-fast",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "mode": "fast", **REL},
        err("INVALID_MODE", INVALID_FAST),
    ),
    (
        "unsubscribe-single-mode-null",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "mode": None, **REL},
        err("INVALID_MODE", "Mode must be int or str, got NoneType"),
    ),
    (
        "unsubscribe-single-unknown-exchange",
        "openalgo",
        [],
        {"action": "unsubscribe", "symbol": "A", "exchange": "MOON"},
        unsubscribed([unsub("A", "MOON")]),
    ),
    (
        "unsubscribe-single-request-id",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "request_id": "u", **REL},
        unsubscribed([unsub("RELIANCE")], request_id="u"),
    ),
    (
        "unsubscribe-nothing",
        "openalgo",
        [],
        {"action": "unsubscribe"},
        err("INVALID_PARAMETERS", "Either symbols or unsubscribe_all is required"),
    ),
    (
        "unsubscribe-symbol-only",
        "openalgo",
        [],
        {"action": "unsubscribe", "symbol": "RELIANCE"},
        err("INVALID_PARAMETERS", "Either symbols or unsubscribe_all is required"),
    ),
    ("unsubscribe-single-unauth", "unauth", [], {"action": "unsubscribe", "mode": 1, **REL}, NOT_AUTHENTICATED),
    # unsubscribe, batch form -------------------------------------------------------
    (
        "unsubscribe-batch",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "symbols": [{**REL, "mode": 1}, {**REL, "mode": 3}]},
        unsubscribed([unsub("RELIANCE"), unsub("RELIANCE")]),
    ),
    (
        "unsubscribe-batch-no-mode",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "symbols": [REL]},
        unsubscribed([unsub("RELIANCE")]),
    ),
    (
        "unsubscribe-batch-partial",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "symbols": [{**REL, "mode": 1}, {**INFY, "mode": 9}]},
        unsubscribed([unsub("RELIANCE")], [sub_failed("INFY", message=INVALID_9)], status="partial"),
    ),
    (
        "unsubscribe-batch-all-failed",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "symbols": [{**REL, "mode": "fast"}]},
        unsubscribed([], [sub_failed("RELIANCE", message=INVALID_FAST)], status="error"),
    ),
    (
        "unsubscribe-batch-entry-without-symbol",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "symbols": [{"exchange": "NSE", "mode": 1}, {**REL, "mode": 1}]},
        unsubscribed([unsub("RELIANCE")]),
    ),
    (
        "unsubscribe-batch-not-listed",
        "openalgo",
        [],
        {"action": "unsubscribe", "symbols": [{**BAD, "mode": 1}]},
        unsubscribed([unsub("XYZ")]),
    ),
    (
        "unsubscribe-batch-empty",
        "openalgo",
        [],
        {"action": "unsubscribe", "symbols": []},
        err("INVALID_PARAMETERS", "Either symbols or unsubscribe_all is required"),
    ),
    (
        "unsubscribe-batch-request-id",
        "openalgo",
        HOLD,
        {"action": "unsubscribe", "request_id": 3, "symbols": [{**REL, "mode": 2}]},
        unsubscribed([unsub("RELIANCE")], request_id=3),
    ),
    ("unsubscribe-batch-unauth", "unauth", [], {"action": "unsubscribe", "symbols": [REL]}, NOT_AUTHENTICATED),
    # unsubscribe_all ---------------------------------------------------------------
    (
        "unsubscribe-all",
        "openalgo",
        HOLD[:2],
        {"action": "unsubscribe_all"},
        unsubscribed([unsub("RELIANCE"), unsub("RELIANCE")]),
    ),
    ("unsubscribe-all-none-held", "openalgo", [], {"action": "unsubscribe_all"}, unsubscribed()),
    ("unsubscribe-all-as-type", "openalgo", HOLD[:1], {"type": "unsubscribe_all"}, unsubscribed([unsub("RELIANCE")])),
    (
        "unsubscribe-all-as-unsubscribe-type",
        "openalgo",
        HOLD[:1],
        {"action": "unsubscribe", "type": "unsubscribe_all", **INFY},
        unsubscribed([unsub("RELIANCE")]),
    ),
    (
        "unsubscribe-all-request-id",
        "openalgo",
        [],
        {"action": "unsubscribe_all", "request_id": "a"},
        unsubscribed(request_id="a"),
    ),
    ("unsubscribe-all-unauth", "unauth", [], {"action": "unsubscribe_all"}, NOT_AUTHENTICATED),
    # order updates -----------------------------------------------------------------
    (
        "subscribe-orders",
        "openalgo",
        [],
        {"action": "subscribe_orders"},
        {"type": "subscribe_orders", "status": "success", "message": "Subscribed to order updates"},
    ),
    (
        "subscribe-orders-request-id",
        "openalgo",
        [],
        {"action": "subscribe_orders", "request_id": 1},
        {"type": "subscribe_orders", "status": "success", "message": "Subscribed to order updates", "request_id": 1},
    ),
    (
        "unsubscribe-orders",
        "openalgo",
        [{"action": "subscribe_orders"}],
        {"action": "unsubscribe_orders"},
        {"type": "unsubscribe_orders", "status": "success", "message": "Unsubscribed from order updates"},
    ),
    ("subscribe-orders-unauth", "unauth", [], {"action": "subscribe_orders"}, NOT_AUTHENTICATED),
    ("unsubscribe-orders-unauth", "unauth", [], {"action": "unsubscribe_orders"}, NOT_AUTHENTICATED),
    # ping, broker info, supported brokers ------------------------------------------
    ("ping", "openalgo", [], {"action": "ping"}, PONG),
    ("ping-timestamp", "openalgo", [], {"action": "ping", "timestamp": 12}, {**PONG, "client_timestamp": 12}),
    ("ping-ping-id", "openalgo", [], {"action": "ping", "_pingId": "p"}, {**PONG, "_pingId": "p"}),
    ("ping-unauth", "unauth", [], {"action": "ping", "timestamp": 1}, {**PONG, "client_timestamp": 1}),
    ("broker-info", "openalgo", [], {"action": "get_broker_info"}, BROKER_INFO),
    ("broker-info-unauth", "unauth", [], {"action": "get_broker_info"}, NOT_AUTHENTICATED),
    ("supported-brokers", "openalgo", [], {"action": "get_supported_brokers"}, BROKERS),
    ("supported-brokers-unauth", "unauth", [], {"action": "get_supported_brokers"}, BROKERS),
    # frames that are no request ----------------------------------------------------
    ("invalid-json", "openalgo", [], "{oops", err("INVALID_JSON", "Invalid JSON message")),
    ("invalid-json-unauth", "unauth", [], "{oops", err("INVALID_JSON", "Invalid JSON message")),
    ("unknown-action", "openalgo", [], {"action": "dance"}, err("INVALID_ACTION", "Invalid action: dance")),
    ("unknown-action-unauth", "unauth", [], {"action": "dance"}, err("INVALID_ACTION", "Invalid action: dance")),
    ("no-action", "openalgo", [], {"symbol": "RELIANCE"}, err("INVALID_ACTION", "Invalid action: None")),
    ("action-case-sensitive", "openalgo", [], {"action": "PING"}, err("INVALID_ACTION", "Invalid action: PING")),
    ("binary-frame-json", "unauth", [], b'{"action":"ping"}', PONG),
    # seed-style clients: oaws's own contract (no OpenAlgo counterpart) ----------------
    (
        "seed-subscribe-single",
        "seed",
        [],
        {"action": "subscribe", **REL},
        {"type": "subscription", "status": "success", "symbol": "RELIANCE", "exchange": "NSE", "mode": 2},
    ),
    (
        "seed-subscribe-single-error",
        "seed",
        [],
        {"action": "subscribe", **BAD},
        {
            "type": "error",
            "status": "error",
            "code": "SYMBOL_NOT_FOUND",
            "message": ANY,
            "symbol": "XYZ",
            "exchange": "NSE",
        },
    ),
    (
        "seed-unsubscribe-single",
        "seed",
        HOLD,
        {"action": "unsubscribe", **REL},
        {"type": "unsubscription", "status": "success", "symbol": "RELIANCE", "exchange": "NSE"},
    ),
    (
        "seed-subscribe-batch",
        "seed",
        [],
        {"action": "subscribe", "mode": 1, "symbols": [REL]},
        subscribed(sub("RELIANCE", "LTP")),
    ),
    ("seed-broker-info", "seed", [], {"action": "get_broker_info"}, BROKER_INFO),
]

#: where oaws answers otherwise than OpenAlgo, on purpose (docs/protocol.md): OpenAlgo's
#: handler raises on these and answers SERVER_ERROR with Python's exception text
DIVERGENCES: list[tuple[str, str, Any, dict, str]] = [
    ("not-an-object", "openalgo", "[1]", err("INVALID_JSON"), "SERVER_ERROR: 'list' object has no attribute 'get'"),
    (
        "symbols-a-string",
        "openalgo",
        {"action": "subscribe", "symbols": "RELIANCE"},
        err("INVALID_PARAMETERS"),
        "SERVER_ERROR",
    ),
    (
        "symbols-entry-a-string",
        "openalgo",
        {"action": "subscribe", "symbols": ["RELIANCE", REL]},
        subscribed(sub("RELIANCE", "Quote")),
        "SERVER_ERROR after subscribing nothing",
    ),
]


def refuse_xyz(instrument) -> None:
    if instrument.symbol == "XYZ":
        raise Refused("SYMBOL_NOT_FOUND", f"{instrument} is not in the instrument master")


def session(who: str) -> Session:
    s = Session(
        api_key=None if who == "seed" else KEY,
        broker_info=lambda: {"adapter_status": "connected"},
        brokers=lambda: ["angel", "sim"],
        check=refuse_xyz,
    )
    if who == "openalgo":
        s.handle(orjson.dumps(AUTH))
    return s


def frame(request: Any) -> str | bytes:
    return request if isinstance(request, (str, bytes)) else orjson.dumps(request).decode()


def conforms(reply: dict, expected: dict, *, seed: bool = False) -> None:
    """``reply`` has OpenAlgo's fields and values, and beyond them only oaws's extras."""
    if seed:
        assert reply == expected
        return
    extras = set()
    if expected.get("status") == "error" and "type" not in expected:
        extras = ERROR_EXTRAS
        assert reply.get("type", "error") == "error"
    elif expected.get("type") == "pong":
        extras = PONG_EXTRAS
    assert set(reply) - set(expected) <= extras, f"fields OpenAlgo does not send: {set(reply) - set(expected)}"
    for key, value in expected.items():
        assert key in reply, f"missing {key!r}"
        if key in ("subscriptions", "successful", "failed"):
            assert len(reply[key]) == len(value), (key, reply[key])
            for got, want in zip(reply[key], value, strict=True):
                allowed = FAILED_ENTRY_EXTRAS if want["status"] == "error" else set()
                if key == "successful":
                    allowed = UNSUBSCRIBED_ENTRY_EXTRAS
                assert set(got) - set(want) <= allowed, (key, got)
                assert {k: got[k] for k in want} == want, (key, got)
        else:
            assert reply[key] == value, (key, reply[key])


def test_the_table_covers_every_action_in_every_form():
    assert len(SCENARIOS) >= 76
    assert len({name for name, *_ in SCENARIOS}) == len(SCENARIOS)
    from oaws.protocol.codes import ACTIONS

    asked = {r.get("action") or r.get("type") for _, _, _, r, _ in SCENARIOS if isinstance(r, dict)}
    assert set(ACTIONS) - {"get_subscriptions"} <= asked  # get_subscriptions is oaws's own (test_server.py)


@pytest.mark.parametrize(("name", "who", "before", "request_", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_reply_is_openalgos(name, who, before, request_, expected):
    s = session(who)
    for earlier in before:
        s.handle(orjson.dumps(earlier))
    (reply,) = s.handle(frame(request_)).replies
    conforms(reply, expected, seed=who == "seed")


@pytest.mark.parametrize(
    ("name", "who", "request_", "expected", "openalgo"), DIVERGENCES, ids=[d[0] for d in DIVERGENCES]
)
def test_documented_divergences(name, who, request_, expected, openalgo):
    (reply,) = session(who).handle(frame(request_)).replies
    conforms(reply, expected)
