"""The exchanges' sessions on a fixed clock: pre-open, open, closed, holidays from the calendar."""

from datetime import UTC, date, datetime, timedelta

import pytest

from oaws import sessions
from oaws.config import IST


def at(*when: int) -> datetime:
    return datetime(*when, tzinfo=IST)


def test_the_equity_session_has_a_pre_open_then_trades_till_half_past_three():
    wednesday = (2026, 12, 2)
    early = sessions.state("NSE", at(*wednesday, 8, 59))
    assert (early.state, early.opens_at) == ("closed", at(*wednesday, 9, 15))
    assert early.describe() == "NSE closed, opens 09:15"
    pre = sessions.state("NSE", at(*wednesday, 9, 3))
    assert (pre.state, pre.opens_at) == ("pre-open", at(*wednesday, 9, 15))
    assert pre.describe() == "NSE pre-open, opens 09:15"
    trading = sessions.state("NSE", at(*wednesday, 9, 15))
    assert (trading.state, trading.closes_at, trading.opens_at) == ("open", at(*wednesday, 15, 30), None)
    assert trading.describe() == "NSE open till 15:30"
    assert sessions.is_open("BSE", at(*wednesday, 15, 29, 59))
    assert not sessions.is_open("NSE", at(*wednesday, 15, 30))
    assert not sessions.is_open("NSE", at(*wednesday, 9, 10))  # pre-open is not trading


def test_an_evening_and_a_weekend_are_closed_till_the_next_trading_day():
    evening = sessions.state("NSE", at(2026, 12, 2, 20, 0))
    assert (evening.state, evening.opens_at) == ("closed", at(2026, 12, 3, 9, 15))
    assert evening.describe() == "NSE closed, opens Thu 09:15"
    sunday_night = sessions.state("NSE", at(2026, 12, 6, 2, 0))
    assert sunday_night.opens_at == at(2026, 12, 7, 9, 15)
    assert sunday_night.describe() == "NSE closed, opens Mon 09:15"


def test_a_holiday_of_the_calendar_is_named_where_its_date_is_fixed():
    christmas = sessions.state("NSE", at(2026, 12, 25, 11, 0))
    assert (christmas.state, christmas.holiday) == ("holiday", "Christmas")
    assert christmas.describe() == "NSE holiday (Christmas), opens Mon 09:15"
    # 10 November 2026 (Diwali Balipratipada) is in the library, without a name
    diwali = sessions.state("NSE", at(2026, 11, 10, 11, 0))
    assert (diwali.state, diwali.holiday, diwali.opens_at) == ("holiday", None, at(2026, 11, 11, 9, 15))
    assert diwali.describe() == "NSE holiday, opens Wed 09:15"
    assert not sessions.is_open("NFO", at(2026, 11, 10, 11, 0))


def test_the_next_open_skips_a_holiday_next_to_a_weekend():
    # Thursday 24 December after the close: Christmas (Friday), then the weekend
    state = sessions.state("NSE", at(2026, 12, 24, 16, 0))
    assert (state.state, state.opens_at) == ("closed", at(2026, 12, 28, 9, 15))
    assert state.describe() == "NSE closed, opens Mon 09:15"
    assert sessions.previous_close("NSE", at(2026, 12, 28, 8, 0)) == at(2026, 12, 24, 15, 30)


def test_mcx_trades_in_the_evening_till_the_us_clock_says():
    winter, summer = at(2026, 12, 2, 23, 40), at(2026, 7, 22, 23, 40)
    assert sessions.state("MCX", winter).describe() == "MCX open till 23:55"
    assert sessions.state("MCX", summer).state == "closed"
    assert sessions.state("MCX", at(2026, 7, 22, 21, 0)).closes_at == at(2026, 7, 22, 23, 30)
    # the US clocks change on the second Sunday of March and the first of November 2026
    assert sessions.state("MCX", at(2026, 3, 6, 23, 40)).state == "open"
    assert sessions.state("MCX", at(2026, 3, 9, 23, 40)).state == "closed"
    assert sessions.state("MCX", at(2026, 11, 9, 23, 40)).state == "open"
    # on an equity holiday MCX's morning is closed; its evening session is assumed, and said so
    christmas = sessions.state("MCX", at(2026, 12, 25, 10, 0))
    assert (christmas.state, christmas.opens_at) == ("holiday", at(2026, 12, 25, 17, 0))
    assert christmas.note and "assumed" in christmas.note


def test_beyond_the_librarys_bound_every_weekday_trades_and_the_state_says_so():
    friday = sessions.state("NSE", at(2027, 1, 1, 12, 0))  # a weekday the library knows nothing of
    assert friday.state == "open"
    assert friday.note == "holidays after 2026 unknown; update exchange-calendars"
    last_day = sessions.state("NSE", at(2026, 12, 31, 17, 0))  # its next open is beyond the bound
    assert last_day.opens_at == at(2027, 1, 1, 9, 15) and last_day.note
    assert sessions.state("NSE", at(2026, 12, 2, 12, 0)).note is None


def test_derivatives_currency_and_indices_follow_their_own_sessions():
    wednesday = (2026, 12, 2)
    assert sessions.state("NSE_INDEX", at(*wednesday, 12, 0)).describe() == "NSE open till 15:30"
    assert sessions.state("BFO", at(*wednesday, 9, 5)).state == "pre-open"  # futures' pre-open since Dec 2025
    assert sessions.state("NFO", at(2025, 12, 5, 9, 5)).state == "closed"  # none before
    assert sessions.state("CDS", at(*wednesday, 16, 30)).describe() == "CDS open till 17:00"
    assert sessions.state("CRYPTO", at(2026, 12, 6, 3, 0)).state == "open"


def test_states_gives_one_per_distinct_session_in_a_fixed_order():
    found = sessions.states(["MCX", "BSE_INDEX", "NSE", "NFO", "BFO", "NSE"], at(2026, 12, 2, 12, 0))
    assert [s.describe() for s in found] == [
        "NSE/BSE open till 15:30",
        "NFO/BFO open till 15:30",
        "MCX open till 23:55",
    ]
    assert sessions.states([], at(2026, 12, 2, 12, 0)) == []


def test_a_tick_time_has_its_ist_date():
    late = at(2026, 12, 2, 23, 59).timestamp() * 1000  # 18:29 UTC
    assert sessions.session_day(late) == date(2026, 12, 2)
    assert sessions.session_day(late + 60_000) == date(2026, 12, 3)
    assert sessions.same_day(late, at(2026, 12, 2, 9, 0))
    assert not sessions.same_day(late, datetime(2026, 12, 2, 18, 31, tzinfo=UTC))
    assert sessions.session_day((at(2026, 12, 3, 9, 0) - timedelta(seconds=1)).timestamp() * 1000) == date(2026, 12, 3)


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="aware"):
        sessions.state("NSE", datetime(2026, 12, 2, 12, 0))


def test_the_calendar_loads_once_and_in_a_thread_when_asked():
    sessions.load()
    assert sessions.loaded()
    assert sessions.preload() is None  # built already: no thread
