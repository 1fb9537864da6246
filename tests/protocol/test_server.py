"""The client protocol, driven without any socket (oaws.protocol)."""

import orjson
import pytest

from oaws.instruments import Instrument
from oaws.protocol.codes import Limits, Refused
from oaws.protocol.server import Change, Session


def req(**body):
    return orjson.dumps(body).decode()


RELIANCE = Instrument("RELIANCE", "NSE")
NIFTY = Instrument("NIFTY", "NSE_INDEX")


def test_malformed_json_is_an_error_and_session_stays_usable():
    s = Session()
    (reply,) = s.handle("{not json").replies
    assert reply["type"] == "error" and reply["code"] == "INVALID_JSON"
    (reply,) = s.handle(req(action="ping")).replies
    assert reply["type"] == "pong"


@pytest.mark.parametrize("frame", ["[]", "42", '"subscribe"', "null"])
def test_non_object_json_is_invalid_json(frame):
    (reply,) = Session().handle(frame).replies
    assert reply["code"] == "INVALID_JSON"


def test_binary_frame_is_refused():
    (reply,) = Session().handle(b'{"action":"ping"}').replies
    assert reply["code"] == "INVALID_JSON" and "binary" in reply["message"]


@pytest.mark.parametrize("action", [None, "dance", 7, ""])
def test_unknown_action(action):
    (reply,) = Session().handle(req(action=action)).replies
    assert reply["code"] == "INVALID_ACTION"


def test_action_may_be_given_as_type_like_openalgo():
    (reply,) = Session().handle(req(type="ping")).replies
    assert reply["type"] == "pong"


def test_authentication_required_when_key_set():
    s = Session(api_key="sekret")
    (reply,) = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE")).replies
    assert reply["code"] == "NOT_AUTHENTICATED"
    (reply,) = s.handle(req(action="authenticate", api_key="wrong")).replies
    assert reply["code"] == "AUTHENTICATION_ERROR" and s.failed_auth == 1
    (reply,) = s.handle(req(action="auth", apikey="sekret")).replies
    assert reply == {
        "type": "auth",
        "status": "success",
        "message": "Authentication successful",
        "broker": "sim",
        "user_id": "oaws",
        "supported_features": {"ltp": True, "quote": True, "depth": True},
    }
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE"))
    assert out.replies[0]["type"] == "subscription"


def test_without_key_any_key_authenticates():
    (reply,) = Session().handle(req(action="authenticate", api_key="anything")).replies
    assert reply["status"] == "success"


def test_single_subscribe_reply_and_change():
    s = Session()
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1))
    assert out.replies == [
        {"type": "subscription", "status": "success", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1}
    ]
    assert out.changes == [Change(RELIANCE, None, 1)]
    assert out.snapshots == [RELIANCE]


def test_default_mode_is_quote_and_string_modes_any_case():
    s = Session()
    assert s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE")).replies[0]["mode"] == 2
    assert s.handle(req(action="subscribe", symbol="INFY", exchange="nse", mode="depth")).replies[0]["mode"] == 3
    assert s.handle(req(action="subscribe", symbol="TCS", exchange="NSE", mode="Ltp")).replies[0]["mode"] == 1


def test_a_null_mode_counts_as_not_given():
    s = Session()
    assert s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=None)).replies[0]["mode"] == 2
    # an instrument's null mode falls back to the request's mode
    out = s.handle(req(action="subscribe", mode=3, symbols=[{"symbol": "INFY", "exchange": "NSE", "mode": None}]))
    assert out.replies[0]["subscriptions"][0]["mode"] == 3, out.replies
    # on unsubscribe, null means every mode
    out = s.handle(req(action="unsubscribe", symbol="RELIANCE", exchange="NSE", mode=None))
    assert out.replies[0]["status"] == "success" and RELIANCE not in s.subs


def test_request_id_is_echoed_in_every_form():
    s = Session()
    (ok,) = s.handle(req(action="subscribe", symbol="TCS", exchange="NSE", request_id="r2")).replies
    assert ok["type"] == "subscription" and ok["status"] == "success" and ok["request_id"] == "r2"
    (bad,) = s.handle(req(action="subscribe", symbol="TCS", exchange="MOON", request_id="r3")).replies
    assert bad["status"] == "error" and bad["request_id"] == "r3"
    (gone,) = s.handle(req(action="unsubscribe", symbol="TCS", exchange="NSE", request_id=4)).replies
    assert gone["status"] == "success" and gone["request_id"] == 4


def test_symbols_form_partial_with_request_id():
    s = Session(
        check=lambda i: (_ for _ in ()).throw(Refused("SYMBOL_NOT_FOUND", "no such")) if i.symbol == "XYZ" else None
    )
    out = s.handle(
        req(
            action="subscribe",
            request_id=7,
            mode="LTP",
            symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}, {"symbol": "XYZ", "exchange": "NSE"}],
        )
    )
    (reply,) = out.replies
    assert reply["type"] == "subscribe" and reply["status"] == "partial" and reply["request_id"] == 7
    ok, bad = reply["subscriptions"]
    assert ok == {"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "status": "success"}
    assert bad["status"] == "error" and bad["code"] == "SYMBOL_NOT_FOUND" and bad["symbol"] == "XYZ"
    assert [c.instrument for c in out.changes] == [RELIANCE]


def test_all_failed_is_error_status():
    out = Session().handle(req(action="subscribe", symbols=[{"symbol": "RELIANCE", "exchange": "MARS"}]))
    assert out.replies[0]["status"] == "error"
    assert out.replies[0]["subscriptions"][0]["code"] == "SYMBOL_NOT_FOUND"


def test_single_form_error_is_an_error_reply():
    (reply,) = Session().handle(req(action="subscribe", symbol="RELIANCE", exchange="MARS")).replies
    assert reply["type"] == "error" and reply["code"] == "SYMBOL_NOT_FOUND" and reply["symbol"] == "RELIANCE"


@pytest.mark.parametrize(
    "body,code",
    [
        ({"action": "subscribe"}, "INVALID_PARAMETERS"),
        ({"action": "subscribe", "symbols": "RELIANCE"}, "INVALID_PARAMETERS"),
        ({"action": "subscribe", "symbols": []}, "INVALID_PARAMETERS"),
        ({"action": "subscribe", "symbol": "RELIANCE", "exchange": "NSE", "mode": 9}, "INVALID_MODE"),
        ({"action": "subscribe", "symbol": "RELIANCE", "exchange": "NSE", "mode": True}, "INVALID_MODE"),
        ({"action": "subscribe", "symbol": "RELIANCE", "exchange": "NSE", "depth": 50}, "INVALID_DEPTH"),
        ({"action": "subscribe", "symbol": 5, "exchange": "NSE"}, "INVALID_PARAMETERS"),
        ({"action": "unsubscribe"}, "INVALID_PARAMETERS"),
    ],
)
def test_bad_parameters(body, code):
    s = Session()
    (reply,) = s.handle(orjson.dumps(body).decode()).replies
    assert reply["code"] == code and reply["status"] == "error"
    assert s.subs == {}


def test_mode_hierarchy_highest_mode_wins_and_falls_back():
    s = Session()
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1))
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3))
    assert out.changes == [Change(RELIANCE, 1, 3)]
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=2))
    assert out.changes == [] and s.effective(RELIANCE) == 3
    out = s.handle(req(action="unsubscribe", symbol="RELIANCE", exchange="NSE", mode=3))
    assert out.changes == [Change(RELIANCE, 3, 2)]
    assert out.replies[0] == {
        "type": "unsubscription",
        "status": "success",
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "mode": 3,
    }


def test_unsubscribe_without_mode_drops_every_mode():
    s = Session()
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1))
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=2))
    out = s.handle(req(action="unsubscribe", symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}]))
    assert out.changes == [Change(RELIANCE, 2, None)] and s.subs == {}
    assert out.replies[0]["type"] == "unsubscribe" and out.replies[0]["status"] == "success"


def test_unsubscribe_per_entry_mode_like_openalgo_sdk():
    s = Session()
    s.handle(req(action="subscribe", mode=1, symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}]))
    s.handle(req(action="subscribe", mode=2, symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}]))
    out = s.handle(req(action="unsubscribe", symbols=[{"symbol": "RELIANCE", "exchange": "NSE", "mode": 2}]))
    assert out.changes == [Change(RELIANCE, 2, 1)]


def test_unsubscribe_what_is_not_held_succeeds_and_says_so():
    (reply,) = Session().handle(req(action="unsubscribe", symbol="RELIANCE", exchange="NSE")).replies
    assert reply["status"] == "success" and reply["message"] == "was not subscribed"


def test_unsubscribe_all_and_get_subscriptions():
    s = Session()
    s.handle(
        req(
            action="subscribe",
            mode=1,
            symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}, {"symbol": "NIFTY", "exchange": "NSE_INDEX"}],
        )
    )
    (reply,) = s.handle(req(action="get_subscriptions")).replies
    assert reply["type"] == "subscriptions" and reply["count"] == 2
    assert {"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 1} in reply["subscriptions"]
    out = s.handle(req(action="unsubscribe_all"))
    assert {c.instrument for c in out.changes} == {RELIANCE, NIFTY}
    assert all(c.new is None for c in out.changes) and s.subs == {}


def test_ping_echoes_timestamp():
    s = Session(clock_ms=lambda: 1234)
    (reply,) = s.handle(req(action="ping", timestamp=99, _pingId="a")).replies
    assert reply == {
        "type": "pong",
        "status": "success",
        "server_timestamp": 1234,
        "timestamp": 99,
        "client_timestamp": 99,
        "_pingId": "a",
    }


def test_broker_info():
    s = Session(broker=lambda: "angel", broker_info=lambda: {"adapter_status": "connected"})
    (reply,) = s.handle(req(action="get_broker_info")).replies
    assert reply == {"type": "broker_info", "status": "success", "broker": "angel", "adapter_status": "connected"}


def test_limits_per_request_and_per_client():
    s = Session(limits=Limits(per_request=3, per_client=2))
    many = [{"symbol": f"S{i}", "exchange": "NSE"} for i in range(4)]
    (reply,) = s.handle(req(action="subscribe", symbols=many)).replies
    assert reply["code"] == "LIMIT_EXCEEDED" and s.subs == {}
    (reply,) = s.handle(req(action="subscribe", symbols=many[:3])).replies
    assert reply["status"] == "partial"
    assert [e["status"] for e in reply["subscriptions"]] == ["success", "success", "error"]
    assert reply["subscriptions"][2]["code"] == "LIMIT_EXCEEDED"
    # a mode already held does not count again
    (reply,) = s.handle(req(action="subscribe", symbol="S0", exchange="NSE")).replies
    assert reply["status"] == "success"


def test_close_returns_every_change():
    s = Session()
    s.handle(req(action="subscribe", mode=3, symbol="RELIANCE", exchange="NSE"))
    assert s.close() == [Change(RELIANCE, 3, None)]


def test_exchange_symbol_order_and_case_normalised():
    s = Session()
    out = s.handle(req(action="subscribe", symbol="reliance", exchange="nse"))
    assert out.replies[0]["symbol"] == "RELIANCE" and out.changes[0].instrument == RELIANCE
