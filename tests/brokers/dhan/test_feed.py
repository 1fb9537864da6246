"""DhanFeed against the Dhan simulator, through a real FeedHub and a ZeroMQ SUB socket.

Every tick read off the bus must be exactly the tick SPEC §2 asks for of one packet the
simulator says it sent (``feed_helpers.expected``); faults come from the simulator's own
fault methods.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from oaws.brokers.api import Rejection
from oaws.brokers.dhan import scrips, wire
from oaws.brokers.dhan.errors import DhanCredentialsMissing, DhanError, DhanMasterMissing, DhanTokenExpired
from oaws.brokers.dhan.feed import DhanFeed
from oaws.brokers.dhan.simulator import DhanSimulator
from oaws.instruments import parse
from tests.brokers.bus import FeedBus as Bus
from tests.brokers.dhan.feed_helpers import (
    FULL,
    PREV_CLOSE,
    QUOTE,
    TICKER,
    make_feed,
    master_of,
    matches,
    sent_of,
)
from tests.helpers import eventually

RELIANCE = ("NSE_EQ", "2885")


@pytest.fixture
async def sim():
    async with DhanSimulator(tick_interval=0.05, seed=5) as simulator:
        yield simulator


def prev_close(sim: DhanSimulator, segment: str, security_id: str) -> float:
    return sim.last(segment, security_id, PREV_CLOSE).values.prev_close


async def running(feed):
    """The feed running behind a FeedHub (which runs ``feed.run``); (bus, the hub's task)."""
    bus = Bus(feed)
    await bus.__aenter__()
    assert bus.task is not None
    return bus, bus.task


async def stop(bus, task) -> None:
    await bus.__aexit__(None, None, None)


async def tick_matching(bus, sim, topic, segment, security_id, code, mode, symbol="RELIANCE", exchange="NSE"):
    """The first tick of ``topic`` that is the tick of a ``code`` packet the simulator sent.

    Ticks before it (from the packets of a mode being replaced) must each be the tick of
    another packet of this instrument: no tick read is unchecked.
    """
    for _ in range(50):
        _, t = await bus.next(topic)
        kw = dict(symbol=symbol, exchange=exchange, prev_close=prev_close(sim, segment, security_id), mode=mode)
        if matches(sim, t, segment, security_id, code, **kw):
            return t
        others = [c for c in (TICKER, QUOTE, FULL) if c != code and c >= {1: TICKER, 2: QUOTE, 3: FULL}[mode]]
        assert any(matches(sim, t, segment, security_id, c, **kw) for c in others), t
    raise AssertionError(f"no tick of a response {code} on {topic}")


async def test_three_modes_of_one_instrument_are_one_full_subscription_every_field_published(sim):
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        for mode in ("LTP", "QUOTE", "DEPTH"):
            bus.subscribe(f"NSE_RELIANCE_{mode}")
        await eventually(lambda: sim.subscriptions() == [{RELIANCE: 21}], what=sim.subscriptions)
        depth = await tick_matching(bus, sim, "NSE_RELIANCE_DEPTH", *RELIANCE, FULL, 3)
        quote = await tick_matching(bus, sim, "NSE_RELIANCE_QUOTE", *RELIANCE, FULL, 2)
        ltp = await tick_matching(bus, sim, "NSE_RELIANCE_LTP", *RELIANCE, FULL, 1)
        assert len(depth["depth"]["buy"]) == len(depth["depth"]["sell"]) == 5
        assert depth["close"] == round(prev_close(sim, *RELIANCE), 2) != 0
        assert quote["change"] == round(quote["ltp"] - quote["close"], 2)
        assert "depth" not in quote and "open" not in ltp
        assert feed.status()["instruments"] == 1
    finally:
        await stop(bus, task)


async def test_modes_change_dhans_subscription_to_the_highest_wanted(sim):
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_LTP")
        await eventually(lambda: sim.subscriptions() == [{RELIANCE: 15}], what=sim.subscriptions)
        await tick_matching(bus, sim, "NSE_RELIANCE_LTP", *RELIANCE, TICKER, 1)
        bus.subscribe("NSE_RELIANCE_QUOTE")
        await eventually(lambda: sim.subscriptions() == [{RELIANCE: 17}], what=sim.subscriptions)
        await tick_matching(bus, sim, "NSE_RELIANCE_QUOTE", *RELIANCE, QUOTE, 2)
        await tick_matching(bus, sim, "NSE_RELIANCE_LTP", *RELIANCE, QUOTE, 1)
        bus.unsubscribe("NSE_RELIANCE_QUOTE")
        await eventually(lambda: sim.subscriptions() == [{RELIANCE: 15}], what=sim.subscriptions)
        bus.unsubscribe("NSE_RELIANCE_LTP")
        await eventually(lambda: sim.subscriptions() == [], what=sim.subscriptions)  # an empty connection is closed
        assert feed.status()["instruments"] == 0
    finally:
        await stop(bus, task)


async def test_a_derivatives_quote_joins_oi_and_an_index_ticks(sim):
    master = master_of(sim)
    future = next(m for m in master.search("NIFTY", "NFO", 50) if m.instrument_type.startswith("FUT"))
    fut = parse(future.instrument)
    feed = make_feed(sim, master)
    bus, task = await running(feed)
    try:
        bus.subscribe(fut.topic(3))
        bus.subscribe("NSE_INDEX_NIFTY_QUOTE")
        t = await tick_matching(
            bus, sim, fut.topic(3), "NSE_FNO", future.security_id, FULL, 3, fut.symbol, fut.exchange
        )
        assert t["oi"] > 0
        await tick_matching(bus, sim, "NSE_INDEX_NIFTY_QUOTE", "IDX_I", "13", QUOTE, 2, "NIFTY", "NSE_INDEX")
    finally:
        await stop(bus, task)


async def test_depth_20_has_twenty_levels_a_side_on_its_own_topic(sim):
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_DEPTH_20")
        _, t = await bus.next("NSE_RELIANCE_DEPTH_20")
        assert sim.depth_subscriptions() == [{RELIANCE}]
        assert sim.subscriptions() == []  # the market feed is not opened for it
        assert t["depth_level"] == 20 and t["mode"] == 3 and (t["symbol"], t["exchange"]) == ("RELIANCE", "NSE")
        bids = [s.values for s in sent_of(sim, *RELIANCE, wire.DEPTH_BID, stream="depth")]
        asks = [s.values for s in sent_of(sim, *RELIANCE, wire.DEPTH_ASK, stream="depth")]

        def side(values):
            return [{"price": round(r.price, 2), "quantity": r.quantity, "orders": r.orders} for r in values.levels]

        pairs = [(side(b), side(a)) for b, a in zip(bids, asks, strict=False) if b.sequence + 1 == a.sequence]
        assert (t["depth"]["buy"], t["depth"]["sell"]) in pairs
        assert len(t["depth"]["buy"]) == len(t["depth"]["sell"]) == 20
        bus.unsubscribe("NSE_RELIANCE_DEPTH_20")
        await eventually(lambda: sim.depth_subscriptions() == [], what=sim.depth_subscriptions)
    finally:
        await stop(bus, task)


async def test_depth_20_of_a_bse_instrument_is_invalid_depth(sim):
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("BSE_RELIANCE_DEPTH_20")
        reject = await bus.reject()
        assert reject["code"] == "INVALID_DEPTH" and "NSE" in reject["message"]
        assert sim.depth_subscriptions() == []
    finally:
        await stop(bus, task)


async def test_pool_limits_and_limit_exceeded_per_entry(sim):
    # two connections of two instruments; requests of one instrument each
    feed = make_feed(sim, max_connections=2, instruments_per_connection=2, instruments_per_request=1)
    bus, task = await running(feed)
    names = ["RELIANCE", "INFY", "TCS", "HDFCBANK", "SBIN"]
    try:
        for name in names:
            bus.subscribe(f"NSE_{name}_LTP")
        reject = await bus.reject()
        assert reject["code"] == "LIMIT_EXCEEDED" and "2 connections" in reject["message"]
        await eventually(lambda: sorted(map(len, sim.subscriptions())) == [2, 2], what=sim.subscriptions)
        for conn in sim.connections:
            assert all(r["InstrumentCount"] == 1 for r in conn.requests)
        # a 20-depth instrument needs a third connection: over the user's budget
        bus.subscribe("NSE_ITC_DEPTH_20")
        reject = await bus.reject()
        assert reject["code"] == "LIMIT_EXCEEDED" and "20-level" in reject["message"]
        # one given back makes room
        bus.unsubscribe("NSE_RELIANCE_LTP")
        bus.unsubscribe("NSE_INFY_LTP")
        bus.unsubscribe("NSE_SBIN_LTP")
        await eventually(lambda: sorted(map(len, sim.subscriptions())) in ([1], [2]), what=sim.subscriptions)
        bus.unsubscribe("NSE_ITC_DEPTH_20")
        await asyncio.sleep(0.2)
        bus.subscribe("NSE_ITC_DEPTH_20")
        _, t = await bus.next("NSE_ITC_DEPTH_20")
        assert t["depth_level"] == 20
    finally:
        await stop(bus, task)


async def test_a_drop_resubscribes_every_instrument_at_its_mode(sim):
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_DEPTH")
        bus.subscribe("NSE_INFY_LTP")
        bus.subscribe("NSE_TCS_DEPTH_20")
        want = [{RELIANCE: 21, ("NSE_EQ", "1594"): 15}]
        await eventually(lambda: sim.subscriptions() == want, what=sim.subscriptions)
        await eventually(lambda: sim.depth_subscriptions() == [{("NSE_EQ", "11536")}])
        handshakes = sim.handshakes
        assert sim.drop_all() == 3  # feed, 20-depth and order streams
        await eventually(lambda: feed.reconnects >= 2 and sim.handshakes > handshakes)
        await eventually(lambda: sim.subscriptions() == want, what=sim.subscriptions)
        await eventually(lambda: sim.depth_subscriptions() == [{("NSE_EQ", "11536")}])
        await tick_matching(bus, sim, "NSE_RELIANCE_DEPTH", *RELIANCE, FULL, 3)
        assert "dropped" in (feed.status()["last_disconnect"] or "")
    finally:
        await stop(bus, task)


@pytest.mark.parametrize("kind", ["truncated", "length", "code"])
async def test_garbage_is_counted_and_the_connection_kept(sim, kind):
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        await bus.next("NSE_RELIANCE_QUOTE")
        handshakes = sim.handshakes
        assert sim.send_garbage(kind=kind) == 1
        await eventually(lambda: feed.bad_frames == 1)
        await tick_matching(bus, sim, "NSE_RELIANCE_QUOTE", *RELIANCE, QUOTE, 2)
        assert sim.handshakes == handshakes and feed.reconnects == 0
        assert feed.status()["bad_frames"] == 1
    finally:
        await stop(bus, task)


@pytest.mark.parametrize(("code", "words"), [(805, "5 WebSocket connections"), (806, "Data APIs"), (800, "internal")])
async def test_a_disconnect_code_is_one_line_with_its_sentence_then_a_reconnect(sim, caplog, code, words):
    caplog.set_level(logging.INFO, "oaws")
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.disconnect(code)
        await eventually(lambda: feed.reconnects >= 1)
        lines = [r.getMessage() for r in caplog.records if f"({code})" in r.getMessage()]  # the feed's line
        assert len(lines) == 1 and words in lines[0], lines
        assert feed.status()["last_server_disconnect"] == wire.reason_text(code)
        await eventually(lambda: sim.subscriptions() == [{RELIANCE: 15}])
        assert not task.done()
    finally:
        await stop(bus, task)


async def test_an_expired_token_stops_the_feed_in_one_sentence_with_few_handshakes(sim, caplog):
    caplog.set_level(logging.DEBUG)
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_LTP")
        bus.subscribe("NSE_TCS_DEPTH_20")  # two connections refused at once: still one check, one sentence
        await bus.next("NSE_RELIANCE_LTP")
        await bus.next("NSE_TCS_DEPTH_20")
        handshakes = sim.handshakes
        sim.expire_token(drop=True)
        async with asyncio.timeout(10):
            with pytest.raises(DhanTokenExpired) as info:
                await task
        message = str(info.value)
        assert message.count(". ") == 0 and "\n" not in message and "token" in message.lower()
        assert "keeps refusing" not in message and "DHAN_ACCESS_TOKEN" in message
        assert sim.handshakes - handshakes <= 1  # the profile call refuses it: no reconnect storm
        assert feed.status()["adapter_status"] == "error"
        assert not any(sim.access_token in r.getMessage() for r in caplog.records)
    finally:
        await stop(bus, task)


async def test_an_expired_token_at_start_never_opens_the_feed(sim):
    sim.expire_token(drop=False)
    feed = make_feed(sim)
    with pytest.raises(DhanTokenExpired):
        async with asyncio.timeout(10):
            await feed.run()
    assert sim.handshakes == 0


async def test_a_token_the_feed_refuses_though_the_profile_accepts_stands_down(sim):
    """A wrong client id for the feed only (the profile is asked with the settings' own): 808 each time."""
    feed = make_feed(sim, validate=lambda settings: "profile ok")
    feed.settings = feed.settings.with_overrides(client_id="1999999999")
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_LTP")
        async with asyncio.timeout(10):
            with pytest.raises(DhanTokenExpired) as info:
                await task
        assert "keeps refusing" in str(info.value)
        assert sim.handshakes == 2  # once refused, the profile checked again, refused again: the end
    finally:
        await stop(bus, task)


async def test_an_order_update_is_published_in_openalgos_vocabulary(sim):
    feed = make_feed(sim)
    bus, task = await running(feed)
    topic = f"DHAN_{sim.client_id}_orders"
    try:
        bus.subscribe(topic)
        await eventually(lambda: feed.status()["order_status"] == "connected" and sim.order_connections)
        sent = sim.push_order(
            {
                "TxnType": "S",
                "OrderType": "LMT",
                "Product": "I",
                "Quantity": 10,
                "TradedQty": 4,
                "Price": 2950.5,
                "AvgTradedPrice": 2950.25,
                "Status": "Part_Traded",
            }
        )
        _, update = await bus.next(topic)
        assert update == {
            "type": "order_update",
            "user_id": sim.client_id,
            "mode": "live",
            "broker": "dhan",
            "orderid": sent["Data"]["OrderNo"],
            "symbol": "RELIANCE",
            "exchange": "NSE",
            "action": "SELL",
            "quantity": 10,
            "price": 2950.5,
            "trigger_price": 0.0,
            "pricetype": "LIMIT",
            "product": "MIS",
            "order_status": "open",
            "filled_quantity": 4,
            "pending_quantity": 6,
            "average_price": 2950.25,
            "rejection_reason": "",
        }
        sim.push_order({"Status": "Rejected", "ReasonDescription": "RMS: margin"})
        _, update = await bus.next(topic)
        assert (update["order_status"], update["rejection_reason"], update["pending_quantity"]) == (
            "rejected",
            "RMS: margin",
            0,
        )
        assert feed.status()["order_updates"] == 2
    finally:
        await stop(bus, task)


async def test_no_log_record_holds_the_token(sim, caplog):
    caplog.set_level(logging.DEBUG)
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_DEPTH")
        bus.subscribe("NSE_RELIANCE_DEPTH_20")
        await bus.next("NSE_RELIANCE_DEPTH_20")
        feed_handshakes, depth_handshakes = sim.handshakes, sim.depth_handshakes
        sim.drop_all()
        await eventually(lambda: sim.handshakes > feed_handshakes and sim.depth_handshakes > depth_handshakes)
        await eventually(lambda: sim.subscriptions() == [{RELIANCE: 21}] and sim.depth_subscriptions() == [{RELIANCE}])
        assert sim.disconnect(805) == 2
        await eventually(lambda: feed.reconnects >= 4)
        await bus.next("NSE_RELIANCE_DEPTH")
    finally:
        await stop(bus, task)
    token = sim.access_token
    assert caplog.records
    for record in caplog.records:
        assert token not in record.getMessage()
        assert token not in str(record.args)
        assert token not in (record.exc_text or "")
    assert token not in repr(feed.settings) and token not in str(feed.status())


async def test_a_burst_of_wants_is_batched_in_requests_of_at_most_the_limit(sim):
    master = master_of(sim)
    options = [parse(m.instrument) for m in master.search("NIFTY", "NFO", 100) if m.instrument_type in ("CE", "PE")]
    assert len(options) >= 25
    feed = make_feed(sim, master, batch_window=0.3, instruments_per_request=10)  # Dhan's is 100
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        await eventually(lambda: sim.subscriptions() == [{RELIANCE: 17}], what=sim.subscriptions)
        for option in options[:25]:
            bus.subscribe(option.topic(1))
        await eventually(lambda: sum(map(len, sim.subscriptions())) == 26, what=sim.subscriptions)
        (conn,) = sim.connections
        burst = conn.requests[1:]
        assert [(r["RequestCode"], r["InstrumentCount"]) for r in burst] == [(15, 10), (15, 10), (15, 5)]
        assert {e["ExchangeSegment"] for r in burst for e in r["InstrumentList"]} == {"NSE_FNO"}
    finally:
        await stop(bus, task)


async def test_silence_in_market_hours_reconnects_and_resubscribes(sim):
    feed = make_feed(sim, silence_timeout=0.5)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        await bus.next("NSE_RELIANCE_QUOTE")
        handshakes = sim.handshakes
        assert sim.go_silent() == 1
        # the silent connection may linger at the simulator (it reads nothing): look at the new one
        await eventually(lambda: sim.handshakes > handshakes and sim.subscriptions()[-1] == {RELIANCE: 17})
        assert "no ticks" in feed.disconnects[0]
        await tick_matching(bus, sim, "NSE_RELIANCE_QUOTE", *RELIANCE, QUOTE, 2)
    finally:
        await stop(bus, task)


async def test_outside_market_hours_a_quiet_feed_is_left_alone(sim):
    feed = make_feed(sim, silence_timeout=0.3, market_hours=lambda exchanges: False)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.go_silent(1.5)
        await asyncio.sleep(1.0)  # three silence windows: the watchdog must not act
        assert feed.reconnects == 0
        await bus.next("NSE_RELIANCE_LTP", timeout=5)  # the same connection speaks again
        assert feed.reconnects == 0
    finally:
        await stop(bus, task)


async def test_an_unknown_instrument_is_refused_by_check_and_on_the_bus(sim):
    feed = make_feed(sim)
    with pytest.raises(Rejection) as info:
        feed.check(parse("NOSUCH:NSE"))
    assert info.value.code == "SYMBOL_NOT_FOUND"
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_NOSUCH_LTP")
        reject = await bus.reject()
        assert (reject["code"], reject["symbol"]) == ("SYMBOL_NOT_FOUND", "NOSUCH")
        bus.subscribe("NSE_RELIANCE_LTP")  # the refusal costs the others nothing
        await bus.next("NSE_RELIANCE_LTP")
        assert sim.subscriptions() == [{RELIANCE: 15}]
    finally:
        await stop(bus, task)


def test_from_settings_needs_the_credentials_and_a_master(monkeypatch, tmp_path):
    with pytest.raises(DhanCredentialsMissing) as missing:
        DhanFeed.from_settings()
    assert "DHAN_CLIENT_ID" in str(missing.value) and "\n" not in str(missing.value)
    monkeypatch.setenv("DHAN_CLIENT_ID", "1000000001")
    monkeypatch.setenv("DHAN_ACCESS_TOKEN", "a-secret-token")
    with pytest.raises(DhanMasterMissing) as no_master:
        DhanFeed.from_settings()
    assert "a-secret-token" not in str(no_master.value)
    monkeypatch.setenv("DHAN_FEED_URL", "http://example.invalid/feed")
    (tmp_path / "scrips.csv").write_bytes(scrips.master_csv())
    with pytest.raises(DhanError) as bad_url:
        DhanFeed.from_settings(instruments=str(tmp_path / "scrips.csv"))
    assert "DHAN_FEED_URL" in str(bad_url.value)


async def test_one_depth_20_instrument_given_back_leaves_the_other(sim):
    feed = make_feed(sim)
    bus, task = await running(feed)
    try:
        bus.subscribe("NSE_RELIANCE_DEPTH_20")
        bus.subscribe("NSE_TCS_DEPTH_20")
        await eventually(lambda: sim.depth_subscriptions() == [{RELIANCE, ("NSE_EQ", "11536")}])
        await bus.next("NSE_TCS_DEPTH_20")
        bus.unsubscribe("NSE_TCS_DEPTH_20")
        (conn,) = sim.depth_connections
        await eventually(lambda: conn.requests[-1]["RequestCode"] == wire.UNSUB_DEPTH_20)
        assert conn.requests[-1]["InstrumentList"] == [{"ExchangeSegment": "NSE_EQ", "SecurityId": "11536"}]
        published = feed.unexpected
        _, t = await bus.next("NSE_RELIANCE_DEPTH_20")
        assert t["symbol"] == "RELIANCE" and feed.status()["depth_instruments"] == 1
        # whatever Dhan still sends of it is not published (the simulator, like dhanhq, knows 24, not 25)
        await eventually(lambda: feed.unexpected > published or conn.subscriptions.keys() == {RELIANCE})
    finally:
        await stop(bus, task)
