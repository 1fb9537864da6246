"""`oaws watch` on the command line: which watchlists open, and one-line errors for bad options."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from oaws.cli.common import UserError
from oaws.cli.watch import build_watchlists
from oaws.instruments import DEFAULT_WATCHLIST, parse, parse_many

CONFIG = """
watchlist = ["INFY:NSE", "TCS:NSE"]
[watchlists]
banks = ["HDFCBANK:NSE", "SBIN:NSE"]
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    return path


def names(lists) -> list[str]:
    return [w.name for w in lists]


def test_instruments_on_the_command_line_come_first_then_the_config_lists(config):
    config.write_text(CONFIG)
    lists, current = build_watchlists(["RELIANCE:NSE"], None)
    assert names(lists) == ["command line", "default", "banks"] and current == 0
    assert lists[0].instruments == [parse("RELIANCE:NSE")]


def test_without_instruments_the_default_or_named_list_opens(config):
    config.write_text(CONFIG)
    lists, current = build_watchlists(None, None)
    assert names(lists) == ["default", "banks"] and lists[current].instruments == parse_many(["INFY:NSE", "TCS:NSE"])
    lists, current = build_watchlists(None, "banks")
    assert lists[current].name == "banks"
    with pytest.raises(UserError, match=r"no watchlist named .nope.*known: banks, default"):
        build_watchlists(None, "nope")


def test_without_a_config_file_the_built_in_list_opens(config):
    lists, _ = build_watchlists(None, None)
    assert names(lists) == ["default"] and lists[0].instruments == parse_many(list(DEFAULT_WATCHLIST))


@pytest.mark.parametrize(
    ("args", "says", "code"),
    [
        # a bad option value is a usage error: exit 2 (issue 19 #3)
        (["--grouping", "roman"], "unknown --grouping 'roman'", 2),
        (["--fps", "0"], "--fps must be more than 0 and at most 60", 2),
        (["--fps", "nan"], "--fps must be more than 0 and at most 60, not nan", 2),
        (["--stale-after", "nan"], "--stale-after must be a positive number of seconds", 2),
        (["--stale-after", "inf"], "--stale-after must be a positive number of seconds", 2),
        (["NOT AN INSTRUMENT"], "is not an instrument", 1),
    ],
)
@pytest.mark.process
def test_bad_options_are_one_line(cli_env, args, says, code):
    master, terminal = os.openpty()  # the watch refuses to start on anything but a terminal
    try:
        out = subprocess.run(
            [sys.executable, "-m", "oaws", "watch", "--no-autostart", *args],
            env=cli_env,
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.close(terminal)
        os.close(master)
    assert out.returncode == code and says in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_the_screen_knows_nothing_of_the_server():
    code = (
        "import sys, oaws.tui.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['oaws', 'server'], ['oaws', 'brokers'], ['oaws', 'cli'])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"
