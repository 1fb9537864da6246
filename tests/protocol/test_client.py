"""The client half of the protocol (oaws.protocol.client), driven with frames alone: the
requests it builds, the events it makes of oaws's and OpenAlgo's replies, and a run against
the server half (oaws.protocol.server) with no socket in between."""

from __future__ import annotations

import json
import subprocess
import sys

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oaws.instruments import DEPTH, LTP, QUOTE, Instrument, parse
from oaws.protocol.client import (
    CHUNK,
    Authenticated,
    AuthFailed,
    BrokerInfo,
    ClientProtocol,
    OrderUpdate,
    Pong,
    Reply,
    ServerError,
    State,
    Subscribed,
    Tick,
    Unsubscribed,
    encode,
    fatal_close,
)
from oaws.protocol.codes import AUTHENTICATION_ERROR, NOT_AUTHENTICATED, SYMBOL_NOT_FOUND
from oaws.protocol.server import Session

REL, INFY, NIFTY = parse("RELIANCE:NSE"), parse("INFY:NSE"), parse("NIFTY:NSE_INDEX")
NOW = 1_767_000_000_000_000_000


def symbols(*instruments: Instrument, mode: int | None = None) -> list[dict]:
    extra = {} if mode is None else {"mode": mode}
    return [{"symbol": i.symbol, "exchange": i.exchange, **extra} for i in instruments]


def subscribe(mode: int, *instruments: Instrument) -> dict:
    return {"action": "subscribe", "mode": mode, "depth": 5, "symbols": symbols(*instruments)}


def opened(*, api_key: str | None = None) -> ClientProtocol:
    """A protocol on a connection that is open, its first requests taken."""
    p = ClientProtocol(api_key=api_key)
    p.connection_made()
    if api_key is not None:
        p.receive(b'{"type":"auth","status":"success"}', NOW)
    p.requests_to_send()
    return p


def market(instrument: Instrument, mode: int, **data: object) -> dict:
    return {
        "type": "market_data",
        "symbol": instrument.symbol,
        "exchange": instrument.exchange,
        "mode": mode,
        "broker": "sim",
        "data": {"symbol": instrument.symbol, "exchange": instrument.exchange, "ltp": 1.0, **data},
    }


def frame(body: object) -> bytes:
    return orjson.dumps(body)


# Connecting -----------------------------------------------------------------------
def test_without_a_key_a_new_connection_subscribes_everything_grouped_by_mode():
    p = ClientProtocol()
    p.subscribe([REL, INFY], QUOTE)
    p.subscribe([NIFTY], LTP)
    p.subscribe([REL], DEPTH)
    assert p.requests_to_send() == []  # nothing goes out before a connection
    p.connection_made()
    assert p.state is State.OPEN
    assert p.requests_to_send() == [subscribe(LTP, NIFTY), subscribe(QUOTE, REL, INFY), subscribe(DEPTH, REL)]
    assert p.requests_to_send() == []


def test_with_a_key_authentication_comes_first_and_the_subscriptions_after_its_success():
    p = ClientProtocol(api_key="k")
    p.subscribe([REL], QUOTE)
    p.connection_made()
    assert p.state is State.AUTHENTICATING
    assert p.requests_to_send() == [{"action": "authenticate", "api_key": "k"}]
    p.subscribe([INFY], LTP)  # asked for meanwhile: it goes with the resubscription
    p.ping()
    assert p.requests_to_send() == []
    reply = {"type": "auth", "status": "success", "broker": "sim", "user_id": "u"}
    (event,) = p.receive(frame(reply), NOW)
    assert isinstance(event, Authenticated) and event.body == reply
    assert p.state is State.OPEN
    assert p.requests_to_send() == [subscribe(LTP, INFY), subscribe(QUOTE, REL)]


@pytest.mark.parametrize(
    ("reply", "fatal"),
    [
        ({"status": "error", "code": AUTHENTICATION_ERROR, "message": "Invalid API key"}, True),  # OpenAlgo: no type
        ({"type": "error", "status": "error", "code": AUTHENTICATION_ERROR, "message": "invalid API key"}, True),
        ({"status": "error", "code": "BROKER_CONNECTION_ERROR", "message": "broker down"}, False),
    ],
)
def test_an_error_answering_authenticate_is_a_failed_authentication(reply, fatal):
    p = ClientProtocol(api_key="k")
    p.subscribe([REL], QUOTE)
    p.connection_made()
    p.requests_to_send()
    (event,) = p.receive(frame(reply), NOW)
    assert isinstance(event, AuthFailed) and event.fatal is fatal
    assert (event.code, event.message, event.instrument) == (reply["code"], reply["message"], None)
    assert p.state is State.AUTHENTICATING and p.requests_to_send() == []  # no subscription on a refused key


def test_a_reconnect_resubscribes_every_instrument_and_mode_held_and_forgets_what_was_not_sent():
    p = opened()
    p.subscribe([REL, INFY], QUOTE)
    p.subscribe([REL], DEPTH)
    p.unsubscribe([INFY])
    p.connection_lost()
    assert p.state is State.CLOSED and p.requests_to_send() == []
    p.subscribe([NIFTY], QUOTE)  # while down: remembered, not sent
    p.unsubscribe([REL], DEPTH)
    p.ping()
    assert p.requests_to_send() == []
    p.connection_made()
    assert p.requests_to_send() == [subscribe(QUOTE, REL, NIFTY)]
    assert p.wanted == {REL: {QUOTE}, NIFTY: {QUOTE}}


# Requests -------------------------------------------------------------------------
def test_subscriptions_go_in_chunks_of_at_most_500():
    many = [Instrument(f"S{n:04d}", "NSE") for n in range(2 * CHUNK + 201)]
    p = opened()
    p.subscribe(many, LTP)
    sent = p.requests_to_send()
    assert [len(r["symbols"]) for r in sent] == [500, 500, 201]
    assert all(r["action"] == "subscribe" and r["mode"] == LTP for r in sent)
    assert [e["symbol"] for r in sent for e in r["symbols"]] == [i.symbol for i in many]
    p.connection_lost()
    p.connection_made()
    assert [len(r["symbols"]) for r in p.requests_to_send()] == [500, 500, 201]
    p.unsubscribe(many)
    assert [len(r["symbols"]) for r in p.requests_to_send()] == [500, 500, 201]


def test_an_instrument_holds_several_modes_and_each_is_asked_for_once():
    p = opened()
    p.subscribe([REL], QUOTE)
    p.subscribe([REL, INFY], DEPTH)
    p.subscribe([REL], QUOTE)  # held already
    assert p.wanted == {REL: {QUOTE, DEPTH}, INFY: {DEPTH}}
    assert p.requests_to_send() == [subscribe(QUOTE, REL), subscribe(DEPTH, REL, INFY)]


def test_unsubscribe_drops_one_mode_or_every_mode_each_named_for_openalgo():
    p = opened()
    p.subscribe([REL, INFY], QUOTE)
    p.subscribe([REL, INFY], DEPTH)
    p.requests_to_send()
    p.unsubscribe([REL], DEPTH)
    assert p.wanted == {REL: {QUOTE}, INFY: {QUOTE, DEPTH}}
    # OpenAlgo takes an entry without a mode for Quote: every entry names its mode
    assert p.requests_to_send() == [{"action": "unsubscribe", "symbols": symbols(REL, mode=DEPTH)}]
    p.unsubscribe([INFY, REL])
    assert p.wanted == {}
    assert p.requests_to_send() == [
        {
            "action": "unsubscribe",
            "symbols": [*symbols(INFY, mode=QUOTE), *symbols(INFY, mode=DEPTH), *symbols(REL, mode=QUOTE)],
        }
    ]


def test_unsubscribing_what_is_not_held_sends_nothing():
    p = opened()
    p.subscribe([REL], QUOTE)
    p.requests_to_send()
    p.unsubscribe([REL], LTP)
    p.unsubscribe([INFY])
    assert p.requests_to_send() == [] and p.wanted == {REL: {QUOTE}}


@pytest.mark.parametrize("mode", [0, 4, True, "2"])
def test_a_mode_that_does_not_exist_is_refused(mode):
    with pytest.raises(ValueError, match="invalid mode"):
        ClientProtocol().subscribe([REL], mode)


def test_ping_broker_info_subscriptions_and_raw_requests_go_out_only_while_open():
    p = ClientProtocol(api_key="k")
    p.ping()
    p.get_broker_info()
    p.connection_made()
    p.requests_to_send()
    p.get_subscriptions()
    assert p.requests_to_send() == []
    p.receive(b'{"type":"auth","status":"success"}', NOW)
    p.ping()
    p.ping(1234)
    p.get_broker_info()
    p.get_subscriptions()
    p.request({"action": "unsubscribe_all"})
    assert p.requests_to_send() == [
        {"action": "ping"},
        {"action": "ping", "timestamp": 1234},
        {"action": "get_broker_info"},
        {"action": "get_subscriptions"},
        {"action": "unsubscribe_all"},
    ]


def test_a_request_travels_as_compact_json_text():
    assert encode(subscribe(LTP, REL)) == (
        '{"action":"subscribe","mode":1,"depth":5,"symbols":[{"symbol":"RELIANCE","exchange":"NSE"}]}'
    )


# Ticks ----------------------------------------------------------------------------
@pytest.mark.parametrize("as_text", [False, True])
def test_a_single_market_data_frame_is_a_tick(as_text):
    message = market(REL, QUOTE, volume=10)
    raw = frame(message)
    (tick,) = opened().receive(raw.decode() if as_text else raw, NOW)
    assert isinstance(tick, Tick)
    assert (tick.instrument, tick.mode, tick.data, tick.message, tick.received_ns) == (
        REL,
        QUOTE,
        message["data"],
        message,
        NOW,
    )


def test_a_batch_frame_is_its_ticks_in_order_and_replies_among_them_keep_their_place():
    batch = [market(REL, LTP, seq=1), market(INFY, DEPTH, seq=2), {"type": "pong"}, market(REL, QUOTE, seq=3)]
    events = opened().receive(frame(batch), NOW)
    assert [type(e) for e in events] == [Tick, Tick, Pong, Tick]
    assert [(e.instrument, e.mode, e.data["seq"]) for e in events if isinstance(e, Tick)] == [
        (REL, LTP, 1),
        (INFY, DEPTH, 2),
        (REL, QUOTE, 3),
    ]


def test_a_tick_needs_no_topic_and_reads_the_instrument_from_symbol_and_exchange():
    message = market(NIFTY, LTP)
    message["topic"] = "SOMETHING.ELSE"
    (tick,) = opened().receive(frame(message), NOW)
    assert tick.instrument == NIFTY


@pytest.mark.parametrize(
    "change",
    [{"exchange": "MARS"}, {"symbol": None}, {"mode": 7}, {"mode": None}, {"data": [1, 2]}, {"data": None}],
)
def test_a_market_data_message_that_names_no_instrument_mode_or_data_is_skipped(change):
    good = market(INFY, LTP)
    events = opened().receive(frame([{**market(REL, LTP), **change}, good]), NOW)
    assert [e.instrument for e in events] == [INFY]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"42", b"[1, null, []]", b'"text"', "\u00e9"])
def test_frames_that_are_no_json_object_make_no_event(raw):
    assert opened().receive(raw, NOW) == []


def test_a_tick_with_its_creation_time_knows_its_latency():
    ns = frame(market(REL, LTP, ts_ns=NOW - 1_500_000))
    ms = frame(market(REL, LTP, timestamp=NOW // 1_000_000 - 3))
    (a,) = opened().receive(ns, NOW)
    (b,) = opened().receive(ms, NOW)
    (c,) = opened().receive(frame(market(REL, LTP)), NOW)
    assert a.latency_ms == pytest.approx(1.5) and b.latency_ms == pytest.approx(3.0) and c.latency_ms is None


def test_a_tick_the_server_marks_as_its_snapshot_says_so_alone_or_in_a_batch():
    held = {**market(REL, QUOTE, timestamp=NOW // 1_000_000 - 600_000), "snapshot": True}
    (alone,) = opened().receive(frame(held), NOW)
    snap, live, unmarked = opened().receive(
        frame([held, market(REL, QUOTE), {**market(INFY, LTP), "snapshot": 1}]), NOW
    )
    assert alone.snapshot and snap.snapshot and not live.snapshot and not unmarked.snapshot
    assert alone.message == held  # the mark stays in the message, for `tail --json`
    assert alone.latency_ms == pytest.approx(600_000.0)  # its age is still there to see: leaving it out is the caller's


# Replies --------------------------------------------------------------------------
def test_a_subscribe_reply_is_one_result_per_instrument():
    reply = {
        "type": "subscribe",
        "status": "partial",
        "subscriptions": [
            {"symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "status": "success"},
            {"symbol": "NOPE", "exchange": "NSE", "status": "error", "code": SYMBOL_NOT_FOUND, "message": "no NOPE"},
            {"symbol": "BAD", "exchange": "MARS", "status": "success"},
        ],
        "message": "1 of 3 instruments failed",
    }
    ok, failed = opened().receive(frame(reply), NOW)
    assert ok == Subscribed(REL, QUOTE, reply)
    assert isinstance(failed, ServerError) and not failed.fatal
    assert (failed.code, failed.message, failed.instrument, failed.raw) == (
        SYMBOL_NOT_FOUND,
        "no NOPE",
        parse("NOPE:NSE"),
        reply,
    )
    assert str(failed) == "NOPE:NSE: no NOPE (SYMBOL_NOT_FOUND)"


def test_openalgos_subscribe_reply_echoes_the_mode_by_name_and_gives_no_code_for_a_failure():
    reply = {
        "type": "subscribe",
        "status": "partial",
        "subscriptions": [
            {"symbol": "RELIANCE", "exchange": "NSE", "status": "success", "mode": "LTP", "depth": 5, "broker": "a"},
            {"symbol": "NOSUCH", "exchange": "NSE", "status": "error", "message": "Symbol NOSUCH not found"},
        ],
        "message": "Subscription processing complete",
    }
    ok, failed = opened().receive(frame(reply), NOW)
    assert ok == Subscribed(REL, LTP, reply)
    assert (failed.code, failed.instrument) == ("ERROR", parse("NOSUCH:NSE"))
    assert failed.text == "NOSUCH:NSE: Symbol NOSUCH not found"


def test_the_single_forms_of_subscribe_replies():
    p = opened()
    single = {"type": "subscription", "status": "success", "symbol": "TCS", "exchange": "NSE", "mode": 3}
    assert p.receive(frame(single), NOW) == [Subscribed(parse("TCS:NSE"), DEPTH, single)]
    no_mode = {"type": "subscription", "symbol": "TCS", "exchange": "NSE", "status": "success"}
    assert p.receive(frame(no_mode), NOW) == [Subscribed(parse("TCS:NSE"), None, no_mode)]
    oaws_error = {
        "type": "error",
        "status": "error",
        "code": SYMBOL_NOT_FOUND,
        "message": "INFY:NSE is not in the recording",
        "symbol": "INFY",
        "exchange": "NSE",
    }
    (error,) = p.receive(frame(oaws_error), NOW)
    assert error.instrument == INFY and error.text == "INFY:NSE is not in the recording"
    seed_error = {"type": "subscription", "status": "error", "symbol": "INFY", "exchange": "NSE"}
    (error,) = p.receive(frame(seed_error), NOW)
    assert (error.code, error.message, error.instrument) == ("ERROR", "error", INFY)


def test_a_whole_request_refused_is_one_error_without_an_instrument():
    p = opened()
    for reply in (
        {"type": "subscribe", "status": "error", "message": "3 of 3 instruments failed", "subscriptions": []},
        {"type": "subscribe", "subscriptions": "nonsense", "status": "error", "code": "LIMIT_EXCEEDED"},
    ):
        (error,) = p.receive(frame(reply), NOW)
        assert isinstance(error, ServerError) and error.instrument is None and error.raw == reply


def test_an_unsubscribe_reply_in_oaws_and_openalgo_shapes_is_one_result_per_instrument():
    p = opened()
    oaws_reply = {
        "type": "unsubscribe",
        "status": "success",
        "subscriptions": [
            {"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "status": "success"},
            {"symbol": "INFY", "exchange": "NSE", "status": "success", "message": "was not subscribed"},
        ],
    }
    assert p.receive(frame(oaws_reply), NOW) == [
        Unsubscribed(REL, DEPTH, oaws_reply),
        Unsubscribed(INFY, None, oaws_reply),
    ]
    openalgo_reply = {
        "type": "unsubscribe",
        "status": "partial",
        "message": "Unsubscription processing complete",
        "successful": [{"symbol": "RELIANCE", "exchange": "NSE", "status": "success", "broker": "angel"}],
        "failed": [{"symbol": "INFY", "exchange": "NSE", "status": "error", "message": "Unsubscription failed"}],
    }
    ok, failed = p.receive(frame(openalgo_reply), NOW)
    assert ok == Unsubscribed(REL, None, openalgo_reply)
    assert isinstance(failed, ServerError) and failed.instrument == INFY and failed.message == "Unsubscription failed"
    single = {"type": "unsubscription", "status": "success", "symbol": "RELIANCE", "exchange": "NSE"}
    assert p.receive(frame(single), NOW) == [Unsubscribed(REL, None, single)]


@pytest.mark.parametrize(
    ("reply", "fatal"),
    [
        ({"status": "error", "code": NOT_AUTHENTICATED, "message": "You must authenticate first"}, True),
        ({"type": "error", "status": "error", "code": NOT_AUTHENTICATED, "message": "authenticate first"}, True),
        ({"status": "error", "code": "INVALID_PARAMETERS", "message": "At least one symbol must be specified"}, False),
        ({"type": "error", "status": "error", "code": "BROKER_ERROR", "message": "Broker adapter not found"}, False),
        ({"status": "error"}, False),
    ],
)
def test_errors_with_or_without_a_type_are_classified_by_their_code(reply, fatal):
    (error,) = opened().receive(frame(reply), NOW)
    assert type(error) is ServerError and error.fatal is fatal
    assert (error.code, error.message) == (reply.get("code", "ERROR"), reply.get("message", "error"))


def test_other_replies_are_typed_where_a_client_acts_on_them():
    p = opened()
    pong = {"type": "pong", "status": "success", "server_timestamp": 5, "timestamp": 4}
    info = {"type": "broker_info", "status": "success", "broker": "sim", "adapter_status": "connected"}
    subs = {"type": "subscriptions", "status": "success", "count": 0, "subscriptions": []}
    hello = {"type": "welcome"}
    again = {"type": "auth", "status": "success"}
    events = p.receive(frame([pong, info, subs, hello, again]), NOW)
    assert events == [Pong(pong), BrokerInfo(info), Reply(subs), Reply(hello), Authenticated(again)]
    assert [type(e) for e in events] == [Pong, BrokerInfo, Reply, Reply, Authenticated]
    assert all(isinstance(e, Reply) for e in events)  # callers that take any reply still see them


def test_only_a_close_for_want_of_authentication_is_fatal():
    assert fatal_close(4401)
    assert not any(fatal_close(code) for code in (None, 1000, 1001, 1006, 1008, 1011, 4000))


# Against the server half ----------------------------------------------------------
def exchange(client: ClientProtocol, server: Session) -> list:
    """Deliver the client's requests to the server and the replies back; the client's events."""
    events = []
    for request in client.requests_to_send():
        for reply in server.handle(encode(request)).replies:
            events.extend(client.receive(orjson.dumps(reply), NOW))
    return events


def test_against_the_server_half_authentication_then_every_mode_subscribed():
    client, server = ClientProtocol(api_key="secret"), Session(api_key="secret")
    client.subscribe([REL, INFY], QUOTE)
    client.subscribe([REL], DEPTH)
    client.connection_made()
    (auth,) = exchange(client, server)
    assert isinstance(auth, Authenticated)
    events = exchange(client, server)
    assert {(e.instrument, e.mode) for e in events} == {(REL, QUOTE), (INFY, QUOTE), (REL, DEPTH)}
    assert all(isinstance(e, Subscribed) for e in events)
    assert server.subs == client.wanted


def test_against_the_server_half_a_wrong_key_fails_and_nothing_is_subscribed():
    client, server = ClientProtocol(api_key="wrong"), Session(api_key="secret")
    client.subscribe([REL], QUOTE)
    client.connection_made()
    (failed,) = exchange(client, server)
    assert isinstance(failed, AuthFailed) and failed.fatal and failed.code == AUTHENTICATION_ERROR
    assert exchange(client, server) == [] and server.subs == {}


pairs = st.tuples(st.sampled_from([REL, INFY, NIFTY, parse("TCS:NSE")]), st.sampled_from([LTP, QUOTE, DEPTH]))
operations = st.lists(
    st.tuples(
        st.sampled_from(["subscribe", "subscribe_depth_20", "unsubscribe", "unsubscribe_all_modes", "reconnect"]), pairs
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_against_the_server_half_the_server_holds_what_the_client_wants(ops):
    client, server = ClientProtocol(), Session(depths=lambda: (5, 20))
    client.connection_made()
    for op, (instrument, mode) in ops:
        if op == "subscribe":
            client.subscribe([instrument], mode)
        elif op == "subscribe_depth_20":
            client.subscribe([instrument], DEPTH, 20)
        elif op == "unsubscribe":
            client.unsubscribe([instrument], mode)
        elif op == "unsubscribe_all_modes":
            client.unsubscribe([instrument])
        else:  # a new connection: a new session on the server
            client.connection_lost()
            server = Session(depths=lambda: (5, 20))
            client.connection_made()
        for event in exchange(client, server):
            assert isinstance(event, (Subscribed, Unsubscribed)) and event.mode in (LTP, QUOTE, DEPTH)
        assert server.subs == client.wanted and server.deep == client.depths


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=15,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["market_data", "subscribe", "subscription", "unsubscribe", "auth", "error", None]),
        "status": st.sampled_from(["success", "error", "partial", None, 1]),
        "symbol": st.sampled_from(["RELIANCE", "", None, 3, "x" * 70]),
        "exchange": st.sampled_from(["NSE", "MARS", None]),
        "mode": st.sampled_from([1, 2, 3, 0, "LTP", None, True, [1]]),
        "data": json_values,
        "subscriptions": json_values,
        "successful": json_values,
        "failed": json_values,
        "code": json_values,
        "message": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(messages | json_values, max_size=4), st.booleans())
def test_whatever_a_server_sends_makes_well_formed_events(batch, authenticating):
    p = ClientProtocol(api_key="k" if authenticating else None)
    p.connection_made()
    for event in p.receive(json.dumps(batch), NOW):
        if isinstance(event, Tick):
            assert isinstance(event.instrument, Instrument) and event.mode in (1, 2, 3) and isinstance(event.data, dict)
        elif isinstance(event, ServerError):
            assert isinstance(event.code, str) and isinstance(event.message, str) and str(event)
        elif isinstance(event, (Subscribed, Unsubscribed)):
            assert isinstance(event.instrument, Instrument) and event.mode in (None, 1, 2, 3)
        else:
            assert isinstance(event, Reply) and isinstance(event.body, dict)


def test_the_client_half_loads_no_io_library():
    code = (
        "import sys, oaws.protocol.client; print(sorted({'asyncio', 'websockets', 'zmq', 'socket'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_depth_20_is_asked_for_with_its_depth_and_again_after_a_reconnect():
    client = opened()
    client.subscribe([REL], DEPTH, 20)
    client.subscribe([INFY], DEPTH)
    (deep, five) = client.requests_to_send()
    assert deep == {"action": "subscribe", "mode": DEPTH, "depth": 20, "symbols": symbols(REL)}
    assert five["depth"] == 5 and five["symbols"] == symbols(INFY)
    client.subscribe([REL], DEPTH, 20)
    assert client.requests_to_send() == []  # held already
    client.connection_lost()
    client.connection_made()
    assert [(r["mode"], r["depth"], r["symbols"]) for r in client.requests_to_send()] == [
        (DEPTH, 5, symbols(INFY)),
        (DEPTH, 20, symbols(REL)),
    ]


def test_depth_at_another_depth_is_asked_for_again_and_unsubscribe_forgets_the_depth():
    client = opened()
    client.subscribe([REL], DEPTH, 20)
    client.subscribe([REL], DEPTH)
    assert [r["depth"] for r in client.requests_to_send()] == [20, 5] and client.depths == {}
    client.subscribe([REL], DEPTH, 20)
    client.unsubscribe([REL], DEPTH)
    assert client.depths == {} and client.wanted == {}


# Order updates -------------------------------------------------------------------------
def test_subscribe_orders_goes_out_once_and_again_after_a_reconnect_after_authenticating():
    p = ClientProtocol(api_key="k")
    p.subscribe_orders()  # before any connection: remembered
    p.connection_made()
    assert p.requests_to_send() == [{"action": "authenticate", "api_key": "k"}]
    p.receive(orjson.dumps({"type": "auth", "status": "success"}), NOW)
    assert p.requests_to_send() == [{"action": "subscribe_orders"}]
    p.subscribe_orders()
    assert p.requests_to_send() == []

    def reconnect() -> list[dict]:
        p.connection_lost()
        p.connection_made()
        assert p.requests_to_send() == [{"action": "authenticate", "api_key": "k"}]
        p.receive(orjson.dumps({"type": "auth", "status": "success"}), NOW)
        return p.requests_to_send()

    assert reconnect() == [{"action": "subscribe_orders"}]
    p.unsubscribe_orders()
    assert p.requests_to_send() == [{"action": "unsubscribe_orders"}]
    assert reconnect() == []


def test_an_order_update_is_an_event_with_the_whole_message():
    p = ClientProtocol()
    p.connection_made()
    message = {"type": "order_update", "orderid": "SIM000001", "order_status": "complete", "symbol": "RELIANCE"}
    (event,) = p.receive(orjson.dumps(message), NOW)
    assert isinstance(event, OrderUpdate)
    assert (event.orderid, event.status, event.message, event.received_ns) == ("SIM000001", "complete", message, NOW)
    (batched,) = p.receive(orjson.dumps([message]), NOW)
    assert isinstance(batched, OrderUpdate)


def test_the_order_replies_of_the_server_half_are_plain_replies():
    p, session = ClientProtocol(), Session()
    p.connection_made()
    p.subscribe_orders()
    (request,) = p.requests_to_send()
    (reply,) = session.handle(encode(request)).replies
    assert session.orders
    (event,) = p.receive(orjson.dumps(reply), NOW)
    assert type(event) is Reply and event.body["type"] == "subscribe_orders"
