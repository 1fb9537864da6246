"""``oaws sim order`` / ``oaws sim cancel`` against a running ``oaws serve``, and ``oaws tail
--orders`` printing what they do."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

from tests.helpers import OAWS, oaws, wait_until
from tests.process.test_cli import start_server


def tail_orders(env, url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*OAWS, "tail", "--orders", "--url", url, "--no-autostart", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def until_tail_exits(env, bus: str, tail: subprocess.Popen[str], *order: str) -> str:
    """Place the order again and again until ``tail --count`` has its lines (its subscription
    needs a moment to reach the feed, and an update nobody subscribed to is not kept)."""
    deadline = time.monotonic() + 30
    while tail.poll() is None and time.monotonic() < deadline:
        out = oaws(env, "sim", *order, "--bus", bus)
        assert out.returncode == 0, out.stderr
        try:
            tail.wait(1)
        except subprocess.TimeoutExpired:
            continue
    stdout, stderr = tail.communicate(timeout=5)
    assert tail.returncode == 0, stderr
    return stdout


def test_a_market_order_is_printed_open_then_complete(cli_env, ipc_bus):
    proc, url = start_server(cli_env, "--bus", ipc_bus)
    try:
        tail = tail_orders(cli_env, url, "--json", "--count", "2")
        lines = [
            json.loads(line)
            for line in until_tail_exits(cli_env, ipc_bus, tail, "order", "BUY", "SBIN:NSE", "5").splitlines()
        ]
        assert [m["order_status"] for m in lines] == ["open", "complete"]
        assert lines[0]["orderid"] == lines[1]["orderid"]
        assert (lines[1]["symbol"], lines[1]["filled_quantity"], lines[1]["type"]) == ("SBIN", 5, "order_update")
        human = oaws(cli_env, "sim", "order", "SELL", "SBIN:NSE", "5", "--price", "1", "--bus", ipc_bus)
        assert human.returncode == 0, human.stderr
        assert "rejected" in human.stdout and "circuit" in human.stdout
    finally:
        proc.terminate()
        proc.wait(5)


def test_a_limit_order_is_cancelled_and_tail_prints_human_lines(cli_env, ipc_bus):
    proc, url = start_server(cli_env, "--bus", ipc_bus)
    try:
        placed = oaws(cli_env, "sim", "order", "BUY", "INFY:NSE", "1", "--price", "1400", "--bus", ipc_bus, "--json")
        orderid = json.loads(placed.stdout.splitlines()[-1])["orderid"]
        tail = tail_orders(cli_env, url, "--count", "1")
        health = url.replace("ws://", "http://") + "/health"
        wait_until(lambda: json.load(urllib.request.urlopen(health))["order_clients"] == 1, what="tail to subscribe")
        time.sleep(0.3)  # its bus subscription reaches the feed
        out = oaws(cli_env, "sim", "cancel", orderid, "--bus", ipc_bus)
        assert out.returncode == 0 and "cancelled" in out.stdout, out.stderr
        stdout, stderr = tail.communicate(timeout=10)
        assert stdout == f"{orderid} cancelled BUY 1 INFY:NSE LIMIT 1,400.00 MIS\n", stderr
        again = oaws(cli_env, "sim", "cancel", orderid, "--bus", ipc_bus)
        assert again.returncode == 1 and "only an open order" in again.stderr
    finally:
        proc.terminate()
        proc.wait(5)


def test_with_no_server_an_order_is_one_sentence_and_exit_1(cli_env, ipc_bus):
    out = oaws(cli_env, "sim", "order", "BUY", "SBIN:NSE", "5", "--bus", ipc_bus, timeout=30)
    assert out.returncode == 1
    assert out.stderr.startswith("oaws: no feed on the bus") and "Traceback" not in out.stderr
    bad = oaws(cli_env, "sim", "order", "HOLD", "SBIN:NSE", "5", "--bus", ipc_bus)
    assert bad.returncode == 1 and "BUY or SELL" in bad.stderr
