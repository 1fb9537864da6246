"""oaws.alerts: when an alert fires (every kind, at its boundary, once), re-arming, ticks
without the field, the cost of an instrument without alerts, and conditions as typed."""

from __future__ import annotations

import math

import pytest

from oaws.alerts import (
    ARMED,
    KINDS,
    TRIGGERED,
    Alert,
    AlertBook,
    describe_value,
    parse_condition,
)
from oaws.instruments import DEPTH, QUOTE, parse

RELIANCE = parse("RELIANCE:NSE")
FUT = parse("NIFTY26DECFUT:NFO")
#: 2026-12-02 09:15:32 IST
LTT = 1_796_183_132_000


def alert(kind: str, value: float, instrument: str = "RELIANCE:NSE", id: int = 1) -> Alert:
    return Alert(id=id, instrument=instrument, kind=kind, value=value, created="2026-12-01T10:00:00+05:30")


# Every kind, at and around its boundary --------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "value", "field", "misses", "meets"),
    [
        ("above", 1500, "ltp", 1499.95, 1500),
        ("below", 1400, "ltp", 1400.05, 1400),
        ("change_above", 2, "change_percent", 1.99, 2),
        ("change_below", -2, "change_percent", -1.99, -2),
        ("oi_above", 1_000_000, "oi", 999_999, 1_000_000),
        ("oi_below", 50_000, "oi", 50_001, 50_000),
    ],
)
def test_each_kind_fires_at_its_value_not_before(kind, value, field, misses, meets) -> None:
    book = AlertBook([alert(kind, value, "NIFTY26DECFUT:NFO")])
    assert book.check(FUT, {field: misses, "ltt": LTT}) == []
    fired = book.check(FUT, {field: meets, "ltt": LTT})
    assert [a.id for a in fired] == [1]
    assert fired[0].state == TRIGGERED
    assert fired[0].triggered_value == meets
    assert fired[0].triggered_at == "2026-12-02T09:15:32+05:30"


def test_beyond_the_value_fires_too() -> None:
    book = AlertBook([alert("above", 1500), alert("below", 1400, id=2)])
    assert [a.id for a in book.check(RELIANCE, {"ltp": 1600.0})] == [1]
    assert [a.id for a in book.check(RELIANCE, {"ltp": 1300.0})] == [2]


def test_every_kind_is_covered_by_the_table_above() -> None:
    assert set(KINDS) == {"above", "below", "change_above", "change_below", "oi_above", "oi_below"}


def test_change_percent_is_computed_from_ltp_and_close_when_the_tick_has_none() -> None:
    book = AlertBook([alert("change_below", -2)])
    assert book.check(RELIANCE, {"ltp": 1480.0, "close": 1500.0}) == []  # -1.33 %
    fired = book.check(RELIANCE, {"ltp": 1460.0, "close": 1500.0})  # -2.67 %
    assert len(fired) == 1
    assert fired[0].triggered_value == pytest.approx(-2.6667, abs=1e-3)


def test_the_first_tick_after_arming_fires_when_already_beyond() -> None:
    """A level, not a crossing: the price was above 1500 before the alert was set."""
    book = AlertBook([alert("above", 1500)])
    assert len(book.check(RELIANCE, {"ltp": 1510.0})) == 1


# Once only, and re-arming ------------------------------------------------------------------
def test_an_alert_fires_once() -> None:
    book = AlertBook([alert("above", 1500)])
    assert len(book.check(RELIANCE, {"ltp": 1501.0, "ltt": LTT})) == 1
    assert book.check(RELIANCE, {"ltp": 1502.0, "ltt": LTT + 1000}) == []
    (kept,) = book.alerts()
    assert kept.state == TRIGGERED
    assert kept.triggered_value == 1501.0  # the firing tick's, not a later one's
    assert book.watched() == {}


def test_a_triggered_alert_given_to_a_book_does_not_fire() -> None:
    done = alert("above", 1500)
    done.state = TRIGGERED
    book = AlertBook([done])
    assert book.check(RELIANCE, {"ltp": 1600.0}) == []
    assert book.for_instrument(RELIANCE) == [done]


def test_a_rearmed_alert_fires_again() -> None:
    a = alert("above", 1500)
    book = AlertBook([a])
    assert len(book.check(RELIANCE, {"ltp": 1501.0})) == 1
    a.state, a.triggered_at, a.triggered_value = ARMED, None, None  # as store.rearm leaves it
    book.replace([a])
    assert book.watched() == {RELIANCE: QUOTE}
    assert [x.id for x in book.check(RELIANCE, {"ltp": 1505.0})] == [1]


def test_two_alerts_of_one_instrument_fire_independently() -> None:
    book = AlertBook([alert("above", 1500), alert("above", 1600, id=2)])
    assert [a.id for a in book.check(RELIANCE, {"ltp": 1550.0})] == [1]
    assert [a.id for a in book.check(RELIANCE, {"ltp": 1650.0})] == [2]
    assert book.check(RELIANCE, {"ltp": 1700.0}) == []


# Ticks that cannot fire --------------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, "1600", True, math.nan, math.inf, [1600]])
def test_missing_or_non_numeric_fields_never_fire(bad) -> None:
    book = AlertBook([alert("above", 1500), alert("oi_above", 10, id=2), alert("change_above", 1, id=3)])
    tick = {"ltp": bad, "oi": bad, "change_percent": bad, "close": 1000.0}
    assert book.check(RELIANCE, tick) == []
    assert book.check(RELIANCE, {}) == []
    assert all(a.state == ARMED for a in book.alerts())


def test_an_instrument_without_alerts_returns_an_empty_list() -> None:
    book = AlertBook([alert("above", 1500)])
    assert book.check(parse("INFY:NSE"), {"ltp": 99999.0}) == []
    assert book.check(RELIANCE, {"ltp": 1.0}) == []


def test_the_no_alert_path_is_one_lookup_of_the_instrument() -> None:
    """An instrument without an armed alert: the tick itself is never read."""

    class Untouchable(dict):
        def get(self, *args):
            raise AssertionError("the tick was read")

        def __getitem__(self, key):
            raise AssertionError("the tick was read")

    book = AlertBook([alert("above", 1500)])
    assert book.check(parse("INFY:NSE"), Untouchable()) == []
    book.check(RELIANCE, {"ltp": 1600.0})  # now triggered: no armed alert left for RELIANCE either
    assert book.check(RELIANCE, Untouchable()) == []


def test_an_alert_with_an_unreadable_instrument_is_skipped() -> None:
    book = AlertBook([alert("above", 1500, instrument="not an instrument"), alert("above", 1500, id=2)])
    assert book.watched() == {RELIANCE: QUOTE}
    assert [a.id for a in book.check(RELIANCE, {"ltp": 1600.0})] == [2]
    assert len(book.alerts()) == 2


def test_the_time_falls_back_to_the_feeds_timestamp() -> None:
    book = AlertBook([alert("above", 1500)])
    (fired,) = book.check(RELIANCE, {"ltp": 1600.0, "ltt": "soon", "timestamp": LTT})
    assert fired.triggered_at == "2026-12-02T09:15:32+05:30"


# What a book is asked --------------------------------------------------------------------------
def test_watched_names_the_mode_each_instrument_needs() -> None:
    book = AlertBook(
        [
            alert("above", 1500),
            alert("change_below", -2, id=2),
            alert("oi_above", 1e6, "NIFTY26DECFUT:NFO", id=3),
            alert("below", 20000, "NIFTY26DECFUT:NFO", id=4),
        ]
    )
    assert book.watched() == {RELIANCE: QUOTE, FUT: DEPTH}


def test_for_instrument_and_alerts_keep_the_order_given() -> None:
    a, b, c = alert("above", 1500), alert("oi_above", 5, "NIFTY26DECFUT:NFO", id=2), alert("below", 1, id=3)
    book = AlertBook([a, b, c])
    assert book.alerts() == [a, b, c]
    assert book.for_instrument(RELIANCE) == [a, c]
    assert book.for_instrument(parse("INFY:NSE")) == []
    book.replace([b])
    assert book.alerts() == [b]
    assert book.for_instrument(RELIANCE) == []


# Conditions as people write them ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("above", "1500", ("above", 1500.0)),
        ("--below", "1,400.50", ("below", 1400.5)),
        ("change-above", "2", ("change_above", 2.0)),
        ("change_below", "-2", ("change_below", -2.0)),
        ("--change-below", "-2.5%", ("change_below", -2.5)),
        ("oi-above", 1_000_000, ("oi_above", 1_000_000.0)),
        ("OI_BELOW", "0", ("oi_below", 0.0)),
    ],
)
def test_parse_condition(kind, value, expected) -> None:
    assert parse_condition(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        ("sideways", "1", "unknown alert condition 'sideways'"),
        ("above", "lots", "above needs a number, not 'lots'"),
        ("above", "nan", "above needs a finite number"),
        ("above", "-5", "above needs a price above zero"),
        ("below", 0, "below needs a price above zero"),
        ("oi-above", "-1", "oi-above needs an open interest of zero or more"),
        ("change-above", True, "change-above needs a number"),
    ],
)
def test_parse_condition_refuses_in_one_sentence(kind, value, says) -> None:
    with pytest.raises(ValueError, match="^" + says) as caught:
        parse_condition(kind, value)
    assert "\n" not in str(caught.value)


def test_describe_value_writes_each_field_as_the_screens_do() -> None:
    assert describe_value(alert("above", 1500)) == "1,500.00"
    assert describe_value(alert("change_below", -2)) == "-2.00%"
    assert describe_value(alert("change_above", 2)) == "+2.00%"
    assert describe_value(alert("oi_above", 1234567)) == "12,34,567"
    assert describe_value(alert("above", 1500), 1502.355) == "1,502.36"
    assert alert("above", 1500).describe() == "RELIANCE:NSE price above 1,500.00"
    assert alert("oi_below", 50000, "NIFTY26DECFUT:NFO").describe() == "NIFTY26DECFUT:NFO OI below 50,000"


def test_to_dict_and_back_after_firing() -> None:
    book = AlertBook([alert("above", 1500)])
    (fired,) = book.check(RELIANCE, {"ltp": 1600.0, "ltt": LTT})
    again = Alert.from_dict(fired.to_dict())
    assert again == fired
