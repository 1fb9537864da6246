"""Broker history end to end: a feed's ``history`` answered over a real ZeroMQ bus, the
proxy's ``GET /history`` on a real socket, and ``oaws.client.fetch_history``."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import orjson
import pytest
import zmq
import zmq.asyncio

from oaws.bars.aggregator import Bar, Interval, parse_interval
from oaws.brokers.api import Feed, HistoryError
from oaws.client import HistoryUnavailable, fetch_history
from oaws.instruments import Instrument
from oaws.protocol.history import HISTORY_REPLY, HISTORY_REQUEST, HistoryRequest
from oaws.server.bus import FeedHub
from oaws.server.proxy import Proxy, ProxyOptions

RELIANCE = Instrument("RELIANCE", "NSE")
# 2025-12-01 09:15 IST
OPEN_MS = 1_764_560_700_000


def known_bars(interval: Interval) -> list[Bar]:
    step = interval.seconds * 1000
    return [
        Bar("RELIANCE", "NSE", interval.name, OPEN_MS + i * step, OPEN_MS + (i + 1) * step,
            1300.0 + i, 1302.5 + i, 1299.0 + i, 1301.0 + i, 1000 * (i + 1), None, 0, True)
        for i in range(3)
    ]  # fmt: skip


class HistFeed(Feed):
    """Known bars for RELIANCE:NSE, none for anything else; it blocks as a REST call does."""

    name = "hist"
    history_intervals = ("1m", "5m")

    def __init__(self, delay: float = 0.0, many: int = 0) -> None:
        super().__init__()
        self.delay = delay
        self.many = many
        self.asked: list[tuple[Instrument, str, int, int, str]] = []

    async def run(self) -> None:
        await asyncio.Event().wait()

    def want(self, instrument, mode, depth=5) -> None:
        pass

    def unwant(self, instrument, mode, depth=5) -> None:
        pass

    def history(self, instrument, interval, start_ms, end_ms):
        self.asked.append((instrument, interval.name, start_ms, end_ms, threading.current_thread().name))
        time.sleep(self.delay)
        if instrument != RELIANCE:
            raise HistoryError(f"the hist feed has no history of {instrument}")
        if interval.name not in self.history_intervals:
            raise HistoryError(f"the hist feed gives no {interval.name} candles")
        if self.many:
            step = interval.seconds * 1000
            return [
                Bar("RELIANCE", "NSE", interval.name, OPEN_MS + i * step, OPEN_MS + (i + 1) * step,
                    1300.0 + i, 1301.0 + i, 1299.0 + i, 1300.5 + i, i, None, 0, True)
                for i in range(self.many)
            ]  # fmt: skip
        return known_bars(interval)


@contextlib.asynccontextmanager
async def market(feed: Feed | None = None, **options):
    hub = FeedHub(feed or HistFeed(), "tcp://127.0.0.1:*")
    task = asyncio.create_task(hub.run())
    proxy = Proxy(hub.endpoint, ProxyOptions(port=0, **options))
    await proxy.start()
    try:
        yield hub, proxy
    finally:
        await proxy.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def http_get(url: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)


async def test_fetch_history_gives_the_feeds_bars_through_the_proxy():
    async with market() as (hub, proxy):
        bars = await fetch_history(proxy.url, RELIANCE, "5m", start_ms=OPEN_MS, end_ms=OPEN_MS + 3_600_000)
        assert bars == known_bars(parse_interval("5m"))
        instrument, interval, start, end, thread = hub.feed.asked[0]
        assert (instrument, interval, start, end) == (RELIANCE, "5m", OPEN_MS, OPEN_MS + 3_600_000)
        assert thread != threading.main_thread().name


async def test_days_asks_the_last_calendar_days_up_to_now():
    async with market() as (hub, proxy):
        await fetch_history(proxy.url, RELIANCE, "1m", days=2)
        _, _, start, end, _ = hub.feed.asked[0]
        now = time.time() * 1000
        assert abs(end - now) < 5000
        # the start is midnight IST, one or two days back
        assert (start // 1000 + 19800) % 86400 == 0
        assert 86_400_000 <= end - start <= 2 * 86_400_000


async def test_the_route_answers_openalgos_history_shape():
    async with market() as (_hub, proxy):
        status, body = await http_get(
            proxy.url, f"/history?symbol=RELIANCE&exchange=NSE&interval=1m&start={OPEN_MS}&end={OPEN_MS + 1}"
        )
        assert status == 200
        assert body["status"] == "success"
        assert body["data"][0] == {
            "timestamp": OPEN_MS // 1000, "open": 1300.0, "high": 1302.5, "low": 1299.0,
            "close": 1301.0, "volume": 1000, "oi": 0,
        }  # fmt: skip
        assert len(body["data"]) == 3


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("symbol=RELIANCE&exchange=NSE&interval=7m", 400, "interval"),
        ("symbol=RELIANCE&exchange=MOON&interval=5m", 400, "exchange"),
        ("symbol=RELIANCE&exchange=NSE&interval=5m&days=x", 400, "days"),
        ("symbol=RELIANCE&exchange=NSE&interval=5m&start=yesterday", 400, "not a time"),
        ("symbol=TCS&exchange=NSE&interval=5m", 404, "no history of TCS:NSE"),
        ("symbol=RELIANCE&exchange=NSE&interval=1d", 404, "no 1d candles"),
    ],
)
async def test_the_route_refuses_with_one_sentence(query, status, words):
    async with market() as (_hub, proxy):
        got, body = await http_get(proxy.url, "/history?" + query)
        assert got == status
        assert body["status"] == "error"
        assert words in body["message"]


async def test_the_route_needs_the_api_key_when_one_is_set():
    async with market(api_key="right") as (hub, proxy):
        target = "/history?symbol=RELIANCE&exchange=NSE&interval=5m"
        status, body = await http_get(proxy.url, target)
        assert status == 401 and "API key" in body["message"]
        assert not hub.feed.asked
        status, body = await http_get(proxy.url, target, {"Authorization": "Bearer right"})
        assert status == 200 and len(body["data"]) == 3
        with pytest.raises(HistoryUnavailable, match="API key"):
            await fetch_history(proxy.url, RELIANCE, "5m", days=1, api_key="wrong")
        assert len(await fetch_history(proxy.url, RELIANCE, "5m", days=1, api_key="right")) == 3


async def test_a_feed_error_reaches_fetch_history_as_its_sentence():
    async with market() as (_hub, proxy):
        with pytest.raises(HistoryUnavailable, match=r"^the hist feed has no history of TCS:NSE$"):
            await fetch_history(proxy.url, Instrument("TCS", "NSE"), "5m", days=1)


async def test_a_feed_without_history_says_so():
    class Plain(HistFeed):
        name = "plain"
        history_intervals = ()
        history = Feed.history

    async with market(Plain()) as (_hub, proxy):
        with pytest.raises(HistoryUnavailable, match=r"^the plain feed has no history$"):
            await fetch_history(proxy.url, RELIANCE, "5m", days=1)


async def test_no_feed_times_out_cleanly():
    proxy = Proxy("tcp://127.0.0.1:1", ProxyOptions(port=0))
    proxy.histories.timeout = 0.3
    await proxy.start()
    try:
        status, body = await http_get(proxy.url, "/history?symbol=RELIANCE&exchange=NSE&interval=5m")
        assert status == 504 and "no feed" in body["message"]
        assert not proxy.histories.pending
        with pytest.raises(HistoryUnavailable, match="no feed"):
            await fetch_history(proxy.url, RELIANCE, "5m", days=1)
    finally:
        await proxy.close()


async def test_fetch_history_cannot_reach_a_server():
    with pytest.raises(HistoryUnavailable, match="cannot reach"):
        await fetch_history("ws://127.0.0.1:1", RELIANCE, "5m", days=1, timeout=2)


async def test_the_feed_keeps_its_loop_while_the_broker_answers():
    """history() blocks for 0.5 s in its thread; the feed's loop goes on meanwhile."""
    async with market(HistFeed(delay=0.5)) as (_hub, proxy):
        turns = 0

        async def count() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0.01)
                turns += 1

        counter = asyncio.create_task(count())
        bars = await fetch_history(proxy.url, RELIANCE, "5m", days=1)
        counter.cancel()
        assert len(bars) == 3
        assert turns >= 20


async def test_the_hub_ignores_hostile_requests_and_answers_bad_ones():
    """Straight on the bus: garbage, oversize and nonce-less requests get no answer; a
    request with a nonce but a bad body gets an error answer."""
    feed = HistFeed()
    hub = FeedHub(feed, "tcp://127.0.0.1:*")
    task = asyncio.create_task(hub.run())
    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    try:
        sub.setsockopt(zmq.SUBSCRIBE, HISTORY_REPLY)
        sub.connect(hub.endpoint)
        hostile = [
            HISTORY_REQUEST + b"{not json",
            HISTORY_REQUEST + orjson.dumps({"nonce": "a" * 2000, "symbol": "RELIANCE"}),
            HISTORY_REQUEST + orjson.dumps({"symbol": "RELIANCE", "exchange": "NSE"}),
            HISTORY_REQUEST + orjson.dumps({"nonce": "no-alnum!", "symbol": "RELIANCE"}),
            HISTORY_REQUEST + b"[1, 2]",
        ]
        for topic in hostile:
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        bad = {"nonce": "bad1", "symbol": "RELIANCE", "exchange": "NSE", "interval": "5m", "start_ms": 5, "end_ms": 1}
        sub.setsockopt(zmq.SUBSCRIBE, HISTORY_REQUEST + orjson.dumps(bad))
        good = HistoryRequest("good1", RELIANCE, parse_interval("5m"), OPEN_MS, OPEN_MS + 1)
        sub.setsockopt(zmq.SUBSCRIBE, good.to_bytes())
        answers = {}
        while len(answers) < 2:
            topic, payload = await asyncio.wait_for(sub.recv_multipart(), 5)
            answers[topic] = orjson.loads(payload)
        assert set(answers) == {HISTORY_REPLY + b"bad1", HISTORY_REPLY + b"good1"}
        assert answers[HISTORY_REPLY + b"bad1"]["status"] == "error"
        assert "start before the end" in answers[HISTORY_REPLY + b"bad1"]["message"]
        assert len(answers[HISTORY_REPLY + b"good1"]["data"]) == 3
        assert len(feed.asked) == 1
        assert not await sub.poll(300)
    finally:
        sub.close(0)
        ctx.term()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_garbage_answer_on_the_bus_is_ignored():
    async with market() as (_hub, proxy):
        proxy.histories.on_reply(HISTORY_REPLY + b"nobody", b"{}")
        proxy.histories.on_reply(HISTORY_REPLY + b"nobody", b"\xff")
        assert proxy.histories.ignored == 2
        assert len(await fetch_history(proxy.url, RELIANCE, "5m", days=1)) == 3


async def test_a_long_history_arrives_whole():
    """Twenty thousand bars (over a megabyte of JSON) come in many reads of the socket."""
    async with market(HistFeed(many=20_000)) as (_hub, proxy):
        bars = await fetch_history(proxy.url, RELIANCE, "1m", start_ms=OPEN_MS, end_ms=OPEN_MS + 86_400_000)
        assert len(bars) == 20_000
        assert bars[-1].open == 1300.0 + 19_999 and bars[-1].volume == 19_999
