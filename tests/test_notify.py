"""oaws.notify: the user's command runs with the alert in its environment, off the caller's
back (never blocking, never raising, reaped), its output in a log; the desktop notifier
chosen by platform from what is on PATH."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import stat
from pathlib import Path

import pytest

from oaws.alerts import TRIGGERED, Alert
from oaws.notify import Notifier, alert_env, alert_text, desktop_command
from tests.helpers import wait_until


def fired(**changes) -> Alert:
    a = Alert(
        id=3,
        instrument="RELIANCE:NSE",
        kind="above",
        value=1500.0,
        state=TRIGGERED,
        created="2026-12-01T10:00:00+05:30",
        triggered_at="2026-12-02T09:15:32+05:30",
        triggered_value=1502.35,
    )
    for k, v in changes.items():
        setattr(a, k, v)
    return a


TICK = {"symbol": "RELIANCE", "exchange": "NSE", "ltp": 1502.35, "ltt": 1_796_183_132_000}


def notifier(tmp_path: Path, command: str | None, **kw) -> Notifier:
    return Notifier(command, desktop=False, log_path=tmp_path / "notify.log", **kw)


def env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_the_command_runs_with_the_alert_in_its_environment(tmp_path) -> None:
    out = tmp_path / "env.txt"
    n = notifier(tmp_path, f"env | grep ^OAWS_ALERT_ > {shlex.quote(str(out))}")
    n.fire(fired(), TICK)
    assert n.wait(10)
    assert env_file(out) == {
        "OAWS_ALERT_ID": "3",
        "OAWS_ALERT_INSTRUMENT": "RELIANCE:NSE",
        "OAWS_ALERT_SYMBOL": "RELIANCE",
        "OAWS_ALERT_EXCHANGE": "NSE",
        "OAWS_ALERT_KIND": "above",
        "OAWS_ALERT_VALUE": "1500",
        "OAWS_ALERT_TRIGGERED_VALUE": "1502.35",
        "OAWS_ALERT_LTP": "1502.35",
        "OAWS_ALERT_TIME": "2026-12-02T09:15:32+05:30",
        "OAWS_ALERT_TEXT": "RELIANCE:NSE price above 1,500.00: now 1,502.35 (alert 3, 09:15:32).",
    }


def test_the_text_names_the_ltp_for_alerts_on_other_fields() -> None:
    a = fired(instrument="NIFTY26DECFUT:NFO", kind="oi_above", value=1e6, triggered_value=1_250_000)
    tick = {"ltp": 24010.5, "oi": 1_250_000}
    assert (
        alert_text(a, tick) == "NIFTY26DECFUT:NFO OI above 10,00,000: now 12,50,000, LTP 24,010.50 (alert 3, 09:15:32)."
    )
    env = alert_env(a, tick)
    assert (env["OAWS_ALERT_SYMBOL"], env["OAWS_ALERT_EXCHANGE"]) == ("NIFTY26DECFUT", "NFO")
    assert (env["OAWS_ALERT_VALUE"], env["OAWS_ALERT_TRIGGERED_VALUE"]) == ("1000000", "1250000")


def test_fire_returns_while_the_command_still_runs(tmp_path) -> None:
    go = tmp_path / "go"
    n = notifier(tmp_path, f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.02; done")
    n.fire(fired(), TICK)
    assert n.running == 1  # fire came back; the command waits for `go`
    go.touch()
    assert n.wait(10)
    assert n.running == 0


def test_no_zombie_is_left(tmp_path) -> None:
    pid_file = tmp_path / "pid"
    n = notifier(tmp_path, f"echo $$ > {shlex.quote(str(pid_file))}")
    n.fire(fired(), TICK)
    assert n.wait(10)
    pid = int(pid_file.read_text())
    with pytest.raises(ChildProcessError):  # already reaped: no child of ours by that pid
        os.waitpid(pid, os.WNOHANG)


def test_stdin_is_empty_and_output_goes_to_the_log_not_the_terminal(tmp_path, capfd) -> None:
    read = tmp_path / "stdin.txt"
    n = notifier(tmp_path, f"cat > {shlex.quote(str(read))}; echo to-stdout; echo to-stderr >&2")
    n.fire(fired(), TICK)
    assert n.wait(10)
    assert read.read_text() == ""
    logged = (tmp_path / "notify.log").read_text()
    assert "alert 3: RELIANCE:NSE price above 1,500.00" in logged
    assert "to-stdout" in logged
    assert "to-stderr" in logged
    seen = capfd.readouterr()
    assert "to-stdout" not in seen.out + seen.err
    assert "to-stderr" not in seen.out + seen.err


def test_a_failing_command_is_logged_not_raised(tmp_path, caplog) -> None:
    n = notifier(tmp_path, "echo oops; exit 7")
    with caplog.at_level(logging.WARNING, logger="oaws.notify"):
        n.fire(fired(), TICK)
        assert n.wait(10)
    assert "the notify command exited with 7" in caplog.text
    assert "--- the notify command exited with 7" in (tmp_path / "notify.log").read_text()


def test_failures_are_logged_at_most_once_a_minute(tmp_path, caplog) -> None:
    n = notifier(tmp_path, "exit 1")
    with caplog.at_level(logging.WARNING, logger="oaws.notify"):
        for _ in range(3):
            n.fire(fired(), TICK)
            assert n.wait(10)
    assert len([r for r in caplog.records if r.name == "oaws.notify"]) == 1
    assert (tmp_path / "notify.log").read_text().count("exited with 1") == 3


def test_a_notifier_that_cannot_start_is_logged_not_raised(tmp_path, caplog) -> None:
    missing = str(tmp_path / "no-such-program")
    n = Notifier(None, desktop=True, desktop_argv=lambda title, body: [missing, title, body])
    with caplog.at_level(logging.WARNING, logger="oaws.notify"):
        n.fire(fired(), TICK)
    assert "the desktop notification could not start" in caplog.text
    assert n.running == 0


def test_a_command_that_runs_too_long_is_stopped(tmp_path, caplog) -> None:
    n = notifier(tmp_path, "sleep 30", timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="oaws.notify"):
        n.fire(fired(), TICK)
        assert n.wait(10)
    assert "ran longer than 0.2 s and was stopped" in caplog.text


def test_no_command_and_no_desktop_start_nothing(tmp_path) -> None:
    n = notifier(tmp_path, None)
    n.fire(fired(), TICK)
    assert n.running == 0
    assert not (tmp_path / "notify.log").exists()


def test_from_settings() -> None:
    n = Notifier.from_settings({"command": "echo hi", "bell": True, "desktop": False})
    assert (n.command, n.desktop) == ("echo hi", False)
    n = Notifier.from_settings({"command": None, "bell": True, "desktop": True})
    assert (n.command, n.desktop) == (None, True)
    assert Notifier.from_settings({"command": "  "}).command is None


# The desktop notification --------------------------------------------------------------------
def fake_program(folder: Path, name: str, record: Path) -> None:
    """A program on a fake PATH that writes its arguments, one a line, to ``record``."""
    script = folder / name
    script.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {shlex.quote(str(record))}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def on(path: Path):
    return lambda name: shutil.which(name, path=str(path))


def test_linux_uses_notify_send_where_there_is_a_session(tmp_path) -> None:
    fake_program(tmp_path, "notify-send", tmp_path / "args")
    argv = desktop_command("T", "B", platform="linux", which=on(tmp_path), environ={"DISPLAY": ":0"})
    assert argv == [str(tmp_path / "notify-send"), "--app-name=oaws", "--", "T", "B"]
    bus = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}
    assert desktop_command("T", "B", platform="linux", which=on(tmp_path), environ=bus) is not None


def test_linux_without_a_session_or_without_notify_send_shows_nothing(tmp_path) -> None:
    fake_program(tmp_path, "notify-send", tmp_path / "args")
    assert desktop_command("T", "B", platform="linux", which=on(tmp_path), environ={}) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert desktop_command("T", "B", platform="linux", which=on(empty), environ={"DISPLAY": ":0"}) is None


def test_macos_uses_osascript_with_the_text_as_arguments(tmp_path) -> None:
    fake_program(tmp_path, "osascript", tmp_path / "args")
    argv = desktop_command('a "quoted" title', "B", platform="darwin", which=on(tmp_path), environ={})
    assert argv is not None
    assert argv[0] == str(tmp_path / "osascript")
    assert argv[-2:] == ['a "quoted" title', "B"]
    assert all('"quoted"' not in part for part in argv[:-2])  # never inside the script


def test_other_systems_have_no_desktop_notification(tmp_path) -> None:
    fake_program(tmp_path, "notify-send", tmp_path / "args")
    assert desktop_command("T", "B", platform="win32", which=on(tmp_path), environ={"DISPLAY": ":0"}) is None


def test_the_desktop_notification_gets_the_text_literally(tmp_path) -> None:
    record = tmp_path / "args"
    fake_program(tmp_path, "notify-send", record)
    n = Notifier(
        None,
        desktop=True,
        desktop_argv=lambda t, b: desktop_command(
            t, b, platform="linux", which=on(tmp_path), environ={"DISPLAY": ":0"}
        ),
    )
    n.fire(fired(instrument="M&M:NSE"), TICK)
    assert n.wait(10)
    wait_until(lambda: record.exists() and record.read_text())
    assert record.read_text().splitlines() == [
        "--app-name=oaws",
        "--",
        "oaws alert",
        "M&M:NSE price above 1,500.00: now 1,502.35 (alert 3, 09:15:32).",
    ]


def test_the_desktop_notifier_is_looked_up_on_path(tmp_path, monkeypatch) -> None:
    fake_program(tmp_path, "notify-send", tmp_path / "args")
    monkeypatch.setenv("PATH", str(tmp_path))
    argv = desktop_command("T", "B", platform="linux", environ={"WAYLAND_DISPLAY": "wayland-0"})
    assert argv is not None and argv[0] == str(tmp_path / "notify-send")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert desktop_command("T", "B", platform="linux", environ={"WAYLAND_DISPLAY": "wayland-0"}) is None


def test_failures_go_to_on_failure_when_given(tmp_path, caplog) -> None:
    said: list[str] = []
    n = notifier(tmp_path, "exit 4", on_failure=said.append)
    with caplog.at_level(logging.WARNING, logger="oaws.notify"):
        n.fire(fired(), TICK)
        assert n.wait(10)
    assert said == [f"the notify command exited with 4; its output is in {tmp_path / 'notify.log'}"]
    assert "exited with 4" not in caplog.text
