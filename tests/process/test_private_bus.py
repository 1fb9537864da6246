"""The all-in-one server's private bus (``oaws.server.private_bus``): with no ``--bus`` it
binds no TCP port but its WebSocket one, its bus is a 0600 socket in a 0700 directory,
two servers run side by side with ``--port`` alone, and ``oaws sim order`` finds the bus."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
from pathlib import Path

import orjson
import pytest
import zmq

from tests.helpers import oaws, start_serve, wait_until

READY = r"(serving on ws://\S+ .*bus \S+?;)"


def serve(env, *args: str) -> tuple[subprocess.Popen[str], str, str]:
    """``oaws serve --port 0 ARGS`` with no --bus: the process, its URL and its bus."""
    proc, line = start_serve(env, "--port", "0", "--rate", "20", *args, announce=READY)
    found = re.search(r"serving on (ws://[^\s:]+:\d+).*bus (\S+?);", line)
    assert found, line
    return proc, found.group(1), found.group(2)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (its sockets' inodes in /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_with_an_api_key_the_bus_is_private_and_no_tcp_bus_is_bound(cli_env):
    proc, url, bus = serve(cli_env, "--api-key", "k")
    try:
        port = int(url.rsplit(":", 1)[1])
        assert listening_tcp_ports(proc.pid) == {port}  # nothing at tcp://127.0.0.1:5555, nor anywhere
        path = Path(bus.removeprefix("ipc://"))
        assert bus.startswith("ipc://") and stat.S_ISSOCK(os.lstat(path).st_mode)
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700
        # a client with the key gets ticks; a plain SUB on the old default bus gets none of them
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect("tcp://127.0.0.1:5555")
        try:
            cli_env["OAWS_API_KEY"] = "k"
            out = oaws(cli_env, "tail", "--url", url, "--count", "2", "--json", "RELIANCE:NSE")
            assert out.returncode == 0 and len(out.stdout.splitlines()) == 2, out.stderr
            while sub.poll(0):
                topic = sub.recv_multipart()[0]
                assert not topic.startswith(b"NSE_RELIANCE"), "the ticks reached a SUB on the old default bus"
        finally:
            sub.close(0)
            ctx.term()
    finally:
        stop(proc)
    wait_until(lambda: not path.exists(), what="the private bus removed at exit")


def test_two_servers_run_at_once_with_port_alone_one_with_workers(cli_env):
    first, first_url, first_bus = serve(cli_env)
    try:
        second, second_url, second_bus = serve(cli_env, "--workers", "2")
        try:
            assert first_bus != second_bus
            for url in (first_url, second_url, second_url, second_url):  # the workers share the bus too
                out = oaws(cli_env, "tail", "--url", url, "--count", "2", "--json", "--no-autostart", "INFY:NSE")
                assert out.returncode == 0 and len(out.stdout.splitlines()) == 2, out.stderr
            # `sim order` finds the bus; with two servers it asks which
            out = oaws(cli_env, "sim", "order", "BUY", "SBIN:NSE", "5")
            assert out.returncode == 1 and "2 oaws servers are running here" in out.stderr
            assert out.stderr.count("\n") == 1
            placed = oaws(cli_env, "sim", "order", "BUY", "SBIN:NSE", "5", "--bus", second_bus, "--json")
            assert placed.returncode == 0 and all(orjson.loads(line) for line in placed.stdout.splitlines())
            assert "complete" in placed.stdout, placed.stdout
        finally:
            stop(second)
        placed = oaws(cli_env, "sim", "order", "BUY", "SBIN:NSE", "5", "--json")  # the one left: found
        assert placed.returncode == 0, placed.stderr
    finally:
        stop(first)


def test_a_state_directory_too_deep_for_a_socket_path_gets_a_short_private_one(cli_env, tmp_path):
    deep = tmp_path / ("d" * 120) / "state"
    cli_env["OAWS_STATE_DIR"] = str(deep)
    killed, _, old_bus = serve(cli_env)
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    old = Path(old_bus.removeprefix("ipc://"))
    assert old.exists()  # left behind
    proc, _, bus = serve(cli_env)
    try:
        path = Path(bus.removeprefix("ipc://"))
        assert len(os.fsencode(str(path))) <= 107 and deep not in path.parents
        assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700 and os.lstat(path.parent).st_uid == os.geteuid()
        assert not old.exists()  # the stale one was cleaned away
        placed = oaws(cli_env, "sim", "order", "BUY", "SBIN:NSE", "5")  # found there
        assert placed.returncode == 0 and "complete" in placed.stdout, placed.stderr
    finally:
        stop(proc)
    assert not path.exists()
    path.parent.rmdir()


@pytest.mark.parametrize("flag", ["--bus-bind"])
def test_the_private_bus_also_serves_an_all_in_one_server_whose_proxy_binds(cli_env, flag):
    proc, url, bus = serve(cli_env, flag)
    try:
        assert bus.startswith(("@ipc://", "ipc://")), bus
        out = oaws(cli_env, "tail", "--url", url, "--count", "2", "--json", "--no-autostart", "INFY:NSE")
        assert out.returncode == 0 and len(out.stdout.splitlines()) == 2, out.stderr
        assert listening_tcp_ports(proc.pid) == {int(url.rsplit(":", 1)[1])}
    finally:
        stop(proc)


def test_unix_socket_check_is_not_fooled_by_a_plain_file(tmp_path):
    from oaws.server import private_bus

    plain = tmp_path / "bus-1"
    plain.write_text("")
    assert not private_bus._answers(plain)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "bus-2"))
        s.listen()
        assert private_bus._answers(tmp_path / "bus-2")
