"""The tick module: the fields of each mode, a tick cut down to a mode, depth levels, change."""

from __future__ import annotations

import pytest

from oaws.instruments import DEPTH, EXCHANGES, LTP, QUOTE, Instrument
from oaws.ticks import (
    ADDED,
    DEPTH_FIELDS,
    DERIVATIVE_EXCHANGES,
    EMPTY_LEVEL,
    FIELDS,
    INDEX_EXCHANGES,
    LTP_FIELDS,
    QUOTE_FIELDS,
    at_mode,
    change,
    change_of,
    depth_book,
    is_index,
    upgrade,
)
from tests.brokers.fields import OPENALGO


def full_tick() -> dict:
    level = {"price": 1.0, "quantity": 2, "orders": 1}
    tick = {name: 1 for name in FIELDS[DEPTH]}
    return tick | {"mode": DEPTH, "seq": 9, "ts_ns": 5, "week_52_high": 3.0, "depth": depth_book([level], [level])}


def test_each_mode_has_the_fields_of_the_modes_below():
    assert FIELDS[LTP] == LTP_FIELDS
    assert FIELDS[QUOTE] == LTP_FIELDS + QUOTE_FIELDS
    assert FIELDS[DEPTH] == LTP_FIELDS + QUOTE_FIELDS + DEPTH_FIELDS
    assert len(set(FIELDS[DEPTH])) == len(FIELDS[DEPTH])


@pytest.mark.parametrize("mode", [LTP, QUOTE])
def test_a_tick_cut_to_a_lower_mode_keeps_that_modes_fields_and_says_its_mode(mode):
    cut = at_mode(full_tick(), mode)
    assert set(FIELDS[mode]) <= set(cut)
    assert not set(cut) & {f for m in (QUOTE, DEPTH) if m > mode for f in ADDED[m]}
    assert cut["mode"] == mode and cut["seq"] == 9 and cut["ts_ns"] == 5  # a feed's extras of mode 1 stay


def test_a_tick_at_or_below_its_own_mode_is_left_as_it_is():
    tick = full_tick()
    assert at_mode(tick, DEPTH) is tick
    quote = at_mode(tick, QUOTE)
    assert at_mode(quote, DEPTH, recorded=QUOTE) is quote  # a recording cannot invent depth


def test_unknown_extra_fields_pass_through_a_cut():
    assert at_mode({"ltp": 1, "close": 2, "broker_extra": "x"}, LTP) == {"ltp": 1, "broker_extra": "x"}


def test_depth_books_have_five_levels_a_side():
    book = depth_book([{"price": 10.0, "quantity": 1, "orders": 1}] * 7, [])
    assert len(book["buy"]) == 5 and len(book["sell"]) == 5
    assert book["sell"] == [dict(EMPTY_LEVEL)] * 5
    book["sell"][0]["price"] = 99.0
    assert EMPTY_LEVEL["price"] == 0.0  # padding is copies, never the shared empty level


def test_change_against_the_previous_close():
    assert change(105.0, 100.0) == (5.0, 5.0)
    assert change(99.95, 100.0, 2) == (-0.05, -0.05)
    assert change(10.0, 0) == (0.0, 0.0)
    assert change_of({"ltp": 110.0, "close": 100.0}) == (10.0, 10.0)
    assert change_of({"change": 1.5, "change_percent": 0.5, "ltp": 9, "close": 1}) == (1.5, 0.5)
    assert change_of({"ltp": 110.0}) == (None, None)


def test_indices():
    assert is_index(Instrument("NIFTY", "NSE_INDEX")) and is_index("BSE_INDEX")
    assert is_index("MCX_INDEX") and is_index("GLOBAL_INDEX")
    assert not is_index(Instrument("NIFTY", "NSE")) and not is_index("NFO") and not is_index("CRYPTO")


def test_every_exchange_is_known_and_the_index_and_derivative_ones_are_openalgos():
    assert set(EXCHANGES) >= INDEX_EXCHANGES | DERIVATIVE_EXCHANGES
    # OpenAlgo's utils/constants.py: FNO_EXCHANGES (crypto perpetuals included) and its *_INDEX exchanges
    assert {"NFO", "BFO", "MCX", "CDS", "BCD", "NCDEX", "NCO", "CRYPTO"} == DERIVATIVE_EXCHANGES
    assert {e for e in EXCHANGES if e.endswith("_INDEX")} == INDEX_EXCHANGES


@pytest.mark.parametrize("mode", [LTP, QUOTE, DEPTH])
def test_each_mode_has_openalgos_fields_and_a_cut_keeps_them(mode):
    assert set(OPENALGO[mode]) - {"mode"} <= set(FIELDS[mode])
    assert set(OPENALGO[mode]) <= set(at_mode(full_tick(), mode))


def test_last_quantity_is_depths_alone():
    assert "last_quantity" in DEPTH_FIELDS and "last_quantity" not in at_mode(full_tick(), QUOTE)


def test_a_tick_recorded_with_the_old_names_gets_openalgos():
    old = {"ltp": 1.0, "avg_trade_price": 2.5, "last_trade_quantity": 7, "depth": depth_book([], [])}
    tick = upgrade(old)
    assert tick is old and "avg_trade_price" not in tick
    assert (tick["average_price"], tick["last_quantity"], tick["last_trade_quantity"]) == (2.5, 7, 7)
    quote = upgrade({"avg_trade_price": 2.5, "last_trade_quantity": 7})
    assert quote == {"average_price": 2.5, "last_trade_quantity": 7}  # no last_quantity without depth
    new = full_tick()
    assert upgrade(dict(new)) == new  # today's ticks pass unchanged


def test_depth_books_can_have_twenty_levels_a_side():
    book = depth_book([{"price": 10.0, "quantity": 1, "orders": 1}] * 25, [], levels=20)
    assert len(book["buy"]) == len(book["sell"]) == 20
