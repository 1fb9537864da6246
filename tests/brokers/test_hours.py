"""Market hours of Indian exchanges, in IST, whatever the machine's time zone, holidays known."""

from datetime import UTC, datetime

from oaws.brokers.hours import market_open
from oaws.config import IST


def test_market_hours_follow_each_exchange_in_ist():
    wednesday_noon = datetime(2024, 12, 11, 12, 0, tzinfo=IST)
    wednesday_night = datetime(2024, 12, 11, 21, 0, tzinfo=IST)
    saturday = datetime(2024, 12, 14, 12, 0, tzinfo=IST)
    assert market_open({"NSE"}, wednesday_noon) and not market_open({"NSE"}, wednesday_night)
    assert market_open({"NSE", "MCX"}, wednesday_night)  # MCX trades in the evening
    assert not market_open({"NSE", "MCX"}, saturday)
    assert market_open({"NSE"}, datetime(2024, 12, 11, 6, 30, tzinfo=UTC))  # 12:00 IST


def test_a_holiday_of_the_exchange_calendar_is_no_market_hours():
    christmas_noon = datetime(2026, 12, 25, 12, 0, tzinfo=IST)
    assert not market_open({"NSE", "NFO", "CDS"}, christmas_noon)
    assert market_open({"NSE"}, datetime(2026, 12, 24, 12, 0, tzinfo=IST))


def test_an_exchange_not_in_the_table_keeps_equity_hours_and_pre_open_is_not_trading():
    assert market_open({"NSE_INDEX"}, datetime(2024, 12, 11, 9, 15, tzinfo=IST))
    assert not market_open({"NSE_INDEX"}, datetime(2024, 12, 11, 15, 30, tzinfo=IST))
    assert market_open({"XYZ"}, datetime(2024, 12, 11, 12, 0, tzinfo=IST))
    assert not market_open({"NSE"}, datetime(2024, 12, 11, 9, 5, tzinfo=IST))
