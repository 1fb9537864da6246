"""OpenAlgo's requests and replies as the feed speaks them, without a socket: the mode always
named (OpenAlgo reads an unsubscribe entry without one as Quote), replies mapped back to the
subscriptions they refuse, an error before ``auth`` taken as the key's refusal."""

from __future__ import annotations

import orjson
import pytest

from oaws.brokers.connection import AuthRefused
from oaws.brokers.openalgo import wire
from oaws.brokers.openalgo.feed import OpenAlgoFeed, _by_mode
from oaws.instruments import Instrument

RELIANCE, INFY = Instrument("RELIANCE", "NSE"), Instrument("INFY", "NSE")


def test_unsubscribe_names_the_mode_of_every_entry_and_of_the_request():
    body = orjson.loads(wire.unsubscribe(1, [RELIANCE, INFY], "r1"))
    assert body["action"] == "unsubscribe" and body["mode"] == "LTP" and body["request_id"] == "r1"
    assert body["symbols"] == [
        {"symbol": "RELIANCE", "exchange": "NSE", "mode": "LTP"},
        {"symbol": "INFY", "exchange": "NSE", "mode": "LTP"},
    ]


def test_subscribe_is_one_request_per_mode_in_chunks():
    keys = {(Instrument(f"S{n}", "NSE"), 1) for n in range(wire.CHUNK + 1)} | {(RELIANCE, 3)}
    groups = _by_mode(keys)
    assert [(mode, len(instruments)) for mode, instruments in groups] == [(1, wire.CHUNK), (1, 1), (3, 1)]
    body = orjson.loads(wire.subscribe(3, [RELIANCE], "r2"))
    assert body == {
        "action": "subscribe",
        "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}],
        "mode": "Depth",
        "depth": 5,
        "request_id": "r2",
    }


def test_frames_that_are_not_json_objects_are_no_messages():
    assert wire.messages("not json") == [] and wire.messages("[1, 2]") == [] and wire.messages(b'{"a":1}') == [{"a": 1}]
    assert wire.messages('[{"type":"market_data"},{"type":"pong"}]') == [{"type": "market_data"}, {"type": "pong"}]


class Bus:
    def __init__(self) -> None:
        self.rejected: list[tuple[Instrument, int, str, str]] = []

    def publish(self, instrument, mode, payload):  # pragma: no cover - not reached here
        pass

    def reject(self, instrument, mode, code, message):
        self.rejected.append((instrument, mode, code, message))


@pytest.fixture
def link():
    feed = OpenAlgoFeed("ws://127.0.0.1:1", "k")
    feed.attach(Bus())
    link = feed.link
    assert orjson.loads(link.greeting("k")[0]) == {"action": "authenticate", "api_key": "k"}
    return link


def test_an_error_before_auth_refuses_the_key_and_after_it_does_not(link):
    with pytest.raises(AuthRefused, match=r"^AUTHENTICATION_ERROR: Invalid API key$"):
        link.on_frame('{"status":"error","code":"AUTHENTICATION_ERROR","message":"Invalid API key"}')
    link.greeting("k")
    link.on_frame('{"type":"auth","status":"success","broker":"angel","user_id":"u"}')
    assert link.authenticated and link.broker == "angel"
    link.on_frame('{"status":"error","code":"INVALID_ACTION","message":"Invalid action: x"}')  # logged, no more


def test_refused_entries_go_back_to_the_clients_with_their_code(link):
    link.on_frame('{"type":"auth","status":"success","broker":"angel"}')
    feed, bus = link.feed, link.feed.publisher
    feed.connection.keys |= {(RELIANCE, 2), (INFY, 2)}
    link.subscribe({(RELIANCE, 2), (INFY, 2)})
    # OpenAlgo's reply: no request_id (an older server), failed entries without a mode or code
    reply = {
        "type": "subscribe",
        "status": "partial",
        "subscriptions": [
            {"symbol": "INFY", "exchange": "NSE", "status": "success", "mode": "Quote"},
            {"symbol": "RELIANCE", "exchange": "NSE", "status": "error", "message": "Symbol limit reached"},
        ],
    }
    link.on_frame(orjson.dumps(reply).decode())
    assert bus.rejected == [(RELIANCE, 2, "LIMIT_EXCEEDED", "Symbol limit reached")]
    assert feed.connection.keys == {(INFY, 2)} and not link.pending
    # a whole request refused, named by its request_id
    feed.connection.keys.add((RELIANCE, 1))
    (request,) = link.subscribe({(RELIANCE, 1)})
    request_id = orjson.loads(request)["request_id"]
    link.on_frame(orjson.dumps({"status": "error", "code": "INVALID_MODE", "message": "no", "request_id": request_id}))
    assert bus.rejected[-1] == (RELIANCE, 1, "INVALID_MODE", "INVALID_MODE: no")
    assert (RELIANCE, 1) not in feed.connection.keys
