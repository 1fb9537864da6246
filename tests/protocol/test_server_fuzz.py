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
modes = st.sampled_from([1, 2, 3, 0, 4, -1, "LTP", "quote", "Depth", "fast", None, True, 2.0, "2", [1]])
entries = st.fixed_dictionaries({}, optional={"symbol": symbols, "exchange": exchanges, "mode": modes}) | json_values
requests = st.fixed_dictionaries(
    {"action": st.sampled_from([*ACTIONS, "dance", "", None, 3])},
    optional={
        "symbol": symbols,
        "exchange": exchanges,
        "mode": modes,
        "depth": st.sampled_from([5, 20, 0, "5", None]),
        "symbols": st.lists(entries, max_size=6) | json_values,
        "api_key": json_values,
        "request_id": json_values,
        "timestamp": json_values,
    },
)


def check_reply(reply: dict) -> None:
    assert isinstance(reply, dict) and isinstance(reply.get("type"), str)
    orjson.dumps(reply)  # always serialisable
    if reply.get("status") == "error" and reply["type"] == "error":
        assert reply["code"] in CODES and isinstance(reply["message"], str) and reply["message"]
    for entry in reply.get("subscriptions", []) if reply["type"] in ("subscribe", "unsubscribe") else []:
        assert entry["status"] in ("success", "error")
        if entry["status"] == "error":
            assert entry["code"] in CODES


def check_state(session: Session) -> None:
    for instrument, held in session.subs.items():
        assert held and held <= {1, 2, 3}
        assert instrument.symbol == instrument.symbol.upper()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests, min_size=1, max_size=8), st.booleans())
def test_any_sequence_of_requests_gets_valid_replies(batch, with_key):
    session = Session(api_key="k" if with_key else None)
    routed: dict = {}
    for request in batch:
        out = session.handle(orjson.dumps(request).decode())
        assert len(out.replies) == 1
        check_reply(out.replies[0])
        for change in out.changes:
            # changes chain: each starts where the previous one for that instrument left off
            assert routed.get(change.instrument) == change.old
            routed[change.instrument] = change.new
        check_state(session)
    assert {i: m for i, m in routed.items() if m is not None} == {i: max(m) for i, m in session.subs.items()}
    closing = session.close()
    assert all(c.new is None for c in closing) and session.subs == {}


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_never_raises(text):
    out = Session().handle(text)
    assert len(out.replies) == 1
    check_reply(out.replies[0])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100))
def test_binary_frames_are_refused(data):
    (reply,) = Session().handle(data).replies
    assert reply["code"] == "INVALID_JSON"
