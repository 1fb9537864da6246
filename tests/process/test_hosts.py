"""Several hosts on one machine: a feed and two proxies in their own network namespaces,
joined by veth pairs; one proxy host is cut off and restored.

Needs root and `ip netns` (iproute2); skipped with the reason otherwise. The addresses
(10.250.x.x) exist only inside the namespaces this test makes and removes.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time

import orjson
import pytest

from tests.helpers import OAWS


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"oawsprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"cannot create a network namespace: {exc.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.fixture
def hosts():
    reason = _netns_usable()
    if reason:
        pytest.skip(reason)
    tag = str(os.getpid() % 100000)
    feed, p1, p2 = f"oawsF{tag}", f"oawsA{tag}", f"oawsB{tag}"
    for ns in (feed, p1, p2):
        _ip("netns", "add", ns)
        _ip("link", "set", "lo", "up", ns=ns)
    for n, proxy_ns in ((1, p1), (2, p2)):
        a, b = f"of{tag}{n}", f"op{tag}{n}"
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        _ip("link", "set", a, "netns", feed)
        _ip("link", "set", b, "netns", proxy_ns)
        _ip("addr", "add", f"10.250.{n}.1/30", "dev", a, ns=feed)
        _ip("addr", "add", f"10.250.{n}.2/30", "dev", b, ns=proxy_ns)
        _ip("link", "set", a, "up", ns=feed)
        _ip("link", "set", b, "up", ns=proxy_ns)
    procs: list[subprocess.Popen] = []
    yield {"feed": feed, "p1": p1, "p2": p2, "tag": tag, "procs": procs}
    for p in procs:
        p.kill()
        p.wait()
    for ns in (feed, p1, p2):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def run_in(ns: str, env: dict, *args: str, procs: list) -> subprocess.Popen:
    p = subprocess.Popen(
        ["ip", "netns", "exec", ns, *OAWS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    procs.append(p)
    return p


def wait_serving(p: subprocess.Popen) -> None:
    for line in p.stderr:
        if "serving" in line:
            threading.Thread(target=p.stderr.read, daemon=True).start()  # keep draining
            return
    raise AssertionError(f"did not start: exit {p.wait()}")


def ticks_of(p: subprocess.Popen) -> queue.Queue:
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in p.stdout:
            q.put((time.monotonic(), orjson.loads(line)))

    threading.Thread(target=pump, daemon=True).start()
    return q


def drain(q: queue.Queue, seconds: float, enough: int | None = None) -> list:
    got, end = [], time.monotonic() + seconds
    while time.monotonic() < end and (enough is None or len(got) < enough):
        try:
            got.append(q.get(timeout=max(0.01, end - time.monotonic())))
        except queue.Empty:
            pass
    return got


def test_one_feed_two_proxy_hosts_one_cut_off_and_restored(hosts, cli_env):
    env = {**cli_env, "OAWS_RATE": "20"}
    procs = hosts["procs"]
    wait_serving(run_in(hosts["feed"], env, "serve", "--role", "feed", "--bus", "tcp://0.0.0.0:5555", procs=procs))
    tails = {}
    for n, ns in ((1, hosts["p1"]), (2, hosts["p2"])):
        wait_serving(
            run_in(
                ns, env, "serve", "--role", "proxy", "--bus", f"tcp://10.250.{n}.1:5555", "--port", "8765", procs=procs
            )
        )
        tail = run_in(
            ns, env, "tail", "--json", "--no-autostart", "--url", "ws://127.0.0.1:8765", "RELIANCE:NSE", procs=procs
        )
        tails[n] = ticks_of(tail)
    for q in tails.values():
        assert len(drain(q, 5.0, enough=10)) >= 10  # both hosts get ticks

    _ip("link", "set", f"op{hosts['tag']}1", "down", ns=hosts["p1"])  # proxy host 1 cut off
    drain(tails[1], 0.5)  # what was in flight
    during = {n: drain(q, 3.0) for n, q in tails.items()}
    assert during[1] == []  # nothing reaches the cut-off host
    assert len(during[2]) >= 20  # the other host is not disturbed

    _ip("link", "set", f"op{hosts['tag']}1", "up", ns=hosts["p1"])
    # ticks resume by themselves: first what the feed queued during the cut (TCP kept the
    # connection), then live ones, newer than anything the other host saw during the cut
    newest_during_cut = during[2][-1][1]["data"]["seq"]
    deadline, live = time.monotonic() + 15, []
    while time.monotonic() < deadline and len(live) < 5:
        live += [t for t in drain(tails[1], 1.0) if t[1]["data"]["seq"] > newest_during_cut]
    assert len(live) >= 5
