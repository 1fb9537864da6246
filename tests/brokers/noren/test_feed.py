"""NorenFeed against the simulator, end to end through a real FeedHub and a ZeroMQ SUB socket.

The key test: after the simulator has sent partial updates (``tf`` / ``df`` without ``lp``,
without the book...), every field of the tick on the bus is what the simulator means
(``sim.state``), so an adapter that built ticks from each message alone would fail.
The expected ticks are written out here from the simulator's strings, not with ``wire``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from oaws.brokers.noren.errors import NorenLoginError, NorenSessionExpired
from oaws.brokers.noren.feed import NorenFeed
from oaws.brokers.noren.master import Master, rows_of_bytes
from oaws.brokers.noren.session import save_session
from oaws.brokers.noren.settings import NorenSettings, load_settings
from oaws.brokers.noren.simulator import NorenSimulator
from oaws.config import IST
from oaws.server.bus import REJECT_TOPIC
from tests.brokers.bus import FeedBus
from tests.helpers import eventually

QUIET = 0.4  # seconds without a message that mean "the frozen simulator has said everything"


def settings_of(sim: NorenSimulator, **overrides: Any) -> NorenSettings:
    values: dict[str, Any] = {
        "user_id": sim.user_id,
        "password": sim.password,
        "totp_secret": sim.totp_secret,
        "vendor_code": sim.vendor_code,
        "api_secret": sim.api_secret,
        "api_key": sim.api_key,
        "api_url": sim.api_url,
        "feed_url": sim.feed_url,
        "master_url": sim.master_url,
        "auth_url": sim.auth_url,
        "token_url": sim.token_url,
    }
    return replace(load_settings(sim.host.name), **{**values, **overrides})


def master_of(sim: NorenSimulator) -> Master:
    files = [data for name, data in sim.masters().items() if name.endswith(".zip")]  # Shoonya's names, both hosts
    return Master([r for data in files for r in rows_of_bytes(data)], sim.host.name, "sim")


def make_feed(sim: NorenSimulator, tmp_path: Path, settings: dict[str, Any] | None = None, **options: Any) -> NorenFeed:
    defaults: dict[str, Any] = {
        "batch_window": 0.05,
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
        "stable_after": 5.0,
        "silence_timeout": 5.0,
        "heartbeat_interval": 5.0,
        "open_timeout": 2.0,
        "login_timeout": 3.0,
        "market_hours": lambda exchanges: True,
        "session_file": tmp_path / "state" / "session.json",
        "rng": random.Random(1),
    }
    return NorenFeed(settings_of(sim, **(settings or {})), master_of(sim), **{**defaults, **options})


class Bus(FeedBus):
    """The shared bus reader, with the settled state of a frozen simulator."""

    async def settled(self, sim: NorenSimulator, topics: list[str]) -> dict[str, dict[str, Any]]:
        """Freeze the simulator and return the last tick of each topic once nothing more comes."""
        last: dict[str, dict[str, Any]] = {}
        while set(last) != set(topics):  # a tick of each, none thrown away
            topic, tick = await self.next()
            if topic in topics:
                last[topic] = tick
        sim.frozen = True
        while True:
            try:
                topic, tick = await self.next(timeout=QUIET)
            except TimeoutError:
                return last
            if topic in last:
                last[topic] = tick


@pytest.fixture
async def sim(noren_sim: NorenSimulator) -> AsyncIterator[NorenSimulator]:
    yield noren_sim


# What the simulator means ---------------------------------------------------------------------
def expected(state: dict[str, str], symbol: str, exchange: str, mode: int, fields: tuple[str, ...]) -> dict[str, Any]:
    """The tick of ``mode`` SPEC §2 asks for, written out from the simulator's strings (only ``fields`` are sent)."""
    s = {k: v for k, v in state.items() if k in fields}
    t: dict[str, Any] = {"symbol": symbol, "exchange": exchange, "mode": mode, "ltp": float(s["lp"])}
    if "ft" in s:
        day = datetime.fromtimestamp(int(s["ft"]), IST)
        if "ltt" in s:
            h, m, sec = map(int, s["ltt"].split(":"))
            t["ltt"] = int(day.replace(hour=h, minute=m, second=sec).timestamp()) * 1000
        else:
            t["ltt"] = int(s["ft"]) * 1000
    if mode == 1:
        return t
    names = {"o": "open", "h": "high", "l": "low", "c": "close", "ap": "average_price"}
    t |= {name: float(s[k]) for k, name in names.items() if k in s}
    counts = {"v": "volume", "ltq": "last_trade_quantity", "tbq": "total_buy_quantity", "tsq": "total_sell_quantity"}
    t |= {name: int(s[k]) for k, name in counts.items() if k in s}
    t["change"] = pytest.approx(float(s["lp"]) - float(s["c"]), abs=1e-6)
    t["change_percent"] = float(s["pc"])
    if mode == 2:
        return t
    t["last_quantity"] = int(s["ltq"])
    t |= {"upper_circuit": float(s["uc"]), "lower_circuit": float(s["lc"])}
    t |= {"week_52_high": float(s["52h"]), "week_52_low": float(s["52l"])}
    if "toi" in s:  # Noren's total open interest (OpenAlgo's open_interest), "0" for cash scrips
        t["oi"] = int(s["toi"])
        if int(s["poi"]):
            t["oi_change_percent"] = round((int(s["toi"]) - int(s["poi"])) * 100 / int(s["poi"]), 2)
    t["depth"] = {
        side: [
            {"price": float(s[f"{p}{i}"]), "quantity": int(s[f"{q}{i}"]), "orders": int(s[f"{o}{i}"])}
            for i in range(1, 6)
        ]
        for side, p, q, o in (("buy", "bp", "bq", "bo"), ("sell", "sp", "sq", "so"))
    }
    t["depth_level"] = 5
    return t


def received(tick: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in tick.items() if k not in ("timestamp", "fseq")}


def partial_updates(sim: NorenSimulator, kind: str) -> list[dict[str, Any]]:
    """The simulator's update messages of ``kind`` ("tf"/"df") that left ``lp`` out."""
    return [
        m
        for sent in sim.last_sent.values()
        for m in sent
        if isinstance(m, dict) and m.get("t") == kind and "lp" not in m
    ]


def future(sim: NorenSimulator) -> tuple[str, str]:
    """(OpenAlgo symbol, token) of the simulator's first NIFTY future."""
    s = next(s for s in sim.scrips if s.exchange == "NFO" and s.option_type == "XX" and s.symbol == "NIFTY")
    day, month, year = s.expiry.split("-")
    return f"NIFTY{day}{month.upper()}{year[-2:]}FUT", s.token


# The merge, end to end ------------------------------------------------------------------------------
async def test_every_field_of_each_mode_is_what_the_simulator_means_after_partial_updates(sim, tmp_path):
    from oaws.brokers.noren.simulator import DEPTH_FIELDS, INDEX_FIELDS, TOUCHLINE_FIELDS

    fut, fut_token = future(sim)
    wanted = [
        ("NSE_RELIANCE_DEPTH", "RELIANCE", "NSE", 3, ("NSE", "2885"), DEPTH_FIELDS),
        ("NSE_SBIN_QUOTE", "SBIN", "NSE", 2, ("NSE", "3045"), TOUCHLINE_FIELDS),
        ("NSE_INFY_LTP", "INFY", "NSE", 1, ("NSE", "1594"), TOUCHLINE_FIELDS),
        (f"NFO_{fut}_DEPTH", fut, "NFO", 3, ("NFO", fut_token), DEPTH_FIELDS),
        ("NSE_INDEX_NIFTY_QUOTE", "NIFTY", "NSE_INDEX", 2, ("NSE", "26000"), INDEX_FIELDS),
    ]
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        for topic, *_ in wanted:
            bus.subscribe(topic)
        for topic, *_ in wanted:
            await bus.next(topic)
        await eventually(lambda: len(partial_updates(sim, "df")) >= 5 and len(partial_updates(sim, "tf")) >= 3)
        last = await bus.settled(sim, [w[0] for w in wanted])
    for topic, symbol, exchange, mode, (e, tk), fields in wanted:
        assert received(last[topic]) == expected(sim.state(e, tk), symbol, exchange, mode, fields), topic
    # indices carry no volume, no book; Quote from the touchline has no total buy/sell quantity
    assert "volume" not in last["NSE_INDEX_NIFTY_QUOTE"] and "total_buy_quantity" not in last["NSE_SBIN_QUOTE"]
    assert feed.malformed == 0 and feed.bad_fields == 0


async def test_one_scrip_at_several_modes_is_one_depth_subscription(sim, tmp_path):
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        for mode in ("LTP", "QUOTE", "DEPTH"):
            bus.subscribe(f"NSE_RELIANCE_{mode}")
        ticks = {mode: (await bus.next(f"NSE_RELIANCE_{mode}"))[1] for mode in ("LTP", "QUOTE", "DEPTH")}
        await eventually(lambda: sim.subscriptions() == {("d", "NSE", "2885")})
        assert (ticks["LTP"]["mode"], ticks["QUOTE"]["mode"], ticks["DEPTH"]["mode"]) == (1, 2, 3)
        assert "open" not in ticks["LTP"] and "depth" not in ticks["QUOTE"] and "depth" in ticks["DEPTH"]
        # the Depth client leaves: the scrip moves to the touchline
        bus.unsubscribe("NSE_RELIANCE_DEPTH")
        await eventually(lambda: sim.subscriptions() == {("t", "NSE", "2885")})
        quote = (await bus.next("NSE_RELIANCE_QUOTE"))[1]
        assert "depth" not in quote and quote["mode"] == 2
    requests = [r for r in sim.requests if isinstance(r, dict) and r.get("t") in ("t", "d", "u", "ud")]
    assert [r["t"] for r in requests] == ["d", "ud", "t"]  # the runner unsubscribes first


async def test_unsubscribing_on_the_bus_unsubscribes_at_noren(sim, tmp_path):
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        bus.subscribe("NSE_SBIN_LTP")
        await bus.next("NSE_RELIANCE_QUOTE")
        await bus.next("NSE_SBIN_LTP")
        bus.unsubscribe("NSE_RELIANCE_QUOTE")
        await eventually(lambda: sim.subscriptions() == {("t", "NSE", "3045")})
        assert feed.status()["subscriptions"] == 1
    assert {"t": "u", "k": "NSE|2885"} in sim.requests


async def test_subscriptions_are_sent_in_batches(sim, tmp_path):
    feed = make_feed(sim, tmp_path, batch=2, batch_window=0.2)
    topics = ["NSE_RELIANCE_LTP", "NSE_SBIN_LTP", "NSE_INFY_LTP", "NSE_TCS_LTP", "NSE_ITC_LTP"]
    async with Bus(feed) as bus:
        await eventually(lambda: feed.status()["adapter_status"] == "connected")
        for topic in topics:
            bus.subscribe(topic)
        await eventually(lambda: len(sim.subscriptions()) == 5)
    keys = [r["k"].split("#") for r in sim.requests if isinstance(r, dict) and r.get("t") == "t"]
    assert sorted(len(k) for k in keys) == [1, 2, 2]
    assert sorted(x for k in keys for x in k) == sorted(["NSE|2885", "NSE|3045", "NSE|1594", "NSE|11536", "NSE|1660"])


async def test_an_unknown_symbol_is_refused_to_the_client(sim, tmp_path):
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_NOSUCH_LTP")
        _, reject = await bus.next(REJECT_TOPIC.decode())
    assert reject["code"] == "SYMBOL_NOT_FOUND" and "oaws instruments search NOSUCH" in reject["message"]


async def test_past_the_limit_clients_get_limit_exceeded(sim, tmp_path):
    feed = make_feed(sim, tmp_path, subscriptions_per_connection=2, max_connections=1)
    async with Bus(feed) as bus:
        for topic in ("NSE_RELIANCE_LTP", "NSE_SBIN_LTP"):
            bus.subscribe(topic)
            await bus.next(topic)
        bus.subscribe("NSE_INFY_LTP")
        _, reject = await bus.next(REJECT_TOPIC.decode())
        bus.subscribe("NSE_RELIANCE_QUOTE")  # a scrip already held costs nothing more
        await bus.next("NSE_RELIANCE_QUOTE")
    assert reject["code"] == "LIMIT_EXCEEDED" and reject["symbol"] == "INFY" and "2 scrips" in reject["message"]
    assert ("t", "NSE", "1594") not in sim.subscriptions()


# Faults -------------------------------------------------------------------------------------------------
async def test_a_dropped_connection_is_reconnected_and_everything_resubscribed(sim, tmp_path, caplog):
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_DEPTH")
        bus.subscribe("NSE_SBIN_LTP")
        await bus.next("NSE_RELIANCE_DEPTH")
        await bus.next("NSE_SBIN_LTP")
        before = set(sim.subscriptions())
        sim.drop_all()
        await eventually(lambda: sim.handshakes == 2 and sim.subscriptions() == before)
        sent = len(sim.last_sent[max(sim.last_sent)])
        await eventually(lambda: len(sim.last_sent[max(sim.last_sent)]) > sent + 2)
        await bus.next("NSE_RELIANCE_DEPTH")
    assert feed.reconnects == 1 and sim.logins == 1
    assert "the connection dropped without a close frame; reconnecting in" in caplog.text


async def test_garbage_is_counted_and_skipped_and_the_connection_stays(sim, tmp_path):
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_DEPTH")
        await bus.next("NSE_RELIANCE_DEPTH")
        frames = sim.send_garbage()
        await eventually(lambda: feed.malformed == frames)
        sim.send_garbage('{"t":"df","e":"NSE","tk":"2885","lp":"oops","v":"-5"}')
        await eventually(lambda: feed.bad_fields == 2)
        _, tick = await bus.next("NSE_RELIANCE_DEPTH")
        assert isinstance(tick["ltp"], float) and tick["ltp"] > 0 and tick["volume"] > 0
        assert sim.handshakes == 1 and feed.status()["malformed_frames"] == frames


async def test_a_silent_feed_during_market_hours_is_reconnected(sim, tmp_path, caplog):
    feed = make_feed(sim, tmp_path, silence_timeout=0.3)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.go_silent(None)
        await eventually(lambda: sim.handshakes >= 2)
        await bus.next("NSE_RELIANCE_LTP")
    assert "no ticks for" in caplog.text and "during market hours" in caplog.text


async def test_the_heartbeat_is_sent(sim, tmp_path):
    feed = make_feed(sim, tmp_path, heartbeat_interval=0.1)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        await eventually(lambda: {"t": "h"} in sim.requests)


async def test_an_expired_session_costs_one_login_and_the_feed_resumes(sim, tmp_path):
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.expire_sessions(drop=True)
        await eventually(lambda: sim.logins == 2 and ("t", "NSE", "2885") in sim.subscriptions())
        await bus.next("NSE_RELIANCE_LTP")
    assert sim.handshakes == 3  # the first, the refused one, the one with the fresh session
    assert feed.logins == 2


async def test_a_refused_relogin_stands_down_with_one_sentence_and_few_handshakes(sim, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
        sim.block_user()
        sim.expire_sessions(drop=True)
        with pytest.raises(NorenLoginError) as stopped:
            await asyncio.wait_for(bus.task, 10)  # the hub's run ends with the feed's error
    message = str(stopped.value)
    assert "User Blocked" in message and "\n" not in message
    assert sim.handshakes == 2 and sim.logins == 1
    for secret in (sim.password, sim.totp_secret, sim.api_secret):
        assert secret not in caplog.text and secret not in message


async def test_a_refused_access_token_stands_down_after_one_handshake(flattrade_sim, tmp_path):
    feed = make_feed(flattrade_sim, tmp_path, {"access_token": "not-a-valid-token"})
    with pytest.raises(NorenSessionExpired, match="FLATTRADE_ACCESS_TOKEN") as stopped:
        await asyncio.wait_for(feed.run(), 10)
    assert flattrade_sim.handshakes == 1 and "not-a-valid-token" not in str(stopped.value)


async def test_a_stored_session_is_used_without_logging_in(sim, tmp_path):
    from oaws.brokers.noren.session import quickauth

    session = await asyncio.to_thread(quickauth, settings_of(sim))
    save_session(session, tmp_path / "state" / "session.json")
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
    assert sim.logins == 1 and feed.logins == 0


# Logins of either kind ----------------------------------------------------------------------------------
async def test_flattrade_with_its_access_token(flattrade_sim, tmp_path):
    token = flattrade_sim.issue_access_token()
    feed = make_feed(flattrade_sim, tmp_path, {"access_token": token, "password": None})
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_QUOTE")
        _, tick = await bus.next("NSE_RELIANCE_QUOTE")
    assert tick["symbol"] == "RELIANCE" and tick["ltp"] > 0
    connect = flattrade_sim.requests[0]
    assert connect["t"] == "c" and connect["susertoken"] == token and flattrade_sim.logins == 0


async def test_shoonya_with_an_oauth_access_token_connects_with_t_a(sim, tmp_path):
    token = sim.issue_access_token()
    feed = make_feed(sim, tmp_path, {"access_token": token})
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_LTP")
        await bus.next("NSE_RELIANCE_LTP")
    assert sim.requests[0]["t"] == "a" and sim.requests[0]["accesstoken"] == token and sim.logins == 0


# Orders, status, secrets -----------------------------------------------------------------------------------
async def test_order_updates_reach_the_bus_in_openalgos_words(sim, tmp_path):
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        topic = f"SHOONYA_{sim.user_id}_orders"
        bus.subscribe(topic)
        await eventually(lambda: {"t": "o", "actid": sim.user_id} in sim.requests)
        await eventually(lambda: any(c.orders for c in sim.connections))
        order = {
            "norenordno": "24120400000001",
            "exch": "NSE",
            "tsym": "RELIANCE-EQ",
            "trantype": "B",
            "qty": "10",
            "prc": "1290.50",
            "prctyp": "LMT",
            "prd": "I",
            "status": "REJECTED",
            "reporttype": "Rejected",
            "fillshares": "0",
            "avgprc": "0",
            "rejreason": "RED:Margin Shortfall",
        }
        await sim.push_order(order)
        _, message = await bus.next(topic)
    assert message == {
        "type": "order_update",
        "user_id": sim.user_id,
        "mode": "live",
        "broker": "shoonya",
        "orderid": "24120400000001",
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "action": "BUY",
        "quantity": 10,
        "price": 1290.5,
        "trigger_price": 0.0,
        "pricetype": "LIMIT",
        "product": "MIS",
        "order_status": "rejected",
        "filled_quantity": 0,
        "pending_quantity": 0,
        "average_price": 0.0,
        "rejection_reason": "RED:Margin Shortfall",
    }
    assert feed.order_updates == 1


async def test_status_and_no_secret_in_the_logs_while_streaming(sim, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    feed = make_feed(sim, tmp_path)
    async with Bus(feed) as bus:
        bus.subscribe("NSE_RELIANCE_DEPTH")
        await bus.next("NSE_RELIANCE_DEPTH")
        sim.drop_all()
        await eventually(lambda: sim.handshakes == 2)
        await bus.next("NSE_RELIANCE_DEPTH")
        status = feed.status()
    assert status["adapter_status"] == "connected" and status["subscriptions"] == 1
    assert status["depth_subscriptions"] == 1 and status["logins"] == 1 and status["reconnects"] == 1
    tokens = list(sim.session_tokens)
    assert tokens
    for secret in (sim.password, sim.totp_secret, sim.api_secret, *tokens):
        assert secret not in caplog.text
    assert sim.password not in repr(feed.settings) and tokens[0] not in repr(feed._sessions.session)


async def test_from_settings_reads_the_environment_and_a_local_master(sim, monkeypatch, tmp_path):
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "NSE_symbols.txt.zip"
    path.write_bytes(sim.masters()["NSE_symbols.txt.zip"])
    feed = NorenFeed.from_settings("shoonya", instruments=str(path))
    assert feed.name == "shoonya" and feed.title == "Shoonya (Finvasia)"
    assert feed.master.instrument_of("NSE", "2885") is not None
    monkeypatch.delenv("SHOONYA_PASSWORD")
    with pytest.raises(NorenSessionExpired, match="oaws login shoonya"):
        NorenFeed.from_settings("shoonya", instruments=str(path))


def test_flattrade_without_a_session_says_how_to_get_one(flattrade_sim, monkeypatch, tmp_path):
    for name, value in flattrade_sim.env().items():
        monkeypatch.setenv(name, value)
    with pytest.raises(NorenSessionExpired) as missing:
        NorenFeed.from_settings("flattrade")
    assert str(missing.value) == ("no Flattrade session: set FLATTRADE_ACCESS_TOKEN, or run `oaws login flattrade`")
