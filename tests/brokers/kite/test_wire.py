"""Kite's ticker wire format: oaws's decoder against Zerodha's own parser, and against mangled bytes."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kiteconnect import KiteTicker

from oaws.brokers.kite import wire

ORACLE = KiteTicker("k", "t")
SEGMENTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def packets(draw: st.DrawFn, sizes: tuple[int, ...] = wire.SIZES) -> bytes:
    """A packet of one of ``sizes``: random bytes, the token's low byte a segment (any byte, sometimes)."""
    size = draw(st.sampled_from(sizes))
    body = bytearray(draw(st.binary(min_size=size, max_size=size)))
    body[3] = draw(st.one_of(st.sampled_from(SEGMENTS), st.integers(0, 255)))
    return bytes(body)


def message(parts: list[bytes]) -> bytes:
    return struct.pack(">H", len(parts)) + b"".join(struct.pack(">H", len(p)) + p for p in parts)


def _seconds(value: Any) -> int | None:
    return None if value is None else round(value.timestamp())


def agree(theirs: dict[str, Any], ours: wire.Packet) -> None:
    """Zerodha's tick and oaws's packet say the same, field by field."""
    d = ours.divisor
    assert theirs["instrument_token"] == ours.token
    assert theirs["mode"] == ours.mode
    assert theirs["last_price"] == ours.ltp / d
    if ours.size == wire.LTP_SIZE:
        assert set(theirs) == {"tradable", "mode", "instrument_token", "last_price"}
        return
    assert theirs["ohlc"] == {
        "open": ours.open / d,
        "high": ours.high / d,
        "low": ours.low / d,
        "close": ours.close / d,
    }
    if ours.index:
        if ours.size == wire.INDEX_FULL_SIZE and theirs["exchange_timestamp"] is not None:
            assert _seconds(theirs["exchange_timestamp"]) == ours.exchange_time
        assert ours.volume is None and ours.bids == ()
        return
    assert theirs["last_traded_quantity"] == ours.last_quantity
    assert theirs["average_traded_price"] == ours.average_price / d
    assert theirs["volume_traded"] == ours.volume
    assert theirs["total_buy_quantity"] == ours.total_buy_quantity
    assert theirs["total_sell_quantity"] == ours.total_sell_quantity
    if ours.size == wire.QUOTE_SIZE:
        assert ours.oi is None and ours.bids == ()
        return
    assert (theirs["oi"], theirs["oi_day_high"], theirs["oi_day_low"]) == (ours.oi, ours.oi_day_high, ours.oi_day_low)
    if theirs["last_trade_time"] is not None:
        assert _seconds(theirs["last_trade_time"]) == ours.last_trade_time
    if theirs["exchange_timestamp"] is not None:
        assert _seconds(theirs["exchange_timestamp"]) == ours.exchange_time
    for side, entries in (("buy", ours.bids), ("sell", ours.offers)):
        assert theirs["depth"][side] == [
            {"quantity": e.quantity, "price": e.price / d, "orders": e.orders} for e in entries
        ]
        assert len(entries) == 5


@FUZZ
@given(st.lists(packets(), min_size=1, max_size=6))
def test_every_layout_decodes_as_zerodhas_parser_decodes_it(parts):
    msg = message(parts)
    theirs = ORACLE._parse_binary(msg)
    ours, bad = wire.decode(msg)
    assert bad == 0 and len(ours) == len(theirs) == len(parts)
    for t, o in zip(theirs, ours, strict=True):
        agree(t, o)


@FUZZ
# at least 4 bytes: Zerodha's parser raises struct.error on a shorter packet (ours skips it, below)
@given(st.lists(st.one_of(packets(), st.binary(min_size=4, max_size=200)), min_size=1, max_size=6))
def test_packets_of_unknown_sizes_are_skipped_and_counted_as_zerodha_skips_them(parts):
    msg = message(parts)
    theirs = ORACLE._parse_binary(msg)
    ours, bad = wire.decode(msg)
    assert bad == sum(len(p) not in wire.SIZES for p in parts)
    assert len(ours) == len(theirs)
    for t, o in zip(theirs, ours, strict=True):
        agree(t, o)


def test_a_packet_too_short_for_a_token_is_skipped_where_zerodhas_parser_raises():
    msg = message([b"", b"\x01\x02", struct.pack(">II", 408065, 250000)])
    with pytest.raises(struct.error):
        ORACLE._parse_binary(msg)
    ours, bad = wire.decode(msg)
    assert bad == 2 and ours == [wire.Packet(408065, 8, 250000)]


def test_index_packets_read_high_low_open_close_and_a_signed_net_change():
    packet = struct.pack(
        ">IIIIIIiI", (256 << 8) | 9, 2_450_000, 2_460_000, 2_440_000, 2_445_000, 2_455_000, -5_000, 1_700
    )
    [index_full], bad = wire.decode(message([packet]))
    assert bad == 0
    assert (index_full.token, index_full.ltp, index_full.high, index_full.low) == (
        65545,
        2_450_000,
        2_460_000,
        2_440_000,
    )
    assert (index_full.open, index_full.close, index_full.net_change, index_full.exchange_time) == (
        2_445_000,
        2_455_000,
        -5_000,
        1_700,
    )
    assert index_full.index and index_full.mode == "full" and index_full.divisor == 100.0


@pytest.mark.parametrize("segment, expected", [(1, 100.0), (2, 100.0), (3, 1e7), (6, 1e4), (9, 100.0), (12, 1e4)])
def test_the_divisor_follows_the_tokens_segment(segment, expected):
    assert wire.divisor((1234 << 8) | segment) == expected


def test_a_one_byte_message_is_a_heartbeat_not_garbage():
    assert wire.is_heartbeat(b"\x00")
    assert wire.decode(b"\x00") == ([], 0)
    assert ORACLE._parse_binary(b"\x00") == []
    assert wire.decode(b"") == ([], 1)
    assert wire.decode(b"\x00\x00") == ([], 0)  # zero packets, framed exactly


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_and_decode_only_what_is_framed_exactly(data):
    ours, bad = wire.decode(data)
    found = wire.frames(data)
    if found is None:
        assert ours == [] and bad == (0 if len(data) == 1 else 1)
    else:
        assert len(ours) + bad == len(found)
        assert ours == [p for at, n in found if (p := wire.decode_packet(data[at : at + n])) is not None]


def _mangle(data: st.DataObject, msg: bytes) -> tuple[str, bytes]:
    how = data.draw(st.sampled_from(["truncate", "flip", "count", "length", "append"]))
    if how == "truncate":
        return how, msg[: data.draw(st.integers(0, len(msg) - 1))]
    if how == "flip":
        at = data.draw(st.integers(0, len(msg) - 1))
        return how, msg[:at] + bytes([msg[at] ^ data.draw(st.integers(1, 255))]) + msg[at + 1 :]
    if how == "count":
        (count,) = struct.unpack_from(">H", msg)
        lie = data.draw(st.integers(0, 0xFFFF).filter(lambda c: c != count))
        return how, struct.pack(">H", lie) + msg[2:]
    if how == "length":
        offsets = [at - 2 for at, _ in wire.frames(msg)]
        at = data.draw(st.sampled_from(offsets))
        (length,) = struct.unpack_from(">H", msg, at)
        lie = data.draw(st.integers(0, 0xFFFF).filter(lambda n: n != length))
        return how, msg[:at] + struct.pack(">H", lie) + msg[at + 2 :]
    return how, msg + data.draw(st.binary(min_size=1, max_size=40))


# derandomized: Kite's framing has no checksum, so a lying length that happens to frame the rest exactly
# (odds of about 2**-16 a message) would misalign; a fixed set of examples keeps the test from flaking on it
@settings(FUZZ, derandomize=True, max_examples=600)
@given(st.lists(packets(), min_size=1, max_size=5), st.data())
def test_a_mangled_message_never_yields_a_tick_that_is_not_in_it(parts, data):
    original = message(parts)
    how, mangled = _mangle(data, original)
    ours, bad = wire.decode(mangled)
    framed = wire.frames(original)
    # every packet decoded sits exactly where the message's real framing puts one (no misaligned read)
    present = [wire.decode_packet(mangled[at : at + n]) for at, n in framed if at + n <= len(mangled)]
    for packet in ours:
        assert packet in present
    if how in ("truncate", "count", "append"):  # the framing no longer adds up: nothing of it is trusted
        assert (ours, bad) == ([], 0 if wire.is_heartbeat(mangled) else 1)
    if how == "length":  # the packets' own bytes were left alone
        assert all(p in [wire.decode_packet(x) for x in parts] for p in ours)


def test_text_messages_are_told_apart_and_anything_else_is_not_one():
    order = wire.parse_text('{"type":"order","data":{"order_id":"1","status":"COMPLETE"}}')
    assert order == wire.Text("order", {"order_id": "1", "status": "COMPLETE"})
    assert wire.parse_text(b'{"type":"error","data":"Invalid token"}') == wire.Text("error", "Invalid token")
    assert wire.parse_text('{"type":"message","data":"hello"}') == wire.Text("message", "hello")
    for junk in ("", "not json", "[1,2]", '{"type":"order","data":"x"}', '{"type":"other","data":1}', "\xff"):
        assert wire.parse_text(junk) is None


def test_requests_are_kites_json_text():
    assert wire.subscribe([408065, 884737]) == b'{"a":"subscribe","v":[408065,884737]}'
    assert wire.unsubscribe([408065]) == b'{"a":"unsubscribe","v":[408065]}'
    assert wire.set_mode("full", [408065]) == b'{"a":"mode","v":["full",[408065]]}'
