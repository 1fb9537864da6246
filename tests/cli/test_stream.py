"""``oaws tail`` and ``oaws subscribe``: their lines and tables, their latency figures, and
what they say of a feed that has ended or is not there (a real proxy on port 0)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from websockets.asyncio.client import connect

from oaws.cli import status
from oaws.cli.stream import NAME_CAP, LatencyStats, _snapshot, _table, _tail, name_width, tick_line
from oaws.client import Tick
from oaws.config import ClientSettings
from oaws.instruments import DEPTH, QUOTE, Instrument, parse
from oaws.server.proxy import Proxy, ProxyOptions
from oaws.server.proxy import feeds as proxy_feeds
from tests.helpers import recv_json, send_json

REL, NIFTY = parse("RELIANCE:NSE"), parse("NIFTY:NSE_INDEX")
OPTION = parse("NIFTY30DEC2526000CE:NFO")


def depth_data(**extra) -> dict:
    return {
        "ltp": 1472.95,
        "close": 1470.0,
        "volume": 1234567,
        "ltt": 1_767_000_000_000,
        "depth": {
            "buy": [{"price": 1472.95, "quantity": 3490, "orders": 12}, {"price": 1472.9, "quantity": 10500}],
            "sell": [{"price": 1473.0, "quantity": 1250, "orders": 3}],
        },
        **extra,
    }


INDEX_DATA = {
    "ltp": 25724.65,
    "close": 25900.0,
    "volume": 0,
    "ltt": 1_767_000_000_000,
    "depth": {"buy": [{"price": 0.0, "quantity": 0, "orders": 0}] * 5, "sell": [{"price": 0.0, "quantity": 0}] * 5},
}


def a_tick(instrument: Instrument, data: dict, mode: int = DEPTH, *, age_ms: float = 0.5, snapshot=False) -> Tick:
    now = time.time_ns()
    message = {"type": "market_data", "symbol": instrument.symbol, "exchange": instrument.exchange, "mode": mode}
    message |= {"data": {**data, "ts_ns": now - int(age_ms * 1e6)}} | ({"snapshot": True} if snapshot else {})
    return Tick(instrument, mode, message["data"], message, now)


# Latency ------------------------------------------------------------------------------
def test_stats_leave_each_streams_first_tick_out_marked_as_a_snapshot_or_not():
    """Issue 19 #6: a stream new on the bus gets its first tick from the feed's memory, not
    marked as a snapshot (the proxy had none of it) and hundreds of milliseconds old: it was
    the first window's p99. The first tick of each stream after a connection is no sample."""
    stats = LatencyStats()
    stats.add(a_tick(REL, {}, QUOTE, age_ms=900))  # the feed's last tick of a mode new on the bus
    stats.add(a_tick(REL, {}, DEPTH, age_ms=700))  # another mode of the same instrument: its own first
    for _ in range(3):
        stats.add(a_tick(REL, {}, QUOTE, age_ms=0.5))
    stats.add(a_tick(REL, {}, QUOTE, age_ms=800, snapshot=True))  # a subscribe again: a marked snapshot
    assert len(stats.window) == 3 and max(stats.window) < 100
    stats.connected()  # a reconnect: the first tick again is the server's memory
    stats.add(a_tick(REL, {}, QUOTE, age_ms=600))
    assert len(stats.window) == 3
    assert "p99" in stats.summary(stats.window)


# Lines ----------------------------------------------------------------------------------
def test_a_tail_line_groups_the_books_quantities():
    """Issue 19 #9: ``1,472.95 @ 3490`` had no digit grouping."""
    line = tick_line(REL, depth_data(), width=12)
    assert line.endswith("vol 12,34,567  3,490 @ 1,472.95 / 1,473.00 @ 1,250")


def test_a_tail_line_of_an_index_shows_no_book_and_no_volume():
    """Issue 19 #9: an index printed ``0 @ 0.00 / 0.00 @ 0``: it has no book."""
    line = tick_line(NIFTY, INDEX_DATA, width=15)
    assert "@" not in line and "vol" not in line and line.rstrip() == line
    assert "25,724.65" in line and "-175.35" in line


def test_the_instrument_column_is_as_wide_as_the_longest_instrument_capped():
    """Issue 19 #9: a long F&O symbol pushed the columns of its lines out of line."""
    width = name_width([REL, OPTION, NIFTY])
    assert width == len(str(OPTION)) > 22
    lines = [tick_line(i, depth_data(), width=width) for i in (REL, OPTION)]
    assert lines[0].index("1,472.95") == lines[1].index("1,472.95")
    assert name_width([parse("X" * 60 + ":NFO")]) == NAME_CAP and name_width([]) == 22


# subscribe's table --------------------------------------------------------------------
def test_subscribe_in_depth_mode_prints_each_book_and_an_index_no_volume(capsys):
    """Issue 19 #9: ``subscribe --mode depth`` printed no depth at all, and an index's volume as 0."""
    _table([a_tick(REL, depth_data()), a_tick(NIFTY, INDEX_DATA)], None)
    out = capsys.readouterr().out
    table, book = out.split("\n\n")
    index_row = next(line for line in table.splitlines() if line.startswith("NIFTY:NSE_INDEX"))
    assert " 0 " not in index_row + " " and "25,900.00" in index_row
    assert "RELIANCE:NSE depth" in book and "NIFTY:NSE_INDEX depth" not in out
    rows = book.splitlines()
    assert rows[1].split() == ["Orders", "Bid", "qty", "Bid", "Ask", "Ask", "qty", "Orders"]
    assert rows[2].split() == ["12", "3,490", "1,472.95", "1,473.00", "1,250", "3"]
    assert rows[3].split() == ["10,500", "1,472.90"]  # no orders given, no ask at that level


def test_tables_in_a_pipe_have_no_trailing_spaces(capsys, monkeypatch):
    """Issue 19 #17: rich pads every line of a table to its width; a pipe gets whole lines."""
    _table([a_tick(REL, depth_data()), a_tick(NIFTY, INDEX_DATA)], None)
    figures = {"running": True, "answering": True, "pid": 12, "url": "ws://127.0.0.1:1", "bus": "ipc://x"}
    monkeypatch.setattr(status, "collect", lambda: (status.RUNNING, figures))
    status.show_status(as_json=False)
    out = capsys.readouterr().out
    assert "RELIANCE:NSE" in out and "pid" in out
    assert all(line == line.rstrip() for line in out.splitlines())


# What the server says of its feed -------------------------------------------------------
def settings(url: str) -> ClientSettings:
    return ClientSettings(url=url, api_key=None, autostart=False)


@pytest.fixture
async def ended_proxy(bus):
    """A proxy whose feed (in its process) says it has ended, as a replay past its end does."""
    p = Proxy(
        bus.endpoint,
        ProxyOptions(port=0, broker="replay"),
        feed_status=lambda: {"adapter_status": "connected", "replay": "finished", "ended": True},
    )
    await p.start()
    await bus.control_ready()
    yield p
    await p.close()


async def test_tail_with_a_count_stops_when_the_replay_has_ended(ended_proxy, capsys):
    """Issue 19 #15: ``tail --count N`` on a replay that had ended waited for ever."""
    async with asyncio.timeout(10):
        code = await _tail([REL], QUOTE, as_json=True, count=5, stats=False, settings=settings(ended_proxy.url))
    assert code == 1
    ended = "the replay has ended: no more ticks will come"
    assert capsys.readouterr().err == f"oaws: {ended} (0 of the 5 asked for came)\n"
    async with asyncio.timeout(10):
        assert await _tail([REL], QUOTE, as_json=True, count=None, stats=False, settings=settings(ended_proxy.url)) == 0
    assert capsys.readouterr().err == f"oaws: {ended}\n"


async def test_subscribe_says_the_replay_has_ended_at_once(ended_proxy, capsys):
    async with asyncio.timeout(10):
        code = await _snapshot([REL], QUOTE, as_json=True, timeout=30, settings=settings(ended_proxy.url))
    assert code == 1
    assert capsys.readouterr().err == "oaws: RELIANCE:NSE: no tick: the replay has ended: no more ticks will come\n"


async def test_subscribe_and_tail_say_that_the_server_has_no_feed(bus, monkeypatch, capsys):
    """Issue 19 #16: a proxy with no feed on its bus knows it; its clients said only "no tick within 3 s"."""
    monkeypatch.setattr(proxy_feeds, "HEARD_WITHIN", 0.0)  # no waiting for the first announcement
    p = Proxy(bus.endpoint, ProxyOptions(port=0))
    await p.start()
    try:
        await bus.control_ready()
        async with asyncio.timeout(10):
            assert await _snapshot([REL], QUOTE, as_json=False, timeout=0.5, settings=settings(p.url)) == 1
        said = f"the server has no feed on its bus ({bus.endpoint}): ticks come once a feed joins it"
        assert capsys.readouterr().err == f"oaws: RELIANCE:NSE: no tick within 0.5 s: {said}\n"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):  # tail waits on for a feed, having said why nothing comes
                await _tail([REL], QUOTE, as_json=True, count=1, stats=False, settings=settings(p.url))
        assert capsys.readouterr().err == f"oaws: {said}\n"
    finally:
        await p.close()


async def test_an_openalgo_client_is_never_sent_a_feed_status(ended_proxy):
    """OpenAlgo sends no such message: only a client that asks (``?feed_status=1``, as oaws's
    own do) is told; one that does not gets the same messages as from OpenAlgo."""
    subscribe = {"action": "subscribe", "mode": 2, "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}]}
    async with connect(ended_proxy.url + "/?feed_status=1") as told, connect(ended_proxy.url) as openalgo:
        for ws in (told, openalgo):
            await send_json(ws, **subscribe)
            assert (await recv_json(ws))["type"] == "subscribe"
        status_message = await recv_json(told)
        assert status_message == {
            "type": "feed_status",
            "status": "success",
            "state": "ended",
            "message": "the replay has ended: no more ticks will come",
            "broker": "replay",
        }
        await send_json(openalgo, action="ping")  # the round that told the other has passed for it too
        assert (await recv_json(openalgo))["type"] == "pong"
        await send_json(told, action="ping")
        assert (await recv_json(told))["type"] == "pong"  # told once, not every second


def test_feed_status_messages_are_json_objects_of_the_protocol():
    from oaws.protocol.client import ClientProtocol, FeedStatus

    protocol = ClientProtocol()
    protocol.connection_made()
    body = orjson.dumps({"type": "feed_status", "status": "success", "state": "no_feed", "message": "none"})
    (event,) = protocol.receive(body, 0)
    assert isinstance(event, FeedStatus) and event.state == FeedStatus.NONE and event.message == "none"
