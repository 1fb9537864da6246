"""The server half of the client protocol, driven without any socket (oaws.protocol.server).

The reply shapes of every request are in the scenario table (test_server_parity.py);
these are the behaviours behind them: state, changes, snapshots, limits, the two families.
"""

import orjson
import pytest

from oaws.instruments import Instrument, Stream
from oaws.protocol.codes import Limits, Refused
from oaws.protocol.server import Change, Quota, Session


def req(**body):
    return orjson.dumps(body).decode()


RELIANCE = Instrument("RELIANCE", "NSE")
NIFTY = Instrument("NIFTY", "NSE_INDEX")


def openalgo(**kwargs) -> Session:
    """A session whose client authenticated: an OpenAlgo client."""
    s = Session(**kwargs)
    (reply,) = s.handle(req(action="authenticate", api_key=kwargs.get("api_key") or "any")).replies
    assert reply["status"] == "success" and s.openalgo
    return s


def test_malformed_json_is_an_error_and_session_stays_usable():
    s = Session()
    (reply,) = s.handle("{not json").replies
    assert reply == {"type": "error", "status": "error", "code": "INVALID_JSON", "message": "Invalid JSON message"}
    (reply,) = s.handle(req(action="ping")).replies
    assert reply["type"] == "pong"


@pytest.mark.parametrize("frame", ["[]", "42", '"subscribe"', "null"])
def test_non_object_json_is_invalid_json(frame):
    (reply,) = Session().handle(frame).replies
    assert reply["code"] == "INVALID_JSON"


def test_a_binary_frame_holding_json_is_processed_like_openalgo():
    (reply,) = Session().handle(b'{"action":"ping"}').replies
    assert reply["type"] == "pong"
    (reply,) = Session().handle(b"\xff\xfe not utf-8").replies
    assert reply["code"] == "INVALID_JSON"


@pytest.mark.parametrize("action", [None, "dance", 7, "", "PING", "Subscribe"])
def test_unknown_action_names_it_as_openalgo_does(action):
    (reply,) = Session().handle(req(action=action)).replies
    assert reply["code"] == "INVALID_ACTION"
    assert reply["message"] == f"Invalid action: {action or None}"  # "" falls back to "type", absent


def test_action_may_be_given_as_type_like_openalgo():
    (reply,) = Session().handle(req(type="ping")).replies
    assert reply["type"] == "pong"


def test_authentication_required_when_key_set_but_ping_and_broker_list_are_not():
    s = Session(api_key="sekret")
    (reply,) = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE")).replies
    assert reply["code"] == "NOT_AUTHENTICATED" and reply["message"] == "You must authenticate first"
    assert s.handle(req(action="ping")).replies[0]["type"] == "pong"
    assert s.handle(req(action="get_supported_brokers")).replies[0]["type"] == "supported_brokers"
    assert s.handle(req(action="get_broker_info")).replies[0]["code"] == "NOT_AUTHENTICATED"
    (reply,) = s.handle(req(action="authenticate", api_key="wrong")).replies
    assert reply["code"] == "AUTHENTICATION_ERROR" and reply["message"] == "Invalid API key" and s.failed_auth == 1
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
    assert out.replies[0]["type"] == "subscribe"
    # a wrong key later does not undo the authentication, as in OpenAlgo
    s.handle(req(action="authenticate", api_key="wrong"))
    assert s.handle(req(action="get_broker_info")).replies[0]["type"] == "broker_info"


def test_a_missing_key_is_refused_even_without_a_configured_one():
    s = Session()
    (reply,) = s.handle(req(action="authenticate")).replies
    assert reply["code"] == "AUTHENTICATION_ERROR" and reply["message"] == "API key is required"
    assert not s.openalgo


def test_without_key_any_key_authenticates():
    (reply,) = Session().handle(req(action="authenticate", api_key="anything")).replies
    assert reply["status"] == "success"


def test_seed_single_subscribe_reply_and_change():
    s = Session()
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1))
    assert out.replies == [
        {"type": "subscription", "status": "success", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1}
    ]
    assert out.changes == [Change(RELIANCE, 1, True)]
    assert out.snapshots == [Stream(RELIANCE, 1)]
    assert not s.openalgo


def test_openalgo_single_subscribe_gets_the_combined_reply():
    s = openalgo()
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1, depth=5))
    assert out.replies == [
        {
            "type": "subscribe",
            "status": "success",
            "subscriptions": [
                {
                    "symbol": "RELIANCE",
                    "exchange": "NSE",
                    "status": "success",
                    "mode": "LTP",
                    "depth": 5,
                    "broker": "sim",
                }
            ],
            "message": "Subscription processing complete",
            "broker": "sim",
        }
    ]
    assert out.changes == [Change(RELIANCE, 1, True)]


def test_default_mode_is_quote_and_labels_any_case():
    s = Session()
    assert s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE")).replies[0]["mode"] == 2
    assert s.handle(req(action="subscribe", symbol="INFY", exchange="nse", mode=" depth ")).replies[0]["mode"] == 3
    assert s.handle(req(action="subscribe", symbol="TCS", exchange="NSE", mode="Ltp")).replies[0]["mode"] == 1


@pytest.mark.parametrize(
    "mode,message",
    [
        (9, "Invalid mode 9; expected 1 (LTP), 2 (Quote), or 3 (Depth)"),
        ("2", "Invalid mode '2'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"),
        (True, "Mode must be int or str, got bool (True)"),
        (2.0, "Mode must be int or str, got float"),
        ([1], "Mode must be int or str, got list"),
    ],
)
def test_invalid_mode_is_a_top_level_error_with_openalgos_message(mode, message):
    for s in (Session(), openalgo()):
        (reply,) = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=mode)).replies
        assert (reply["code"], reply["message"]) == ("INVALID_MODE", message)
        assert s.subs == {}


def test_a_null_mode_is_not_given_for_seed_clients_and_invalid_for_openalgo_ones():
    s = Session()
    assert s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=None)).replies[0]["mode"] == 2
    out = s.handle(req(action="unsubscribe", symbol="RELIANCE", exchange="NSE", mode=None))
    assert out.replies[0]["status"] == "success" and RELIANCE not in s.subs
    (reply,) = openalgo().handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=None)).replies
    assert (reply["code"], reply["message"]) == ("INVALID_MODE", "Mode must be int or str, got NoneType")


def test_subscribe_reads_the_request_mode_only_as_openalgo_does():
    s = openalgo()
    out = s.handle(req(action="subscribe", mode=3, symbols=[{"symbol": "INFY", "exchange": "NSE", "mode": 1}]))
    assert out.replies[0]["subscriptions"][0]["mode"] == "Depth"
    assert s.subs == {Instrument("INFY", "NSE"): {3}}


def test_request_id_is_echoed_in_every_form():
    s = Session()
    (ok,) = s.handle(req(action="subscribe", symbol="TCS", exchange="NSE", request_id="r2")).replies
    assert ok["type"] == "subscription" and ok["status"] == "success" and ok["request_id"] == "r2"
    (bad,) = s.handle(req(action="subscribe", symbol="TCS", exchange="MOON", request_id="r3")).replies
    assert bad["status"] == "error" and bad["request_id"] == "r3"
    (gone,) = s.handle(req(action="unsubscribe", symbol="TCS", exchange="NSE", request_id=4)).replies
    assert gone["status"] == "success" and gone["request_id"] == 4
    (bulk,) = s.handle(req(action="unsubscribe_all", request_id=[5])).replies
    assert bulk["request_id"] == [5]
    (none,) = s.handle(req(action="subscribe", symbol="TCS", exchange="NSE", request_id=None)).replies
    assert "request_id" not in none  # OpenAlgo echoes it only when it is not null


def refuse_xyz(instrument):
    if instrument.symbol == "XYZ":
        raise Refused("SYMBOL_NOT_FOUND", "XYZ is not listed")


def test_symbols_form_partial_with_request_id():
    s = openalgo(check=refuse_xyz)
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
    assert ok == {
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "status": "success",
        "mode": "LTP",
        "depth": 5,
        "broker": "sim",
    }
    assert bad == {
        "symbol": "XYZ",
        "exchange": "NSE",
        "status": "error",
        "message": "XYZ is not listed",
        "broker": "sim",
        "code": "SYMBOL_NOT_FOUND",
    }
    assert out.changes == [Change(RELIANCE, 1, True)]


def test_all_failed_is_partial_like_openalgo():
    out = openalgo().handle(req(action="subscribe", symbols=[{"symbol": "RELIANCE", "exchange": "MARS"}]))
    assert out.replies[0]["status"] == "partial"
    assert out.replies[0]["subscriptions"][0]["code"] == "SYMBOL_NOT_FOUND"


def test_entries_without_symbol_or_exchange_are_passed_over_like_openalgo():
    s = openalgo()
    entries = [{"symbol": "RELIANCE"}, {"exchange": "NSE"}, {"symbol": "", "exchange": "NSE"}, "INFY", 5, {}]
    (reply,) = s.handle(req(action="subscribe", symbols=[*entries, {"symbol": "TCS", "exchange": "NSE"}])).replies
    assert reply["status"] == "success" and [e["symbol"] for e in reply["subscriptions"]] == ["TCS"]
    (reply,) = s.handle(req(action="subscribe", symbols=entries)).replies
    assert reply["status"] == "success" and reply["subscriptions"] == []


def test_seed_single_form_error_is_an_error_reply():
    (reply,) = Session().handle(req(action="subscribe", symbol="RELIANCE", exchange="MARS")).replies
    assert reply["type"] == "error" and reply["code"] == "SYMBOL_NOT_FOUND" and reply["symbol"] == "RELIANCE"


@pytest.mark.parametrize(
    "body,code",
    [
        ({"action": "subscribe"}, "INVALID_PARAMETERS"),
        ({"action": "subscribe", "symbol": "RELIANCE"}, "INVALID_PARAMETERS"),
        ({"action": "subscribe", "symbols": "RELIANCE"}, "INVALID_PARAMETERS"),
        ({"action": "subscribe", "symbols": {"symbol": "RELIANCE", "exchange": "NSE"}}, "INVALID_PARAMETERS"),
        ({"action": "subscribe", "symbols": []}, "INVALID_PARAMETERS"),
        ({"action": "subscribe", "symbol": "RELIANCE", "exchange": "NSE", "mode": 9}, "INVALID_MODE"),
        ({"action": "subscribe", "symbol": "RELIANCE", "exchange": "NSE", "mode": True}, "INVALID_MODE"),
        ({"action": "unsubscribe"}, "INVALID_PARAMETERS"),
        ({"action": "unsubscribe", "symbol": "RELIANCE", "exchange": "NSE", "mode": "fast"}, "INVALID_MODE"),
    ],
)
def test_bad_parameters(body, code):
    s = Session()
    (reply,) = s.handle(orjson.dumps(body).decode()).replies
    assert reply["code"] == code and reply["status"] == "error"
    assert s.subs == {}


def test_depth_is_ignored_outside_depth_mode_and_refused_per_entry_in_it():
    s = openalgo(depths=lambda: (5,))
    (reply,) = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1, depth=20)).replies
    assert reply["status"] == "success" and reply["subscriptions"][0]["depth"] == 20  # echoed, as OpenAlgo does
    (reply,) = s.handle(
        req(action="subscribe", mode=3, depth=20, symbols=[{"symbol": "INFY", "exchange": "NSE"}])
    ).replies
    assert reply["status"] == "partial"
    assert reply["subscriptions"][0]["code"] == "INVALID_DEPTH"
    assert reply["subscriptions"][0]["message"] == "Invalid depth level 20. Must be 5"
    assert s.subs == {RELIANCE: {1}}
    (reply,) = (
        openalgo(depths=lambda: (5, 20))
        .handle(req(action="subscribe", mode="Depth", depth=20, symbol="INFY", exchange="NSE"))
        .replies
    )
    assert reply["status"] == "success" and reply["subscriptions"][0]["depth"] == 20


def test_each_mode_held_is_a_route_of_its_own():
    s = Session()
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1))
    assert out.changes == [Change(RELIANCE, 1, True)]
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3))
    assert out.changes == [Change(RELIANCE, 3, True)]  # LTP stays: one message per tick per mode
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3))
    assert out.changes == [] and out.snapshots == [Stream(RELIANCE, 3)]  # held already: its snapshot again
    out = s.handle(req(action="unsubscribe", symbol="RELIANCE", exchange="NSE", mode=3))
    assert out.changes == [Change(RELIANCE, 3, False)] and s.subs == {RELIANCE: {1}}
    assert out.replies[0] == {
        "type": "unsubscription",
        "status": "success",
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "mode": 3,
    }


def held_in_every_mode(s: Session) -> None:
    for mode in (1, 2, 3):
        s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=mode))
    assert s.subs == {RELIANCE: {1, 2, 3}} and s.pairs() == 3


def test_seed_unsubscribe_without_mode_drops_every_mode():
    s = Session()
    held_in_every_mode(s)
    out = s.handle(req(action="unsubscribe", symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}]))
    assert set(out.changes) == {Change(RELIANCE, m, False) for m in (1, 2, 3)} and s.subs == {}
    assert out.replies[0]["type"] == "unsubscribe" and out.replies[0]["status"] == "success"
    held_in_every_mode(s)
    (reply,) = s.handle(req(action="unsubscribe", symbol="RELIANCE", exchange="NSE")).replies
    assert reply["type"] == "unsubscription" and "mode" not in reply and s.subs == {} and s.pairs() == 0


def test_openalgo_unsubscribe_without_mode_means_quote_only():
    s = openalgo()
    held_in_every_mode(s)
    out = s.handle(req(action="unsubscribe", symbol="RELIANCE", exchange="NSE"))
    assert out.changes == [Change(RELIANCE, 2, False)] and s.subs == {RELIANCE: {1, 3}}
    out = s.handle(req(action="unsubscribe", symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}]))
    assert out.changes == [] and out.replies[0]["successful"][0]["message"] == "was not subscribed"


def test_batch_unsubscribe_reads_each_entrys_mode_and_openalgo_ignores_the_request_mode():
    s = openalgo()
    held_in_every_mode(s)
    out = s.handle(req(action="unsubscribe", mode=1, symbols=[{"symbol": "RELIANCE", "exchange": "NSE", "mode": 3}]))
    assert out.changes == [Change(RELIANCE, 3, False)]
    out = s.handle(req(action="unsubscribe", mode=1, symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}]))
    assert out.changes == [Change(RELIANCE, 2, False)]  # the request's mode 1 is not read: Quote
    seed = Session()
    held_in_every_mode(seed)
    out = seed.handle(req(action="unsubscribe", mode=1, symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}]))
    assert out.changes == [Change(RELIANCE, 1, False)]  # a seed client's request mode stands in


def test_batch_unsubscribe_with_a_bad_mode_fails_that_entry_only():
    s = openalgo()
    held_in_every_mode(s)
    (reply,) = s.handle(
        req(
            action="unsubscribe",
            symbols=[
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 1},
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 7},
            ],
        )
    ).replies
    assert reply["status"] == "partial" and s.subs == {RELIANCE: {2, 3}}
    assert reply["failed"][0]["code"] == "INVALID_MODE" and reply["failed"][0]["symbol"] == "RELIANCE"
    (reply,) = s.handle(
        req(action="unsubscribe", symbols=[{"symbol": "RELIANCE", "exchange": "NSE", "mode": 0}])
    ).replies
    assert reply["status"] == "error" and reply["successful"] == []


def test_unsubscribe_what_is_not_held_succeeds_and_says_so():
    (reply,) = Session().handle(req(action="unsubscribe", symbol="RELIANCE", exchange="NSE")).replies
    assert reply["status"] == "success" and reply["message"] == "was not subscribed"
    (reply,) = openalgo().handle(req(action="unsubscribe", symbol="XYZ", exchange="MOON")).replies
    assert reply["status"] == "success" and reply["successful"][0]["symbol"] == "XYZ"


@pytest.mark.parametrize("body", [{"action": "unsubscribe_all"}, {"type": "unsubscribe_all"}])
def test_unsubscribe_all_and_get_subscriptions(body):
    s = openalgo()
    s.handle(
        req(
            action="subscribe",
            mode=1,
            symbols=[{"symbol": "RELIANCE", "exchange": "NSE"}, {"symbol": "NIFTY", "exchange": "NSE_INDEX"}],
        )
    )
    s.handle(req(action="subscribe", mode=2, symbol="NIFTY", exchange="NSE_INDEX"))
    (reply,) = s.handle(req(action="get_subscriptions")).replies
    assert reply["type"] == "subscriptions" and reply["count"] == 3
    assert {"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 1} in reply["subscriptions"]
    out = s.handle(orjson.dumps(body))
    assert set(out.changes) == {Change(RELIANCE, 1, False), Change(NIFTY, 1, False), Change(NIFTY, 2, False)}
    assert s.subs == {} and s.pairs() == 0 and out.work == 3
    (reply,) = out.replies
    assert reply["type"] == "unsubscribe" and reply["status"] == "success" and reply["failed"] == []
    assert {(e["symbol"], e["mode"]) for e in reply["successful"]} == {
        ("RELIANCE", "LTP"),
        ("NIFTY", "LTP"),
        ("NIFTY", "Quote"),
    }


def test_ping_echoes_timestamp_and_ping_id():
    s = Session(clock_ms=lambda: 1234)
    (reply,) = s.handle(req(action="ping", timestamp=99, _pingId="a")).replies
    assert reply == {
        "type": "pong",
        "status": "success",
        "server_timestamp": 1234,
        "client_timestamp": 99,
        "timestamp": 99,
        "_pingId": "a",
    }
    (reply,) = s.handle(req(action="ping")).replies
    assert reply == {"type": "pong", "status": "success", "server_timestamp": 1234}


def test_broker_info_carries_user_id_and_the_feeds_figures():
    s = Session(broker=lambda: "angel", broker_info=lambda: {"adapter_status": "connected", "logins": 1})
    (reply,) = s.handle(req(action="get_broker_info")).replies
    assert reply == {
        "type": "broker_info",
        "status": "success",
        "broker": "angel",
        "adapter_status": "connected",
        "user_id": "oaws",
        "logins": 1,
    }


def test_supported_brokers():
    (reply,) = Session(brokers=lambda: ["angel", "sim"]).handle(req(action="get_supported_brokers")).replies
    assert reply == {"type": "supported_brokers", "status": "success", "brokers": ["angel", "sim"], "count": 2}


def test_order_updates_are_subscribed_and_unsubscribed():
    s = openalgo()
    (reply,) = s.handle(req(action="subscribe_orders", request_id="o")).replies
    assert reply == {
        "type": "subscribe_orders",
        "status": "success",
        "message": "Subscribed to order updates",
        "request_id": "o",
    }
    assert s.orders
    (reply,) = s.handle(req(action="unsubscribe_orders")).replies
    assert reply == {"type": "unsubscribe_orders", "status": "success", "message": "Unsubscribed from order updates"}
    assert not s.orders
    assert Session(api_key="k").handle(req(action="subscribe_orders")).replies[0]["code"] == "NOT_AUTHENTICATED"


def test_no_cap_per_request_only_per_client():
    s = openalgo(limits=Limits(per_client=1001))
    many = [{"symbol": f"S{i}", "exchange": "NSE"} for i in range(1002)]
    out = s.handle(req(action="subscribe", mode=1, symbols=many))
    (reply,) = out.replies
    assert reply["status"] == "partial" and out.work == 1002
    assert [e["status"] for e in reply["subscriptions"]].count("success") == 1001
    assert reply["subscriptions"][-1]["code"] == "LIMIT_EXCEEDED"
    # a mode already held does not count again
    (reply,) = s.handle(req(action="subscribe", mode=1, symbol="S0", exchange="NSE")).replies
    assert reply["status"] == "success"


def test_past_the_brokers_quota_entries_are_refused_the_rest_served():
    served = {Stream(RELIANCE, 1)}
    quota = Quota(3, used=lambda: len(served), served=lambda stream: stream in served)
    s = openalgo(quota=quota)
    symbols = [{"symbol": name, "exchange": "NSE"} for name in ("RELIANCE", "A", "B", "C")]
    (reply,) = s.handle(req(action="subscribe", mode=1, symbols=symbols)).replies
    # RELIANCE is held by another client already: it costs nothing; A and B fill the quota
    assert [e["status"] for e in reply["subscriptions"]] == ["success", "success", "success", "error"]
    assert reply["subscriptions"][3]["code"] == "LIMIT_EXCEEDED" and reply["status"] == "partial"


def test_a_check_that_fails_unexpectedly_fails_its_entry():
    def broken(instrument):
        raise RuntimeError("master not loaded")

    (reply,) = openalgo(check=broken).handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE")).replies
    assert (
        reply["subscriptions"][0]["code"] == "BROKER_ERROR"
        and "master not loaded" in reply["subscriptions"][0]["message"]
    )


def test_drop_takes_back_one_mode():
    s = Session()
    held_in_every_mode(s)
    assert s.drop(Stream(RELIANCE, 2)) == Change(RELIANCE, 2, False)
    assert s.drop(Stream(RELIANCE, 2)) is None and s.subs == {RELIANCE: {1, 3}}


def test_close_returns_every_change():
    s = Session()
    s.handle(req(action="subscribe", mode=3, symbol="RELIANCE", exchange="NSE"))
    s.handle(req(action="subscribe", mode=1, symbol="RELIANCE", exchange="NSE"))
    assert set(s.close()) == {Change(RELIANCE, 3, False), Change(RELIANCE, 1, False)} and s.pairs() == 0


def test_exchange_symbol_case_normalised():
    s = Session()
    out = s.handle(req(action="subscribe", symbol="reliance", exchange="nse"))
    assert out.replies[0]["symbol"] == "RELIANCE" and out.changes[0].instrument == RELIANCE


# Depth at 20 levels a side: a stream of its own ------------------------------------
def deep_session() -> Session:
    return openalgo(depths=lambda: (5, 20))


def test_depth_20_is_held_as_its_own_stream():
    s = deep_session()
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20))
    assert out.changes == [Change(RELIANCE, 3, True, 20)] and out.snapshots == [Stream(RELIANCE, 3, 20)]
    (entry,) = out.replies[0]["subscriptions"]
    assert entry["status"] == "success" and entry["mode"] == "Depth" and entry["depth"] == 20
    assert s.stream(RELIANCE, 3) == Stream(RELIANCE, 3, 20) and s.pairs() == 1
    (reply,) = s.handle(req(action="get_subscriptions")).replies
    assert reply["subscriptions"] == [{"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "depth": 20}]


def test_depth_20_again_is_its_snapshot_again_and_another_depth_moves_the_stream():
    s = deep_session()
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20))
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20))
    assert out.changes == [] and out.snapshots == [Stream(RELIANCE, 3, 20)]
    out = s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3))
    assert out.changes == [Change(RELIANCE, 3, False, 20), Change(RELIANCE, 3, True)]
    assert out.snapshots == [Stream(RELIANCE, 3)] and s.pairs() == 1 and s.deep == {}


def test_unsubscribing_depth_drops_the_depth_held():
    s = deep_session()
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=1))
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20))
    out = s.handle(req(action="unsubscribe", symbols=[{"symbol": "RELIANCE", "exchange": "NSE", "mode": 3}]))
    assert out.changes == [Change(RELIANCE, 3, False, 20)] and s.subs == {RELIANCE: {1}} and s.deep == {}
    (entry,) = out.replies[0]["successful"]
    assert entry["mode"] == "Depth" and entry["depth"] == 20


def test_closing_and_unsubscribe_all_release_depth_20():
    s = deep_session()
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20))
    assert s.close() == [Change(RELIANCE, 3, False, 20)]
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20))
    out = s.handle(req(action="unsubscribe_all"))
    assert out.changes == [Change(RELIANCE, 3, False, 20)] and s.subs == {} and s.pairs() == 0


def test_a_refusal_takes_back_only_the_depth_refused():
    s = deep_session()
    s.handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20))
    assert s.drop(Stream(RELIANCE, 3)) is None  # five levels: not what this client holds
    assert s.drop(Stream(RELIANCE, 3, 20)) == Change(RELIANCE, 3, False, 20) and s.subs == {}


def test_a_depth_not_offered_fails_each_entry_and_a_float_depth_is_its_integer():
    s = openalgo(depths=lambda: (5,))
    symbols = [{"symbol": "RELIANCE", "exchange": "NSE"}, {"symbol": "INFY", "exchange": "NSE"}]
    (reply,) = s.handle(req(action="subscribe", mode=3, depth=20, symbols=symbols)).replies
    assert [e["code"] for e in reply["subscriptions"]] == ["INVALID_DEPTH", "INVALID_DEPTH"] and s.subs == {}
    out = deep_session().handle(req(action="subscribe", symbol="RELIANCE", exchange="NSE", mode=3, depth=20.0))
    assert out.changes == [Change(RELIANCE, 3, True, 20)]


def test_a_large_subscribe_is_handled_in_slices_with_the_reply_of_a_whole_one():
    """Issue 14 #7: a 1,000-instrument subscribe held the loop; ``steps`` yields between
    slices of 200 entries, and the outcome is exactly ``handle``'s."""
    symbols = [{"symbol": f"S{i}", "exchange": "NSE"} for i in range(1000)]
    frame = orjson.dumps({"action": "subscribe", "mode": 1, "symbols": symbols, "request_id": "r"})
    steps = Session().steps(frame)
    slices = 0
    while True:
        try:
            next(steps)
            slices += 1
        except StopIteration as done:
            sliced = done.value
            break
    assert slices == 4
    whole = Session().handle(frame)
    assert sliced.replies == whole.replies and sliced.changes == whole.changes
    assert sliced.snapshots == whole.snapshots and sliced.work == whole.work == 1000


def test_streams_taken_by_a_request_in_slices_count_against_the_quota_for_others():
    routes: set[Stream] = set()
    quota = Quota(5, lambda: len(routes), lambda s: s in routes)
    a, b = Session(quota=quota), Session(quota=quota)
    symbols = [{"symbol": f"S{i}", "exchange": "NSE"} for i in range(400)]
    steps = a.steps(orjson.dumps({"action": "subscribe", "mode": 1, "symbols": symbols}))
    next(steps)  # a's first slice took all 5 (its other entries will be refused)
    assert quota.pending == 5
    reply = b.handle(orjson.dumps({"action": "subscribe", "mode": 1, "symbol": "X", "exchange": "NSE"}))
    assert reply.replies[0]["code"] == "LIMIT_EXCEEDED" and not reply.changes
    with pytest.raises(StopIteration):
        next(steps)
    assert quota.pending == 0


@pytest.mark.parametrize("depth", [254, 256, 600, 1023])
def test_every_reply_to_values_nested_deep_can_be_encoded(depth):
    """Issue 14 #12: such values parse but could not be encoded again in the reply."""
    nested = "[" * (depth - 2) + "1" + "]" * (depth - 2)
    session = Session()
    for frame in (
        '{"action":"ping","timestamp":%s,"_pingId":%s}' % (nested, nested),
        '{"action":%s,"request_id":%s}' % (nested, nested),
        '{"action":"subscribe","mode":%s,"symbol":"A","exchange":"NSE"}' % nested,
        '{"action":"subscribe","depth":%s,"symbols":[{"symbol":"A","exchange":"NSE"}]}' % nested,
    ):
        for reply in session.handle(frame).replies:
            orjson.dumps(reply)


def test_an_instrument_whose_topic_reads_back_as_another_is_refused_at_subscribe():
    """Issue 14 item 4: INDEX_NIFTY:NSE would travel as NSE_INDEX_NIFTY_QUOTE, NIFTY:NSE_INDEX's
    topic. It is refused, per instrument, with OpenAlgo's code for a symbol it cannot
    serve; the request's other instruments are served, and no route is asked for it."""
    s = openalgo()
    symbols = [
        {"symbol": "INDEX_NIFTY", "exchange": "NSE"},
        {"symbol": "index_sensex", "exchange": "bse"},
        {"symbol": "INDEX_X", "exchange": "MCX"},
        {"symbol": "NIFTY", "exchange": "NSE_INDEX"},
    ]
    for mode in (1, 2, 3):
        out = s.handle(req(action="subscribe", symbols=symbols, mode=mode))
        (reply,) = out.replies
        assert reply["status"] == "partial"
        refused = reply["subscriptions"][:3]
        assert [(r["status"], r["code"]) for r in refused] == [("error", "SYMBOL_NOT_FOUND")] * 3
        assert "that of NIFTY:NSE_INDEX" in refused[0]["message"]
        assert "that of SENSEX:BSE_INDEX" in refused[1]["message"]
        assert reply["subscriptions"][3]["status"] == "success"
        assert out.changes == [Change(NIFTY, mode, True)]
    # the seed form says it as an error of its own
    (reply,) = Session().handle(req(action="subscribe", symbol="INDEX_NIFTY", exchange="NSE")).replies
    assert (reply["type"], reply["code"], reply["symbol"]) == ("error", "SYMBOL_NOT_FOUND", "INDEX_NIFTY")
    # dropping it drops nothing else
    out = s.handle(req(action="unsubscribe", symbols=[{"symbol": "INDEX_NIFTY", "exchange": "NSE", "mode": 2}]))
    assert out.changes == [] and s.subs == {NIFTY: {1, 2, 3}}
