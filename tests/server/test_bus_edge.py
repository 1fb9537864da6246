"""The proxy's edge on the bus: what a broken or hostile publisher sends is dropped and
counted, never relayed, never lets one message cost the others (issue 14, items 2, 4, 9).

Every test here has a real ZeroMQ publisher (``FakeBus``) and a real proxy on port 0."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from websockets.asyncio.client import connect

from oaws.server.proxy import fanout as fanout_module
from tests.helpers import eventually, recv_json, send_json

TOPIC = b"NSE_RELIANCE_LTP"


async def subscribe(ws, bus, topic: bytes | None = TOPIC, **body) -> dict:
    """Subscribe (RELIANCE:NSE LTP unless told) and wait for the bus to see it, when ``topic``."""
    body = {"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, **body}
    await send_json(ws, action="subscribe", **body)
    reply = await recv_json(ws)
    assert reply["status"] == "success", reply
    if topic is not None:
        assert await bus.subscription() == (True, topic)
    return reply


class Reader:
    """Reads one WebSocket in the background and keeps the ``seq`` of every good tick.

    A frame that is not JSON (what the proxy relayed of a bus's garbage) is kept aside,
    and so is any message that is not a good tick: the assertions say what they expect."""

    def __init__(self, ws, batch: bool = False) -> None:
        self.ws = ws
        self.batch = batch
        self.seqs: list[int] = []
        self.unreadable: list[bytes | str] = []
        self.others: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            try:
                parsed = orjson.loads(frame)
            except orjson.JSONDecodeError:
                self.unreadable.append(frame)
                continue
            for message in parsed if self.batch else [parsed]:
                data = message.get("data") if isinstance(message, dict) else None
                if isinstance(data, dict) and "seq" in data:
                    self.seqs.append(data["seq"])
                else:
                    self.others.append(message)

    def stop(self) -> None:
        self.task.cancel()


def good(n: int) -> bytes:
    return b'{"fseq":%d,"symbol":"RELIANCE","exchange":"NSE","ltp":1424.5,"seq":%d}' % (n, n)


async def publish_paced(bus, readers: list[Reader], payloads: list[bytes], chunk: int = 500) -> None:
    """Publish good ticks a chunk at a time, each chunk once every reader has the last one
    (so that no client is conflated for reading slower than the bus publishes)."""
    expected = 0
    for start in range(0, len(payloads), chunk):
        for payload in payloads[start : start + chunk]:
            bus.sock.send_multipart([TOPIC, payload])
        expected += len(payloads[start : start + chunk])
        await eventually(
            lambda n=expected: all(len(r.seqs) >= n for r in readers),
            what=lambda n=expected: f"{n} ticks at every client, got {[len(r.seqs) for r in readers]}",
        )


#: ``fseq`` values that are not a feed's count: each must leave every client served
HOSTILE_FSEQ = [
    b'{"fseq":1e5,"ltp":1}',
    b'{"fseq":-1,"ltp":1}',
    b'{"fseq":99999999999999999999,"ltp":1}',
    b'{"fseq":' + b"9" * 5000 + b',"ltp":1}',
    '{"fseq":\u0661\u0662,"ltp":1}'.encode(),  # Arabic-Indic digits
    '{"fseq":\uff11,"ltp":1}'.encode(),  # a fullwidth digit
    b'{"fseq":"12","ltp":1}',
    b'{"fseq":1.5,"ltp":1}',
    b'{"fseq":null,"ltp":1}',
    b'{"fseq":true,"ltp":1}',
    b'{"fseq":[1],"ltp":1}',
    b'{"fseq":{"a":1},"ltp":1}',
    b'{"fseq":1_000,"ltp":1}',
    b'{"fseq":0x10,"ltp":1}',
    b'{"fseq": 7 ,"ltp":1}',
    b'{"fseq":',
    b'{"fseq":12',
    b'{"fseq":12,',
    b'{"fseq":}',
    b'{"fseq"',
    b"{",
]


async def test_hostile_fseq_payloads_then_ten_thousand_good_ticks_reach_every_client(bus, proxy):
    """Issue 14 item 2: no ``fseq`` freezes a client. Two plain clients and a batch client on
    one route; hostile payloads, then 10,000 good ticks: each client gets every one, in order."""
    async with connect(proxy.url) as a, connect(proxy.url) as b, connect(proxy.url + "/?batch=1") as c:
        await subscribe(a, bus)
        for ws in (b, c):
            await subscribe(ws, bus, topic=None)
        readers = [Reader(a), Reader(b), Reader(c, batch=True)]
        try:
            for payload in HOSTILE_FSEQ:
                bus.sock.send_multipart([TOPIC, payload])
            await publish_paced(bus, readers, [good(n) for n in range(1, 10_001)])
            for r in readers:
                assert r.seqs == list(range(1, 10_001))
                assert r.unreadable == []  # nothing that is not JSON was relayed
        finally:
            for r in readers:
                r.stop()
    stats = proxy.stats()
    assert stats["bus_gaps"] == 0  # no garbage count was taken for a gap
    assert stats["bus_dropped"] == sum(1 for p in HOSTILE_FSEQ if not _is_object(p))


def _is_object(payload: bytes) -> bool:
    try:
        return isinstance(orjson.loads(payload), dict)
    except orjson.JSONDecodeError:
        return False


async def test_an_exception_handling_one_bus_message_never_loses_the_flush_of_the_others(bus, proxy, monkeypatch):
    """Issue 14 item 2, the structure: whatever raises while one message is handled (here a
    fault injected into framing), the clients already handed a frame in that drain are
    flushed, and every later tick reaches every client. It used to freeze them for good."""
    real = fanout_module.text_frame

    def faulty(body: bytes) -> bytes:
        if b'"boom"' in body:
            raise RuntimeError("injected fault")
        return real(body)

    monkeypatch.setattr(fanout_module, "text_frame", faulty)
    async with connect(proxy.url) as a, connect(proxy.url) as other, connect(proxy.url + "/?batch=1") as c:
        await subscribe(a, bus)
        await subscribe(c, bus, topic=None)
        await subscribe(other, bus, topic=b"NSE_INFY_LTP", symbol="INFY")
        readers = [Reader(a), Reader(other), Reader(c, batch=True)]
        try:
            for n in range(1, 51):  # an INFY tick, then the fault, in the same drain as often as not
                bus.sock.send_multipart([b"NSE_INFY_LTP", b'{"seq":%d}' % n])
                bus.sock.send_multipart([TOPIC, b'{"boom":%d}' % n])
            await eventually(lambda: len(readers[1].seqs) == 50, what=lambda: f"50 INFY ticks: {readers[1].seqs}")
            assert readers[1].seqs == list(range(1, 51))
            for n in range(1, 201):
                bus.sock.send_multipart([b"NSE_INFY_LTP", b'{"seq":%d}' % (50 + n)])
                bus.sock.send_multipart([TOPIC, good(n)])
            await eventually(lambda: [len(r.seqs) for r in readers] == [200, 250, 200], what=lambda: readers)
            assert readers[0].seqs == readers[2].seqs == list(range(1, 201))
        finally:
            for r in readers:
                r.stop()
    assert proxy.stats()["bus_dropped"] == 50


async def test_invalid_utf8_in_a_tick_is_dropped_and_never_kept_as_the_snapshot(bus, proxy):
    """Issue 14 item 9: a tick in invalid UTF-8 used to close every client with 1007 and
    stay as the snapshot, so every reconnecting client was closed again."""
    async with connect(proxy.url) as ws:
        await subscribe(ws, bus)
        bus.sock.send_multipart([TOPIC, good(1)])
        bus.sock.send_multipart([TOPIC, b'{"fseq":2,"symbol":"\xff\xfe","seq":-1}'])
        bus.sock.send_multipart([TOPIC, good(3)])
        assert (await recv_json(ws))["data"]["seq"] == 1
        assert (await recv_json(ws))["data"]["seq"] == 3  # the bad one was never relayed
        bus.sock.send_multipart([TOPIC, b'{"fseq":4,"symbol":"\xc3\x28","seq":-1}'])  # the latest, and bad
        await eventually(lambda: proxy.stats()["bus_dropped"] == 2)
        async with connect(proxy.url) as late:
            await subscribe(late, bus, topic=None)
            snapshot = await recv_json(late)
            assert snapshot["snapshot"] is True and snapshot["data"]["seq"] == 3  # the last good tick
        await send_json(ws, action="ping")  # the first client was never closed
        assert (await recv_json(ws))["type"] == "pong"


async def test_a_tick_that_is_not_a_json_object_is_dropped_and_batch_clients_keep_their_batch(bus, proxy):
    """Issue 14 item 9: a payload that is not JSON was relayed as it was, so the batch it
    fell into was not JSON either and a ``?batch=1`` client lost every tick in it."""
    bad = [b"not json", b'{"ltp":1,}', b"[1,2]", b'"text"', b"3", b"null", b"", b'{"ltp":NaN}', b'{"a":1}{"b":2}']
    async with connect(proxy.url + "/?batch=1") as c, connect(proxy.url) as a:
        await subscribe(c, bus)
        await subscribe(a, bus, topic=None)
        readers = [Reader(c, batch=True), Reader(a)]
        try:
            for n in range(1, 21):
                bus.sock.send_multipart([TOPIC, good(n)])
                bus.sock.send_multipart([TOPIC, bad[n % len(bad)]])
            await eventually(lambda: all(len(r.seqs) == 20 for r in readers), what=lambda: readers)
            for r in readers:
                assert r.seqs == list(range(1, 21)) and r.unreadable == [] and r.others == []
        finally:
            for r in readers:
                r.stop()
    assert proxy.stats()["bus_dropped"] == 20


async def test_bad_bus_messages_are_logged_at_a_bounded_rate(bus, proxy, caplog):
    caplog.set_level(logging.WARNING, logger="oaws")
    async with connect(proxy.url) as ws:
        await subscribe(ws, bus)
        for _ in range(500):
            bus.sock.send_multipart([TOPIC, b"\xff"])
        bus.sock.send_multipart([TOPIC, good(1)])
        assert (await recv_json(ws))["data"]["seq"] == 1
    assert proxy.stats()["bus_dropped"] == 500
    said = [r.getMessage() for r in caplog.records if "bus" in r.getMessage() and "dropped" in r.getMessage()]
    assert 1 <= len(said) <= 2, said
    assert "NSE_RELIANCE_LTP" in said[0]


# Control messages ------------------------------------------------------------------------
def announce(bus, **info) -> None:
    bus.sock.send_multipart([b"_oaws.info", orjson.dumps({"fid": "f1", "broker": "sim", "depths": [5], **info})])


async def test_a_spoofed_reject_unsubscribes_nobody(bus, proxy):
    """Issue 14 item 9: any ``_oaws.reject`` naming a route used to unsubscribe every
    client of it. One is honoured only when well-formed, from a feed that announced itself,
    and consistent with the route it names."""
    announce(bus, fid="f1")
    await eventually(lambda: "f1" in proxy.feeds.announced)
    base = {"topic": "NSE_INFY_LTP", "code": "SYMBOL_NOT_FOUND", "message": "no"}
    spoofs = [
        base,  # no fid: not from any feed
        {**base, "fid": "nobody"},  # a feed that never announced itself
        {**base, "fid": 5},
        {**base, "fid": "f1", "symbol": "TCS"},  # the body names another instrument than its topic
        {**base, "fid": "f1", "exchange": "BSE"},
        {**base, "fid": "f1", "mode": 2},
        {**base, "fid": "f1", "code": ["x"]},
        {**base, "fid": "f1", "code": "x" * 500},
        {**base, "fid": "f1", "message": {"a": 1}},
        {**base, "fid": "f1", "topic": "NSE_INFY_QUOTE"},  # a topic without a route: nothing to do
    ]
    async with connect(proxy.url) as ws:
        await subscribe(ws, bus, topic=b"NSE_INFY_LTP", symbol="INFY")
        for spoof in spoofs:
            bus.sock.send_multipart([b"_oaws.reject", orjson.dumps(spoof)])
        bus.sock.send_multipart([b"NSE_INFY_LTP", b'{"seq":1}'])
        message = await recv_json(ws)  # no error came first
        assert message["type"] == "market_data" and message["data"]["seq"] == 1
        await send_json(ws, action="get_subscriptions")
        assert (await recv_json(ws))["subscriptions"] == [{"symbol": "INFY", "exchange": "NSE", "mode": 1}]
        assert proxy.feeds.rejected == 0 and proxy.stats()["bus_dropped"] == len(spoofs) - 1
        # the feed's own refusal, as FeedHub.reject sends it, is honoured
        real = {**base, "fid": "f1", "symbol": "INFY", "exchange": "NSE", "mode": 1}
        bus.sock.send_multipart([b"_oaws.reject", orjson.dumps(real)])
        err = await recv_json(ws)
        assert (err["code"], err["symbol"]) == ("SYMBOL_NOT_FOUND", "INFY")
        assert await bus.subscription() == (False, b"NSE_INFY_LTP")


async def test_an_info_with_depths_not_a_list_leaves_subscribe_working(bus, proxy):
    """Issue 14 item 9: ``_oaws.info`` with ``depths: 5`` made every subscribe close with 1011."""
    for n, depths in enumerate((5, "5", None, {"a": 1}, [5, "20"], [5, 7], [True], [20] * 1000)):
        announce(bus, fid=f"d{n}", depths=depths)
    bus.sock.send_multipart([b"_oaws.info", b'{"fid":"huge","broker":"sim","depths":[5,1' + b"0" * 30 + b"]}"])
    announce(bus, fid="last")
    await eventually(lambda: "last" in proxy.feeds.announced)
    assert proxy.depths() == (5,)
    async with connect(proxy.url) as ws:
        await subscribe(ws, bus)
        await subscribe(ws, bus, topic=b"NSE_RELIANCE_DEPTH", mode=3, depth=5)
        await send_json(ws, action="subscribe", symbol="TCS", exchange="NSE", mode=3, depth=20)
        assert (await recv_json(ws))["code"] == "INVALID_DEPTH"
    assert set(proxy.feeds.announced) == {"last"}
    assert proxy.stats()["bus_dropped"] == 9


async def test_an_info_cannot_rename_the_broker_to_anything_or_grow_the_feeds_table(bus, proxy):
    """Issue 14 item 9: ``_oaws.info`` could name the broker anything (every message's label)
    and add a feed per ``fid`` without bound."""
    for broker in ("", "x" * 100, "<script>", "angel sim", "name\n", 5, None, ["a"]):
        announce(bus, fid="evil", broker=broker)
    for fid in ("", "x" * 200, 7, None, "a b", "\u00e9"):
        announce(bus, fid=fid)
    bus.sock.send_multipart([b"_oaws.info", orjson.dumps({"fid": "big", "broker": "sim", "pad": "x" * 100_000})])
    bus.sock.send_multipart([b"_oaws.info", orjson.dumps({"fid": "st", "broker": "sim", "adapter_status": ["x"]})])
    for n in range(1000):
        announce(bus, fid=f"feed{n}", broker="angel")
    await eventually(lambda: proxy.stats()["bus_dropped"] >= 16 + 1000 - 64)
    assert len(proxy.feeds.announced) == 64  # the first 64 feeds; the rest dropped and counted
    assert proxy.stats()["bus_dropped"] == 16 + 1000 - 64
    assert proxy.broker() == "angel" and proxy.feeds.brokers() == ["angel"]
    async with connect(proxy.url) as ws:
        await subscribe(ws, bus)
        bus.sock.send_multipart([TOPIC, good(1)])
        assert (await recv_json(ws))["broker"] == "angel"
    assert len(orjson.dumps(proxy.stats())) < 64 * 1024  # /health stays small


@pytest.mark.parametrize("valid", [{"fid": "a1b2c3d4", "broker": "angel+sim_2-x", "depths": [5, 20, 30, 50]}])
async def test_a_feed_hub_announcement_passes_the_checks(bus, proxy, valid):
    """What FeedHub itself announces (and any broker name of letters, digits, _ + -) is taken."""
    bus.sock.send_multipart([b"_oaws.info", orjson.dumps({**valid, "orders": True, "published": 3})])
    await eventually(lambda: "a1b2c3d4" in proxy.feeds.announced)
    assert proxy.depths() == (5, 20, 30, 50) and proxy.broker() == "angel+sim_2-x"
    assert proxy.stats()["bus_dropped"] == 0


# Topics --------------------------------------------------------------------------------
async def test_a_client_holding_an_index_is_unaffected_by_another_asking_for_its_colliding_twin(bus, proxy):
    """Issue 14 item 4: INDEX_NIFTY:NSE and NIFTY:NSE_INDEX would share the topic
    NSE_INDEX_NIFTY_QUOTE (OpenAlgo's format); the bus could not tell them apart, so the
    first subscriber decided the labels and one client's unsubscribe took the other's
    ticks. The one whose topic reads back as another instrument is refused."""
    async with connect(proxy.url) as holder, connect(proxy.url) as other:
        await subscribe(holder, bus, topic=b"NSE_INDEX_NIFTY_QUOTE", symbol="NIFTY", exchange="NSE_INDEX", mode=2)
        await send_json(other, action="authenticate", api_key="x")
        assert (await recv_json(other))["status"] == "success"
        symbols = [{"symbol": "INDEX_NIFTY", "exchange": "NSE"}, {"symbol": "INFY", "exchange": "NSE"}]
        await send_json(other, action="subscribe", symbols=symbols, mode=2)
        reply = await recv_json(other)
        assert reply["status"] == "partial"
        refused, served = reply["subscriptions"]
        assert (refused["status"], refused["code"], refused["symbol"]) == ("error", "SYMBOL_NOT_FOUND", "INDEX_NIFTY")
        assert "NIFTY:NSE_INDEX" in refused["message"]
        assert served["status"] == "success"
        assert await bus.subscription() == (True, b"NSE_INFY_QUOTE")
        await send_json(other, action="unsubscribe", symbols=[{"symbol": "INDEX_NIFTY", "exchange": "NSE", "mode": 2}])
        assert (await recv_json(other))["status"] == "success"  # nothing held, nothing dropped
        bus.sock.send_multipart([b"NSE_INDEX_NIFTY_QUOTE", b'{"ltp":25900.0,"seq":1}'])
        m = await recv_json(holder)
        assert (m["symbol"], m["exchange"], m["topic"]) == ("NIFTY", "NSE_INDEX", "NIFTY.NSE_INDEX")
        assert m["data"]["seq"] == 1
        await send_json(other, action="get_subscriptions")
        assert (await recv_json(other))["subscriptions"] == [{"symbol": "INFY", "exchange": "NSE", "mode": 2}]
    await eventually(lambda: not proxy.routes)
