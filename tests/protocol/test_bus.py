"""The bus's message format without a bus: stamping, reading and stripping ``fseq``."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oaws.protocol.bus import CONTROL_PREFIX, INFO_TOPIC, REJECT_TOPIC, read_fseq, stamp_fseq, strip_fseq, tick_fseq

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
ticks = st.dictionaries(st.text().filter(lambda k: k != "fseq"), json_values, max_size=6)


def test_control_topics_share_the_prefix_the_proxy_subscribes_to():
    assert INFO_TOPIC.startswith(CONTROL_PREFIX) and REJECT_TOPIC.startswith(CONTROL_PREFIX)
    assert not CONTROL_PREFIX.decode()[0].isalpha()  # no exchange starts with it


def test_stamp_puts_the_count_first_and_keeps_every_field():
    stamped = stamp_fseq(b'{"symbol":"RELIANCE","ltp":1424.5}', 7)
    assert stamped.startswith(b'{"fseq":7,')
    assert orjson.loads(stamped) == {"fseq": 7, "symbol": "RELIANCE", "ltp": 1424.5}


@pytest.mark.parametrize("empty", [b"{}", b"{ }", b"{\n}"])
def test_stamp_of_an_empty_object_is_still_json(empty):
    assert orjson.loads(stamp_fseq(empty, 3)) == {"fseq": 3}
    assert read_fseq(stamp_fseq(empty, 3)) == 3


@pytest.mark.parametrize("payload", [b"", b"[1,2]", b'"text"', b"not json", b" {}"])
def test_stamp_leaves_what_is_not_an_object_alone(payload):
    assert stamp_fseq(payload, 1) is payload


@given(ticks, st.integers(1, 10**18))
def test_what_is_stamped_reads_back(tick, n):
    stamped = stamp_fseq(orjson.dumps(tick), n)
    assert read_fseq(stamped) == n
    assert orjson.loads(stamped) == {"fseq": n, **tick}


@pytest.mark.parametrize(
    ("payload", "fseq"),
    [
        (b'{"fseq":1,"ltp":1.0}', 1),
        (b'{"fseq":42}', 42),
        (b'{"fseq": 5 ,"ltp":1}', 5),
        (b'{"fseq":9999999999999999999,"ltp":1}', 9999999999999999999),  # 19 digits: the most it reads
    ],
)
def test_read_finds_a_stamped_count(payload, fseq):
    assert read_fseq(payload) == fseq


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"ltp":1.0}', id="no fseq"),
        pytest.param(b'{"ltp":1.0,"fseq":3}', id="fseq not first"),
        pytest.param(b'{"fseq":"3","ltp":1}', id="a string"),
        pytest.param(b'{"fseq":-3,"ltp":1}', id="negative"),
        pytest.param(b'{"fseq":1.5,"ltp":1}', id="a float"),
        pytest.param(b'{"fseq":1e3}', id="an exponent"),
        pytest.param(b'{"fseq":true}', id="a boolean"),
        pytest.param(b'{"fseq":null}', id="null"),
        pytest.param(b'{"fseq":[1],"ltp":1}', id="a list"),
        pytest.param(b'{"fseq":}', id="no value"),
        pytest.param(b'{"fseq":,}', id="an empty value"),
        pytest.param(b'{"fseq":', id="cut short"),
        pytest.param(b'{"fseq":12', id="cut short after digits"),
        pytest.param(b'{"fseq":' + b"9" * 20 + b',"ltp":1}', id="20 digits"),
        pytest.param(b'{"fseq":' + b"1" * 10_000, id="endless digits"),
        pytest.param('{"fseq":\u0663,"ltp":1}'.encode(), id="non-ASCII digit"),
        pytest.param(b"{}", id="empty object"),
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not JSON"),
        pytest.param(b"\xff\xfe\x00", id="not UTF-8"),
    ],
)
def test_read_gives_none_for_anything_but_a_stamped_count(payload):
    assert read_fseq(payload) is None


@given(st.binary(max_size=64))
def test_read_never_raises(payload):
    read_fseq(payload)
    read_fseq(b'{"fseq":' + payload)


def test_tick_fseq_takes_only_an_integer_count():
    assert tick_fseq({"fseq": 4, "ltp": 1.0}) == 4
    for tick in ({}, {"ltp": 1.0}, {"fseq": True}, {"fseq": "4"}, {"fseq": 4.0}, {"fseq": None}):
        assert tick_fseq(tick) is None, tick


def test_strip_drops_the_count_and_nothing_else():
    tick = {"fseq": 41, "symbol": "RELIANCE", "seq": 7}
    strip_fseq(tick)
    assert tick == {"symbol": "RELIANCE", "seq": 7}
    strip_fseq(tick)  # none left: no error
    assert tick == {"symbol": "RELIANCE", "seq": 7}


def test_what_a_feed_hub_announces_and_refuses_passes_the_checks():
    from oaws.protocol.bus import info_error, reject_error

    info = {"fid": "1a2b3c4d", "broker": "angel", "depths": [5, 20], "orders": False, "adapter_status": "connected"}
    assert info_error(info) is None and info_error({"fid": "x", "broker": "sim"}) is None
    reject = {"fid": "1a2b3c4d", "topic": "NSE_INDEX_NIFTY_DEPTH_20", "symbol": "NIFTY", "exchange": "NSE_INDEX"}
    assert reject_error({**reject, "mode": 3, "code": "LIMIT_EXCEEDED", "message": "no room"}) is None


@pytest.mark.parametrize(
    "change",
    [{"fid": ""}, {"fid": 1}, {"fid": "a b"}, {"broker": "x" * 33}, {"broker": "a.b"}, {"broker": None},
     {"depths": 5}, {"depths": [5, 7]}, {"depths": [True]}, {"depths": [5.0]}, {"depths": [5] * 9},
     {"adapter_status": {}}, {"adapter_status": "x" * 65}],
)  # fmt: skip
def test_an_announcement_with_a_field_out_of_shape_is_refused(change):
    from oaws.protocol.bus import info_error

    assert info_error({"fid": "f1", "broker": "sim", "depths": [5], **change}) is not None


@pytest.mark.parametrize(
    "change",
    [{"fid": None}, {"topic": 5}, {"topic": "NSE_RELIANCE"}, {"topic": "_oaws.info"}, {"symbol": "TCS"},
     {"exchange": "BSE"}, {"mode": 2}, {"mode": "1"}, {"mode": True}, {"code": "lower"}, {"code": ["X"]},
     {"message": None}, {"message": "x" * 1001}],
)  # fmt: skip
def test_a_refusal_with_a_field_out_of_shape_is_refused(change):
    from oaws.protocol.bus import reject_error

    good = {"fid": "f1", "topic": "NSE_RELIANCE_LTP", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1}
    assert reject_error(good) is None
    assert reject_error({**good, **change}) is not None
