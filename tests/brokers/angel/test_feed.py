"""AngelFeed against the simulator, through a real FeedHub and a ZeroMQ SUB socket."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

import orjson
import pytest
import zmq

from oaws.brokers.angel import wire
from oaws.brokers.angel.errors import (
    AngelAuthError,
    AngelError,
    AngelLoginError,
    CredentialsMissing,
    MasterMissing,
)
from oaws.brokers.angel.feed import AngelFeed
from oaws.brokers.angel.master import update_master
from oaws.brokers.angel.session import login, save_session
from oaws.brokers.angel.simulator import AngelSimulator
from oaws.brokers.angel.wire import Packet
from oaws.brokers.api import Rejection
from oaws.instruments import parse
from tests.brokers.angel.conftest import make_feed, settings_for
from tests.brokers.bus import FeedBus as Bus
from tests.helpers import eventually


def expected(p: Packet, symbol: str, exchange: str, divisor: float = 100.0) -> dict[str, Any]:
    """The tick SPEC §2 asks for, written out from the packet the simulator encoded."""
    t: dict[str, Any] = {
        "symbol": symbol,
        "exchange": exchange,
        "mode": p.mode,
        "seq": p.sequence,
        "ltp": p.ltp / divisor,
        "ltt": p.exchange_timestamp,
    }
    if p.mode >= wire.QUOTE:
        t |= {
            "open": p.open / divisor,
            "high": p.high / divisor,
            "low": p.low / divisor,
            "close": p.close / divisor,
            "volume": p.volume,
            "last_trade_quantity": p.last_traded_quantity,
            "average_price": p.avg_traded_price / divisor,
            "total_buy_quantity": int(p.total_buy_quantity),
            "total_sell_quantity": int(p.total_sell_quantity),
            "change": (p.ltp - p.close) / divisor,
            "change_percent": round((p.ltp - p.close) * 100 / p.close, 4),
        }
    if p.mode == wire.SNAP_QUOTE:
        buy = [e for e in p.best_five if e.flag == 1]
        sell = [e for e in p.best_five if e.flag == 0]
        t |= {
            "last_quantity": p.last_traded_quantity,
            "oi": p.open_interest,
            "oi_change_percent": p.oi_change_percent,
            "upper_circuit": p.upper_circuit / divisor,
            "lower_circuit": p.lower_circuit / divisor,
            "week_52_high": p.week52_high / divisor,
            "week_52_low": p.week52_low / divisor,
            "depth": {
                side: [{"price": e.price / divisor, "quantity": e.quantity, "orders": e.orders} for e in entries]
                for side, entries in (("buy", buy), ("sell", sell))
            },
        }
    return t


def _feed_fields(tick: dict[str, Any]) -> dict[str, Any]:
    """The tick as the feed made it: without its receive time and what the bus adds (``fseq``)."""
    return {k: v for k, v in tick.items() if k not in ("timestamp", "fseq")}


class Recorder:
    """A publisher without a bus, for tests that run the feed on its own."""

    def __init__(self) -> None:
        self.ticks: list[tuple[str, bytes]] = []
        self.rejects: list[tuple[str, str, str]] = []

    def publish(self, instrument, mode, payload, depth=5) -> None:
        self.ticks.append((instrument.topic(mode, depth), payload))

    def reject(self, instrument, mode, code, message, depth=5) -> None:
        self.rejects.append((instrument.topic(mode, depth), code, message))

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(payload) for t, payload in self.ticks if t == topic]


async def _running(feed: AngelFeed) -> tuple[Recorder, asyncio.Task[None]]:
    recorder = Recorder()
    feed.attach(recorder)
    task = asyncio.create_task(feed.run())
    await eventually(lambda: feed.status()["adapter_status"] == "connected")
    return recorder, task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_depth_20_is_angels_depth_mode_published_with_twenty_levels_on_its_own_topic(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    assert feed.depths == (5, 20)
    recorder, task = await _running(feed)
    reliance = parse("RELIANCE:NSE")
    try:
        feed.want(reliance, 3, 20)
        feed.want(reliance, 3)
        await eventually(lambda: len(recorder.of("NSE_RELIANCE_DEPTH_20")) >= 2 and recorder.of("NSE_RELIANCE_DEPTH"))
        assert sim.subscriptions() == {(wire.DEPTH, wire.NSE_CM, "2885"), (wire.SNAP_QUOTE, wire.NSE_CM, "2885")}
        for tick in recorder.of("NSE_RELIANCE_DEPTH_20"):
            packet = next(p for p in sim.sent_depth if p.exchange_timestamp == tick["ltt"])
            assert len(tick["depth"]["buy"]) == len(tick["depth"]["sell"]) == 20
            assert tick["depth"]["buy"] == [
                {"price": lv.price / 100, "quantity": lv.quantity, "orders": lv.orders} for lv in packet.depth_buy
            ]
            assert tick["depth"]["sell"][19]["price"] == packet.depth_sell[19].price / 100
            assert (tick["symbol"], tick["exchange"], tick["mode"], tick["depth_level"]) == ("RELIANCE", "NSE", 3, 20)
        assert all(len(t["depth"]["buy"]) == 5 for t in recorder.of("NSE_RELIANCE_DEPTH"))  # the five stay five
        feed.unwant(reliance, 3, 20)
        await eventually(lambda: sim.subscriptions() == {(wire.SNAP_QUOTE, wire.NSE_CM, "2885")})
    finally:
        await _stop(task)


async def test_depth_20_is_refused_where_angel_does_not_serve_it_and_past_its_quota(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path, depth_quota=1)
    recorder, task = await _running(feed)
    try:
        feed.want(parse("NIFTY26DEC24FUT:NFO"), 3, 20)
        feed.want(parse("RELIANCE:NSE"), 3, 20)
        feed.want(parse("SBIN:NSE"), 3, 20)
        feed.want(parse("SBIN:NSE"), 3, 30)
        codes = {topic: code for topic, code, _ in recorder.rejects}
        assert codes == {
            "NFO_NIFTY26DEC24FUT_DEPTH_20": "INVALID_DEPTH",
            "NSE_SBIN_DEPTH_20": "LIMIT_EXCEEDED",
            "NSE_SBIN_DEPTH_30": "INVALID_DEPTH",
        }
        await eventually(lambda: recorder.of("NSE_RELIANCE_DEPTH_20"))
        assert sim.subscriptions() == {(wire.DEPTH, wire.NSE_CM, "2885")}
    finally:
        await _stop(task)


@pytest.mark.parametrize(
    "topic, symbol, exchange, divisor",
    [
        ("NSE_RELIANCE_LTP", "RELIANCE", "NSE", 100.0),
        ("NSE_SBIN_QUOTE", "SBIN", "NSE", 100.0),
        ("NSE_RELIANCE_DEPTH", "RELIANCE", "NSE", 100.0),
        ("NSE_INDEX_NIFTY_QUOTE", "NIFTY", "NSE_INDEX", 100.0),
        ("NFO_NIFTY26DEC24FUT_DEPTH", "NIFTY26DEC24FUT", "NFO", 100.0),
        ("CDS_USDINR27DEC24FUT_QUOTE", "USDINR27DEC24FUT", "CDS", 1e7),
    ],
)
async def test_every_mode_is_decoded_field_by_field(sim, master, tmp_path, topic, symbol, exchange, divisor):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe(topic)
        for tick in await bus.ticks(topic, 3):
            before = time.time() * 1000
            packet = sim.packet(tick["seq"])
            assert _feed_fields(tick) == expected(packet, symbol, exchange, divisor)
            assert before - 2000 < tick["timestamp"] <= before + 1
    mode = {"LTP": wire.LTP, "QUOTE": wire.QUOTE, "DEPTH": wire.SNAP_QUOTE}[topic.rsplit("_", 1)[1]]
    assert {r["params"]["mode"] for r in sim.requests} == {mode}


async def test_subscriptions_are_batched_per_mode_and_exchange_type(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path, batch_window=0.2)
    async with Bus(feed) as bus:
        await eventually(lambda: feed.status()["adapter_status"] == "connected")
        for topic in (
            "NSE_RELIANCE_QUOTE",
            "NSE_SBIN_QUOTE",
            "NSE_INFY_QUOTE",
            "NFO_NIFTY26DEC24FUT_QUOTE",
            "NSE_TCS_LTP",
            "NSE_INDEX_NIFTY_QUOTE",
        ):
            bus.subscribe(topic)
        await eventually(lambda: len(sim.subscriptions()) == 6)
        await bus.next("NSE_TCS_LTP")
    subscribes = sorted(
        (r["params"]["mode"], [(t["exchangeType"], sorted(t["tokens"])) for t in r["params"]["tokenList"]])
        for r in sim.requests
        if r["action"] == 1
    )
    assert subscribes == [
        (1, [(1, ["11536"])]),
        (2, [(1, ["1594", "2885", "3045", "99926000"])]),
        (2, [(2, ["35003"])]),
    ]
    assert all(len(r["correlationID"]) == 10 for r in sim.requests)


async def test_unsubscribing_on_the_bus_unsubscribes_at_angel(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        bus.subscribe("NSE_SBIN_LTP")
        await bus.next("NSE_RELIANCE_QUOTE")
        bus.unsubscribe("NSE_RELIANCE_QUOTE")
        await eventually(lambda: sim.subscriptions() == {(wire.LTP, 1, "3045")})
        assert feed.status()["subscriptions"] == 1
    assert {
        "correlationID": sim.requests[-1]["correlationID"],
        "action": 0,
        "params": {"mode": 2, "tokenList": [{"exchangeType": 1, "tokens": ["2885"]}]},
    } == sim.requests[-1]


async def test_two_names_of_one_index_share_one_angel_subscription(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_INDEX_NIFTY_LTP")
        bus.subscribe("NSE_INDEX_NIFTY 50_LTP")
        first = await bus.next("NSE_INDEX_NIFTY_LTP")
        second = await bus.next("NSE_INDEX_NIFTY 50_LTP")
        assert first[1]["symbol"] == "NIFTY" and second[1]["symbol"] == "NIFTY 50"
        assert sim.subscriptions() == {(wire.LTP, 1, "99926000")}
        bus.unsubscribe("NSE_INDEX_NIFTY_LTP")
        await asyncio.sleep(0.2)
        assert sim.subscriptions() == {(wire.LTP, 1, "99926000")}  # still wanted under its other name
        await bus.next("NSE_INDEX_NIFTY 50_LTP")


async def test_a_late_subscriber_gets_the_latest_tick_at_once(master, tmp_path):
    async with AngelSimulator(tick_interval=60) as sim:  # only the tick sent on subscription
        feed = make_feed(sim, master, tmp_path)
        async with Bus(feed) as bus:
            bus.subscribe("NSE_RELIANCE_QUOTE")
            _, tick = await bus.next("NSE_RELIANCE_QUOTE")
            late = bus.ctx.socket(zmq.SUB)
            late.connect(bus.hub.endpoint)
            late.setsockopt(zmq.SUBSCRIBE, b"NSE_RELIANCE_QUOTE")
            async with asyncio.timeout(3):
                _, payload = await late.recv_multipart()
            late.close(0)
    assert _feed_fields(orjson.loads(payload)) == _feed_fields(tick)


async def test_an_unknown_symbol_is_refused_to_the_client(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    with pytest.raises(Rejection):
        feed.check(parse("NOSUCHCO:NSE"))
    async with Bus(feed) as bus:
        bus.subscribe("NSE_NOSUCHCO_QUOTE")
        reject = await bus.reject()
    assert (reject["topic"], reject["code"]) == ("NSE_NOSUCHCO_QUOTE", "SYMBOL_NOT_FOUND")
    assert sim.requests == []


async def test_past_the_connection_and_token_limits_clients_get_limit_exceeded(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path, max_connections=2, tokens_per_connection=2)
    topics = ["NSE_RELIANCE_LTP", "NSE_SBIN_LTP", "NSE_INFY_LTP", "NSE_TCS_LTP", "NSE_HDFCBANK_LTP"]
    async with Bus(feed) as bus:
        for topic in topics:
            bus.subscribe(topic)
        reject = await bus.reject()
        assert reject["code"] == "LIMIT_EXCEEDED" and "4 subscriptions" in reject["message"]
        await eventually(lambda: len(sim.connections) == 2 and len(sim.subscriptions()) == 4)
        assert sorted(len(c.subscriptions) for c in sim.connections) == [2, 2]
        served = {t for t in topics if t != reject["topic"]}
        seen: set[str] = set()
        async with asyncio.timeout(3):
            while seen != served:
                seen.add((await bus.next())[0])
        # freeing a place on the second connection and then emptying it gives that connection back
        for topic in served:
            bus.unsubscribe(topic)
        await eventually(lambda: len(sim.connections) == 1 and not sim.subscriptions())


async def test_angel_refusing_a_subscription_e1002_reaches_the_client(sim, master, tmp_path):
    sim.tokens_per_connection = 2
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        bus.subscribe("NSE_SBIN_LTP")
        await eventually(lambda: len(sim.subscriptions()) == 2)
        bus.subscribe("NSE_INFY_LTP")
        reject = await bus.reject()
        assert (reject["topic"], reject["code"]) == ("NSE_INFY_LTP", "LIMIT_EXCEEDED")
        assert "E1002" in reject["message"]
        assert feed.status()["subscriptions"] == 2
        await bus.next("NSE_SBIN_LTP")  # the others go on


async def test_a_dropped_connection_is_reconnected_and_everything_resubscribed(sim, master, tmp_path, caplog):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        bus.subscribe("NFO_NIFTY26DEC24FUT_LTP")
        await bus.next("NSE_RELIANCE_QUOTE")
        await bus.next("NFO_NIFTY26DEC24FUT_LTP")
        before = set(sim.subscriptions())
        sim.drop_all()
        await eventually(lambda: sim.handshakes == 2 and sim.subscriptions() == before)
        last = sim._seq
        for topic in ("NSE_RELIANCE_QUOTE", "NFO_NIFTY26DEC24FUT_LTP"):
            _, tick = await bus.next(topic)
            while tick["seq"] <= last:
                _, tick = await bus.next(topic)
    assert feed.reconnects == 1 and sim.logins == 1
    assert "connection 0: the connection dropped without a close frame; reconnecting in" in caplog.text


async def test_a_close_frame_is_logged_with_its_code_and_reason(sim, master, tmp_path, caplog):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.close_all(4000, "maintenance")
        await eventually(lambda: sim.handshakes == 2)
        await bus.next("NSE_RELIANCE_LTP")
    assert "Angel closed the connection (code 4000: maintenance); reconnecting in" in caplog.text


async def test_a_malformed_frame_is_counted_and_skipped_and_the_connection_stays(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_DEPTH")
        await bus.next("NSE_RELIANCE_DEPTH")
        connection = sim.connections[0]
        sim.send_garbage()
        sim.send_garbage(b"\x01")
        await eventually(lambda: feed.malformed == 2)
        last = sim._seq
        _, tick = await bus.next("NSE_RELIANCE_DEPTH")
        while tick["seq"] <= last:
            _, tick = await bus.next("NSE_RELIANCE_DEPTH")
        assert sim.connections == [connection] and sim.handshakes == 1
        assert feed.status()["malformed_frames"] == 2


async def test_a_silent_feed_during_market_hours_is_reconnected(sim, master, tmp_path, caplog):
    feed = make_feed(sim, master, tmp_path, silence_timeout=0.3)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.go_silent()
        started = time.monotonic()
        await eventually(lambda: sim.handshakes == 2)
        assert 0.2 <= time.monotonic() - started < 3.0  # the window runs from the last tick, just before
        last = sim._seq
        _, tick = await bus.next("NSE_RELIANCE_LTP")
        while tick["seq"] <= last:
            _, tick = await bus.next("NSE_RELIANCE_LTP")
    assert "no ticks for 0." in caplog.text and "during market hours" in caplog.text


async def test_silence_outside_market_hours_is_left_alone(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path, silence_timeout=0.2, market_hours=lambda exchange_types: False)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.go_silent()
        await asyncio.sleep(0.8)
        assert sim.handshakes == 1 and feed.reconnects == 0


def test_the_silence_watchdog_asks_the_market_hours_of_each_exchange_type(sim, master, tmp_path):
    asked: list[set[str]] = []
    feed = make_feed(sim, master, tmp_path, market_hours=lambda exchanges: asked.append(set(exchanges)) or False)
    link = feed._conns[0].link
    assert not link.market_open({(wire.LTP, wire.NSE_CM, "2885"), (wire.QUOTE, wire.MCX_FO, "1"), (1, 13, "2")})
    assert asked == [{"NSE", "MCX", "CDS"}]


async def test_text_heartbeats_are_sent_and_answered(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path, heartbeat_interval=0.1)
    async with Bus(feed):
        await eventually(lambda: sim.text_pings >= 2 and feed._conns[0].link.pongs >= 2)


async def test_a_stored_session_is_reused_without_logging_in(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    save_session(await asyncio.to_thread(login, feed.settings), feed.session_file)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
    assert sim.logins == 1 and feed.logins == 0


async def test_an_expired_stored_session_is_replaced_by_a_login(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    session = await asyncio.to_thread(login, feed.settings)
    save_session(replace(session, expires=time.time() - 1), feed.session_file)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
    assert sim.logins == 2 and feed.logins == 1 and sim.refused == []


async def test_refused_stored_tokens_lead_to_one_login(sim, master, tmp_path, caplog):
    feed = make_feed(sim, master, tmp_path)
    save_session(await asyncio.to_thread(login, feed.settings), feed.session_file)
    sim.expire_tokens()  # the nightly rollover
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
    assert sim.refused == [(401, "Invalid Auth Token")] and sim.logins == 2 and feed.logins == 1
    assert "Angel One refused the stored session tokens (Invalid Auth Token); logging in again" in caplog.text


async def test_a_login_that_cannot_get_through_is_retried_not_fatal(sim, master, tmp_path, caplog):
    feed = make_feed(sim, master, tmp_path)
    save_session(await asyncio.to_thread(login, feed.settings), feed.session_file)
    sim.expire_tokens()
    sim.rest_unavailable = True
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await eventually(lambda: len(sim.refused) >= 2)
        sim.rest_unavailable = False
        await bus.next("NSE_RELIANCE_LTP")
    assert sim.logins == 2
    assert "and cannot reach Angel One at" in caplog.text and "DataException" in caplog.text


async def test_a_rollover_while_running_logs_in_again_and_resumes(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.expire_tokens()
        await eventually(lambda: sim.logins == 2 and len(sim.connections) == 1)
        last = sim._seq
        _, tick = await bus.next("NSE_RELIANCE_LTP")
        while tick["seq"] <= last:
            _, tick = await bus.next("NSE_RELIANCE_LTP")
    # the tick feed or the order-status socket, whichever reconnects first, meets the
    # expired token; either way there is exactly one login more
    refusals = sim.refused + sim.order_refused
    assert refusals and set(refusals) == {(401, "Invalid Auth Token")}
    assert feed.logins == 2 and sim.logins == 2


async def test_fresh_tokens_refused_stop_the_feed_after_one_login(sim, master, tmp_path):
    sim.refuse_feed = "Feed access not enabled"
    feed = make_feed(sim, master, tmp_path)
    feed.attach(Recorder())
    with pytest.raises(AngelAuthError, match="refused the feed tokens of a fresh login \\(Feed access not enabled\\)"):
        await asyncio.wait_for(feed.run(), 5)
    assert sim.logins == 1 and sim.handshakes == 1
    assert feed.status()["adapter_status"] == "error"


async def test_refused_stored_then_fresh_tokens_mean_exactly_one_relogin(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    save_session(await asyncio.to_thread(login, feed.settings), feed.session_file)
    sim.refuse_feed = "Invalid Feed Token"
    feed.attach(Recorder())
    with pytest.raises(AngelAuthError):
        await asyncio.wait_for(feed.run(), 5)
    assert sim.logins == 2 and sim.handshakes == 2


async def test_wrong_credentials_stop_the_feed_without_retrying(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path, settings={"pin": "0000"})
    feed.attach(Recorder())
    with pytest.raises(AngelLoginError, match="Invalid PIN"):
        await asyncio.wait_for(feed.run(), 5)
    await asyncio.sleep(0.2)
    assert sim.login_failures == ["Invalid PIN"] and sim.handshakes == 0


async def test_an_unreachable_feed_is_retried_with_growing_delays(sim, master, tmp_path, caplog):
    feed = make_feed(
        sim,
        master,
        tmp_path,
        settings={"feed_url": "ws://127.0.0.1:9/smart-stream"},
        backoff_base=0.02,
        backoff_cap=0.16,
    )
    feed.attach(Recorder())
    task = asyncio.create_task(feed.run())
    await eventually(lambda: len(feed.disconnects) >= 5)
    assert feed.status()["adapter_status"] == "reconnecting" and sim.logins == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert all(d.startswith("cannot connect to ws://127.0.0.1:9/smart-stream") for d in feed.disconnects)


def test_backoff_grows_exponentially_with_full_jitter_up_to_a_cap(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path, backoff_base=1.0, backoff_cap=8.0)
    backoff = feed._conns[0].backoff
    for attempt, full in enumerate([1, 2, 4, 8, 8, 8]):
        delays = set()
        for _ in range(50):
            backoff.attempt = attempt
            delays.add(backoff.next())
        assert all(0.1 <= d <= full for d in delays) and min(delays) < full / 2 < max(delays)


async def test_no_secret_reaches_the_logs_while_streaming(sim, master, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    feed = make_feed(sim, master, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.expire_tokens()
        await eventually(lambda: sim.logins == 2)
        await bus.next("NSE_RELIANCE_LTP")
    session = feed._sessions.session
    for secret in (sim.pin, sim.totp_secret, sim.api_key, session.jwt, session.feed_token, session.refresh_token):
        assert secret not in caplog.text


async def test_status_reports_the_connection(sim, master, tmp_path):
    feed = make_feed(sim, master, tmp_path)
    assert feed.status()["adapter_status"] == "connecting"
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        status = feed.status()
    assert status.pop("order_status") in ("idle", "connecting", "connected")  # Angel's order-status socket
    assert status | {"last_disconnect": None} == {
        "adapter_status": "connected",
        "connections": 1,
        "subscriptions": 1,
        "malformed_frames": 0,
        "unexpected_ticks": 0,
        "reconnects": 0,
        "logins": 1,
        "last_disconnect": None,
        "order_updates": 0,
        "malformed_order_frames": 0,
        "order_reconnects": 0,
    }


async def test_from_settings_reads_the_environment_and_the_cached_master(sim, monkeypatch):
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    with pytest.raises(MasterMissing, match="oaws instruments update"):
        AngelFeed.from_settings()
    await asyncio.to_thread(update_master, sim.master_url)
    feed = AngelFeed.from_settings()
    assert feed.name == "angel" and feed.settings == settings_for(sim)
    feed.check(parse("RELIANCE:NSE"))
    monkeypatch.setenv("ANGEL_FEED_URL", "http://not-a-websocket")
    with pytest.raises(AngelError, match="not a ws:// or wss:// URL"):
        AngelFeed.from_settings()
    monkeypatch.delenv("ANGEL_PIN")
    with pytest.raises(CredentialsMissing, match="set ANGEL_PIN"):
        AngelFeed.from_settings()


async def test_a_session_file_that_cannot_be_written_is_logged_and_the_feed_streams(sim, master, tmp_path, caplog):
    (tmp_path / "a-file").write_text("")
    feed = make_feed(sim, master, tmp_path, session_file=tmp_path / "a-file" / "state" / "angel-session.json")
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
    assert feed.logins == 1
    assert "cannot store the Angel session: Not a directory" in caplog.text
