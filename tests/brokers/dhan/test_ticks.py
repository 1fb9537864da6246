"""Dhan responses to oaws ticks: the joins (previous close, OI), times, depth, the mode cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from oaws.brokers.dhan import ticks, wire
from oaws.instruments import DEPTH, LTP, QUOTE
from oaws.ticks import FIELDS, at_mode

IST = timezone(timedelta(hours=5, minutes=30))
# 2026-03-02 10:15:30 on the India clock, as Dhan sends it: those digits counted as UTC
DHAN_LTT = int(datetime(2026, 3, 2, 10, 15, 30, tzinfo=UTC).timestamp())
EPOCH_MS = int(datetime(2026, 3, 2, 10, 15, 30, tzinfo=IST).timestamp() * 1000)


def quote(**fields) -> wire.Response:
    base = dict(
        ltp=2456.55,
        ltt=DHAN_LTT,
        last_quantity=7,
        average_price=2450.1,
        volume=123456,
        total_sell_quantity=5000,
        total_buy_quantity=6000,
        open=2440.0,
        close=0.0,  # Dhan's today's close: 0 during the session
        high=2460.0,
        low=2435.25,
    )
    base.update(fields)
    return wire.Response(wire.QUOTE, 1, 2885, **base)


def full(**fields) -> wire.Response:
    depth = tuple(wire.Level(100 + i, 200 + i, 1 + i, 2 + i, 2456.5 - i * 0.05, 2456.6 + i * 0.05) for i in range(5))
    r = quote(**fields)
    r.code, r.oi, r.oi_high, r.oi_low, r.depth = wire.FULL, 9000, 9500, 8000, depth
    return r


def test_ltt_is_india_clock_seconds_made_epoch_ms():
    assert ticks.ltt_ms(DHAN_LTT) == EPOCH_MS
    assert EPOCH_MS == (DHAN_LTT - 5 * 3600 - 30 * 60) * 1000
    assert ticks.ltt_ms(0) == 0


def test_quote_tick_takes_the_previous_close_from_response_6():
    book = ticks.Book()
    assert book.update(quote())
    t = ticks.tick(book.last, book, "RELIANCE", "NSE", 1_000)
    assert (t["close"], t["change"], t["change_percent"]) == (0.0, 0.0, 0.0)  # no previous close yet
    assert book.update(wire.Response(wire.PREV_CLOSE, 1, 2885, prev_close=2400.0, prev_oi=0))  # re-publish
    t = ticks.tick(book.last, book, "RELIANCE", "NSE", 2_000)
    assert t["close"] == 2400.0
    assert t["change"] == pytest.approx(56.55, abs=1e-9)
    assert t["change_percent"] == pytest.approx(round(56.55 / 2400 * 100, 4), abs=1e-9)
    assert set(t) == set(FIELDS[QUOTE]) | {"mode"}
    assert t["total_sell_quantity"] == 5000 and t["total_buy_quantity"] == 6000
    assert t["ltt"] == EPOCH_MS and t["timestamp"] == 2_000 and t["mode"] == QUOTE


def test_full_tick_has_oi_and_five_levels_a_side_from_the_mixed_levels():
    book = ticks.Book()
    book.update(wire.Response(wire.PREV_CLOSE, 1, 2885, prev_close=2500.0))
    book.update(full())
    t = ticks.tick(book.last, book, "RELIANCE", "NSE", 3_000)
    assert set(t) == set(FIELDS[DEPTH]) | {"mode"}
    assert t["oi"] == 9000 and t["last_quantity"] == t["last_trade_quantity"] == 7
    assert t["change"] == pytest.approx(2456.55 - 2500.0) and t["change_percent"] < 0
    assert t["depth"]["buy"][0] == {"price": 2456.5, "quantity": 100, "orders": 1}
    assert t["depth"]["sell"][4] == {"price": pytest.approx(2456.8), "quantity": 204, "orders": 6}
    assert len(t["depth"]["buy"]) == len(t["depth"]["sell"]) == 5
    assert (t["upper_circuit"], t["lower_circuit"]) == (0.0, 0.0)  # Dhan sends none


def test_oi_of_response_5_is_kept_and_a_ticker_is_ltp_only():
    book = ticks.Book()
    assert not book.update(wire.Response(wire.OI, 2, 35001, oi=777))
    assert book.oi == 777
    assert book.update(wire.Response(wire.TICKER, 2, 35001, ltp=101.5, ltt=DHAN_LTT))
    t = ticks.tick(book.last, book, "NIFTY26MARFUT", "NFO", 5)
    assert t == {
        "symbol": "NIFTY26MARFUT",
        "exchange": "NFO",
        "mode": LTP,
        "ltp": 101.5,
        "ltt": EPOCH_MS,
        "timestamp": 5,
    }
    # a previous close after a ticker changes nothing a ticker tick shows
    assert not book.update(wire.Response(wire.PREV_CLOSE, 2, 35001, prev_close=100.0))


def test_at_mode_cuts_a_full_tick_for_each_wanted_mode():
    book = ticks.Book()
    book.update(full())
    t = ticks.tick(book.last, book, "RELIANCE", "NSE", 1)
    assert set(at_mode(t, LTP)) == set(FIELDS[LTP]) | {"mode"}
    assert set(at_mode(t, QUOTE)) == set(FIELDS[QUOTE]) | {"mode"}
    assert at_mode(t, QUOTE)["mode"] == QUOTE


def test_modes_and_request_codes():
    assert [ticks.dhan_mode(m) for m in (LTP, QUOTE, DEPTH)] == [15, 17, 21]
    assert ticks.dhan_mode(DEPTH, 20) == 23
    assert ticks.dhan_mode(QUOTE, 20) is None and ticks.dhan_mode(DEPTH, 50) is None


def side(code, base, seq=1):
    levels = tuple(
        wire.DepthLevel(round(base + i * (0.05 if code == 51 else -0.05), 2), 10 + i, 1 + i) for i in range(20)
    )
    return wire.DepthSide(code, 1, 2885, seq, levels)


def test_depth_20_joins_bids_and_asks_of_one_instrument():
    book = ticks.Book()
    assert not book.depth_side(side(41, 100.0))  # bids alone: wait for the asks
    assert book.depth_side(side(51, 100.1))  # the pair is complete
    last = wire.Response(wire.TICKER, 1, 2885, ltp=100.05, ltt=DHAN_LTT)
    t = ticks.depth_20_tick(book, "RELIANCE", "NSE", 9, last)
    assert t["depth_level"] == 20 and t["mode"] == DEPTH
    assert (t["ltp"], t["ltt"], t["timestamp"]) == (100.05, EPOCH_MS, 9)
    assert [lv["price"] for lv in t["depth"]["buy"][:3]] == [100.0, 99.95, 99.9]
    assert [lv["price"] for lv in t["depth"]["sell"][:3]] == [100.1, 100.15, 100.2]
    assert t["depth"]["sell"][19] == {"price": round(100.1 + 19 * 0.05, 2), "quantity": 29, "orders": 20}
    assert len(t["depth"]["buy"]) == len(t["depth"]["sell"]) == 20
    # a side that comes twice without its other half is published with the other's latest
    assert not book.depth_side(side(41, 99.0))
    assert book.depth_side(side(41, 98.0))
    t = ticks.depth_20_tick(book, "RELIANCE", "NSE", 10)
    assert t["depth"]["buy"][0]["price"] == 98.0 and t["depth"]["sell"][0]["price"] == 100.1
    assert "ltp" not in t  # no market-feed packet known


def test_a_one_sided_book_is_padded_with_empty_levels():
    book = ticks.Book()
    book.depth_side(side(51, 50.0))
    assert book.depth_side(side(51, 51.0))
    t = ticks.depth_20_tick(book, "X", "NSE", 1)
    assert t["depth"]["buy"] == [{"price": 0.0, "quantity": 0, "orders": 0}] * 20
