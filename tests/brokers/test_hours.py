"""Market hours of Indian exchanges, in IST, whatever the machine's time zone."""

from datetime import datetime

from oaws.brokers.hours import market_open
from oaws.config import IST


def test_market_hours_follow_each_exchange_in_ist():
    wednesday_noon = datetime(2024, 12, 11, 12, 0, tzinfo=IST)
    wednesday_night = datetime(2024, 12, 11, 21, 0, tzinfo=IST)
    saturday = datetime(2024, 12, 14, 12, 0, tzinfo=IST)
    assert market_open({"NSE"}, wednesday_noon) and not market_open({"NSE"}, wednesday_night)
    assert market_open({"NSE", "MCX"}, wednesday_night)  # MCX trades in the evening
    assert not market_open({"NSE", "MCX"}, saturday)


def test_an_exchange_not_in_the_table_keeps_equity_hours():
    assert market_open({"NSE_INDEX"}, datetime(2024, 12, 11, 9, 15, tzinfo=IST))
    assert not market_open({"NSE_INDEX"}, datetime(2024, 12, 11, 15, 30, tzinfo=IST))
