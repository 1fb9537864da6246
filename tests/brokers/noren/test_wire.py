"""Noren's JSON messages: strings to numbers, pc against change, the merge of partial updates, garbage.

The merge tests are written so that an adapter building each tick from one message alone
fails them: the update messages below leave out fields (``lp`` included) whose values the
tick must still carry from the snapshot.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oaws.brokers.noren import wire
from oaws.brokers.noren.wire import Book, Malformed
from oaws.config import IST
from oaws.ticks import FIELDS

FT = 1_733_300_000  # 2024-12-04 13:43:20 IST

SNAPSHOT: dict[str, str] = {
    "t": "dk",
    "e": "NSE",
    "tk": "2885",
    "ts": "RELIANCE-EQ",
    "lp": "1290.50",
    "pc": "1.25",
    "o": "1280.00",
    "h": "1295.00",
    "l": "1275.10",
    "c": "1274.57",
    "v": "4567890",
    "ap": "1286.40",
    "ltq": "17",
    "ltt": "13:43:18",
    "ft": str(FT),
    "tbq": "123456",
    "tsq": "654321",
    "uc": "1402.00",
    "lc": "1147.10",
    "52h": "1608.80",
    "52l": "1201.50",
    **{f"bp{i}": f"{1290.45 - 0.05 * (i - 1):.2f}" for i in range(1, 6)},
    **{f"bq{i}": str(100 * i) for i in range(1, 6)},
    **{f"bo{i}": str(i) for i in range(1, 6)},
    **{f"sp{i}": f"{1290.55 + 0.05 * (i - 1):.2f}" for i in range(1, 6)},
    **{f"sq{i}": str(200 * i) for i in range(1, 6)},
    **{f"so{i}": str(i + 5) for i in range(1, 6)},
}


def frame(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def merged_tick(*messages: dict[str, Any], depth: bool = True) -> dict[str, Any]:
    book = Book()
    state: dict[str, Any] = {}
    for body in messages:
        state = book.apply(wire.parse(frame(body)))
    return wire.tick(state, "RELIANCE", "NSE", 1, depth=depth)


# Strings to numbers ----------------------------------------------------------------------
def test_every_value_is_read_from_its_string() -> None:
    t = merged_tick(SNAPSHOT)
    assert t["ltp"] == 1290.5 and isinstance(t["ltp"], float)
    assert (t["open"], t["high"], t["low"], t["close"]) == (1280.0, 1295.0, 1275.1, 1274.57)
    assert t["volume"] == 4567890 and isinstance(t["volume"], int)
    assert t["average_price"] == 1286.4
    assert (t["last_trade_quantity"], t["last_quantity"]) == (17, 17)
    assert (t["total_buy_quantity"], t["total_sell_quantity"]) == (123456, 654321)
    assert (t["upper_circuit"], t["lower_circuit"]) == (1402.0, 1147.1)
    assert (t["week_52_high"], t["week_52_low"]) == (1608.8, 1201.5)
    assert t["depth"]["buy"][0] == {"price": 1290.45, "quantity": 100, "orders": 1}
    assert t["depth"]["sell"][4] == {"price": pytest.approx(1290.75), "quantity": 1000, "orders": 10}
    assert len(t["depth"]["buy"]) == len(t["depth"]["sell"]) == 5
    # every SPEC §2 Depth field Noren carries is there (oi only for derivatives)
    assert set(FIELDS[3]) - set(t) == {"oi"}


def test_pc_is_the_percentage_and_change_is_rupees_against_the_previous_close() -> None:
    t = merged_tick(SNAPSHOT)
    assert t["change_percent"] == 1.25  # Noren's pc, as sent (not recomputed)
    assert t["change"] == pytest.approx(1290.5 - 1274.57)  # no absolute change on the wire
    assert t["close"] == 1274.57  # c is the previous close


def test_change_percent_is_computed_only_when_noren_sends_no_pc() -> None:
    body = {k: v for k, v in SNAPSHOT.items() if k != "pc"}
    t = merged_tick(body)
    assert t["change_percent"] == round((1290.5 - 1274.57) * 100 / 1274.57, 2)


def test_ft_is_seconds_and_ltt_the_trade_time_on_that_ist_day() -> None:
    t = merged_tick(SNAPSHOT)
    expected = datetime(2024, 12, 4, 13, 43, 18, tzinfo=IST).timestamp() * 1000
    assert t["ltt"] == expected
    no_ltt = merged_tick({k: v for k, v in SNAPSHOT.items() if k != "ltt"})
    assert no_ltt["ltt"] == FT * 1000


def test_a_trade_time_after_the_feed_time_is_the_day_before() -> None:
    body = dict(SNAPSHOT, ltt="23:59:58", ft=str(int(datetime(2024, 12, 5, 0, 0, 3, tzinfo=IST).timestamp())))
    assert merged_tick(body)["ltt"] == datetime(2024, 12, 4, 23, 59, 58, tzinfo=IST).timestamp() * 1000


# The merge ------------------------------------------------------------------------------
def test_an_update_without_lp_keeps_the_snapshot_price_and_everything_else() -> None:
    update = {"t": "df", "e": "NSE", "tk": "2885", "bq1": "150", "v": "4567900", "ft": str(FT + 1)}
    t = merged_tick(SNAPSHOT, update)
    assert t["ltp"] == 1290.5  # lp missing from the update: still the snapshot's
    assert t["volume"] == 4567900 and t["depth"]["buy"][0]["quantity"] == 150
    assert t["depth"]["buy"][0]["price"] == 1290.45 and t["depth"]["sell"][0]["quantity"] == 200
    assert (t["open"], t["close"], t["upper_circuit"], t["week_52_low"]) == (1280.0, 1274.57, 1402.0, 1201.5)
    assert t["change_percent"] == 1.25 and t["total_sell_quantity"] == 654321


def test_updates_accumulate_and_the_latest_value_wins() -> None:
    updates = [
        {"t": "df", "e": "NSE", "tk": "2885", "lp": "1291.00", "pc": "1.29"},
        {"t": "df", "e": "NSE", "tk": "2885", "h": "1296.00"},
        {"t": "df", "e": "NSE", "tk": "2885", "sp3": "1290.70", "so3": "4"},
    ]
    t = merged_tick(SNAPSHOT, *updates)
    assert (t["ltp"], t["high"], t["change_percent"]) == (1291.0, 1296.0, 1.29)
    assert t["change"] == pytest.approx(1291.0 - 1274.57)
    assert t["depth"]["sell"][2] == {"price": 1290.7, "quantity": 600, "orders": 4}
    assert t["low"] == 1275.1


def test_a_snapshot_replaces_the_state() -> None:
    again = {"t": "tk", "e": "NSE", "tk": "2885", "lp": "1300.00", "c": "1290.00", "ft": str(FT + 9)}
    t = merged_tick(SNAPSHOT, again, depth=False)
    assert (t["ltp"], t["close"]) == (1300.0, 1290.0)
    assert "open" not in t and "volume" not in t  # what the new snapshot did not carry is gone


def test_a_field_never_sent_is_left_out_not_zero() -> None:
    t = merged_tick({"t": "tk", "e": "NSE", "tk": "2885", "lp": "12.5"}, depth=False)
    assert t["ltp"] == 12.5
    for absent in ("open", "high", "low", "close", "volume", "change", "average_price", "ltt"):
        assert absent not in t


def test_scrips_are_kept_apart_by_exchange_and_token() -> None:
    book = Book()
    book.apply(wire.parse(frame(SNAPSHOT)))
    book.apply(wire.parse(frame({"t": "tk", "e": "BSE", "tk": "2885", "lp": "7.0"})))
    book.apply(wire.parse(frame({"t": "tf", "e": "BSE", "tk": "2885", "lp": "7.5"})))
    assert book.get(("NSE", "2885"))["lp"] == 1290.5
    assert book.get(("BSE", "2885"))["lp"] == 7.5


def test_open_interest_and_its_change_against_the_previous_days() -> None:
    body = {"t": "dk", "e": "NFO", "tk": "35001", "lp": "24010.0", "oi": "1000", "poi": "800"}
    t = merged_tick(body)
    assert t["oi"] == 1000 and t["oi_change_percent"] == 25.0


# Bad fields, bad frames -----------------------------------------------------------------------
def test_a_bad_field_value_drops_that_field_not_the_tick() -> None:
    update = {"t": "df", "e": "NSE", "tk": "2885", "lp": "abc", "v": "12.5", "h": "1297.00", "bq1": "-4"}
    message = wire.parse(frame(update))
    assert message.bad_fields == 3
    t = merged_tick(SNAPSHOT, update)
    assert t["ltp"] == 1290.5 and t["volume"] == 4567890 and t["depth"]["buy"][0]["quantity"] == 100
    assert t["high"] == 1297.0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('"tk"', "not an object"),
        ('{"e": "NSE", "tk": "1"}', "no message type"),
        ('{"t": 5}', "no message type"),
        ('{"t": "zz"}', "unknown"),
        ('{"t": "tf", "tk": "2885"}', "exchange or token"),
        ('{"t": "tf", "e": "NSE", "tk": 2885}', "exchange or token"),
    ],
)
def test_malformed_frames_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(Malformed, match=why):
        wire.parse(text)


def test_numbers_instead_of_strings_are_read_but_not_booleans_or_nonsense() -> None:
    message = wire.parse('{"t":"tf","e":"NSE","tk":"1","lp":12.5,"v":100,"o":true,"h":"inf","l":"NaN","c":[1]}')
    assert message.fields == {"lp": 12.5, "v": 100}
    assert message.bad_fields == 4


def test_connect_acknowledgements() -> None:
    assert wire.parse('{"t":"ck","s":"OK","uid":"FA1"}').ok
    refused = wire.parse('{"t":"ck","s":"NOT_OK","emsg":"Session Expired :  Invalid Session Key"}')
    assert not refused.ok and refused.reason == "Session Expired : Invalid Session Key"


# Fuzz -------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)
field_names = st.sampled_from(sorted(wire.KNOWN_FIELDS)) | st.text(max_size=6)
field_values = (
    json_values
    | st.integers(min_value=-(10**30), max_value=10**30).map(str)
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.sampled_from(["", "-", " ", "1e400", "99999999999999999999999", "12:61:00", "1,000"])
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "t": st.sampled_from(sorted(wire.KNOWN)) | json_values,
        "e": st.sampled_from(["NSE", "NFO"]) | json_values,
        "tk": st.sampled_from(["2885", "1594"]) | json_values,
    },
).flatmap(lambda base: st.dictionaries(field_names, field_values, max_size=12).map(lambda extra: {**extra, **base}))


def _plausible(tick: dict[str, Any]) -> None:
    """Every field of the tick has the type and range SPEC §2 gives it."""
    for name in ("ltp", "open", "high", "low", "close", "average_price", "change", "upper_circuit", "lower_circuit"):
        if name in tick:
            assert isinstance(tick[name], float) and math.isfinite(tick[name]), name
    for name in ("volume", "last_trade_quantity", "total_buy_quantity", "total_sell_quantity", "oi"):
        if name in tick:
            assert type(tick[name]) is int and 0 <= tick[name] <= wire.MAX_COUNT, name
    for side in tick.get("depth", {}).values():
        for level in side:
            assert type(level["quantity"]) is int and type(level["orders"]) is int
            assert isinstance(level["price"], float) and math.isfinite(level["price"])
    orjson.dumps(tick)  # always serialisable


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=6))
def test_random_messages_never_raise_anything_but_malformed_and_never_give_a_wrong_field(
    bodies: list[dict[str, Any]],
) -> None:
    book = Book()
    for body in bodies:
        try:
            text = orjson.dumps(body).decode()
        except TypeError:
            continue
        try:
            message = wire.parse(text)
        except Malformed:
            continue
        if message.t not in wire.MARKET:
            continue
        state = book.apply(message)
        for name, value in message.fields.items():
            assert state[name] == value
            raw = body[name]
            if name in wire.PRICE_FIELDS:
                assert value == float(raw)  # exactly what Noren said
            elif name in wire.COUNT_FIELDS:
                assert value == int(float(raw))
        _plausible(wire.tick(state, "X", "NSE", 1, depth=True))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_random_bytes_are_malformed_or_a_message(data: bytes | str) -> None:
    try:
        wire.parse(data)
    except Malformed:
        pass


# Requests -------------------------------------------------------------------------------------
def test_connect_messages() -> None:
    assert orjson.loads(wire.connect("FA1", "tok")) == {
        "t": "c",
        "uid": "FA1",
        "actid": "FA1",
        "susertoken": "tok",
        "source": "API",
    }
    body = orjson.loads(wire.connect_access("FA1", "acc"))
    assert body["t"] == "a" and body["accesstoken"] == "acc"


def test_subscriptions_go_in_batches_of_hash_joined_scrips() -> None:
    keys = {("NSE", str(i)) for i in range(250)}
    requests = [orjson.loads(r) for r in wire.subscribe("d", keys)]
    assert [len(r["k"].split("#")) for r in requests] == [100, 100, 50]
    assert {r["t"] for r in requests} == {"d"}
    assert {k for r in requests for k in r["k"].split("#")} == {f"NSE|{i}" for i in range(250)}
    assert orjson.loads(wire.subscribe("t", {("NSE", "2885"), ("NSE", "1594")})[0]) == {
        "t": "t",
        "k": "NSE|1594#NSE|2885",
    }
    assert orjson.loads(wire.unsubscribe("t", {("NSE", "1")})[0])["t"] == "u"
    assert orjson.loads(wire.unsubscribe("d", {("NSE", "1")})[0])["t"] == "ud"
    assert orjson.loads(wire.subscribe_orders("FA1")) == {"t": "o", "actid": "FA1"}


def test_an_index_has_no_book_so_no_depth_of_zeros() -> None:
    t = merged_tick({"t": "dk", "e": "NSE", "tk": "26000", "lp": "24350.00", "c": "24300.00", "pc": "0.21"})
    assert "depth" not in t and t["ltp"] == 24350.0 and t["mode"] == 3
