"""Kite packets to oaws ticks: each field from a packet whose values are written out here."""

from __future__ import annotations

import pytest

from oaws.brokers.kite.ticks import CLIENT_MODE, KITE_MODE, cut, kite_mode, tick
from oaws.brokers.kite.wire import DepthEntry, Packet
from oaws.ticks import FIELDS

RELIANCE, NIFTY, USDINR = 738561, 256265, 1241347  # segments 1 (NSE), 9 (indices), 3 (CDS)
RECEIVED = 1_764_650_000_123

BIDS = tuple(DepthEntry(100 * (i + 1), 245050 - 5 * i, i + 1) for i in range(5))
OFFERS = tuple(DepthEntry(200 * (i + 1), 245060 + 5 * i, 10 + i) for i in range(5))
QUOTE_PACKET = Packet(RELIANCE, 44, 245055, 243000, 246000, 242500, 244000, None, 25, 244512, 1_500_000, 40_000, 35_000)
FULL_PACKET = Packet(
    RELIANCE,
    184,
    245055,
    243000,
    246000,
    242500,
    244000,
    None,
    25,
    244512,
    1_500_000,
    40_000,
    35_000,
    last_trade_time=1_764_650_000,
    exchange_time=1_764_650_001,
    oi=7,
    oi_day_high=9,
    oi_day_low=3,
    bids=BIDS,
    offers=OFFERS,
)


def test_an_ltp_packet_is_a_mode_1_tick_timed_by_its_arrival():
    t = tick(Packet(RELIANCE, 8, 245055), "RELIANCE", "NSE", RECEIVED)
    assert t == {
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "mode": 1,
        "ltp": 2450.55,
        "ltt": RECEIVED,
        "timestamp": RECEIVED,
    }


def test_a_quote_tick_has_change_in_rupees_and_percent_and_no_time_of_its_own():
    t = tick(QUOTE_PACKET, "RELIANCE", "NSE", RECEIVED)
    assert set(t) == set(FIELDS[2]) | {"mode"}
    assert (t["open"], t["high"], t["low"], t["close"]) == (2430.0, 2460.0, 2425.0, 2440.0)
    assert (t["volume"], t["last_trade_quantity"], t["average_price"]) == (1_500_000, 25, 2445.12)
    assert (t["total_buy_quantity"], t["total_sell_quantity"]) == (40_000, 35_000)
    assert t["change"] == pytest.approx(10.55)  # rupees, not Zerodha's percentage
    assert t["change_percent"] == 0.4324  # 10.55 / 2440 = 0.0043237...
    assert t["ltt"] == t["timestamp"] == RECEIVED and t["mode"] == 2


def test_a_full_tick_has_times_in_ms_oi_and_five_levels_a_side():
    t = tick(FULL_PACKET, "RELIANCE", "NSE", RECEIVED)
    assert set(t) - set(FIELDS[3]) == {"mode", "oi_day_high", "oi_day_low", "exchange_timestamp"}
    assert set(FIELDS[3]) - set(t) == {"upper_circuit", "lower_circuit"}  # not in Kite's ticker
    assert (t["ltt"], t["exchange_timestamp"], t["timestamp"]) == (1_764_650_000_000, 1_764_650_001_000, RECEIVED)
    assert (t["oi"], t["oi_day_high"], t["oi_day_low"], t["last_quantity"]) == (7, 9, 3, 25)
    assert t["depth"]["buy"][0] == {"price": 2450.5, "quantity": 100, "orders": 1}
    assert t["depth"]["buy"][4] == {"price": 2450.3, "quantity": 500, "orders": 5}
    assert t["depth"]["sell"][0] == {"price": 2450.6, "quantity": 200, "orders": 10}
    assert t["depth"]["sell"][4] == {"price": 2450.8, "quantity": 1000, "orders": 14}
    assert len(t["depth"]["buy"]) == len(t["depth"]["sell"]) == 5


def test_cutting_a_full_tick_gives_each_lower_mode_exactly_its_fields():
    full = tick(FULL_PACKET, "RELIANCE", "NSE", RECEIVED)
    quote, ltp = cut(full, 2), cut(full, 1)
    assert set(quote) == set(FIELDS[2]) | {"mode"} and quote["mode"] == 2
    assert set(ltp) == set(FIELDS[1]) | {"mode"} and ltp["mode"] == 1
    assert ltp["ltt"] == 1_764_650_000_000  # from a full packet an LTP tick keeps the real trade time
    assert cut(full, 3) == full and "depth" in full  # the full tick itself is left whole


def test_an_index_carries_ohlc_and_change_and_no_volume_or_book():
    quote = tick(
        Packet(NIFTY, 28, 2_450_000, 2_440_000, 2_460_000, 2_430_000, 2_400_000, 50_000), "NIFTY", "NSE_INDEX", 1
    )
    assert quote == {
        "symbol": "NIFTY",
        "exchange": "NSE_INDEX",
        "mode": 2,
        "ltp": 24500.0,
        "ltt": 1,
        "timestamp": 1,
        "open": 24400.0,
        "high": 24600.0,
        "low": 24300.0,
        "close": 24000.0,
        "change": 500.0,
        "change_percent": 2.0833,  # 500 / 24000
    }
    full = tick(
        Packet(NIFTY, 32, 2_450_000, 2_440_000, 2_460_000, 2_430_000, 2_400_000, 50_000, exchange_time=9), "N", "X", 1
    )
    assert full["mode"] == 3 and full["ltt"] == 9000 and "depth" not in full and "volume" not in full


def test_currency_prices_use_their_own_divisor():
    t = tick(
        Packet(
            USDINR, 44, 835_012_500, 834_000_000, 836_000_000, 833_000_000, 834_500_000, None, 1, 835_000_000, 9, 1, 2
        ),
        "USDINR",
        "CDS",
        1,
    )
    assert (t["ltp"], t["open"], t["close"], t["average_price"]) == (83.50125, 83.4, 83.45, 83.5)
    assert t["change"] == pytest.approx(0.05125)


def test_a_token_is_subscribed_at_the_highest_mode_wanted():
    assert (KITE_MODE, CLIENT_MODE) == ({1: "ltp", 2: "quote", 3: "full"}, {"ltp": 1, "quote": 2, "full": 3})
    assert kite_mode([1]) == "ltp" and kite_mode([1, 2]) == "quote" and kite_mode([3, 1]) == "full"


def test_no_close_means_no_change_rather_than_a_division_by_zero():
    t = tick(Packet(RELIANCE, 44, 100, 0, 0, 0, 0, None, 0, 0, 0, 0, 0), "R", "NSE", 1)
    assert (t["change"], t["change_percent"]) == (0.0, 0.0)
