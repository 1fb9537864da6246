"""KiteFeed against the Kite simulator, through a real FeedHub and a ZeroMQ SUB socket."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import pytest
import zmq

from oaws.brokers import kite as kite_plugin
from oaws.brokers.api import Rejection
from oaws.brokers.kite.errors import KiteCredentialsMissing, KiteError, KiteTokenExpired
from oaws.brokers.kite.feed import SUBSCRIBE_BATCH, KiteFeed
from oaws.brokers.kite.simulator import GARBAGE_FRAMES
from oaws.instruments import parse
from oaws.protocol.orders import order_topic
from tests.brokers.bus import FeedBus as Bus
from tests.brokers.kite.feed_helpers import (
    Recorder,
    expected,
    feed_fields,
    make_feed,
    sent_ticks,
    settings_for,
)
from tests.helpers import eventually

RELIANCE, INFY, NIFTY, USDINR_CDS, USDINR_BCD = 738561, 408065, 256265, 156569603, 156569606
NIFTY_FUT = 165573890


async def _running(feed: KiteFeed) -> tuple[Recorder, asyncio.Task[None]]:
    recorder = Recorder()
    feed.attach(recorder)
    task = asyncio.create_task(feed.run())
    await eventually(lambda: feed.status()["adapter_status"] == "connected")
    return recorder, task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _check(tick: dict, sim, feed, token: int, mode: int) -> None:
    """``tick`` is exactly what the simulator meant by one of the packets it sent for ``token``."""
    got = feed_fields(tick)
    candidates = [expected(t, tick["symbol"], tick["exchange"], mode) for t in sent_ticks(sim, feed, token)]
    if "ltt" not in candidates[-1]:  # LTP and quote packets carry no time: the feed's receive time stands
        assert tick["ltt"] == tick["timestamp"]
        got.pop("ltt")
    change = got.pop("change", None)
    for candidate in candidates:
        if change is not None and candidate.pop("change") != pytest.approx(change, abs=1e-9):
            continue
        if candidate == got:
            return
    raise AssertionError(f"{tick} is none of the {len(candidates)} ticks the simulator sent for {token}")


@pytest.mark.parametrize(
    "topic, token, mode, kite_mode",
    [
        ("NSE_RELIANCE_LTP", RELIANCE, 1, "ltp"),
        ("NSE_RELIANCE_QUOTE", RELIANCE, 2, "quote"),
        ("NSE_RELIANCE_DEPTH", RELIANCE, 3, "full"),
        ("NSE_INDEX_NIFTY_LTP", NIFTY, 1, "ltp"),
        ("NSE_INDEX_NIFTY_QUOTE", NIFTY, 2, "quote"),
        ("NSE_INDEX_NIFTY_DEPTH", NIFTY, 3, "full"),
        ("NFO_NIFTY29DEC26FUT_DEPTH", NIFTY_FUT, 3, "full"),
        ("CDS_USDINR29DEC26FUT_QUOTE", USDINR_CDS, 2, "quote"),
        ("CDS_USDINR29DEC26FUT_DEPTH", USDINR_CDS, 3, "full"),
        ("BCD_USDINR29DEC26FUT_DEPTH", USDINR_BCD, 3, "full"),
    ],
)
async def test_every_mode_is_decoded_field_by_field(kite_sim, topic, token, mode, kite_mode):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe(topic)
        await eventually(lambda: kite_sim.subscriptions() == {token: kite_mode})
        for tick in await bus.ticks(topic, 4):
            before = time.time() * 1000
            assert before - 2000 < tick["timestamp"] <= before + 1
            assert tick["mode"] == mode
            _check(tick, kite_sim, feed, token, mode)
    assert feed.status()["bad_frames"] == 0


async def test_several_modes_of_one_token_share_one_subscription_at_the_highest(kite_sim):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        assert kite_sim.subscriptions() == {RELIANCE: "ltp"}
        bus.subscribe("NSE_RELIANCE_DEPTH")
        await eventually(lambda: kite_sim.subscriptions() == {RELIANCE: "full"})
        await bus.next("NSE_RELIANCE_DEPTH")
        _, ltp = await bus.next("NSE_RELIANCE_LTP")
        while ltp["ltt"] == ltp["timestamp"]:  # ticks from before the mode change carry their arrival time
            _, ltp = await bus.next("NSE_RELIANCE_LTP")
        assert set(ltp) == {"symbol", "exchange", "mode", "ltp", "ltt", "timestamp", "fseq"}
        _check(ltp, kite_sim, feed, RELIANCE, 1)  # an LTP tick cut from a full packet, with the trade's time
        bus.unsubscribe("NSE_RELIANCE_DEPTH")
        await eventually(lambda: kite_sim.subscriptions() == {RELIANCE: "ltp"})
        await bus.next("NSE_RELIANCE_LTP")
        requests = kite_sim.open_connections()[0].requests
    # each change of mode: the token subscribed again, then its mode set
    assert requests == [
        {"a": "subscribe", "v": [RELIANCE]},
        {"a": "mode", "v": ["ltp", [RELIANCE]]},
        {"a": "subscribe", "v": [RELIANCE]},
        {"a": "mode", "v": ["full", [RELIANCE]]},
        {"a": "subscribe", "v": [RELIANCE]},
        {"a": "mode", "v": ["ltp", [RELIANCE]]},
    ]


async def test_unsubscribing_on_the_bus_unsubscribes_at_kite(kite_sim):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        bus.subscribe("NSE_INFY_LTP")
        await bus.next("NSE_RELIANCE_QUOTE")
        bus.unsubscribe("NSE_RELIANCE_QUOTE")
        await eventually(lambda: kite_sim.subscriptions() == {INFY: "ltp"})
        assert feed.status()["tokens"] == 1
        assert kite_sim.open_connections()[0].requests[-1] == {"a": "unsubscribe", "v": [RELIANCE]}


async def test_wants_within_the_window_go_in_batches_of_subscribe_then_mode(kite_sim):
    feed = make_feed(kite_sim, batch_window=0.2)
    _, task = await _running(feed)
    tokens = sorted({t for t in kite_sim._rows.by_token})[: SUBSCRIBE_BATCH + 50]
    names = [parse(feed.master.instrument_of(t)) for t in tokens]
    try:
        for instrument in names:
            feed.want(instrument, 1)
        await eventually(lambda: len(kite_sim.subscriptions()) == len(tokens))
        requests = kite_sim.open_connections()[0].requests
        assert requests == [
            {"a": "subscribe", "v": tokens[:SUBSCRIBE_BATCH]},
            {"a": "mode", "v": ["ltp", tokens[:SUBSCRIBE_BATCH]]},
            {"a": "subscribe", "v": tokens[SUBSCRIBE_BATCH:]},
            {"a": "mode", "v": ["ltp", tokens[SUBSCRIBE_BATCH:]]},
        ]
        assert set(kite_sim.subscriptions().values()) == {"ltp"}
    finally:
        await _stop(task)


async def test_an_unknown_symbol_is_refused_to_the_client(kite_sim):
    feed = make_feed(kite_sim)
    with pytest.raises(Rejection):
        feed.check(parse("NOSUCHCO:NSE"))
    async with Bus(feed) as bus:
        bus.subscribe("NSE_NOSUCHCO_QUOTE")
        reject = await bus.reject()
    assert (reject["topic"], reject["code"]) == ("NSE_NOSUCHCO_QUOTE", "SYMBOL_NOT_FOUND")
    assert kite_sim.subscriptions() == {}


async def test_tokens_spread_over_connections_and_past_all_of_them_clients_get_limit_exceeded(kite_sim):
    feed = make_feed(kite_sim, max_connections=2, tokens_per_connection=2)
    topics = ["NSE_RELIANCE_LTP", "NSE_INFY_LTP", "NSE_TCS_LTP", "NSE_SBIN_LTP", "NSE_ITC_LTP"]
    async with Bus(feed) as bus:
        await eventually(lambda: kite_sim.connections == 1)
        for topic in topics:
            bus.subscribe(topic)
        reject = await bus.reject()
        assert reject["code"] == "LIMIT_EXCEEDED" and "Kite allows 4 instruments" in reject["message"]
        await eventually(lambda: kite_sim.connections == 2 and len(kite_sim.subscriptions()) == 4)
        assert sorted(len(c.modes) for c in kite_sim.open_connections()) == [2, 2]
        served = {t for t in topics if t != reject["topic"]}
        seen: set[str] = set()
        async with asyncio.timeout(3):
            while seen != served:
                seen.add((await bus.next())[0])
        for topic in served:
            bus.unsubscribe(topic)
        await eventually(lambda: kite_sim.connections == 1 and not kite_sim.subscriptions())


async def test_a_dropped_connection_is_reconnected_and_resubscribed_at_the_right_modes(kite_sim, caplog):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_DEPTH")
        bus.subscribe("NSE_INFY_LTP")
        bus.subscribe("NSE_INDEX_NIFTY_QUOTE")
        await eventually(lambda: kite_sim.subscriptions() == {RELIANCE: "full", INFY: "ltp", NIFTY: "quote"})
        kite_sim.drop_all()
        await eventually(lambda: kite_sim.handshakes == 2)
        await eventually(lambda: kite_sim.subscriptions() == {RELIANCE: "full", INFY: "ltp", NIFTY: "quote"})
        frames = len(feed.frames)

        def modes_since() -> dict[int, str]:
            return {t.instrument_token: t.mode for f in feed.frames[frames:] for t in kite_sim.ticks_of(f)}

        await eventually(lambda: modes_since() == {RELIANCE: "full", INFY: "ltp", NIFTY: "quote"})
        for topic in ("NSE_RELIANCE_DEPTH", "NSE_INFY_LTP", "NSE_INDEX_NIFTY_QUOTE"):
            await bus.next(topic)
    assert feed.reconnects == 1
    assert "connection 0: the connection dropped without a close frame; reconnecting in" in caplog.text


async def test_garbage_is_counted_and_skipped_and_the_connection_stays(kite_sim):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_DEPTH")
        await bus.next("NSE_RELIANCE_DEPTH")
        kite_sim.send_garbage()
        binary = sum(isinstance(f, bytes) for f in GARBAGE_FRAMES.values())
        text = len(GARBAGE_FRAMES) - binary
        await eventually(lambda: feed.bad_frames == binary and feed.bad_text == text)
        frames = len(feed.frames)
        _, tick = await bus.next("NSE_RELIANCE_DEPTH")
        while len(feed.frames) == frames:
            _, tick = await bus.next("NSE_RELIANCE_DEPTH")
        _check(tick, kite_sim, feed, RELIANCE, 3)
        assert kite_sim.handshakes == 1 and feed.reconnects == 0
        status = feed.status()
        assert (status["bad_frames"], status["bad_text_frames"]) == (binary, text)
        assert status["heartbeats"] >= 0


async def test_heartbeats_are_counted_and_are_not_data(kite_sim):
    feed = make_feed(kite_sim, silence_timeout=0.4)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        await eventually(lambda: feed.heartbeats >= 2)
        # ticks stop, heartbeats would go on: the silence watchdog must still see a silent feed
        kite_sim.tick_interval = 3600
        await eventually(lambda: kite_sim.handshakes == 2, timeout=5)
    assert "no ticks for" in feed.disconnects[0]


async def test_a_silent_feed_during_market_hours_is_reconnected(kite_sim, caplog):
    feed = make_feed(kite_sim, silence_timeout=0.3)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        kite_sim.go_silent()
        await eventually(lambda: kite_sim.handshakes == 2)
        await eventually(lambda: kite_sim.subscriptions() == {RELIANCE: "ltp"})
        await bus.next("NSE_RELIANCE_LTP")
    assert "no ticks for 0." in caplog.text and "during market hours" in caplog.text


async def test_silence_outside_market_hours_is_left_alone(kite_sim):
    asked: list[set[str]] = []
    feed = make_feed(kite_sim, silence_timeout=0.2, market_hours=lambda ex: asked.append(set(ex)) or False)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        bus.subscribe("BCD_USDINR29DEC26FUT_LTP")
        bus.subscribe("NSE_INDEX_NIFTY_LTP")
        await eventually(lambda: len(kite_sim.subscriptions()) == 3)
        await bus.next("NSE_RELIANCE_LTP")
        kite_sim.go_silent()
        await eventually(lambda: len(asked) >= 3)
        assert kite_sim.handshakes == 1 and feed.reconnects == 0
    assert {"NSE", "CDS"} in asked  # an index trades in its exchange's hours, BSE's currencies in CDS's


async def test_an_expired_token_stops_the_feed_with_one_sentence_and_no_storm(kite_sim, caplog):
    feed = make_feed(kite_sim)
    recorder, task = await _running(feed)
    feed.want(parse("RELIANCE:NSE"), 1)
    await eventually(lambda: recorder.of("NSE_RELIANCE_LTP"))
    kite_sim.expire_tokens()
    with pytest.raises(KiteTokenExpired) as raised:
        await asyncio.wait_for(task, 5)
    message = str(raised.value)
    assert message == "Kite refused the access token (Forbidden); log in again with `oaws login kite`"
    handshakes = kite_sim.handshakes
    assert handshakes <= 3  # the first, one with the token read again, and no more
    await asyncio.sleep(0.5)
    assert kite_sim.handshakes == handshakes and feed.status()["adapter_status"] == "error"
    assert kite_sim.refused.count((403, "Forbidden")) == handshakes - 1
    # Kite has no login to repeat: the log says what the feed does instead
    assert "refused the stored access token (Forbidden); reading it again" in caplog.text
    assert "refused the access token (HTTP 403: Forbidden); read it again" in caplog.text
    assert "logging in again" not in caplog.text and "logged in again" not in caplog.text


async def test_a_token_refused_from_the_start_stops_the_feed_after_two_handshakes(kite_sim):
    feed = make_feed(kite_sim, settings=settings_for(kite_sim, access_token="not-a-token"))
    feed.attach(Recorder())
    with pytest.raises(KiteTokenExpired, match="log in again with `oaws login kite`"):
        await asyncio.wait_for(feed.run(), 5)
    assert kite_sim.handshakes == 2 and kite_sim.refused == [(403, "Forbidden")] * 2


async def test_a_service_restart_is_waited_out_and_the_feed_comes_back(kite_sim, caplog):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        await bus.next("NSE_RELIANCE_QUOTE")
        kite_sim.restart(0.6)
        await eventually(lambda: (503, "Service Unavailable") in kite_sim.refused)
        await eventually(lambda: kite_sim.subscriptions() == {RELIANCE: "quote"}, timeout=10)
        frames = len(feed.frames)
        await bus.next("NSE_RELIANCE_QUOTE")
        await eventually(lambda: len(feed.frames) > frames)
    assert "Kite closed the connection (code 1012: service restart)" in caplog.text
    assert "Kite refused the connection (HTTP 503" in caplog.text


async def test_an_order_update_is_published_in_openalgos_vocabulary(kite_sim):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe(order_topic("kite", kite_sim.user_id).decode())
        await eventually(lambda: kite_sim.connections == 1)
        sent = kite_sim.push_order(
            {
                "instrument_token": INFY,
                "status": "TRIGGER PENDING",
                "order_type": "SL",
                "transaction_type": "SELL",
                "product": "MIS",
                "quantity": 5,
                "price": 1890.5,
                "trigger_price": 1891,
                "pending_quantity": 5,
            }
        )
        topic, update = await bus.next(order_topic("kite", kite_sim.user_id).decode())
        kite_sim.push_order({"instrument_token": RELIANCE, "status": "REJECTED", "status_message": "margin"})
        _, rejected = await bus.next(topic)
    assert update == {
        "type": "order_update",
        "user_id": kite_sim.user_id,
        "mode": "live",
        "broker": "kite",
        "orderid": sent["order_id"],
        "symbol": "INFY",
        "exchange": "NSE",
        "action": "SELL",
        "quantity": 5,
        "price": 1890.5,
        "trigger_price": 1891.0,
        "pricetype": "SL",
        "product": "MIS",
        "order_status": "trigger pending",
        "filled_quantity": 0,
        "pending_quantity": 5,
        "average_price": 0.0,
        "rejection_reason": "",
        "kite_status": "TRIGGER PENDING",
    }
    assert (rejected["symbol"], rejected["order_status"], rejected["rejection_reason"]) == (
        "RELIANCE",
        "rejected",
        "margin",
    )
    assert feed.status()["order_updates"] == 2


async def test_kites_error_and_message_texts_are_logged_not_fatal(kite_sim, caplog):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        for _ in range(5):
            kite_sim.send_error("Invalid mode")
        await eventually(lambda: feed.errors == 5)
        await bus.next("NSE_RELIANCE_LTP")
    assert caplog.text.count("Kite sent an error: Invalid mode") == 1  # at most one line in ten seconds
    assert kite_sim.handshakes == 1


async def test_no_secret_reaches_the_logs(kite_sim, caplog):
    caplog.set_level(logging.DEBUG)
    token = kite_sim.issue_access_token()
    feed = make_feed(kite_sim, settings=settings_for(kite_sim, access_token=token))
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        kite_sim.drop_all()
        await eventually(lambda: kite_sim.handshakes == 2)
        await bus.next("NSE_RELIANCE_LTP")
        kite_sim.expire_tokens()
        await eventually(lambda: feed.status()["adapter_status"] == "error")
    assert "Kite feed connection 0" in caplog.text  # the lines were captured
    for secret in (token, kite_sim.api_key, kite_sim.api_secret):
        assert secret not in caplog.text
        assert all(secret not in str(record.args) for record in caplog.records)
    assert secret not in repr(feed.settings) and token not in repr(feed._sessions.session)


async def test_an_unreachable_ticker_is_retried_and_its_url_logged_without_the_token(kite_sim, caplog):
    token = kite_sim.issue_access_token()
    settings = settings_for(kite_sim, access_token=token, feed_url="ws://127.0.0.1:9")
    feed = make_feed(kite_sim, settings=settings, backoff_base=0.02, backoff_cap=0.1)
    feed.attach(Recorder())
    task = asyncio.create_task(feed.run())
    await eventually(lambda: len(feed.disconnects) >= 3)
    await _stop(task)
    assert all(d.startswith("cannot connect to ws://127.0.0.1:9 (") for d in feed.disconnects)
    assert feed.status()["adapter_status"] == "reconnecting"
    assert token not in caplog.text and kite_sim.api_key not in caplog.text


def test_a_feed_url_that_is_not_a_websocket_is_one_sentence(kite_sim):
    with pytest.raises(KiteError, match="not a ws:// or wss:// URL \\(check KITE_FEED_URL\\)"):
        make_feed(kite_sim, settings=settings_for(kite_sim, feed_url="http://127.0.0.1:9"))


async def test_a_late_subscriber_gets_the_latest_tick_at_once(kite_sim):
    feed = make_feed(kite_sim)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        await bus.next("NSE_RELIANCE_QUOTE")
        kite_sim.tick_interval = 3600  # after the tick in flight, none
        frames = len(feed.frames)
        await asyncio.sleep(0.3)
        assert len(feed.frames) <= frames + 1
        latest = feed._latest[(parse("RELIANCE:NSE"), 2)]
        late = bus.ctx.socket(zmq.SUB)
        late.connect(bus.hub.endpoint)
        late.setsockopt(zmq.SUBSCRIBE, b"NSE_RELIANCE_QUOTE")
        try:
            async with asyncio.timeout(3):
                _, payload = await late.recv_multipart()
        finally:
            late.close(0)
    assert feed_fields(orjson.loads(payload)) == feed_fields(orjson.loads(latest))
    _check(orjson.loads(payload), kite_sim, feed, RELIANCE, 2)


async def test_status_reports_the_connection(kite_sim):
    feed = make_feed(kite_sim)
    assert feed.status()["adapter_status"] == "connecting"
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        bus.subscribe("NSE_RELIANCE_QUOTE")
        await bus.next("NSE_RELIANCE_LTP")
        status = feed.status()
    assert status.pop("heartbeats") >= 0
    assert status == {
        "adapter_status": "connected",
        "connections": 1,
        "tokens": 1,
        "subscriptions": 2,
        "bad_frames": 0,
        "bad_text_frames": 0,
        "unexpected_ticks": 0,
        "kite_errors": 0,
        "order_updates": 0,
        "reconnects": 0,
        "last_disconnect": None,
    }


async def test_from_settings_reads_the_environment_and_the_instrument_dump(kite_sim, monkeypatch, tmp_path):
    dump = tmp_path / "instruments.csv"
    dump.write_bytes(kite_sim.dump_bytes())
    with pytest.raises(KiteCredentialsMissing, match="KITE_API_KEY"):
        KiteFeed.from_settings(instruments=str(dump))
    for name, value in kite_sim.env().items():
        monkeypatch.setenv(name, value)
    with pytest.raises(KiteCredentialsMissing, match="log in again with `oaws login kite`, or set KITE_ACCESS_TOKEN"):
        KiteFeed.from_settings(instruments=str(dump))
    monkeypatch.setenv("KITE_ACCESS_TOKEN", kite_sim.issue_access_token())
    feed = KiteFeed.from_settings(instruments=str(dump), batch_window=0.05)
    assert (feed.name, feed.depths, feed.orders) == ("kite", (5,), True)
    assert (len(feed._conns), feed.tokens_per_connection) == (
        kite_plugin.CONNECTIONS,
        kite_plugin.TOKENS_PER_CONNECTION,
    )
    monkeypatch.setattr(kite_plugin, "TOKENS_PER_CONNECTION", 7)
    monkeypatch.setattr(kite_plugin, "CONNECTIONS", 2)
    served = kite_plugin.broker.make_feed({"instruments": str(dump)})
    assert (len(served._conns), served.tokens_per_connection) == (2, 7)  # oaws serve's feed takes the plugin's limits
    feed.check(parse("RELIANCE:NSE"))
    with pytest.raises(Rejection, match="not in Kite's instrument dump"):
        feed.check(parse("NOSUCHCO:NSE"))
    async with Bus(feed) as bus:
        bus.subscribe("NSE_INDEX_NIFTY_LTP")
        _, tick = await bus.next("NSE_INDEX_NIFTY_LTP")
    assert (tick["symbol"], tick["exchange"]) == ("NIFTY", "NSE_INDEX")
