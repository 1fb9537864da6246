"""The binary layouts of docs/brokers/angel.md: offsets, round trips, the SDK's own parser, and garbage."""

from __future__ import annotations

import math
import struct

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oaws.brokers.angel import wire
from oaws.brokers.angel.ticks import tick
from oaws.brokers.angel.wire import BestFiveEntry, DepthLevel, MalformedFrame, Packet

BEST_FIVE = tuple(BestFiveEntry(1, 100 + i, 295000 - 5 * i, 3 + i) for i in range(5)) + tuple(
    BestFiveEntry(0, 200 + i, 295005 + 5 * i, 7 + i) for i in range(5)
)
SNAP = Packet(
    wire.SNAP_QUOTE,
    wire.NSE_CM,
    "2885",
    sequence=123456,
    exchange_timestamp=1_732_000_000_123,
    ltp=295050,
    last_traded_quantity=17,
    avg_traded_price=294812,
    volume=4_567_890,
    total_buy_quantity=123456.0,
    total_sell_quantity=654321.0,
    open=294000,
    high=296000,
    low=293500,
    close=294000,
    last_traded_timestamp=1_732_000_000,
    open_interest=9876,
    oi_change_percent=-1.25,
    best_five=BEST_FIVE,
    upper_circuit=323400,
    lower_circuit=264600,
    week52_high=360000,
    week52_low=220000,
)
DEPTH = Packet(
    wire.DEPTH,
    wire.NSE_CM,
    "3045",
    exchange_timestamp=1_732_000_000_500,
    packet_received_time=1_732_000_000_503,
    depth_buy=tuple(DepthLevel(10 + i, 81000 - 5 * i, 1 + i) for i in range(20)),
    depth_sell=tuple(DepthLevel(20 + i, 81005 + 5 * i, 2 + i) for i in range(20)),
)


def test_packet_sizes_are_those_of_angel_md():
    assert wire.SIZES == {wire.LTP: 51, wire.QUOTE: 123, wire.SNAP_QUOTE: 379, wire.DEPTH: 443}


def test_snap_quote_fields_sit_at_the_offsets_of_angel_md():
    frame = wire.encode(SNAP)
    assert frame[0] == 3 and frame[1] == 1
    assert frame[2:27] == b"2885" + b"\0" * 21

    def q(offset: int) -> int:
        return struct.unpack_from("<q", frame, offset)[0]

    def d(offset: int) -> float:
        return struct.unpack_from("<d", frame, offset)[0]

    assert (q(27), q(35), q(43)) == (123456, 1_732_000_000_123, 295050)
    assert (q(51), q(59), q(67)) == (17, 294812, 4_567_890)
    assert (d(75), d(83)) == (123456.0, 654321.0)
    assert (q(91), q(99), q(107), q(115)) == (294000, 296000, 293500, 294000)
    assert (q(123), q(131), d(139)) == (1_732_000_000, 9876, -1.25)
    assert struct.unpack_from("<hqqh", frame, 147) == (1, 100, 295000, 3)  # first best-five entry
    assert struct.unpack_from("<hqqh", frame, 147 + 5 * 20) == (0, 200, 295005, 7)  # first sell entry
    assert (q(347), q(355), q(363), q(371)) == (323400, 264600, 360000, 220000)


def test_depth_20_fields_sit_at_the_offsets_of_angel_md():
    frame = wire.encode(DEPTH)
    assert frame[0] == 4 and len(frame) == 443
    assert struct.unpack_from("<qq", frame, 27) == (1_732_000_000_500, 1_732_000_000_503)
    assert struct.unpack_from("<iih", frame, 43) == (10, 81000, 1)
    assert struct.unpack_from("<iih", frame, 43 + 19 * 10) == (29, 81000 - 95, 20)
    assert struct.unpack_from("<iih", frame, 243) == (20, 81005, 2)


@pytest.mark.parametrize("mode", [wire.LTP, wire.QUOTE, wire.SNAP_QUOTE])
def test_the_sdk_parser_reads_our_frames_alike(mode):
    """smartapi-python's own decoder (bar defect 7) is an independent check of the encoder."""
    from oaws.brokers.angel.smartapi import smart_connect_class

    smart_connect_class()  # import SmartApi through the guard first (no network, no logs/)
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    sdk = object.__new__(SmartWebSocketV2)  # the parser needs no state; __init__ would create logs/
    packet = Packet(
        mode, **{k: getattr(SNAP, k) for k in ("exchange_type", "token", "sequence", "exchange_timestamp", "ltp")}
    )
    if mode == wire.QUOTE:
        packet = Packet(mode, *[getattr(SNAP, f) for f in Packet.__slots__[1:15]])
    if mode == wire.SNAP_QUOTE:
        packet = SNAP
    parsed = sdk._parse_binary_data(wire.encode(packet))
    ours = wire.decode(wire.encode(packet))
    assert (parsed["subscription_mode"], parsed["exchange_type"], parsed["token"]) == (mode, 1, "2885")
    assert (parsed["sequence_number"], parsed["exchange_timestamp"], parsed["last_traded_price"]) == (
        ours.sequence,
        ours.exchange_timestamp,
        ours.ltp,
    )
    if mode >= wire.QUOTE:
        assert parsed["total_buy_quantity"] == ours.total_buy_quantity
        assert parsed["closed_price"] == ours.close
        assert parsed["volume_trade_for_the_day"] == ours.volume
    if mode == wire.SNAP_QUOTE:
        assert parsed["upper_circuit_limit"] == ours.upper_circuit
        assert parsed["52_week_low_price"] == ours.week52_low
        assert [e["price"] for e in parsed["best_5_buy_data"]] == [e.price for e in ours.best_five if e.flag == 1]
        assert [e["price"] for e in parsed["best_5_sell_data"]] == [e.price for e in ours.best_five if e.flag == 0]
        assert ours.oi_change_percent == -1.25  # the SDK reads this f64 as i64 (defect 7); we do not


def test_the_sdk_parser_reads_our_depth_20_frames_alike():
    from oaws.brokers.angel.smartapi import smart_connect_class

    smart_connect_class()
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    parsed = object.__new__(SmartWebSocketV2)._parse_binary_data(wire.encode(DEPTH))
    assert (parsed["subscription_mode"], parsed["exchange_type"], parsed["token"]) == (4, 1, "3045")
    assert parsed["packet_received_time"] == DEPTH.packet_received_time  # the exchange timestamp it loses (defect 7)
    for side, ours in (("buy", DEPTH.depth_buy), ("sell", DEPTH.depth_sell)):
        levels = parsed[f"depth_20_{side}_data"]
        assert [(lv["quantity"], lv["price"], lv["num_of_orders"]) for lv in levels] == list(ours)


def test_a_depth_20_packet_becomes_a_depth_tick_with_twenty_levels_each_side():
    t = tick(wire.decode(wire.encode(DEPTH)), "RELIANCE", "NSE", 100.0, 7)
    assert (t["symbol"], t["exchange"], t["mode"], t["depth_level"]) == ("RELIANCE", "NSE", 3, 20)
    assert (t["ltt"], t["timestamp"]) == (DEPTH.exchange_timestamp, 7)
    assert len(t["depth"]["buy"]) == len(t["depth"]["sell"]) == 20
    assert t["depth"]["buy"][0] == {"price": 810.0, "quantity": 10, "orders": 1}
    assert t["depth"]["sell"][19] == {"price": 811.0, "quantity": 39, "orders": 21}
    assert "ltp" not in t  # Angel's depth packets carry the book alone


def test_ltp_tick_in_rupees():
    p = Packet(wire.LTP, wire.NSE_CM, "2885", 42, 1_732_000_000_123, 295050)
    t = tick(wire.decode(wire.encode(p)), "RELIANCE", "NSE", 100.0, 1_732_000_000_200)
    assert t == {
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "mode": 1,
        "seq": 42,
        "ltp": 2950.5,
        "ltt": 1_732_000_000_123,
        "timestamp": 1_732_000_000_200,
    }


def test_quote_tick_has_every_field_and_change_from_previous_close():
    quote = Packet(wire.QUOTE, *[getattr(SNAP, f) for f in Packet.__slots__[1:15]])
    t = tick(wire.decode(wire.encode(quote)), "RELIANCE", "NSE", 100.0, 5)
    assert t["mode"] == 2 and t["seq"] == 123456
    assert (t["open"], t["high"], t["low"], t["close"]) == (2940.0, 2960.0, 2935.0, 2940.0)
    assert (t["volume"], t["last_trade_quantity"], t["average_price"]) == (4_567_890, 17, 2948.12)
    assert (t["total_buy_quantity"], t["total_sell_quantity"]) == (123456, 654321)
    assert t["change"] == pytest.approx(10.5) and t["change_percent"] == pytest.approx(0.3571, abs=1e-4)
    assert t["ltt"] == 1_732_000_000_123


def test_snap_quote_becomes_a_depth_tick_with_five_levels_each_side():
    t = tick(wire.decode(wire.encode(SNAP)), "RELIANCE", "NSE", 100.0, 5)
    assert t["mode"] == 3
    assert t["depth"]["buy"][0] == {"price": 2950.0, "quantity": 100, "orders": 3}
    assert t["depth"]["sell"][4] == {"price": 2950.25, "quantity": 204, "orders": 11}
    assert [lv["price"] for lv in t["depth"]["buy"]] == [2950.0, 2949.95, 2949.9, 2949.85, 2949.8]
    assert (t["oi"], t["upper_circuit"], t["lower_circuit"]) == (9876, 3234.0, 2646.0)
    assert (t["oi_change_percent"], t["week_52_high"], t["week_52_low"]) == (-1.25, 3600.0, 2200.0)
    assert t["last_quantity"] == t["last_trade_quantity"] == 17  # OpenAlgo's Depth name, and Quote's
    assert t["ltt"] == SNAP.exchange_timestamp  # as OpenAlgo's adapter: the exchange timestamp in every mode


def test_currency_prices_use_their_own_divisor():
    p = Packet(wire.LTP, wire.CDE_FO, "1470", 1, 1, 844_525_000)
    assert tick(p, "USDINR27DEC24FUT", "CDS", 10_000_000.0, 1)["ltp"] == pytest.approx(84.4525)


def test_no_previous_close_means_no_change():
    p = Packet(wire.QUOTE, wire.NSE_CM, "1", ltp=100)
    t = tick(p, "X", "NSE", 100.0, 1)
    assert t["change"] == 0.0 and t["change_percent"] == 0.0


@pytest.mark.parametrize(
    "frame, why",
    [
        (b"", "empty"),
        (bytes([9]) + b"\0" * 50, "unknown subscription mode"),
        (wire.encode(SNAP)[:-1], "expected 379"),
        (wire.encode(SNAP) + b"\0", "expected 379"),
        (bytes([1, 6]) + wire.encode(Packet(1, 1, "2885"))[2:], "exchange type"),
        (wire.encode(Packet(1, 1, "2885")).replace(b"2885", b"28x5"), "token"),
        (wire.encode(Packet(1, 1, "2885")).replace(b"2885\0", b"2885\1"), "token"),
        (bytes([1, 1]) + b"\0" * 49, "token"),
    ],
)
def test_malformed_frames_are_refused_with_a_reason(frame, why):
    with pytest.raises(MalformedFrame, match=why):
        wire.decode(frame)


def test_bad_flags_and_non_numbers_are_refused():
    frame = bytearray(wire.encode(SNAP))
    struct.pack_into("<H", frame, 147, 2)
    with pytest.raises(MalformedFrame, match="flag"):
        wire.decode(bytes(frame))
    for offset, value in ((75, math.nan), (83, -1.0), (139, math.inf)):
        frame = bytearray(wire.encode(SNAP))
        struct.pack_into("<d", frame, offset, value)
        with pytest.raises(MalformedFrame):
            wire.decode(bytes(frame))


# Property tests ------------------------------------------------------------------------
i64 = st.integers(-(2**63), 2**63 - 1)
u16 = st.integers(0, 2**16 - 1)
quantity = st.integers(0, 2**53).map(float)
tokens = st.text("0123456789", min_size=1, max_size=25)
exchange_types = st.sampled_from(wire.EXCHANGE_TYPES)


def _packets() -> st.SearchStrategy[Packet]:
    head = {"exchange_type": exchange_types, "token": tokens}
    quote = {
        **head,
        "sequence": i64,
        "exchange_timestamp": i64,
        "ltp": i64,
        "last_traded_quantity": i64,
        "avg_traded_price": i64,
        "volume": i64,
        "total_buy_quantity": quantity,
        "total_sell_quantity": quantity,
        "open": i64,
        "high": i64,
        "low": i64,
        "close": i64,
    }
    five = st.lists(st.builds(BestFiveEntry, st.sampled_from((0, 1)), i64, i64, u16), min_size=10, max_size=10)
    levels = st.lists(
        st.builds(
            DepthLevel,
            st.integers(-(2**31), 2**31 - 1),
            st.integers(-(2**31), 2**31 - 1),
            st.integers(-(2**15), 2**15 - 1),
        ),
        min_size=20,
        max_size=20,
    ).map(tuple)
    return st.one_of(
        st.builds(
            Packet,
            st.just(wire.LTP),
            **{k: quote[k] for k in ("exchange_type", "token", "sequence", "exchange_timestamp", "ltp")},
        ),
        st.builds(Packet, st.just(wire.QUOTE), **quote),
        st.builds(
            Packet,
            st.just(wire.SNAP_QUOTE),
            **quote,
            last_traded_timestamp=i64,
            open_interest=i64,
            oi_change_percent=st.floats(allow_nan=False, allow_infinity=False),
            best_five=five.map(tuple),
            upper_circuit=i64,
            lower_circuit=i64,
            week52_high=i64,
            week52_low=i64,
        ),
        st.builds(
            Packet,
            st.just(wire.DEPTH),
            **head,
            exchange_timestamp=i64,
            packet_received_time=i64,
            depth_buy=levels,
            depth_sell=levels,
        ),
    )


def _check_tick(packet: Packet) -> None:
    orjson.dumps(tick(packet, "X", "NSE", 100.0, 0))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_packets())
def test_every_well_formed_packet_round_trips(packet):
    assert wire.decode(wire.encode(packet)) == packet
    _check_tick(packet)


@settings(max_examples=300, deadline=None)
@given(_packets(), st.data())
def test_truncated_packets_are_refused(packet, data):
    frame = wire.encode(packet)
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(MalformedFrame):
        wire.decode(frame[:cut])


def _frames() -> st.SearchStrategy[bytes]:
    """Random bytes, often shaped like a packet (right mode byte, right length), so they reach deep."""
    shaped = st.sampled_from(wire.MODES).flatmap(
        lambda mode: st.binary(min_size=wire.SIZES[mode] - 1, max_size=wire.SIZES[mode] - 1).map(
            lambda rest: bytes([mode]) + rest
        )
    )
    return st.one_of(st.binary(max_size=500), shaped)


@settings(max_examples=1000, deadline=None)
@given(_frames())
def test_random_frames_never_escape_and_never_decode_wrongly(frame):
    """Anything the decoder accepts is exactly what the bytes say: re-encoding gives the frame back."""
    try:
        packet = wire.decode(frame)
    except MalformedFrame:
        return
    assert wire.encode(packet) == frame
    _check_tick(packet)


@settings(max_examples=300, deadline=None)
@given(_packets(), st.data())
def test_a_flipped_byte_is_refused_or_read_exactly(packet, data):
    frame = bytearray(wire.encode(packet))
    at = data.draw(st.integers(0, len(frame) - 1))
    frame[at] ^= data.draw(st.integers(1, 255))
    try:
        decoded = wire.decode(bytes(frame))
    except MalformedFrame:
        return
    assert wire.encode(decoded) == bytes(frame)
