"""The recorder in-process (oaws.recording.recorder) on ``oaws.client.Client``, against small
WebSocket servers on port 0: the raw-frame fast path, --duration, a server that wants a key,
a close for want of authentication, the live status line, an OpenAlgo server slow to authenticate."""

from __future__ import annotations

import asyncio

import orjson
from websockets.asyncio.server import serve

from oaws.client import Client
from oaws.instruments import LTP, parse
from oaws.recording import Writer, make_header, records
from oaws.recording.recorder import Recorder
from tests.openalgo_server import OpenAlgoServer

REL, INFY = parse("RELIANCE:NSE"), parse("INFY:NSE")


def market(seq: int, symbol: str = "RELIANCE") -> dict:
    return {
        "type": "market_data",
        "topic": f"{symbol}.NSE",
        "symbol": symbol,
        "exchange": "NSE",
        "mode": 1,
        "broker": "fake",
        "data": {
            "symbol": symbol,
            "exchange": "NSE",
            "ltp": 100.0 + seq,
            "timestamp": 1_767_000_000_000 + seq,
            "seq": seq,
        },
    }


class Proxyish:
    """Answers subscribe like oaws's proxy and then sends ``frames`` batches of two ticks each,
    compact as the proxy writes them; ``api_key`` makes it want authentication first, and
    ``close_code`` closes the connection that way after the ticks."""

    def __init__(
        self,
        frames: int,
        *,
        api_key: str | None = None,
        close_code: int | None = None,
        first: bytes | None = None,
        last: bytes | None = None,
    ) -> None:
        self.frames = frames
        self.api_key = api_key
        self.close_code = close_code
        #: a frame sent before the ticks, and one after them
        self.first = first
        self.last = last

    async def handler(self, ws) -> None:
        authenticated = self.api_key is None
        async for raw in ws:
            request = orjson.loads(raw)
            if request["action"] == "authenticate":
                authenticated = request.get("api_key") == self.api_key
                await ws.send(orjson.dumps({"type": "auth", "status": "success"}).decode())
            elif not authenticated:
                reply = {"status": "error", "code": "NOT_AUTHENTICATED", "message": "You must authenticate first"}
                await ws.send(orjson.dumps(reply).decode())
            elif request["action"] == "subscribe":
                subs = [{**e, "mode": request["mode"], "status": "success"} for e in request["symbols"]]
                await ws.send(orjson.dumps({"type": "subscribe", "status": "success", "subscriptions": subs}).decode())
                if self.first is not None:
                    await ws.send(self.first.decode())
                for n in range(self.frames):
                    await ws.send(orjson.dumps([market(2 * n), market(2 * n + 1, "INFY")]).decode())
                    await asyncio.sleep(0.005)
                if self.last is not None:
                    await ws.send(self.last.decode())
                if self.close_code is not None:
                    await ws.close(self.close_code, "authentication timeout")
                    return


async def record(server: Proxyish, path, *, api_key: str | None = None, **options) -> tuple[int, Recorder, list[bool]]:
    """A recording of ``server`` into ``path``: the exit code, the recorder, and what its frame hook answered."""
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        url = f"ws://127.0.0.1:{ws_server.sockets[0].getsockname()[1]}"
        writer = Writer(str(path), make_header(url, [REL, INFY], LTP))
        taken: list[bool] = []

        async def connect(on_frame) -> Client:
            def counting(frame: bytes, received_ns: int) -> bool:
                taken.append(on_frame(frame, received_ns))
                return taken[-1]

            return Client(url, api_key=api_key, instruments=[REL, INFY], mode=LTP, on_frame=counting)

        recorder = Recorder(writer, [REL, INFY], connect, **options)
        async with asyncio.timeout(10):
            return await recorder.run(), recorder, taken


async def test_proxy_frames_go_to_the_file_as_bytes_and_the_first_is_parsed_for_the_broker(tmp_path):
    path = tmp_path / "r.jsonl"
    code, _, taken = await record(Proxyish(10), path, count=20)
    assert code == 0
    got = list(records(str(path)))
    assert got[0]["broker"] == "fake" and got[0]["instruments"] == ["RELIANCE:NSE", "INFY:NSE"]
    ticks = got[1:]
    assert [t["data"]["seq"] for t in ticks] == list(range(20))
    assert all(
        {k: v for k, v in t.items() if k != "received_ns"} == market(t["data"]["seq"], t["symbol"]) for t in ticks
    )
    # the subscribe reply and the first frame (broker unknown) parsed, then raw frames; the
    # one that reaches --count parsed, to stop at it
    assert taken == [False, False, *[True] * 8, False]


async def test_the_recorder_skips_a_tick_nested_too_deep_to_write_and_records_on(tmp_path):
    # values nested 254-1,023 deep parse but cannot be written out again (#12); the first frame is parsed
    deep = orjson.dumps(market(-1))[:-2] + b',"x":' + b"[" * 300 + b"]" * 300 + b"}}"
    path = tmp_path / "r.jsonl"
    code, recorder, _ = await record(Proxyish(5, first=deep), path, count=10)
    assert code == 0 and recorder.writer.unwritable == 1
    assert [t["data"]["seq"] for t in list(records(str(path)))[1:]] == list(range(10))


async def test_duration_stops_a_recording_that_keeps_what_came(tmp_path):
    path = tmp_path / "r.jsonl"
    code, recorder, _ = await record(Proxyish(10_000), path, duration=0.3)
    assert code == 0 and recorder.writer.ticks > 0
    assert len(list(records(str(path)))) == recorder.writer.ticks + 1


async def test_a_replay_that_has_ended_ends_the_recording(tmp_path, capsys):
    """Issue 19 #15: past a replay's end no tick comes any more; the server says so
    (``feed_status``), and the recorder stops with the sentence, keeping what came."""
    ended = {"type": "feed_status", "status": "success", "state": "ended", "message": "the replay has ended: no more"}
    path = tmp_path / "r.jsonl"
    code, recorder, _ = await record(Proxyish(5, last=orjson.dumps(ended)), path)
    assert code == 0 and recorder.writer.ticks == 10
    assert capsys.readouterr().err.endswith("oaws: the replay has ended: no more\n")


async def test_a_server_that_wants_a_key_is_one_sentence_and_no_file(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    code, recorder, _ = await record(Proxyish(5, api_key="secret"), path)
    assert code == 1 and not path.exists()
    assert capsys.readouterr().err == f"oaws: {recorder.url} requires an API key: pass --api-key or set OAWS_API_KEY\n"


async def test_a_close_for_want_of_authentication_ends_the_recording_and_keeps_its_ticks(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    code, recorder, _ = await record(Proxyish(3, api_key="secret", close_code=4401), path, api_key="secret")
    assert code == 1
    assert [t["data"]["seq"] for t in list(records(str(path)))[1:]] == list(range(6))
    err = capsys.readouterr().err
    assert err == f"oaws: {recorder.url} closed the connection: authentication timeout\n"


async def test_the_live_line_counts_ticks_and_ends_with_the_average(tmp_path, capsys):
    code, _, _ = await record(Proxyish(5), tmp_path / "r.jsonl", count=10, live=True)
    assert code == 0
    err = capsys.readouterr().err
    assert err.endswith("\n") and "oaws: recorded " in err and ": 10 ticks " in err and "/s average" in err


async def test_a_recorder_waits_for_an_openalgo_server_still_setting_up_its_broker(tmp_path, capsys):
    """OpenAlgo answers authenticate once its broker adapter is up (slowly), or with a broker
    error: the recorder waits, retries with growing waits, and records once ticks come."""
    path = tmp_path / "r.jsonl"
    async with OpenAlgoServer(auth_delay=1.2, broker_failures=1) as server:
        writer = Writer(str(path), make_header(server.url, [REL, INFY], LTP))

        async def connect(on_frame) -> Client:
            # as `oaws record` builds its client: retry_auth
            return Client(
                server.url, api_key="oa-key", instruments=[REL, INFY], mode=LTP, on_frame=on_frame, retry_auth=True
            )

        recorder = Recorder(writer, [REL, INFY], connect, count=6)
        async with asyncio.timeout(15):
            code = await recorder.run()
    assert code == 0 and server.connections == 2
    header, *ticks = list(records(str(path)))
    assert header["broker"] == "angel" and len(ticks) == 6
    assert all(t["type"] == "market_data" and t["mode"] == 1 for t in ticks)  # no gap: it was never up before
    assert {t["symbol"] for t in ticks} == {"RELIANCE", "INFY"}
    err = capsys.readouterr().err.splitlines()
    waiting = f"oaws: waiting for {server.url} to answer authenticate (up to 30 s)"
    assert err[0] == waiting and err[2] == waiting
    assert err[1].startswith(f"oaws: {server.url} could not authenticate: Failed to connect to broker")
    assert "; reconnecting in " in err[1] and len(err) == 3
