"""Property-based tests of the client protocol: whatever a client sends, the session
answers with well-formed replies and keeps a consistent state."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oaws.protocol.codes import ACTIONS
from oaws.protocol.server import Session

CODES = {
    "INVALID_JSON",
    "INVALID_ACTION",
    "INVALID_PARAMETERS",
    "INVALID_MODE",
    "INVALID_DEPTH",
    "NOT_AUTHENTICATED",
    "AUTHENTICATION_ERROR",
    "SYMBOL_NOT_FOUND",
    "LIMIT_EXCEEDED",
    "BROKER_ERROR",
    "SERVER_ERROR",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
symbols = st.sampled_from(["RELIANCE", "INFY", "NIFTY", "M&M", "", "x" * 80, "RELIANCE\n", 5, None, ["A"]])
exchanges = st.sampled_from(["NSE", "nse", "NSE_INDEX", "BSE", "MOON", "", 1, None])
#: entries that name an instrument, so that sequences subscribe and unsubscribe often
instruments = st.fixed_dictionaries(
    {"symbol": st.sampled_from(["RELIANCE", "INFY", "NIFTY"]), "exchange": st.sampled_from(["NSE", "NSE_INDEX"])},
    optional={"mode": st.sampled_from([1, 2, 3, "LTP", None, 9])},
)
modes = st.sampled_from([1, 2, 3, 0, 4, -1, "LTP", "quote", "Depth", "fast", None, True, 2.0, "2", [1]])
entries = (
    instruments
    | st.fixed_dictionaries({}, optional={"symbol": symbols, "exchange": exchanges, "mode": modes})
    | json_values
)
anything = st.fixed_dictionaries(
    {"action": st.sampled_from([*ACTIONS, "subscribe", "subscribe", "unsubscribe", "dance", "", None, 3])},
    optional={
        "symbol": symbols,
        "exchange": exchanges,
        "mode": modes,
        "depth": st.sampled_from([5, 20, 0, "5", None]),
        "symbols": st.lists(entries, max_size=6) | json_values,
        "api_key": json_values | st.just("k"),
        "request_id": json_values,
        "timestamp": json_values,
    },
)
#: requests a client would send, with a wrong field now and then: they change the state
plausible = st.fixed_dictionaries(
    {"action": st.sampled_from(["subscribe", "unsubscribe", "unsubscribe_all", "authenticate"])},
    optional={
        "symbols": st.lists(instruments, min_size=1, max_size=4),
        "mode": st.sampled_from([1, 2, 3, "Quote", None, 0]),
        "api_key": st.just("k"),
    },
) | st.builds(
    lambda action, entry: {"action": action, **entry},
    st.sampled_from(["subscribe", "unsubscribe"]),
    instruments,
)
requests = plausible | anything


def check_reply(reply: dict) -> None:
    assert isinstance(reply, dict) and isinstance(reply.get("type"), str)
    orjson.dumps(reply)  # always serialisable
    assert reply["status"] in ("success", "partial", "error")
    if reply["type"] == "error":
        assert reply["status"] == "error"
        assert reply["code"] in CODES and isinstance(reply["message"], str) and reply["message"]
    entries = {
        "subscribe": reply.get("subscriptions", []),
        "unsubscribe": reply.get("successful", []) + reply.get("failed", []),
    }.get(reply["type"], [])
    for entry in entries:
        assert entry["status"] in ("success", "error") and "broker" in entry
        if entry["status"] == "error":
            assert entry["code"] in CODES and entry["message"]
        elif reply["type"] == "subscribe":
            assert entry["mode"] in ("LTP", "Quote", "Depth")


def check_state(session: Session) -> None:
    for instrument, held in session.subs.items():
        assert held and held <= {1, 2, 3}
        assert instrument.symbol == instrument.symbol.upper()
    assert session.pairs() == sum(len(held) for held in session.subs.values())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests, min_size=1, max_size=8), st.booleans())
def test_any_sequence_of_requests_gets_valid_replies(batch, with_key):
    session = Session(api_key="k" if with_key else None, depths=lambda: (5, 20))
    routed: set = set()
    for request in batch:
        out = session.handle(orjson.dumps(request).decode())
        assert len(out.replies) == 1
        check_reply(out.replies[0])
        for change in out.changes:
            # changes chain: a pair is joined only when not held, left only when held
            pair = change.stream
            assert (pair in routed) != change.on
            (routed.add if change.on else routed.discard)(pair)
        assert set(out.snapshots) <= routed
        check_state(session)
    assert routed == {session.stream(i, m) for i, modes in session.subs.items() for m in modes}
    closing = session.close()
    assert not any(c.on for c in closing) and session.subs == {} and len(closing) == len(routed)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_never_raises(text):
    out = Session().handle(text)
    assert len(out.replies) == 1
    check_reply(out.replies[0])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100))
def test_any_binary_frame_gets_one_valid_reply(data):
    (reply,) = Session().handle(data).replies
    check_reply(reply)
