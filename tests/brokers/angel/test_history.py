"""Angel's candles: the simulator's getCandleData read by smartapi's own client, and
AngelFeed.history through the real SmartConnect (chunks, the rate refusal, an expired token)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import pytest

from oaws import sessions
from oaws.bars.aggregator import Interval, parse_interval
from oaws.brokers.angel.history import MAX_DAYS, chunks
from oaws.brokers.angel.master import Master
from oaws.brokers.angel.session import login
from oaws.brokers.angel.simulator import AngelSimulator
from oaws.brokers.angel.smartapi import new_smart_connect
from oaws.brokers.api import HistoryError
from oaws.brokers.sim.history import current_day
from oaws.config import IST
from oaws.instruments import Instrument
from tests.brokers.angel.conftest import make_feed, settings_for

RELIANCE = Instrument("RELIANCE", "NSE")
DAY_MS = 86400000


@pytest.fixture(autouse=True, scope="module")
def calendar() -> None:
    sessions.load()


def smart_for(sim: AngelSimulator) -> object:
    session = login(settings_for(sim), 3.0)
    return new_smart_connect(api_key=sim.api_key, root=sim.api_url, timeout=3.0, access_token=session.jwt)


def ask(smart: object, interval: str, fromdate: str, todate: str) -> dict:
    params = {"exchange": "NSE", "symboltoken": "2885", "interval": interval, "fromdate": fromdate, "todate": todate}
    return smart.getCandleData(params)  # type: ignore[attr-defined]


async def test_smartapi_reads_the_simulators_candles_and_yesterday_closes_at_the_previous_close(
    sim: AngelSimulator,
) -> None:
    smart = await asyncio.to_thread(smart_for, sim)
    now = datetime.now(IST)
    since = datetime.fromtimestamp(time.time() - 20 * 86400, IST).strftime("%Y-%m-%d 00:00")
    reply = await asyncio.to_thread(ask, smart, "ONE_DAY", since, now.strftime("%Y-%m-%d %H:%M"))
    assert reply["status"] is True and reply["message"] == "SUCCESS"
    rows = reply["data"]
    assert all(row[0].endswith("T00:00:00+05:30") for row in rows)
    state = sim._instrument(1, "2885")
    today = current_day("NSE", int(time.time() * 1000)).isoformat()
    dates = [row[0][:10] for row in rows]
    assert dates[-1] == today
    yesterday = rows[-2]
    assert yesterday[4] == state.close / 100  # the live tick's previous close
    assert rows[-1][1] == state.open / 100
    assert all(datetime.fromisoformat(d).weekday() < 5 for d in dates)
    five = await asyncio.to_thread(ask, smart, "FIVE_MINUTE", f"{dates[-2]} 09:15", f"{dates[-2]} 15:29")
    stamps = [row[0][11:16] for row in five["data"]]
    assert stamps[0] == "09:15" and stamps[1] == "09:20" and stamps[-1] == "15:25" and len(stamps) == 75
    assert all(isinstance(row[5], int) and row[5] > 0 for row in five["data"])


async def test_the_simulator_refuses_a_span_longer_than_angels_limit_and_a_bad_date(sim: AngelSimulator) -> None:
    smart = await asyncio.to_thread(smart_for, sim)
    too_long = await asyncio.to_thread(ask, smart, "ONE_MINUTE", "2026-10-01 09:15", "2026-11-05 09:15")
    assert too_long["status"] is False and "30 days" in too_long["message"]
    bad = await asyncio.to_thread(ask, smart, "ONE_MINUTE", "01-10-2026", "2026-11-05 09:15")
    assert bad["status"] is False


def test_long_spans_are_split_within_each_intervals_limit() -> None:
    start = int(datetime(2026, 1, 1, tzinfo=IST).timestamp() * 1000)
    end = start + 95 * DAY_MS
    pairs = chunks("ONE_MINUTE", start, end)
    assert len(pairs) == 4 and pairs[0][0] == "2026-01-01 00:00" and pairs[-1][1] == "2026-04-06 00:00"
    for a, b in pairs:
        span = datetime.strptime(b, "%Y-%m-%d %H:%M") - datetime.strptime(a, "%Y-%m-%d %H:%M")
        assert span.days < MAX_DAYS["ONE_MINUTE"]
    assert len(chunks("ONE_DAY", start, end)) == 1


async def test_angel_feed_history_chunks_a_long_span_through_smartapi(
    sim: AngelSimulator, master: Master, tmp_path: Path
) -> None:
    feed = make_feed(sim, master, tmp_path)
    feed.history_pace = 20.0
    sim.candle_rate = 50
    now = int(time.time() * 1000)
    bars = await asyncio.to_thread(feed.history, RELIANCE, parse_interval("1m"), now - 45 * DAY_MS, now)
    assert len(sim.candle_requests) == 2
    assert {r["interval"] for r in sim.candle_requests} == {"ONE_MINUTE"}
    starts = [b.start_ms for b in bars]
    assert starts == sorted(set(starts)) and len(bars) > 20 * 375
    assert all(b.symbol == "RELIANCE" and b.exchange == "NSE" and b.interval == "1m" for b in bars)
    assert bars[0].start[11:] == "09:15:00+05:30"


async def test_a_rate_refusal_is_retried_then_given_up_in_one_sentence(
    sim: AngelSimulator, master: Master, tmp_path: Path
) -> None:
    feed = make_feed(sim, master, tmp_path)
    feed.history_pace, feed.history_retry_pause = 100.0, 0.4
    sim.candle_rate = 1
    now = int(time.time() * 1000)
    # three chunks at 100/s against 1/s: refusals, then pauses long enough to get through
    bars = await asyncio.to_thread(feed.history, RELIANCE, parse_interval("1m"), now - 70 * DAY_MS, now)
    assert sim.candle_refusals >= 1 and len(sim.candle_requests) == 3 and bars
    sim.candle_refusals = 0
    feed.history_retry_pause = 0.01  # too short: every retry is refused too
    with pytest.raises(HistoryError, match="too many requests"):
        await asyncio.to_thread(feed.history, RELIANCE, parse_interval("1m"), now - 70 * DAY_MS, now)
    assert sim.candle_refusals >= 4


async def test_an_expired_token_says_to_log_in_again(sim: AngelSimulator, master: Master, tmp_path: Path) -> None:
    feed = make_feed(sim, master, tmp_path)
    now = int(time.time() * 1000)
    await asyncio.to_thread(feed.history, RELIANCE, parse_interval("1d"), now - 5 * DAY_MS, now)
    sim.expire_tokens()
    with pytest.raises(HistoryError, match="log in again with `oaws login angel`"):
        await asyncio.to_thread(feed.history, RELIANCE, parse_interval("1d"), now - 5 * DAY_MS, now)
    with pytest.raises(HistoryError, match="no 2m candles"):
        await asyncio.to_thread(feed.history, RELIANCE, Interval("2m", 120), now - DAY_MS, now)


def test_garbage_from_the_broker_is_one_sentence_and_a_refusal_says_its_message() -> None:
    from oaws.brokers.angel.history import candles

    now = int(time.time() * 1000)
    one_minute = parse_interval("1m")
    with pytest.raises(HistoryError, match="cannot read"):
        candles(lambda p: {"status": True, "data": [["yesterday", 1, 2]]}, ("X", "NSE"), "NSE", "1", one_minute,
                now - DAY_MS, now, pace=1000.0)  # fmt: skip
    with pytest.raises(HistoryError, match="not JSON"):
        candles(lambda p: b"<html>", ("X", "NSE"), "NSE", "1", one_minute, now - DAY_MS, now, pace=1000.0)
    with pytest.raises(HistoryError, match="refused the candles: No data found"):
        candles(lambda p: {"status": False, "message": "No data found", "errorcode": "AB1004"}, ("X", "NSE"),
                "NSE", "1", one_minute, now - DAY_MS, now, pace=1000.0)  # fmt: skip
