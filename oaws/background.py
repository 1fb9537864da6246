"""The background server: start it detached, find it, ask it how it is, stop it.

A background server holds an exclusive ``flock`` on ``server.lock`` in the state
directory for its whole life and writes ``server.json`` (pid, URL, bus, broker, version,
start time, log file) once it serves. The lock, not the pid, says whether it lives: a
state file whose lock nobody holds is stale (the process died, or its pid was reused by
another program), whatever ``kill -0`` would say.

``serve --detach`` takes the lock itself before it starts the server, writes a state that
says ``starting``, and hands the locked file to the child (the lock belongs to the open
file, which both share): from the first moment there is always a lock held and a state
file, so ``oaws stop`` never says "nothing is running" while one starts.

Every field of ``server.json`` is checked when read (a corrupt one is one sentence, and a
new server replaces it); the pid it names is signalled only once it is known to be an
oaws server (its command line, and its start time as recorded). The state directory is
0700 and its files are opened without following symbolic links (``O_NOFOLLOW``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import logging.handlers
import math
import os
import signal
import stat
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
#: the environment variable that hands a detached server the locked file's descriptor
LOCK_FD_ENV = "OAWS_LOCK_FD"
#: how long ``stop`` waits for a server that is starting to come up before stopping it
START_WAIT = 30.0


class BackgroundError(Exception):
    """One sentence for the user."""


def paths() -> tuple[Path, Path, Path]:
    d = cfg.state_dir()
    return d / STATE_FILE, d / LOCK_FILE, d / LOG_FILE


def _state_dir() -> Path:
    """The state directory, made private (0700) if need be; a sentence when it cannot be."""
    try:
        return cfg.private_state_dir()
    except cfg.ConfigError as exc:
        raise BackgroundError(str(exc)) from None


def open_private(path: Path | str, flags: int) -> int:
    """``os.open`` of a file of the state directory, never through a symbolic link.

    A symbolic link (or a second hard link) planted in its place is removed and the file
    made afresh, 0600: its target is never written, appended to or chmod-ed. A file that
    is not the user's, or not a regular file, is refused in one sentence.
    """
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(3):
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            os.unlink(path)  # a symbolic link: remove the link itself, never its target
            continue
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and flags & os.O_CREAT:
            os.close(fd)
            os.unlink(path)  # a hard link to some other file: keep off it
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            raise BackgroundError(f"{path} is not a file of yours; remove it")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        return fd
    raise BackgroundError(f"{path} keeps being replaced by a link; remove it")


def _process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat's 22nd field); None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


#: the fields of server.json and their types; pid is required
_FIELDS: dict[str, tuple[type, ...]] = {
    "pid": (int,),
    "url": (str,),
    "bus": (str,),
    "broker": (str,),
    "role": (str,),
    "version": (str,),
    "log": (str,),
    "feeds": (str,),
    "started": (int, float),
    "starting": (bool,),
    "process_start": (int,),
}
PID_MAX = 2**31 - 1


def corruption(info: Any) -> str | None:
    """Why ``info`` (server.json's content) cannot be trusted, or None."""
    if not isinstance(info, dict):
        return "it is not a JSON object"
    if "pid" not in info:
        return "it names no server process"
    for key, kinds in _FIELDS.items():
        if key not in info:
            continue
        value = info[key]
        shown = repr(value) if len(repr(value)) <= 30 else repr(value)[:27] + "..."
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            return f"{key} is {shown}"
        if key == "pid" and not 0 < value <= PID_MAX:
            return f"pid is {shown}, not a process id"
        if key == "started" and not (math.isfinite(value) and value >= 0):
            return f"started is {shown}"
    return None


@dataclass
class State:
    """What ``server.json`` says, and whether its server still holds the lock.

    ``corrupt`` says why the file cannot be trusted (then ``info`` is empty)."""

    info: dict[str, Any]
    alive: bool
    corrupt: str | None = None

    @property
    def pid(self) -> int:
        return int(self.info.get("pid", 0))

    @property
    def url(self) -> str:
        return str(self.info.get("url", ""))

    @property
    def starting(self) -> bool:
        return bool(self.info.get("starting"))

    def corrupt_sentence(self) -> str:
        state_path, lock_path, _ = paths()
        if self.alive:
            return (
                f"the state file {state_path} is corrupt ({self.corrupt}) although {lock_path} is held; "
                "stop the server by hand"
            )
        return f"no server running? the state file {state_path} is corrupt ({self.corrupt}); removed"


def lock_held() -> bool:
    """Whether some process holds the server lock (without taking it)."""
    _, lock_path, _ = paths()
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # none, or a link: no server of ours locks through a link
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
    """The state file, or None when there is none; a corrupt one says why (``State.corrupt``)."""
    state_path, _, _ = paths()
    try:
        fd = os.open(state_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        return State({}, lock_held(), reason)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return State({}, lock_held(), "it is not a file of yours")
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(1 << 20)
    finally:
        os.close(fd)
    try:
        info = json.loads(raw)
    except ValueError:
        return State({}, lock_held(), "it is not JSON")
    why = corruption(info)
    return State({} if why else info, lock_held(), why)


def remove_stale() -> None:
    state_path, _, _ = paths()
    with contextlib.suppress(FileNotFoundError):
        state_path.unlink()


class ServerLock:
    """Held by a background server for its lifetime (``acquire`` then ``release``).

    ``serve --detach`` acquires it, then ``hand_over`` leaves it to the server it starts,
    which takes it with ``inherit``."""

    def __init__(self) -> None:
        self.fd: int | None = None

    def acquire(self) -> bool:
        _, lock_path, _ = paths()
        _state_dir()
        fd = open_private(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    @classmethod
    def inherit(cls) -> ServerLock | None:
        """The lock ``serve --detach`` handed this process (``OAWS_LOCK_FD``), or None."""
        raw = os.environ.pop(LOCK_FD_ENV, None)
        if raw is None:
            return None
        try:
            fd = int(raw)
            os.set_inheritable(fd, False)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: the same open file
        except (ValueError, OSError):
            return None
        lock = cls()
        lock.fd = fd
        return lock

    def publish(self, info: dict[str, Any]) -> None:
        """Write the state file atomically (readers never see half of it), never through a link."""
        state_path, _, _ = paths()
        tmp = state_path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a stale one, or a planted link: removed, never followed
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(info, indent=2))
        os.replace(tmp, state_path)

    def starting(self, pid: int) -> None:
        """Say that the server ``pid`` holds the lock and is on its way up."""
        self.publish({"pid": pid, "starting": True, "started": time.time(), **identity(pid)})

    def hand_over(self) -> None:
        """Close this process's descriptor and leave the lock to the child that shares it."""
        if self.fd is not None:
            os.close(self.fd)  # not LOCK_UN: that would unlock the child's too
            self.fd = None

    def release(self) -> None:
        if self.fd is None:
            return
        remove_stale()
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def identity(pid: int) -> dict[str, int]:
    """What tells this process from a later one with the same pid (server.json's ``process_start``)."""
    start = _process_start(pid)
    return {} if start is None else {"process_start": start}


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log that opens its file 0600 and never through a symbolic link."""

    def _open(self):  # type: ignore[no-untyped-def]
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=open_private)


#: what a log line of oaws says: when (``ExchangeTimeFormatter``), how bad, where from, what
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ExchangeTimeFormatter(logging.Formatter):
    """Log lines stamped in exchange time (``oaws.config.time_zone``: IST unless set) with the
    offset, as everything else oaws shows: ``2026-12-02 09:15:00.123+05:30 INFO ...``."""

    def __init__(self, fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)
        try:
            self.zone = cfg.time_zone()
        except cfg.ConfigError:  # a wrong time_zone is said by the command that reads it; a log still logs
            self.zone = None

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        from datetime import datetime

        created = record.created
        at = datetime.fromtimestamp(created, self.zone) if self.zone else datetime.fromtimestamp(created).astimezone()
        offset = at.strftime("%z")
        return f"{at:%Y-%m-%d %H:%M:%S}.{int(record.msecs):03d}{offset[:3]}:{offset[3:]}"


class _PrivateFileHandler(logging.FileHandler):
    """A log file of one run (overwritten by the next), opened 0600 and never through a symbolic link."""

    def _open(self):  # type: ignore[no-untyped-def]
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=open_private)


def log_debug_to_file(name: str) -> Path:
    """``-v`` for a full-screen command (``oaws watch``), whose stderr is the screen: the debug
    log goes to ``name`` in the state directory instead, this run's alone."""
    path = _state_dir() / name
    _log_only_to(_PrivateFileHandler(path, mode="w", encoding="utf-8"), logging.DEBUG)
    return path


def _log_only_to(handler: logging.Handler, level: int) -> None:
    """Every log line from now on to ``handler`` alone, stamped in exchange time."""
    handler.setFormatter(ExchangeTimeFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def log_to_file() -> Path:
    """Route the background server's logging to a rotating file beside the state file."""
    _, _, log_path = paths()
    _state_dir()
    _log_only_to(_PrivateRotatingFileHandler(log_path, maxBytes=5 * 1024 * 1024, backupCount=3), logging.INFO)
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
        with os.fdopen(os.open(log_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
            f.seek(since if since <= os.fstat(f.fileno()).st_size else 0)  # rotated meanwhile: all of it
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def detach(settings: Any = None, timeout: float = 20.0) -> State:
    """Start ``oaws serve`` in the background with ``settings`` (a ``ServeSettings``; None:
    as the environment and the config file say) and wait until it answers.

    Returns the running server's state; if one was already running (or starting), that
    one's (with ``info["already"] = True``). Raises BackgroundError with the log's last
    lines when the new server dies while starting.

    The lock is taken here, before the server is started, and handed to it: a ``stop``
    from now on finds a server starting, never nothing.
    """
    state = read_state()
    if state is not None and state.alive:
        if state.corrupt:
            raise BackgroundError(state.corrupt_sentence())
        if state.starting:
            return _await_other(timeout)
        state.info["already"] = True
        return state
    lock = ServerLock()
    if not lock.acquire():
        return _await_other(timeout)  # another `serve --detach` got there first
    try:
        lock.starting(os.getpid())  # replaces whatever stale or corrupt state was there
        _, _, log_path = paths()
        # the child's stderr goes to the log too, so that a crash before logging starts is seen
        with os.fdopen(open_private(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as log_file:
            since = log_file.seek(0, os.SEEK_END)
            if settings is not None:
                env = settings.environment()
            else:
                from oaws.server.settings import ENV

                env = {k: v for k, v in os.environ.items() if k != ENV}
            assert lock.fd is not None
            env[LOCK_FD_ENV] = str(lock.fd)
            child = subprocess.Popen(
                [sys.executable, "-m", "oaws", "serve", "--background"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                close_fds=True,
                pass_fds=(lock.fd,),
            )
    except BaseException:
        lock.release()
        raise
    lock.hand_over()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = child.poll()
        if code == LOST_RACE:  # a server of an older oaws, or one started by hand, took the lock
            return _await_other(timeout)
        if code is not None:
            if not lock_held():
                remove_stale()
            if code == 0:
                raise BackgroundError("the background server was stopped while it was starting")
            raise BackgroundError(
                f"the background server exited while starting (code {code}); "
                f"the end of its log {log_path}:\n{_log_tail(since)}"
            )
        state = read_state()
        if state is not None and state.pid == child.pid and not state.starting and not state.url:
            return state  # a feed or a forwarder alone: no proxy to ask
        if state is not None and state.pid == child.pid and not state.starting and state.url:
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
    if not lock_held():
        remove_stale()
    raise BackgroundError(
        f"the background server did not answer within {timeout:g} s; the end of its log {log_path}:\n{_log_tail(since)}"
    )


def _await_other(timeout: float) -> State:
    """The state of the server another process is starting, once it serves."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        other = read_state()
        if other is not None and other.alive and not other.corrupt and not other.starting:
            other.info["already"] = True
            return other
        if other is not None and other.alive and other.corrupt:
            raise BackgroundError(other.corrupt_sentence())
        if not lock_held():
            raise BackgroundError("another oaws server was starting and stopped; try again")
        time.sleep(0.05)
    raise BackgroundError("another oaws server is starting; try again in a moment")


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


def _not_ours(pid: int, info: dict[str, Any]) -> str | None:
    """Why ``pid`` is not the oaws server ``info`` (server.json) describes, or None if it is
    (or cannot be told: no /proc, as on macOS, where only the pid's range is checked)."""
    if pid <= 1:
        return "which is no server's"
    if pid == os.getpid():
        return "which is this very command's"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except FileNotFoundError:
        return None  # exited meanwhile (or no /proc): signalling it is harmless
    except OSError:
        return "which cannot be checked"
    if b"serve" not in args or not any(a == b"oaws" or a.endswith((b"/oaws", b"/oaws/__main__.py")) for a in args):
        name = next((a.decode(errors="replace").rsplit("/", 1)[-1] for a in args if a), "?")
        return f"which is not an oaws server (it is {name})"
    recorded = info.get("process_start")
    if recorded is not None and _process_start(pid) not in (None, recorded):
        return "which is another process than the server that wrote it (its pid was reused)"
    return None


def _signal(pid: int, info: dict[str, Any], sig: int) -> None:
    """Send ``sig`` to ``pid`` once it is known to be the server ``info`` names."""
    why = _not_ours(pid, info)
    if why is not None:
        state_path, _, _ = paths()
        raise BackgroundError(f"{state_path} names pid {pid}, {why}; not signalling it: stop the server by hand")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop(timeout: float = 5.0) -> int | None:
    """Stop the background server: SIGTERM, then SIGKILL after ``timeout``.

    Returns once the process has exited, not merely once it let go of its lock, so that
    whatever runs next (a new server, a test) never meets the old one. Its pid, or None if
    none ran. A server still starting is waited for (up to ``START_WAIT``), then stopped.
    The pid is signalled only once it is known to be that oaws server (``_not_ours``).
    """
    state_path, lock_path, _ = paths()
    deadline = time.monotonic() + START_WAIT
    while True:
        state = read_state()
        if state is None or not state.alive:
            if not lock_held():
                if state is not None:
                    remove_stale()
                return None
            # the lock is taken, the state not yet written: a server starting this moment
        elif state.corrupt:
            raise BackgroundError(state.corrupt_sentence())
        elif not state.starting:
            break
        if time.monotonic() >= deadline:
            if state is None or not state.alive:
                raise BackgroundError(f"{lock_path} is held but {state_path} names no server; stop it by hand")
            break  # still starting: stopped as it is
        time.sleep(0.05)
    pid = state.pid
    _signal(pid, state.info, signal.SIGTERM)
    if _wait_exit(pid, time.monotonic() + timeout):
        return pid
    _signal(pid, state.info, signal.SIGKILL)
    _wait_exit(pid, time.monotonic() + 5.0)
    remove_stale()
    return pid
