"""`oaws watch` under a real terminal (a pty): SIGTERM or SIGHUP restores the terminal
as `q` does: it leaves the alternate screen and turns mouse reporting off."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from tests.helpers import OAWS, start_serve

LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"
MOUSE_OFF = (b"\x1b[?1000l", b"\x1b[?1003l", b"\x1b[?1006l")


def read_until(fd: int, wanted: bytes, seen: bytearray, timeout: float) -> bool:
    """Read the terminal into ``seen`` until ``wanted`` appears, the other end closes, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every process on the terminal has closed it
            return wanted in seen
        if not chunk:
            return wanted in seen
        seen += chunk
    return True


@pytest.fixture
def server(cli_env):
    proc, url = start_serve(cli_env, "--port", "0", "--bus", "tcp://127.0.0.1:*", "--rate", "20")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_watch_killed_with_sigterm_or_sighup_restores_the_terminal(cli_env, server, sig):
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
    env = {**cli_env, "TERM": "xterm-256color", "COLUMNS": "110", "LINES": "30"}
    watch = subprocess.Popen(
        [*OAWS, "watch", "--url", server, "--no-autostart", "RELIANCE:NSE"],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()
    try:
        assert read_until(master, b"\x1b[?1049h", seen, 30), bytes(seen[-2000:])  # on the alternate screen
        assert read_until(master, b"RELIANCE", seen, 30), bytes(seen[-2000:])  # and drawing
        mark = len(seen)
        watch.send_signal(sig)
        read_until(master, b"\0never\0", seen, 15)  # everything until it closes the terminal
        code = watch.wait(15)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        os.close(master)
    after = bytes(seen[mark:])
    assert LEAVE_ALTERNATE_SCREEN in after, after[-500:]
    for off in MOUSE_OFF:
        assert off in after, (off, after[-500:])
    assert b"Traceback" not in after
    assert code == 0, (code, after[-500:])
