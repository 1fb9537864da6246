"""``oaws record`` against a server that is not oaws: OpenAlgo's style of frames (one
message per frame, spaced JSON, authentication first), and a connection that drops."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.server import serve

from oaws.recording import records
from tests.recording.helpers import OAWS


def tick(seq: int) -> str:
    data = {
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "ltp": 1400.0 + seq,
        "ltt": 1_767_000_000_000 + seq,
        "timestamp": 1_767_000_000_000 + seq * 10,
        "seq": seq,
    }
    return json.dumps(
        {
            "type": "market_data",
            "symbol": "RELIANCE",
            "exchange": "NSE",
            "mode": 1,
            "broker": "openalgo-test",
            "data": data,
        }
    )


class OpenAlgoLike:
    """Serves RELIANCE ticks 1-5, drops the connection, then on the next connection sends
    the latest tick again (5, as a server does on subscribe) and goes on with 6-8."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[dict] = []

    async def handler(self, ws) -> None:
        self.connections += 1
        first = self.connections == 1
        async for raw in ws:
            request = json.loads(raw)
            self.requests.append(request)
            if request["action"] == "authenticate":
                ok = request.get("api_key") == "secret"
                await ws.send(
                    json.dumps(
                        {"type": "auth", "status": "success"}
                        if ok
                        else {
                            "type": "error",
                            "status": "error",
                            "code": "AUTHENTICATION_ERROR",
                            "message": "Invalid API key",
                        }
                    )
                )
            elif request["action"] == "subscribe":
                await ws.send(
                    json.dumps(
                        {
                            "type": "subscribe",
                            "status": "success",
                            "subscriptions": [
                                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "status": "success"},
                                {
                                    "symbol": "NOPE",
                                    "exchange": "NSE",
                                    "status": "error",
                                    "code": "SYMBOL_NOT_FOUND",
                                    "message": "Symbol NOPE not found",
                                },
                            ],
                        }
                    )
                )
                for seq in range(1, 6) if first else range(5, 9):
                    await ws.send(tick(seq))
                    await asyncio.sleep(0.01)
                if first:
                    await asyncio.sleep(0.6)  # past the recorder's next flush
                    ws.transport.abort()  # a drop, not a goodbye
                    return


async def record(url: str, path, env, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *OAWS,
        "record",
        str(path),
        "RELIANCE:NSE",
        "NOPE:NSE",
        "--mode",
        "ltp",
        "--url",
        url,
        *args,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, err.decode()


async def test_records_another_servers_frames_across_a_drop_without_repeats(tmp_path, cli_env):
    server = OpenAlgoLike()
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        path = tmp_path / "r.jsonl"
        code, err = await record(f"ws://127.0.0.1:{port}", path, cli_env, "--api-key", "secret", "--count", "8")
    assert code == 0, err
    got = list(records(str(path)))
    assert got[0]["type"] == "header" and got[0]["broker"] == "openalgo-test"
    assert got[0]["instruments"] == ["RELIANCE:NSE"]  # the refused one is not claimed
    kinds = [r["type"] if r["type"] != "market_data" else r["data"]["seq"] for r in got[1:]]
    assert kinds == [1, 2, 3, 4, 5, "gap", 6, 7, 8]  # the repeated 5 after the reconnect is dropped
    gap = got[6]
    assert got[5]["received_ns"] <= gap["from_ns"] < gap["to_ns"] <= got[7]["received_ns"]
    assert server.connections == 2 and server.requests[0] == {"action": "authenticate", "api_key": "secret"}
    assert "NOPE:NSE: Symbol NOPE not found (SYMBOL_NOT_FOUND)" in err and "reconnected to" in err


async def test_a_refused_api_key_is_one_sentence_and_leaves_no_file(tmp_path, cli_env):
    server = OpenAlgoLike()
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        path = tmp_path / "r.jsonl"
        code, err = await record(f"ws://127.0.0.1:{port}", path, cli_env, "--api-key", "wrong")
    assert code == 1
    assert err == f"oaws: ws://127.0.0.1:{port} refused the API key: Invalid API key\n"
    assert not path.exists()
