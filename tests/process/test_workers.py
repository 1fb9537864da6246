"""``oaws serve --workers 2`` is one server to ``/health`` and ``oaws status`` (issue 19 #14):
whichever process the kernel hands the request to, the pid is the server's and the clients,
ticks and instruments are those of every process."""

from __future__ import annotations

import contextlib
import urllib.request
from typing import Any

import orjson
from websockets.sync.client import connect

from tests.helpers import free_port, start_serve, wait_until


def health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        return orjson.loads(answer.read())


def test_health_answers_for_the_whole_server(cli_env):
    port = free_port()
    proc, url = start_serve(cli_env, "--port", str(port), "--bus", "tcp://127.0.0.1:*", "--workers", "2")
    try:
        with contextlib.ExitStack() as stack:
            # several connections: the kernel spreads them over the two processes (by address and port)
            sockets = [stack.enter_context(connect(url)) for _ in range(6)]
            for ws, symbol in zip(sockets, ["RELIANCE", "INFY", "INFY", "TCS", "TCS", "TCS"], strict=True):
                ws.send(orjson.dumps({"action": "subscribe", "symbol": symbol, "exchange": "NSE", "mode": 1}).decode())
            whole: dict[int, dict[str, Any]] = {}  # answering pid -> its last answer of the whole server
            seen: list[dict[str, Any]] = []

            def both_answer_for_all() -> bool:
                answer = health(port)
                seen.append(answer)
                assert answer["pid"] == proc.pid, answer  # the server's pid, whoever answers
                if answer["clients"] == 6 and answer["instruments"] == 3 and len(answer["workers"]) == 2:
                    whole[answer["answered_by"]] = answer
                return len(whole) == 2

            wait_until(both_answer_for_all, timeout=30, what=lambda: seen[-1] if seen else "an answer")
        workers = [w["pid"] for w in whole[proc.pid]["workers"]]
        assert workers[0] == proc.pid and set(workers) == set(whole)  # the server first, then its worker
        for answer in whole.values():
            assert sum(w["clients"] for w in answer["workers"]) == 6
            assert answer["topics"] == 3 and answer["ticks_out"] == sum(w["ticks_out"] for w in answer["workers"])
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
