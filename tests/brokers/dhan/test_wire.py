"""Dhan's wire format: wire.py against Dhan's own parser (dhanhq 2.3.0) on generated responses, and a fuzz.

The packets are built here with ``struct`` from the layouts of Dhan's documentation, not
with ``wire.encode``; dhanhq's ``MarketFeed.process_*`` and ``FullDepth.process_data``
decode the same bytes, and both answers must agree field by field.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import struct
from datetime import datetime, timedelta, timezone

import pytest
from dhanhq import DhanContext
from dhanhq.fulldepth import FullDepth
from dhanhq.marketfeed import MarketFeed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oaws.brokers.dhan import ticks, wire

IST = timezone(timedelta(hours=5, minutes=30))
SEGMENT_BYTES = (0, 1, 2, 3, 4, 5, 7, 8)

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
segment = st.sampled_from(SEGMENT_BYTES)
price = st.floats(min_value=0, max_value=1e6, width=32, allow_nan=False, allow_infinity=False)
# a trading day's seconds, India clock counted as UTC, in 2020..2035
ltt = st.integers(1_577_836_800, 2_082_758_400)


@pytest.fixture(scope="module")
def oracles():
    """dhanhq's parsers, constructed without connecting (each makes an event loop of its own)."""
    ctx = DhanContext("1100000001", "not-a-token")
    feed = MarketFeed(ctx, [], version="v2")
    depth = FullDepth(ctx, [], depth_level=20)
    yield feed, depth
    for loop in (feed.loop, depth.loop):
        loop.close()
    asyncio.set_event_loop(None)


def p2(text: str) -> float:
    return float(text)


# Builders: code -> strategy of packed bytes -----------------------------------------------
@st.composite
def ticker(draw):
    return struct.pack("<BHBIfI", 2, 16, draw(segment), draw(u32), draw(price), draw(ltt))


@st.composite
def prev_close(draw):
    return struct.pack("<BHBIfI", 6, 16, draw(segment), draw(u32), draw(price), draw(u32))


@st.composite
def oi(draw):
    return struct.pack("<BHBII", 5, 12, draw(segment), draw(u32), draw(u32))


@st.composite
def quote(draw):
    head = (4, 50, draw(segment), draw(u32))
    body = (draw(price), draw(u16), draw(ltt), draw(price), draw(u32), draw(u32), draw(u32))
    return struct.pack("<BHBIfHIfIIIffff", *head, *body, *(draw(price) for _ in range(4)))


@st.composite
def full(draw):
    head = (8, 162, draw(segment), draw(u32))
    body = (draw(price), draw(u16), draw(ltt), draw(price), *(draw(u32) for _ in range(6)))
    ohlc = tuple(draw(price) for _ in range(4))
    levels = b"".join(
        struct.pack("<IIHHff", draw(u32), draw(u32), draw(u16), draw(u16), draw(price), draw(price)) for _ in range(5)
    )
    return struct.pack("<BHBIfHIfIIIIIIffff", *head, *body, *ohlc) + levels


@st.composite
def status(draw):
    return struct.pack("<BHBI", 7, 8, draw(segment), draw(u32))


any_response = st.one_of(ticker(), prev_close(), oi(), quote(), full(), status())


def same_time(dhan_hms: str, ours_ms: int) -> bool:
    """dhanhq shows LTT as a UTC time of day; ours is epoch ms, whose India time of day must read the same."""
    return datetime.fromtimestamp(ours_ms / 1000, IST).strftime("%H:%M:%S") == dhan_hms


def agree(dhan: dict | str, ours: wire.Response) -> None:
    """Field by field, dhanhq's dict against our response."""
    if ours.code == wire.MARKET_STATUS:
        assert dhan == "Markets Open"
        return
    assert isinstance(dhan, dict)
    assert (dhan["exchange_segment"], dhan["security_id"]) == (ours.segment, ours.security_id)
    if ours.code == wire.TICKER:
        assert dhan["type"] == "Ticker Data"
        assert p2(dhan["LTP"]) == ours.ltp
        assert same_time(dhan["LTT"], ticks.ltt_ms(ours.ltt))
    elif ours.code == wire.PREV_CLOSE:
        assert (p2(dhan["prev_close"]), dhan["prev_OI"]) == (ours.prev_close, ours.prev_oi)
    elif ours.code == wire.OI:
        assert dhan["OI"] == ours.oi
    else:
        assert dhan["type"] == ("Quote Data" if ours.code == wire.QUOTE else "Full Data")
        assert p2(dhan["LTP"]) == ours.ltp
        assert dhan["LTQ"] == ours.last_quantity
        assert same_time(dhan["LTT"], ticks.ltt_ms(ours.ltt))
        assert p2(dhan["avg_price"]) == ours.average_price
        assert dhan["volume"] == ours.volume
        assert dhan["total_sell_quantity"] == ours.total_sell_quantity
        assert dhan["total_buy_quantity"] == ours.total_buy_quantity
        for name in ("open", "close", "high", "low"):
            assert p2(dhan[name]) == getattr(ours, name), name
        if ours.code == wire.FULL:
            assert (dhan["OI"], dhan["oi_day_high"], dhan["oi_day_low"]) == (ours.oi, ours.oi_high, ours.oi_low)
            assert len(dhan["depth"]) == len(ours.depth) == 5
            for theirs, level in zip(dhan["depth"], ours.depth, strict=True):
                assert theirs["bid_quantity"] == level.bid_quantity
                assert theirs["ask_quantity"] == level.ask_quantity
                assert theirs["bid_orders"] == level.bid_orders
                assert theirs["ask_orders"] == level.ask_orders
                assert p2(theirs["bid_price"]) == level.bid_price
                assert p2(theirs["ask_price"]) == level.ask_price


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packet=any_response)
def test_every_response_agrees_with_dhanhq(oracles, packet):
    feed, _ = oracles
    decoded = wire.decode(packet)
    assert decoded.bad == 0, decoded.problems
    assert len(decoded.responses) == 1
    assert decoded.responses[0].code == packet[0]
    agree(feed.process_data(packet), decoded.responses[0])


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packets=st.lists(any_response, min_size=2, max_size=8))
def test_concatenated_responses_are_walked_by_their_length(oracles, packets):
    feed, _ = oracles
    decoded = wire.decode(b"".join(packets))
    assert decoded.bad == 0, decoded.problems
    assert [r.code for r in decoded.responses] == [p[0] for p in packets]
    for packet, ours in zip(packets, decoded.responses, strict=True):
        agree(feed.process_data(packet), ours)


@pytest.mark.parametrize("reason", [804, 805, 806, 807, 808, 809, 810, 1234])
def test_disconnect_carries_its_reason_and_one_sentence(oracles, reason):
    feed, _ = oracles
    packet = struct.pack("<BHBIH", 50, 10, 0, 0, reason)
    (response,) = wire.decode(packet).responses
    assert (response.code, response.reason) == (wire.DISCONNECT, reason)
    sentence = wire.reason_text(reason)
    assert sentence and "\n" not in sentence and not sentence.endswith(".")
    assert (reason in wire.AUTH_REASONS) == (reason in (807, 808, 809, 810))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        feed.server_disconnection(packet)
    if reason in (805, 806, 807, 808, 809):  # dhanhq knows these five; our sentence names the same cause
        key = {805: "connections", 806: "Data APIs", 807: "expired", 808: "client id", 809: "authentication"}[reason]
        assert key.lower() in printed.getvalue().lower()
        assert key.lower() in sentence.lower()


# 20-level depth ------------------------------------------------------------------------
price64 = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def depth_side(draw, code=None):
    code = code or draw(st.sampled_from((41, 51)))
    head = struct.pack("<hBBiI", 332, code, draw(st.sampled_from((1, 2))), draw(st.integers(0, 2**31 - 1)), draw(u32))
    return head + b"".join(struct.pack("<dII", draw(price64), draw(u32), draw(u32)) for _ in range(20))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sides=st.lists(depth_side(), min_size=1, max_size=4))
def test_depth_20_agrees_with_dhanhq(oracles, sides):
    _, depth = oracles
    message = b"".join(sides)
    ours = wire.decode_depth(message)
    assert ours.bad == 0, ours.problems
    remaining, theirs = message, []
    while remaining:
        update = depth.process_data(remaining)
        remaining = update.pop("remaining_data")
        theirs.append(update)
    assert len(theirs) == len(ours.responses) == len(sides)
    for dhan, side in zip(theirs, ours.responses, strict=True):
        assert dhan["type"] == ("Bid" if side.code == wire.DEPTH_BID else "Ask")
        assert side.side == ("buy" if dhan["type"] == "Bid" else "sell")
        assert (dhan["exchange_segment"], dhan["security_id"]) == (side.segment, side.security_id)
        assert len(dhan["depth"]) == len(side.levels) == 20
        for level, mine in zip(dhan["depth"], side.levels, strict=True):
            assert round(level["price"], 2) == mine.price
            assert (level["quantity"], level["orders"]) == (mine.quantity, mine.orders)


def test_depth_20_disconnect_reason_is_in_the_header():
    (response,) = wire.decode_depth(struct.pack("<hBBiI", 12, 50, 0, 0, 807)).responses
    assert (response.code, response.reason) == (wire.DISCONNECT, 807)


# Requests ------------------------------------------------------------------------------
def test_requests_batch_at_most_100_with_dhans_segment_names():
    pairs = [(1, str(i)) for i in range(1, 251)] + [(2, "35001"), (0, "13")]
    messages = wire.requests(wire.SUB_QUOTE, pairs)
    assert [m["InstrumentCount"] for m in messages] == [100, 100, 52]
    assert all(m["RequestCode"] == 17 and len(m["InstrumentList"]) == m["InstrumentCount"] for m in messages)
    listed = [(e["ExchangeSegment"], e["SecurityId"]) for m in messages for e in m["InstrumentList"]]
    assert len(listed) == len(set(listed)) == 252
    assert ("IDX_I", "13") in listed and ("NSE_FNO", "35001") in listed and ("NSE_EQ", "250") in listed
    assert wire.UNSUBSCRIBE_CODE == {15: 16, 17: 18, 21: 22, 23: 25}
    assert wire.disconnect_request() == {"RequestCode": 12}


# Fuzz ----------------------------------------------------------------------------------
def sane(r) -> bool:
    """A decoded response that could be a real one: known code and segment, finite prices."""
    if isinstance(r, wire.DepthSide):
        return r.segment in SEGMENT_BYTES and len(r.levels) == 20 and all(math.isfinite(lv.price) for lv in r.levels)
    if r.code == wire.DISCONNECT:
        return True
    prices = (r.ltp, r.average_price, r.open, r.close, r.high, r.low, r.prev_close)
    return r.code in wire.SIZES and r.segment in SEGMENT_BYTES and all(math.isfinite(p) for p in prices)


@settings(max_examples=400)
@given(data=st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    for decode in (wire.decode, wire.decode_depth):
        decoded = decode(data)
        assert all(sane(r) for r in decoded.responses)
        assert decoded.responses or decoded.bad or not data


@settings(max_examples=300)
@given(packets=st.lists(any_response, min_size=1, max_size=5), cut=st.integers(0, 10_000))
def test_a_truncated_message_keeps_its_whole_responses_only(packets, cut):
    message = b"".join(packets)
    cut %= len(message)
    decoded = wire.decode(message[:cut])
    whole, size = 0, 0
    for p in packets:
        if size + len(p) > cut:
            break
        size += len(p)
        whole += 1
    assert len(decoded.responses) == whole
    assert [wire.encode(r)[:1] for r in decoded.responses] == [p[:1] for p in packets[:whole]]
    assert decoded.bad == (1 if cut > size or cut == 0 else 0)


@settings(max_examples=300)
@given(
    packets=st.lists(any_response, min_size=1, max_size=5),
    where=st.integers(0, 10_000),
    flip=st.integers(1, 255),
)
def test_a_flipped_byte_spares_the_responses_before_it(packets, where, flip):
    """Nothing before the damage changes; a damaged header is never a tick of its own."""
    message = bytearray(b"".join(packets))
    where %= len(message)
    message[where] ^= flip
    original = wire.decode(b"".join(packets)).responses
    decoded = wire.decode(bytes(message))
    start, index = 0, 0
    while start + len(packets[index]) <= where:
        start += len(packets[index])
        index += 1
    assert decoded.responses[:index] == original[:index]
    assert all(sane(r) for r in decoded.responses)
    if where - start in (1, 2):  # the length field: that response, and all after it, are skipped
        assert len(decoded.responses) == index and decoded.bad == 1


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (struct.pack("<BHBIfI", 2, 50, 1, 7, 1.0, 1), "says 50 bytes"),  # lying length
        (struct.pack("<BHBIfI", 2, 16, 1, 7, 1.0, 1)[:12], "truncated"),
        (struct.pack("<BHBIfI", 99, 16, 1, 7, 1.0, 1), "unknown response code 99"),
        (struct.pack("<BHBIfI", 2, 16, 6, 7, 1.0, 1), "unknown segment 6"),
        (struct.pack("<BHBIfI", 2, 16, 1, 7, float("nan"), 1), "not a number"),
        (b"\x02\x10", "shorter than a header"),
        (b"", "empty"),
    ],
)
def test_malformed_responses_are_counted_with_their_reason(message, problem):
    decoded = wire.decode(message)
    assert decoded.responses == []
    assert decoded.bad == 1
    assert problem in decoded.problems[0]


def test_a_good_response_after_a_bad_value_still_decodes():
    bad = struct.pack("<BHBIfI", 2, 16, 1, 7, float("inf"), 1)
    good = struct.pack("<BHBIfI", 2, 16, 1, 8, 12.5, 1)
    decoded = wire.decode(bad + good)
    assert decoded.bad == 1
    assert [(r.security_id, r.ltp) for r in decoded.responses] == [(8, 12.5)]


def test_text_frames_are_counted_not_decoded():
    assert wire.decode("hello").bad == 1  # type: ignore[arg-type]
    assert wire.decode_depth("hello").bad == 1  # type: ignore[arg-type]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    prices=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=16, max_size=16),
    zero=st.booleans(),
)
def test_full_fast_path_matches_the_checked_one(prices: list[float], zero: bool) -> None:
    # the fast path (prices checked at once, roundings remembered) against each price checked in turn
    if zero:
        prices[0], prices[1] = -0.0, 0.0
    levels = tuple(wire.Level(1, 2, 3, 4, prices[6 + 2 * i], prices[7 + 2 * i]) for i in range(5))
    r = wire.Response(wire.FULL, 1, 7, prices[0], 1, 2, prices[1], 3, 4, 5, *prices[2:6], 6, 7, 8, depth=levels)
    chunk = wire.encode(r)
    try:
        expected = wire._full_checked(chunk)
    except ValueError as exc:
        with pytest.raises(ValueError, match="not a number"):
            wire._full(chunk)
        assert "not a number" in str(exc)
        assert wire.decode(chunk).bad == 1
        return
    for _ in range(2):  # the second time from the remembered roundings
        got = wire._full(chunk)
        assert got == expected
        assert [math.copysign(1, x) for x in (got.ltp, got.average_price)] == [
            math.copysign(1, x) for x in (expected.ltp, expected.average_price)
        ]
