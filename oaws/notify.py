"""What firing an alert does outside the screen: the user's command, a desktop notification.

``Notifier.fire`` never blocks its caller (the watch's event loop, ``oaws alerts watch``):
it starts processes with ``subprocess.Popen`` and returns; a daemon thread per process
waits for it (so no zombie is left), stops one still running after ``timeout`` seconds,
and logs a failure (at most one log line a minute; the rest are counted).

The command (``[notify] command`` in the config file) is the user's own, like a git hook:
it runs through ``/bin/sh -c`` in a session of its own (Ctrl-C in the watch's terminal does
not reach it), stdin from /dev/null, stdout and stderr appended to ``notify.log`` in the
state directory (never onto the screen's terminal), with the alert in its environment:
``OAWS_ALERT_ID``, ``_INSTRUMENT``, ``_SYMBOL``, ``_EXCHANGE``, ``_KIND``, ``_VALUE`` (the
threshold), ``_TRIGGERED_VALUE``, ``_LTP``, ``_TIME`` (ISO 8601, exchange time) and
``_TEXT`` (one sentence for a person).

The desktop notification is the desktop's own program: ``notify-send`` on Linux (when it is
on PATH and a session bus or display is there), ``osascript`` on macOS; nothing elsewhere.
Why a program and not a library: a Python D-Bus notifier (desktop-notifier) needs dbus-next
and an asyncio loop of its own, and covers nothing that ``notify-send`` (what the desktop
ships, and what the user can test by hand) does not; a process also keeps a slow or absent
notification daemon off the watch's event loop. The text goes as arguments, never through
a shell or an AppleScript literal, so no instrument name can be read as code.

The terminal bell is the caller's (the watch rings ``app.bell()``).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from oaws.alerts import Alert, describe_value, now_iso
from oaws.format import price
from oaws.instruments import InstrumentError, parse

log = logging.getLogger(__name__)

#: seconds a command (or a notifier) may run before it is stopped
TIMEOUT = 60.0
#: at most one failure logged per this many seconds
LOG_EVERY = 60.0
#: notify.log is started afresh (the old one kept as notify.log.1) beyond this size
LOG_LIMIT = 1_000_000
TITLE = "oaws alert"


def number_text(value: object) -> str:
    """A number as a script reads it: ``1500``, ``1502.35``, ``-2.5``; empty when there is none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def alert_text(alert: Alert, tick: Mapping[str, Any]) -> str:
    """One sentence for a person: ``RELIANCE:NSE price above 1,500.00: now 1,502.35 (alert 3, 09:15:32).``"""
    fired = alert.triggered_value
    now = describe_value(alert, fired) if isinstance(fired, (int, float)) else "met"
    when = (alert.triggered_at or "")[11:19]
    ltp = tick.get("ltp")
    extra = ""
    if alert.field != "ltp" and isinstance(ltp, (int, float)) and not isinstance(ltp, bool):
        extra = f", LTP {price(ltp)}"
    at = f", {when}" if when else ""
    return f"{alert.describe()}: now {now}{extra} (alert {alert.id}{at})."


def alert_env(alert: Alert, tick: Mapping[str, Any]) -> dict[str, str]:
    """The ``OAWS_ALERT_*`` variables the command is given."""
    symbol, _, exchange = alert.instrument.rpartition(":")
    try:
        instrument = parse(alert.instrument)
        symbol, exchange = instrument.symbol, instrument.exchange
    except InstrumentError:
        pass
    return {
        "OAWS_ALERT_ID": str(alert.id),
        "OAWS_ALERT_INSTRUMENT": alert.instrument,
        "OAWS_ALERT_SYMBOL": symbol,
        "OAWS_ALERT_EXCHANGE": exchange,
        "OAWS_ALERT_KIND": alert.kind,
        "OAWS_ALERT_VALUE": number_text(alert.value),
        "OAWS_ALERT_TRIGGERED_VALUE": number_text(alert.triggered_value),
        "OAWS_ALERT_LTP": number_text(tick.get("ltp")),
        "OAWS_ALERT_TIME": alert.triggered_at or "",
        "OAWS_ALERT_TEXT": alert_text(alert, tick),
    }


def desktop_command(
    title: str,
    body: str,
    *,
    platform: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    environ: Mapping[str, str] | None = None,
) -> list[str] | None:
    """The argv that shows a desktop notification here, or None where there is none.

    Linux (and the BSDs): ``notify-send`` when on PATH and a session bus or a display
    exists (a server over ssh has neither). macOS: ``osascript`` with the text as its
    arguments (``on run argv``), never inside the script."""
    platform = sys.platform if platform is None else platform
    env = os.environ if environ is None else environ
    if platform == "darwin":
        osascript = which("osascript")
        if osascript is None:
            return None
        script = [
            "-e",
            "on run argv",
            "-e",
            "display notification (item 2 of argv) with title (item 1 of argv)",
            "-e",
            "end run",
        ]
        return [osascript, *script, title, body]
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        if not any(env.get(k) for k in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")):
            return None
        notify_send = which("notify-send")
        if notify_send is None:
            return None
        return [notify_send, "--app-name=oaws", "--", title, body]
    return None


class _Bounded:
    """Report a failure at most once per ``every`` seconds; the ones left out are counted in the next.

    Reported to ``report`` (one sentence) when given, else as a warning of this module's logger."""

    def __init__(self, every: float = LOG_EVERY, report: Callable[[str], None] | None = None) -> None:
        self.every = every
        self.report = report
        self.last = -float("inf")
        self.skipped = 0
        self.lock = threading.Lock()

    def warning(self, message: str, *args: object) -> None:
        with self.lock:
            now = time.monotonic()
            if now - self.last < self.every:
                self.skipped += 1
                return
            skipped, self.skipped, self.last = self.skipped, 0, now
        text = message % args if args else message
        if skipped:
            text += f" ({skipped} more failures since the last one reported)"
        if self.report is None:
            log.warning("%s", text)
            return
        try:
            self.report(text)
        except Exception:
            log.warning("%s", text, exc_info=True)


class Notifier:
    """Run the user's command and show a desktop notification for each alert that fires."""

    def __init__(
        self,
        command: str | None = None,
        desktop: bool = True,
        *,
        log_path: Path | str | None = None,
        timeout: float = TIMEOUT,
        desktop_argv: Callable[[str, str], list[str] | None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        """``on_failure``: where a failure's sentence goes instead of the ``oaws.notify`` logger
        (a screen shows it), at most once a minute. It may be called from a reaper thread: a
        screen hands it to its own loop (Textual's ``call_from_thread``)."""
        self.command = command.strip() if isinstance(command, str) and command.strip() else None
        self.desktop = desktop
        #: where the command's output goes (default: notify.log in the state directory)
        self.log_path = Path(log_path) if log_path is not None else None
        self.timeout = timeout
        self._desktop_argv = desktop_argv or desktop_command
        self._failures = _Bounded(report=on_failure)
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Notifier:
        """From ``oaws.store.notify_settings()``: ``command`` (str or None), ``desktop`` (bool)."""
        command = settings.get("command")
        return cls(command=command if isinstance(command, str) else None, desktop=bool(settings.get("desktop", True)))

    @property
    def running(self) -> int:
        """How many of the processes started are still running (not yet reaped)."""
        with self._lock:
            return len(self._running)

    def fire(self, alert: Alert, tick: Mapping[str, Any]) -> None:
        """Start what an alert's firing runs, and return at once; never raises."""
        try:
            if self.command is not None:
                self._run_command(alert, tick)
            if self.desktop:
                argv = self._desktop_argv(TITLE, alert_text(alert, tick))
                if argv is not None:
                    self._start(argv, what="the desktop notification", output=subprocess.DEVNULL)
        except Exception as exc:  # a notification must never take the watch down
            self._failures.warning("alert %s: notifying failed: %s", alert.id, exc)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every process started has ended (or ``timeout`` passed); whether they all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while self._running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._done.wait(left)
        return True

    # Starting and reaping ----------------------------------------------------------------
    def _run_command(self, alert: Alert, tick: Mapping[str, Any]) -> None:
        env = {**os.environ, **alert_env(alert, tick)}
        output, path = self._open_log(alert)
        try:
            self._start(
                ["/bin/sh", "-c", self.command or ""], what="the notify command", output=output, env=env, log_to=path
            )
        finally:
            if not isinstance(output, int):
                output.close()  # the child holds its own copy

    def _open_log(self, alert: Alert) -> tuple[IO[bytes] | int, Path | None]:
        """notify.log (and its path), opened for appending with a line naming the alert; DEVNULL if it cannot be."""
        try:
            path = self.log_path
            if path is None:
                from oaws.config import private_state_dir

                path = private_state_dir() / "notify.log"
            try:
                if path.stat().st_size > LOG_LIMIT:
                    path.replace(path.with_name(path.name + ".1"))
            except FileNotFoundError:
                pass
            out = open(path, "ab")  # noqa: SIM115 (handed to the child, closed by _run_command)
            stamp = now_iso()
            out.write(f"--- {stamp} alert {alert.id}: {alert.describe()}\n".encode())
            out.flush()
            return out, path
        except Exception as exc:
            self._failures.warning("cannot write the notify log (%s); the command's output is dropped", exc)
            return subprocess.DEVNULL, None

    def _start(
        self,
        argv: list[str],
        *,
        what: str,
        output: IO[bytes] | int,
        env: dict[str, str] | None = None,
        log_to: Path | None = None,
    ) -> None:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                env=env,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            self._failures.warning("%s could not start: %s", what, exc)
            return
        with self._lock:
            self._running.add(proc)
        reaper = threading.Thread(target=self._reap, args=(proc, what, log_to), name=f"oaws-notify-{proc.pid}")
        reaper.daemon = True
        reaper.start()

    def _reap(self, proc: subprocess.Popen[bytes], what: str, log_to: Path | None) -> None:
        try:
            try:
                code = proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self._stop(proc)
                self._failed(f"{what} ran longer than {self.timeout:g} s and was stopped", log_to)
                return
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
                self._failed(f"{what} {how}", log_to)
        finally:
            with self._done:
                self._running.discard(proc)
                self._done.notify_all()

    def _failed(self, message: str, log_to: Path | None) -> None:
        """A failure: said in notify.log after the command's output, and logged (rate-bounded)."""
        if log_to is not None:
            try:
                with open(log_to, "ab") as out:
                    out.write(f"--- {message}\n".encode())
            except OSError:
                pass
            message += f"; its output is in {log_to}"
        self._failures.warning("%s", message)

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        """End the process's whole session (a shell's children too), then reap it."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(2.0)
                return
            except subprocess.TimeoutExpired:
                continue
