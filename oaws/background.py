"""The background server: start it detached, find it, ask it how it is, stop it.

A background server holds an exclusive ``flock`` on ``server.lock`` in the state
directory for its whole life and writes ``server.json`` (pid, URL, bus, broker, version,
start time, log file) once it serves. The lock, not the pid, says whether it lives: a
state file whose lock nobody holds is stale (the process died, or its pid was reused by
another program), whatever ``kill -0`` would say.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oaws import config as cfg

STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
#: exit code of a background server that found another one holding the lock
LOST_RACE = 75


class BackgroundError(Exception):
    """One sentence for the user."""


def paths() -> tuple[Path, Path, Path]:
    d = cfg.state_dir()
    return d / STATE_FILE, d / LOCK_FILE, d / LOG_FILE


@dataclass
class State:
    """What ``server.json`` says, and whether its server still holds the lock."""

    info: dict[str, Any]
    alive: bool

    @property
    def pid(self) -> int:
        return int(self.info.get("pid", 0))

    @property
    def url(self) -> str:
        return str(self.info.get("url", ""))


def lock_held() -> bool:
    """Whether some process holds the server lock (without taking it)."""
    _, lock_path, _ = paths()
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def read_state() -> State | None:
    """The state file, or None when there is none."""
    state_path, _, _ = paths()
    try:
        info = json.loads(state_path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        info = {}
    return State(info if isinstance(info, dict) else {}, lock_held())


def remove_stale() -> None:
    state_path, _, _ = paths()
    with contextlib.suppress(FileNotFoundError):
        state_path.unlink()


class ServerLock:
    """Held by a background server for its lifetime (``acquire`` then ``release``)."""

    def __init__(self) -> None:
        self.fd: int | None = None

    def acquire(self) -> bool:
        _, lock_path, _ = paths()
        lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def publish(self, info: dict[str, Any]) -> None:
        """Write the state file atomically (readers never see half of it)."""
        state_path, _, _ = paths()
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(state_path)

    def release(self) -> None:
        if self.fd is None:
            return
        remove_stale()
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def log_to_file() -> Path:
    """Route the background server's logging to a rotating file beside the state file."""
    _, _, log_path = paths()
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.handlers.RotatingFileHandler(log_path, maxBytes=5 * 1024 * 1024, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # one line per connection and health probe would drown what matters
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return log_path


def health_url(ws_url: str) -> str:
    return ws_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1).rstrip("/") + "/health"


def _configured_key() -> str | None:
    try:
        key = cfg.get("api_key")
    except cfg.ConfigError:
        return None
    return str(key) if key else None


def health(ws_url: str, timeout: float = 2.0, api_key: str | None = None) -> dict[str, Any] | None:
    """The server's own figures (``GET /health``), or None if it does not answer. The API
    key (``api_key``, else the configured one, as ``oaws serve`` finds it) goes along: a
    server with a key shows its figures only to who sends it; without it, the answer is
    ``{"status": "ok", "version": ..., "error": ...}`` and ``auth_required`` is True."""
    context = None
    if ws_url.startswith("wss://"):
        # our own server on this machine, perhaps with a self-signed certificate
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    key = api_key or _configured_key()
    request = urllib.request.Request(health_url(ws_url), headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            return None
        try:
            body = {**json.loads(exc.read()), "auth_required": True}
        except (OSError, ValueError, TypeError):
            return None
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return body if isinstance(body, dict) else None


def _log_tail(since: int = 0, n: int = 15) -> str:
    """The last lines the log got after byte ``since`` (this start's, not earlier sessions')."""
    _, _, log_path = paths()
    try:
        with log_path.open("rb") as f:
            f.seek(since if since <= log_path.stat().st_size else 0)  # rotated meanwhile: all of it
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def detach(settings: Any = None, timeout: float = 20.0) -> State:
    """Start ``oaws serve`` in the background with ``settings`` (a ``ServeSettings``; None:
    as the environment and the config file say) and wait until it answers.

    Returns the running server's state; if one was already running, that one's (with
    ``info["already"] = True``). Raises BackgroundError with the log's last lines when the
    new server dies while starting.
    """
    state = read_state()
    if state is not None and state.alive:
        state.info["already"] = True
        return state
    if state is not None:
        remove_stale()
    _, _, log_path = paths()
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # the child's stderr goes to the log too, so that a crash before logging starts is seen
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log_file:
        since = log_file.seek(0, os.SEEK_END)
        if settings is not None:
            env = settings.environment()
        else:
            from oaws.server.settings import ENV

            env = {k: v for k, v in os.environ.items() if k != ENV}
        child = subprocess.Popen(
            [sys.executable, "-m", "oaws", "serve", "--background"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = child.poll()
        if code == LOST_RACE:
            other = read_state()
            # the winner may not have written its state yet
            for _ in range(100):
                if other is not None and other.alive and other.url:
                    break
                time.sleep(0.05)
                other = read_state()
            if other is not None and other.alive:
                other.info["already"] = True
                return other
            raise BackgroundError("another oaws server is starting; try again in a moment")
        if code is not None:
            raise BackgroundError(
                f"the background server exited while starting (code {code}); "
                f"the end of its log {log_path}:\n{_log_tail(since)}"
            )
        state = read_state()
        if state is not None and state.pid == child.pid and not state.url:
            return state  # a feed or a forwarder alone: no proxy to ask
        if state is not None and state.pid == child.pid and state.url:
            # answering, and its feed past logging in: a refused login is reported here,
            # not as "running" followed by a quiet death (a feed reconnecting counts as up)
            figures = health(state.url, 0.5, getattr(settings, "api_key", None))
            feed = figures.get("feed") if figures is not None else None
            status = feed.get("adapter_status") if isinstance(feed, dict) else None
            if figures is not None and status not in ("connecting", "error"):
                return state
        time.sleep(0.05)
    child.kill()
    child.wait()
    raise BackgroundError(
        f"the background server did not answer within {timeout:g} s; the end of its log {log_path}:\n{_log_tail(since)}"
    )


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited: gone, a zombie nobody reaped yet, or now another user's process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return True  # the pid was reused by a process that is not ours
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False  # no /proc (macOS): its zombies are reaped by launchd, so kill -0 is enough


def _wait_exit(pid: int, deadline: float) -> bool:
    """Wait until the server released its lock and its process exited (it unlocks first, then exits)."""
    while True:
        if not lock_held() and _exited(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def stop(timeout: float = 5.0) -> int | None:
    """Stop the background server: SIGTERM, then SIGKILL after ``timeout``.

    Returns once the process has exited, not merely once it let go of its lock, so that
    whatever runs next (a new server, a test) never meets the old one. Its pid, or None if
    none ran.
    """
    state = read_state()
    if state is None or not state.alive:
        if state is not None:
            remove_stale()
        return None
    pid = state.pid
    if pid <= 0:
        # never kill(0): that would signal our own process group
        state_path, lock_path, _ = paths()
        raise BackgroundError(f"{state_path} names no server process although {lock_path} is held; stop it by hand")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_exit(pid, time.monotonic() + timeout):
        return pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_exit(pid, time.monotonic() + 5.0)
    remove_stale()
    return pid
