"""The replay feed in-process: pacing on recorded times (an injected clock, no waiting),
what it publishes for which subscriptions, and what it refuses."""

from __future__ import annotations

import asyncio
import gzip

import orjson
import pytest

from oaws.brokers.api import FeedError
from oaws.brokers.replay.feed import ReplayFeed
from oaws.instruments import DEPTH, LTP, QUOTE, parse
from oaws.protocol.codes import Refused
from oaws.ticks import ADDED
from tests.recording.helpers import T0, write_recording

RELIANCE, INFY, TCS = parse("RELIANCE:NSE"), parse("INFY:NSE"), parse("TCS:NSE")


class Bus:
    """A publisher that keeps what the feed sends."""

    def __init__(self) -> None:
        self.published: list[tuple[str, int, dict]] = []
        self.rejected: list[tuple[str, int, str, str]] = []

    def publish(self, instrument, mode, payload) -> None:
        self.published.append((str(instrument), mode, orjson.loads(payload)))

    def reject(self, instrument, mode, code, message) -> None:
        self.rejected.append((str(instrument), mode, code, message))


class FakeTime:
    """A clock that moves only when the feed sleeps, recording each pause."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)


def make_feed(path, **kwargs) -> tuple[ReplayFeed, Bus, FakeTime]:
    t = FakeTime()
    feed = ReplayFeed([str(path)], clock=t.clock, sleep=t.sleep, **{"settle": 0.0, **kwargs})
    bus = Bus()
    feed.attach(bus)
    return feed, bus, t


TICKS = [("RELIANCE:NSE", 0.0), ("INFY:NSE", 1.0), ("RELIANCE:NSE", 1.5), ("RELIANCE:NSE", 3.0)]


@pytest.mark.parametrize(
    ("speed", "pauses"), [(1, [1.0, 0.5, 1.5]), (2, [0.5, 0.25, 0.75]), (10, [0.1, 0.05, 0.15]), (0, [])]
)
async def test_pacing_follows_the_recorded_receive_times(tmp_path, speed, pauses):
    write_recording(tmp_path / "r.jsonl", TICKS)
    feed, bus, t = make_feed(tmp_path / "r.jsonl", speed=speed)
    feed.want(RELIANCE, QUOTE)
    feed.want(INFY, QUOTE)
    await feed.run()
    assert t.sleeps == pauses
    assert [(name, m) for name, m, _ in bus.published] == [
        ("RELIANCE:NSE", 2),
        ("INFY:NSE", 2),
        ("RELIANCE:NSE", 2),
        ("RELIANCE:NSE", 2),
    ]
    assert feed.state == "finished" and feed.replayed == 4


async def test_the_clock_starts_with_the_first_subscriber_after_a_pause(tmp_path):
    write_recording(tmp_path / "r.jsonl", TICKS)
    feed, bus, t = make_feed(tmp_path / "r.jsonl", settle=0.3)
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(0.05)
    assert t.sleeps == [] and bus.published == [] and feed.status()["replay"] == "waiting"
    feed.want(RELIANCE, LTP)
    await task
    assert t.sleeps == [0.3, 1.0, 0.5, 1.5]


async def test_loop_starts_again_where_the_last_pass_ended(tmp_path):
    write_recording(tmp_path / "r.jsonl", TICKS)
    feed, bus, t = make_feed(tmp_path / "r.jsonl", loop=True)
    feed.want(RELIANCE, LTP)
    task = asyncio.create_task(feed.run())
    while feed.passes < 3:
        await asyncio.sleep(0)
    task.cancel()
    assert t.sleeps[:6] == [1.0, 0.5, 1.5, 1.0, 0.5, 1.5]
    assert [d["seq"] for _, _, d in bus.published[:6]] == [d["seq"] for _, _, d in bus.published[3:9]]


async def test_from_and_to_bound_the_replay(tmp_path):
    write_recording(tmp_path / "r.jsonl", TICKS)
    ms = T0 // 1_000_000
    feed, bus, t = make_feed(tmp_path / "r.jsonl", start=ms + 1000, end=ms + 1500)
    feed.want(RELIANCE, LTP)
    feed.want(INFY, LTP)
    await feed.run()
    assert [name for name, _, _ in bus.published] == ["INFY:NSE", "RELIANCE:NSE"] and t.sleeps == [0.5]


async def test_only_wanted_instruments_are_published_and_a_late_subscriber_gets_the_latest(tmp_path):
    written = write_recording(tmp_path / "r.jsonl", TICKS)
    feed, bus, _ = make_feed(tmp_path / "r.jsonl", speed=0)
    feed.want(INFY, QUOTE)
    await feed.run()
    assert [name for name, _, _ in bus.published] == ["INFY:NSE"]
    feed.want(RELIANCE, QUOTE)
    await asyncio.sleep(0)  # published after the bus has registered the subscription
    assert bus.published[-1] == ("RELIANCE:NSE", QUOTE, written[-1]["data"])
    feed.resend(RELIANCE, QUOTE)
    await asyncio.sleep(0)
    assert bus.published[-1] == bus.published[-2]
    feed.unwant(RELIANCE, QUOTE)
    assert RELIANCE not in feed.wanted


async def test_replayed_ticks_keep_their_fields_and_lower_modes_are_cut_down(tmp_path):
    written = write_recording(tmp_path / "r.jsonl", [("RELIANCE:NSE", 0.0)], mode=DEPTH)
    feed, bus, _ = make_feed(tmp_path / "r.jsonl", speed=0)
    for mode in (LTP, QUOTE, DEPTH):
        feed.want(RELIANCE, mode)
    await feed.run()
    got = {mode: data for _, mode, data in bus.published}
    recorded = written[0]["data"]
    assert got[DEPTH] == recorded
    assert got[QUOTE] == {k: v for k, v in recorded.items() if k not in ADDED[DEPTH]} | {"mode": QUOTE}
    assert got[LTP] == {k: v for k, v in recorded.items() if k not in ADDED[QUOTE] + ADDED[DEPTH]} | {"mode": LTP}
    assert got[LTP]["seq"] == recorded["seq"] and got[LTP]["timestamp"] == recorded["timestamp"]


async def test_a_higher_mode_than_recorded_gets_the_tick_as_recorded(tmp_path):
    written = write_recording(tmp_path / "r.jsonl", [("RELIANCE:NSE", 0.0)], mode=LTP)
    feed, bus, _ = make_feed(tmp_path / "r.jsonl", speed=0)
    feed.want(RELIANCE, DEPTH)
    await feed.run()
    assert bus.published == [("RELIANCE:NSE", DEPTH, written[0]["data"])]
    assert bus.published[0][2]["mode"] == LTP


async def test_instruments_not_in_the_recording_are_refused(tmp_path):
    write_recording(tmp_path / "r.jsonl", TICKS)
    feed, bus, _ = make_feed(tmp_path / "r.jsonl")
    feed.check(RELIANCE)
    with pytest.raises(Refused) as refused:
        feed.check(TCS)
    assert refused.value.code == "SYMBOL_NOT_FOUND" and refused.value.message == "TCS:NSE is not in the recording"
    feed.want(TCS, QUOTE)  # a proxy in another process does not call check: the bus carries the refusal
    assert bus.rejected == [("TCS:NSE", QUOTE, "SYMBOL_NOT_FOUND", "TCS:NSE is not in the recording")]
    assert not feed.wanted


def test_bad_recordings_and_options_are_one_sentence(tmp_path):
    with pytest.raises(FeedError, match=r"^the recording .*nope.jsonl does not exist$"):
        ReplayFeed([str(tmp_path / "nope.jsonl")])
    with pytest.raises(FeedError, match="is a directory"):
        ReplayFeed([str(tmp_path)])
    write_recording(tmp_path / "r.jsonl", TICKS)
    with pytest.raises(FeedError, match="speed must be 0"):
        ReplayFeed([str(tmp_path / "r.jsonl")], speed=-1)
    with pytest.raises(FeedError, match="--from is after --to"):
        ReplayFeed([str(tmp_path / "r.jsonl")], start=2, end=1)


async def test_the_recorded_bus_stamp_is_left_for_the_bus_to_renew(tmp_path):
    from oaws.recording import Writer, make_header

    writer = Writer(str(tmp_path / "r.jsonl"), make_header("ws://test", [RELIANCE], LTP, broker="sim"))
    writer.write_tick(
        {
            "type": "market_data",
            "symbol": "RELIANCE",
            "exchange": "NSE",
            "mode": LTP,
            "data": {"fseq": 41, "symbol": "RELIANCE", "exchange": "NSE", "ltp": 1.5, "seq": 7},
        },
        T0,
    )
    writer.close()
    feed, bus, _ = make_feed(tmp_path / "r.jsonl", speed=0)
    feed.want(RELIANCE, LTP)
    await feed.run()
    assert bus.published == [("RELIANCE:NSE", LTP, {"symbol": "RELIANCE", "exchange": "NSE", "ltp": 1.5, "seq": 7})]


NOT_A_RECORDING = " (is it a recording made by `oaws record`?)"


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("junk.txt", b"hello world\nthis is not a recording\n", NOT_A_RECORDING),
        ("empty.jsonl", b"", NOT_A_RECORDING),
        ("objects.jsonl", b'{"a": 1}\n[1, 2]\n', NOT_A_RECORDING),
        ("bad.gz", b"\x1f\x8b\x08\x00" + b"garbage" * 20, ": its compressed data is damaged"),
        (
            "cut.jsonl.gz",
            gzip.compress(b'{"type":"header"}\n' * 50, 9, mtime=0)[:20],
            ": its compressed data is cut short",
        ),
    ],
    ids=["junk.txt", "empty.jsonl", "objects.jsonl", "bad.gz", "cut.jsonl.gz"],  # the same on every xdist worker
)
def test_a_file_without_a_tick_is_refused_before_serving(tmp_path, caplog, name, content, why):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FeedError) as refused:
        ReplayFeed([str(path)])
    assert str(refused.value) == f"{path} holds no ticks{why}"
    assert not caplog.records  # the readers' warnings (a line that is not JSON...) are not said as well


def test_recordings_whose_recorders_received_nothing_are_refused(tmp_path):
    from oaws.recording import Writer, make_header

    for name in ("a.jsonl", "b.jsonl.gz"):
        Writer(str(tmp_path / name), make_header("ws://test", [RELIANCE], LTP, broker="sim")).close()
    a, b = str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl.gz")
    with pytest.raises(FeedError, match=r"^.*a\.jsonl holds no ticks: its recorder received none$"):
        ReplayFeed([a])
    with pytest.raises(FeedError) as refused:
        ReplayFeed([a, b])
    assert str(refused.value) == f"none of {a}, {b} holds a tick: their recorders received none"
    (tmp_path / "junk.txt").write_text("junk\n")
    with pytest.raises(FeedError) as refused:
        ReplayFeed([a, b, str(tmp_path / "junk.txt")])
    they = " (are they recordings made by `oaws record`?)"
    assert str(refused.value) == f"none of {a}, {b}, {tmp_path / 'junk.txt'} holds a tick{they}"


def test_a_set_with_some_ticks_is_served_and_warns_about_the_rest(tmp_path, caplog):
    write_recording(tmp_path / "r.jsonl", TICKS)
    (tmp_path / "junk.txt").write_text("junk\n")
    feed = ReplayFeed([str(tmp_path / "junk.txt"), str(tmp_path / "r.jsonl")])
    assert feed.known == {RELIANCE, INFY}
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'junk.txt'}: skipped 1 line that is not JSON (first: line 1)"
    ]


async def test_replay_skips_a_tick_nested_too_deep_to_serve_and_goes_on(tmp_path, caplog):
    # values nested 254-1,023 deep parse but cannot be written out again: replay died on them (#12)
    path = tmp_path / "r.jsonl.gz"
    write_recording(path, TICKS[:2])
    deep = b"[" * 300 + b"]" * 300
    line = b'{"type":"market_data","symbol":"RELIANCE","exchange":"NSE","mode":2,"received_ns":%d,"data":{"x":%s}}\n'
    with gzip.open(path, "ab") as f:
        f.write(line % (T0 + 1_200_000_000, deep))
    write_recording(path, TICKS[2:])
    feed, bus, _ = make_feed(path, speed=0)
    feed.want(RELIANCE, QUOTE)
    feed.want(INFY, QUOTE)
    await feed.run()
    assert [name for name, _, _ in bus.published] == ["RELIANCE:NSE", "INFY:NSE", "RELIANCE:NSE", "RELIANCE:NSE"]
    assert feed.state == "finished" and feed.replayed == 4
    assert [r.getMessage() for r in caplog.records if "deep" in r.getMessage()] == [
        f"{path}: skipped 1 line nested more than 254 deep (too deep to serve again)"
    ]


@pytest.fixture
def utc(tmp_path, monkeypatch):
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("OAWS_TIME_ZONE", "UTC")


SPAN = "2025-12-29 09:20:00.000 UTC to 2025-12-29 09:20:03.000 UTC"  # TICKS, from T0


@pytest.mark.parametrize(
    ("start", "end", "window"),
    [
        (5000, None, "at or after 2025-12-29 09:20:05.000 UTC"),
        (None, -1, "at or before 2025-12-29 09:19:59.999 UTC"),
        (1600, 2900, "between 2025-12-29 09:20:01.600 UTC and 2025-12-29 09:20:02.900 UTC"),
    ],
)
def test_a_window_without_a_tick_is_refused_with_the_recordings_span(tmp_path, utc, start, end, window):
    write_recording(tmp_path / "r.jsonl", TICKS)
    ms = T0 // 1_000_000
    bounds = {"start": None if start is None else ms + start, "end": None if end is None else ms + end}
    with pytest.raises(FeedError) as refused:
        ReplayFeed([str(tmp_path / "r.jsonl")], **bounds)
    assert str(refused.value) == f"no tick of {tmp_path / 'r.jsonl'} falls {window} (it spans {SPAN})"
    # two files: "the recordings", spanning both
    write_recording(tmp_path / "s.jsonl", [("TCS:NSE", 4.0)])
    with pytest.raises(FeedError) as refused:
        ReplayFeed([str(tmp_path / "r.jsonl"), str(tmp_path / "s.jsonl")], **bounds)
    spans = "2025-12-29 09:20:00.000 UTC to 2025-12-29 09:20:04.000 UTC"
    assert str(refused.value) == f"no tick of the recordings falls {window} (they span {spans})"
    ReplayFeed([str(tmp_path / "r.jsonl")], start=ms + 3000, end=ms + 3000)  # a window of one tick is enough


def _as_recorded_before_openalgos_names(path) -> None:
    """Rewrite a recording as oaws wrote it before it took OpenAlgo's field names."""
    rows = []
    for row in (orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()):
        data = row.get("data")
        if isinstance(data, dict) and "average_price" in data:
            data["avg_trade_price"] = data.pop("average_price")
            data.pop("last_quantity", None)
        rows.append(orjson.dumps(row))
    path.write_bytes(b"\n".join(rows) + b"\n")


async def test_a_recording_with_the_old_field_names_replays_with_openalgos(tmp_path):
    path = tmp_path / "old.jsonl"
    written = write_recording(path, [("RELIANCE:NSE", 0.0), ("RELIANCE:NSE", 1.0)], mode=DEPTH)
    _as_recorded_before_openalgos_names(path)
    assert b"avg_trade_price" in path.read_bytes() and b"last_quantity" not in path.read_bytes()
    feed, bus, _ = make_feed(path, speed=0)
    feed.want(RELIANCE, QUOTE)
    feed.want(RELIANCE, DEPTH)
    await feed.run()
    depth = [data for _, mode, data in bus.published if mode == DEPTH]
    quote = [data for _, mode, data in bus.published if mode == QUOTE]
    assert len(depth) == len(quote) == 2
    for data, original in zip(depth, written, strict=True):
        assert "avg_trade_price" not in data
        assert data["average_price"] == original["data"]["average_price"]
        assert data["last_quantity"] == data["last_trade_quantity"] == original["data"]["last_quantity"]
    for data in quote:
        assert "average_price" in data and "avg_trade_price" not in data and "last_quantity" not in data


async def test_an_instrument_without_a_tick_in_the_window_is_refused_saying_so(tmp_path, utc):
    """Issue 19 #15: an instrument of the recording whose ticks all fall outside --from/--to
    would never tick: it is refused at once, saying that the recording has none in the window."""
    write_recording(tmp_path / "r.jsonl", TICKS)
    ms = T0 // 1_000_000
    feed, bus, _ = make_feed(tmp_path / "r.jsonl", start=ms + 1500, end=ms + 3000)  # RELIANCE only
    feed.check(RELIANCE)
    with pytest.raises(Refused) as refused:
        feed.check(INFY)
    window = "between 2025-12-29 09:20:01.500 UTC and 2025-12-29 09:20:03.000 UTC"
    assert refused.value.code == "SYMBOL_NOT_FOUND"
    assert refused.value.message == f"the recording has no tick of INFY:NSE {window}"
    feed.want(INFY, QUOTE)  # a proxy in another process: the refusal goes over the bus
    assert bus.rejected == [("INFY:NSE", QUOTE, "SYMBOL_NOT_FOUND", refused.value.message)]
    assert not feed.wanted


async def test_the_status_says_when_the_replay_has_ended(tmp_path):
    """Issue 19 #15: past its end (without --loop) the feed says so in its status, which
    the proxy reads (in this process, or from the bus's announcements) to tell clients."""
    write_recording(tmp_path / "r.jsonl", TICKS)
    feed, _, _ = make_feed(tmp_path / "r.jsonl", speed=0)
    feed.want(RELIANCE, QUOTE)
    assert feed.status()["ended"] is False
    await feed.run()
    assert feed.status()["ended"] is True and feed.status()["replay"] == "finished"
