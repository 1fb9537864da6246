"""The bus across processes and hosts: forwarder, several feeds, CURVE, gap detection."""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
import pytest
from websockets.asyncio.client import connect

from oaws.brokers.api import Feed
from oaws.instruments import Instrument
from oaws.server.bus import FeedHub, Forwarder
from oaws.server.curve import generate
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from tests.helpers import eventually


class OnlyFeed(Feed):
    """A feed that serves a fixed set of symbols, one tick on want and then on demand."""

    def __init__(self, name: str, symbols: set[str]) -> None:
        super().__init__()
        self.name = name
        self.symbols = symbols
        self.wanted: set[tuple[Instrument, int]] = set()

    async def run(self) -> None:
        while True:
            for instrument, mode in list(self.wanted):
                self.tick(instrument, mode)
            await asyncio.sleep(0.05)

    def tick(self, instrument: Instrument, mode: int) -> None:
        assert self.publisher is not None
        body = {"symbol": instrument.symbol, "exchange": instrument.exchange, "ltp": 100.0, "source": self.name}
        self.publisher.publish(instrument, mode, orjson.dumps(body))

    def want(self, instrument: Instrument, mode: int) -> None:
        assert self.publisher is not None
        if instrument.symbol not in self.symbols:
            self.publisher.reject(instrument, mode, "SYMBOL_NOT_FOUND", f"{instrument} is not served by {self.name}")
            return
        self.wanted.add((instrument, mode))

    def unwant(self, instrument: Instrument, mode: int) -> None:
        self.wanted.discard((instrument, mode))


async def first_tick(url: str, symbol: str, timeout: float = 5.0) -> dict:
    async with connect(url) as ws:
        await ws.send(orjson.dumps({"action": "subscribe", "symbol": symbol, "exchange": "NSE", "mode": 1}).decode())
        async with asyncio.timeout(timeout):
            while True:
                m = orjson.loads(await ws.recv())
                if m.get("type") == "market_data":
                    return m
                assert m.get("status") == "success", m


async def test_forwarder_merges_two_feeds_for_two_proxies():
    fwd = Forwarder("tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
    fwd.start()
    feeds = [OnlyFeed("alpha", {"AAA"}), OnlyFeed("beta", {"BBB"})]
    hubs = [FeedHub(f, fwd.feeds, connect=True) for f in feeds]
    tasks = [asyncio.create_task(h.run()) for h in hubs]
    proxies = [Service(ServeSettings(role="proxy", port=0, bus=fwd.bus)) for _ in range(2)]
    try:
        for p in proxies:
            await p.start()
        a = await first_tick(proxies[0].url, "AAA")
        b = await first_tick(proxies[1].url, "BBB")
        assert a["data"]["source"] == "alpha" and b["data"]["source"] == "beta"
        # both feeds announce themselves through the forwarder
        await asyncio.sleep(1.2)
        assert proxies[0].proxy.broker() == "alpha+beta"
        # the feed that does not serve BBB stayed quiet instead of refusing it for everyone
        assert proxies[1].proxy.feeds.rejected == 0
    finally:
        for p in proxies:
            await p.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        fwd.close()


async def test_curve_bus_serves_only_proxies_with_the_keys(tmp_path, caplog):
    keys = tmp_path / "keys"
    generate(keys)
    feed = Service(ServeSettings(role="feed", bus="tcp://127.0.0.1:*", curve_dir=str(keys), feed={"rate": 50}))
    await feed.start()
    good = Service(ServeSettings(role="proxy", port=0, bus=feed.bus, curve_dir=str(keys)))
    bare = Service(ServeSettings(role="proxy", port=0, bus=feed.bus))
    stranger_keys = tmp_path / "stranger"
    generate(stranger_keys)
    (stranger_keys / "bus.key").write_bytes((keys / "bus.key").read_bytes())  # knows the bus, not authorized
    stranger = Service(ServeSettings(role="proxy", port=0, bus=feed.bus, curve_dir=str(stranger_keys)))
    try:
        for p in (good, bare, stranger):
            await p.start()
        assert (await first_tick(good.url, "RELIANCE"))["symbol"] == "RELIANCE"
        for p in (bare, stranger):
            with pytest.raises(TimeoutError):
                await first_tick(p.url, "RELIANCE", timeout=1.0)
        # refused, they say why (in /health and so in `oaws status`), not just stay quiet
        assert good.proxy.stats()["bus_refused"] is None
        expected = {bare: "CURVE (--curve)", stranger: "do not authorize this proxy"}
        deadline = time.monotonic() + 10  # a loaded machine may first report a handshake cut short
        while time.monotonic() < deadline and not all(
            why in (p.proxy.stats()["bus_refused"] or "") for p, why in expected.items()
        ):
            await asyncio.sleep(0.1)
        for p, why in expected.items():
            assert why in (p.proxy.stats()["bus_refused"] or ""), p.proxy.stats()["bus_refused"]
        refusals = [r.getMessage() for r in caplog.records if "refuses this proxy" in r.getMessage()]
        assert len(refusals) == 2, refusals  # once each, however often ZeroMQ retried
    finally:
        for p in (good, bare, stranger, feed):
            await p.stop()


async def test_proxy_counts_gaps_in_the_feeds_sequence(bus, proxy):
    async with connect(proxy.url) as ws:
        await ws.send('{"action":"subscribe","symbol":"RELIANCE","exchange":"NSE","mode":1}')
        await ws.recv()
        assert await bus.subscription() == (True, b"NSE_RELIANCE_LTP")
        for n in (1, 2, 5, 6, 9, 1, 2):  # 3-4 and 7-8 lost; then the feed restarted
            bus.sock.send_multipart([b"NSE_RELIANCE_LTP", b'{"fseq":%d,"ltp":1.0,"symbol":"RELIANCE"}' % n])
        for _ in range(7):
            m = orjson.loads(await asyncio.wait_for(ws.recv(), 3))
            assert "fseq" in m["data"]
    assert proxy.stats()["bus_gaps"] == 2 and proxy.stats()["bus_missing"] == 4


#: what a broken or hostile publisher may put on the bus: each must leave the proxy serving
HOSTILE = [
    [b"NSE_RELIANCE_LTP", b'{"fseq":"x","ltp":1}'],
    [b"NSE_RELIANCE_LTP", b'{"fseq":-1,"ltp":1}'],
    [b"NSE_RELIANCE_LTP", b'{"fseq":' + b"9" * 5000 + b"}"],
    [b"NSE_RELIANCE_LTP", b'{"fseq":'],
    [b"NSE_RELIANCE_LTP", b"not json"],
    [b"NSE_RELIANCE_LTP", b""],
    [b"NSE_RELIANCE_LTP"],
    [b"NSE_RELIANCE_LTP", b"{}", b"a third frame"],
    [b"_oaws.info", b"not json"],
    [b"_oaws.info", b"[1, 2]"],
    [b"_oaws.info", b'{"fid":"evil","broker":["x"],"depths":5,"adapter_status":{}}'],
    [b"_oaws.info", b'{"fid":"worse","depths":[{"a":1},"5",null,true]}'],
    [b"_oaws.reject", b'{"topic":5}'],
    [b"_oaws.reject", b'{"topic":"NSE_NOBODY_LTP","code":[]}'],
    [b"_oaws.reject", b"\xff\xfe"],
    [b"_oaws.reject"],
    [b"_oaws.anything", b"{}"],
]


async def test_garbage_on_the_bus_never_stops_the_proxy(bus, proxy):
    async with connect(proxy.url) as ws:
        await ws.send('{"action":"subscribe","symbol":"RELIANCE","exchange":"NSE","mode":1}')
        await ws.recv()
        assert await bus.subscription() == (True, b"NSE_RELIANCE_LTP")
        bus.sock.send_multipart([b"NSE_RELIANCE_LTP", b'{"fseq":1,"seq":1}'])
        for message in HOSTILE:
            bus.sock.send_multipart(message)
        bus.sock.send_multipart([b"NSE_RELIANCE_LTP", b'{"fseq":2,"seq":2}'])
        seqs = []
        async with asyncio.timeout(3):
            while seqs != [1, 2]:
                frame = await ws.recv()  # what the proxy passed through of the garbage is not JSON
                if '"seq":' in frame:
                    seqs.append(orjson.loads(frame)["data"]["seq"])
        # a new client is served as before: subscribes (the announced depths were garbage) and gets the latest tick
        async with connect(proxy.url) as late:
            await late.send('{"action":"subscribe","symbol":"RELIANCE","exchange":"NSE","mode":1,"depth":5}')
            assert orjson.loads(await late.recv())["status"] == "success"
            assert orjson.loads(await late.recv())["data"]["seq"] == 2
    stats = orjson.loads(orjson.dumps(proxy.stats()))  # /health still answers
    assert stats["bus_gaps"] == 0 and stats["feed"]["adapter_status"]


async def test_feed_hub_stamps_fseq_per_topic():
    feed = OnlyFeed("alpha", {"AAA"})
    hub = FeedHub(feed, "tcp://127.0.0.1:*")
    sent = []
    hub.sock.send_multipart = lambda frames, **kw: sent.append(frames)  # type: ignore[method-assign]
    aaa, bbb = Instrument("AAA", "NSE"), Instrument("BBB", "NSE")
    hub.publish(aaa, 1, b'{"ltp":1}')
    hub.publish(aaa, 1, b'{"ltp":2}')
    hub.publish(bbb, 1, b"{}")
    hub.publish(aaa, 2, b'{"ltp":3}')
    hub.close()
    assert [orjson.loads(p) for _, p in sent] == [
        {"fseq": 1, "ltp": 1},
        {"fseq": 2, "ltp": 2},
        {"fseq": 1},
        {"fseq": 1, "ltp": 3},
    ]


def test_keys_generate_refuses_an_unwritable_place_and_existing_keys(tmp_path, cli_env):
    import subprocess
    import sys

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = subprocess.run(
        [sys.executable, "-m", "oaws", "keys", "generate", str(blocker / "keys")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1 and out.stderr == f"oaws: cannot write the keys to {blocker / 'keys'}: Not a directory\n"
    generate(tmp_path / "keys")
    again = subprocess.run(
        [sys.executable, "-m", "oaws", "keys", "generate", str(tmp_path / "keys")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 1 and "exists already" in again.stderr and again.stderr.count("\n") == 1


async def test_a_bus_open_beyond_loopback_without_curve_is_warned_about(caplog, tmp_path):
    wide = Service(ServeSettings(role="feed", bus="tcp://0.0.0.0:*", feed={"rate": 5}))
    local = Service(ServeSettings(role="feed", bus="tcp://127.0.0.1:*", feed={"rate": 5}))
    keys = tmp_path / "keys"
    generate(keys)
    sealed = Service(ServeSettings(role="feed", bus="tcp://0.0.0.0:*", curve_dir=str(keys), feed={"rate": 5}))
    for s in (wide, local, sealed):
        await s.start()
    for s in (wide, local, sealed):
        await s.stop()
    warnings = [r.getMessage() for r in caplog.records if "unencrypted" in r.getMessage()]
    assert warnings == [
        "the bus at tcp://0.0.0.0:* is open to every host that reaches it, unencrypted; "
        "on a network you do not trust, use --curve (see `oaws keys generate`)"
    ]


async def test_a_feed_connecting_to_a_binding_proxy_hears_what_its_clients_want(ipc_bus):
    proxy = Service(ServeSettings(role="proxy", port=0, bus=ipc_bus, bus_bind=True))
    await proxy.start()
    feed = OnlyFeed("alpha", {"AAA", "BBB"})
    hub = FeedHub(feed, proxy.bus, connect=True)
    task = asyncio.create_task(hub.run())
    aaa = (Instrument("AAA", "NSE"), 1)
    try:
        assert proxy.bus == ipc_bus and proxy.proxy.bus_endpoint == "@" + ipc_bus
        async with connect(proxy.url) as ws:
            await ws.send('{"action":"subscribe","symbol":"AAA","exchange":"NSE","mode":1}')
            async with asyncio.timeout(5):
                while (m := orjson.loads(await ws.recv())).get("type") != "market_data":
                    pass
            assert m["data"]["source"] == "alpha" and feed.wanted == {aaa}
            await ws.send('{"action":"unsubscribe","symbol":"AAA","exchange":"NSE","mode":1}')
            await eventually(lambda: not feed.wanted, what="the feed to hear the unsubscribe")
            await ws.send('{"action":"subscribe","symbol":"AAA","exchange":"NSE","mode":1}')
            await eventually(lambda: feed.wanted == {aaa}, what="the feed to hear the subscribe again")
        # the client gone, the proxy unsubscribes; a feed that joins late hears what is wanted at once
        await eventually(lambda: not feed.wanted, what="the feed to hear the client leave")
        async with connect(proxy.url) as ws:
            await ws.send('{"action":"subscribe","symbol":"BBB","exchange":"NSE","mode":2}')
            await eventually(lambda: (Instrument("BBB", "NSE"), 2) in feed.wanted)
            late = OnlyFeed("beta", {"BBB"})
            late_hub = FeedHub(late, proxy.bus, connect=True)
            late_task = asyncio.create_task(late_hub.run())
            try:
                await eventually(lambda: late.wanted == {(Instrument("BBB", "NSE"), 2)}, what="the late feed")
                await eventually(lambda: proxy.proxy.broker() == "alpha+beta", what="both feeds announced")
            finally:
                late_task.cancel()
                await asyncio.gather(late_task, return_exceptions=True)
    finally:
        await proxy.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_serve_all_with_bus_bind_connects_its_feed_to_its_own_proxy(ipc_bus):
    service = Service(ServeSettings(port=0, bus=ipc_bus, bus_bind=True, feed={"rate": 50}))
    await service.start()
    try:
        assert service.hub is not None and service.hub.connected and service.bus == ipc_bus
        assert (await first_tick(service.url, "RELIANCE"))["data"]["symbol"] == "RELIANCE"
    finally:
        await service.stop()


def test_bus_bind_is_refused_where_no_proxy_binds():
    from oaws.server.service import ServiceError

    with pytest.raises(ServiceError, match="--bus-bind is for a proxy"):
        Service(ServeSettings(role="feed", bus_bind=True))
    with pytest.raises(ServiceError, match="--bus-bind serves one proxy process"):
        Service(ServeSettings(role="proxy", bus_bind=True, workers=2))


async def test_a_binding_proxy_with_curve_serves_only_feeds_with_the_keys(tmp_path, ipc_bus):
    keys = tmp_path / "keys"
    generate(keys)
    proxy = Service(ServeSettings(role="proxy", port=0, bus=ipc_bus, bus_bind=True, curve_dir=str(keys)))
    await proxy.start()
    good = Service(ServeSettings(role="feed", bus=ipc_bus, bus_connect=True, curve_dir=str(keys), feed={"rate": 50}))
    bare = OnlyFeed("bare", {"RELIANCE"})
    bare_task = None
    try:
        await good.start()
        async with connect(proxy.url) as ws:
            await ws.send('{"action":"subscribe","symbol":"RELIANCE","exchange":"NSE","mode":1}')
            async with asyncio.timeout(5):
                while (m := orjson.loads(await ws.recv())).get("type") != "market_data":
                    pass
            assert m["data"]["symbol"] == "RELIANCE"
            # a feed without the keys, joining later, is refused: it never hears the subscription
            bare_task = asyncio.create_task(FeedHub(bare, ipc_bus, connect=True).run())
            await eventually(
                lambda: "CURVE (--curve)" in (proxy.proxy.stats()["bus_refused"] or ""), what="the bare feed's refusal"
            )
            assert not bare.wanted
    finally:
        if bare_task is not None:
            bare_task.cancel()
            await asyncio.gather(bare_task, return_exceptions=True)
        await good.stop()
        await proxy.stop()


async def test_churning_symbols_through_a_feed_hub_and_the_sim_leaves_no_tables_behind():
    """Issue 14 item 5: 100,000 symbols churned left 824 MB with no client connected: the
    hub's ``fseq`` table and the sim's books kept every symbol ever wanted. 20,000 symbols
    wanted and dropped through a real SUB socket leave the hub's tables empty and the sim
    with at most its few idle books."""
    import zmq

    from oaws.brokers.sim.feed import KEEP_IDLE, SimFeed

    feed = SimFeed(seed=1, rate=0.01)  # few trades: each symbol publishes its held tick
    hub = FeedHub(feed, "tcp://127.0.0.1:*")
    run = asyncio.create_task(hub.run())
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SNDHWM, 0)  # every subscription goes up
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(hub.endpoint)
    try:
        for round_ in range(10):
            topics = [f"NSE_C{round_}X{n}_QUOTE".encode() for n in range(2_000)]
            for topic in topics:
                sub.setsockopt(zmq.SUBSCRIBE, topic)
            done = 2_000 * (round_ + 1)  # each topic's held tick is out
            await eventually(lambda n=done: hub.published >= n, what=lambda n=done: f"{n} ticks, {hub.published}")
            for topic in topics:
                sub.setsockopt(zmq.UNSUBSCRIBE, topic)
            await eventually(lambda: not hub.wanted and not feed.wanted, what="every topic dropped")
        assert hub.published >= 20_000  # the held ticks (and the odd trade)
        assert hub.fseq == {} and feed._tokens == {} and len(feed._heap) <= 64
        assert len(feed._books) <= KEEP_IDLE
    finally:
        sub.close(0)
        ctx.term()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run


async def test_a_thousand_queued_subscriptions_do_not_hold_the_loop_in_one_turn():
    """Issue 14 #7, the feed's side: a recv that finds a message waiting does not yield, so
    a thousand subscriptions queued at the hub (one client's large subscribe) were taken
    in one turn of the loop while the fan-out and every other client waited. The hub
    takes them a slice at a time: the loop runs between slices."""
    import zmq

    from oaws.brokers.sim.feed import SimFeed
    from oaws.server.bus import FOLLOW_SLICE

    feed = SimFeed(seed=1, rate=0.01)
    hub = FeedHub(feed, "tcp://127.0.0.1:*")
    run = asyncio.create_task(hub.run())
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SNDHWM, 0)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(hub.endpoint)
    seen: list[int] = []

    async def watch() -> None:  # another task of the loop: what it sees between turns
        while True:
            seen.append(len(hub.wanted))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    try:
        await eventually(lambda: seen, what="the watcher running")
        for n in range(1_000):
            sub.setsockopt(zmq.SUBSCRIBE, f"NSE_Q{n}_LTP".encode())
        time.sleep(0.5)  # the loop held: every subscription is queued at the hub
        await eventually(lambda: len(hub.wanted) == 1_000, what=lambda: f"1,000 wanted, {len(hub.wanted)}")
        between = sorted({n for n in seen if 0 < n < 1_000})
        assert len(between) >= 1_000 // FOLLOW_SLICE - 2, between
    finally:
        watcher.cancel()
        sub.close(0)
        ctx.term()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
