"""The column chooser (`c`) driven by the pilot: what it changes on screen, what it saves in a real
config file (through oaws.store), and that the choice is there at the next start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import oaws.cli  # noqa: F401  (first: it registers the commands, so importing a command module first is circular)
from oaws import store
from oaws.cli.watch import build_watchlists
from oaws.client import Status
from oaws.instruments import DEFAULT_WATCHLIST, DEPTH, parse_many
from oaws.tui.app import WatchApp
from oaws.tui.columns import ColumnChoice, ColumnScreen
from oaws.tui.messages import ColumnsChanged
from oaws.tui.models.columns import DEFAULT_COLUMNS
from oaws.tui.models.watch import Watchlist

from .conftest import FIXED_NS, IST, ScriptedClient, sim_ticks, until

GRID = parse_many(list(DEFAULT_WATCHLIST))
MINE = """\
# my lists: oaws must keep this comment
watchlist = ["RELIANCE:NSE", "INFY:NSE"]  # the default

[watchlists]
banks = ["HDFCBANK:NSE", "SBIN:NSE"]
"""


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(MINE)
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    return path


class App(WatchApp):
    """The watch with a record of the ColumnsChanged messages it was sent."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.changes: list[ColumnsChanged] = []

    def on_columns_changed(self, message: ColumnsChanged) -> None:
        self.changes.append(message)


def start(lists: list[Watchlist], current: int = 0) -> App:
    instruments = [i for w in lists for i in w.instruments]
    client = ScriptedClient([Status("connected", "ws://127.0.0.1:8765"), *sim_ticks(instruments, 3)])

    async def connect(wanted, mode):
        return client

    return App(
        connect,
        lists,
        current=current,
        url="ws://127.0.0.1:8765",
        clock=lambda: FIXED_NS / 1e9,
        monotonic=lambda: 1000.0,
        tz=IST,
        roll_every=3600.0,
    )


def titles(app: WatchApp) -> list[str]:
    return [c.title for c, _ in app.grid.layout_columns]


async def test_the_choice_is_saved_for_the_list_and_there_at_the_next_start(conf):
    lists, current = build_watchlists(None, None)
    assert [w.name for w in lists] == ["default", "banks"] and lists[0].columns is None
    app = start(lists, current)
    async with app.run_test(size=(140, 30)) as pilot:
        await until(pilot, lambda: app.ticks, what="the first ticks")
        await pilot.press("c")
        assert isinstance(app.screen, ColumnScreen)
        await pilot.press(*["down"] * 5, "space", "down", "space")  # hide Bid and Ask
        await pilot.press("end", "space", *["left_square_bracket"] * 18, *["shift+up"] * 2)  # 52w low after LTP
        await pilot.press("enter")
        assert not isinstance(app.screen, ColumnScreen)
        app.frame()
        await pilot.pause()
        expected = ["symbol", "exchange", "ltp", "week_52_low", "change", "change_percent", "volume", "open", "high",
                    "low", "close", "ltt", "spark"]  # fmt: skip
        assert app.model.column_keys() == expected
        assert titles(app)[:4] == ["Symbol", "Exch", "LTP", "52w low"]
        assert store.columns("default") == expected and store.columns("banks") is None
        # the message the app acts on: a Depth column (bid, ask) went and another (52 weeks) came
        assert [(m.watchlist, m.keys, m.depth_before, m.depth_after) for m in app.changes] == [
            ("default", expected, True, True)
        ]
        assert not app.changes[0].mode_changed
    text = conf.read_text()
    assert text.startswith("# my lists: oaws must keep this comment") and "# the default" in text

    lists, current = build_watchlists(None, None)  # the next start
    assert lists[0].columns == expected and lists[1].columns is None
    again = start(lists, current)
    async with again.run_test(size=(140, 30)) as pilot:
        await until(pilot, lambda: again.ticks, what="the first ticks")
        again.frame()
        await pilot.pause()
        assert again.model.column_keys() == expected and titles(again)[3] == "52w low"
        await pilot.press("tab")  # the other list has its own (the default set)
        again.frame()
        assert again.model.column_keys() == list(DEFAULT_COLUMNS)


async def test_leaving_only_quote_columns_says_the_mode_changed_and_esc_changes_nothing(conf):
    lists, current = build_watchlists(None, None)
    app = start(lists, current)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.press("c", *["down"] * 5, "space", "escape")
        assert app.model.column_keys() == list(DEFAULT_COLUMNS) and app.changes == []
        assert store.columns("default") is None
        await pilot.press("c", *["down"] * 5, "space", "down", "space", "enter")
        assert app.model.mode_for(2) == 2 and app.changes[-1].mode_changed and not app.changes[-1].depth_after
        await pilot.press("c", "r", "enter")  # r: the default set again
        assert app.model.column_keys() == list(DEFAULT_COLUMNS) and app.model.mode_for(2) == DEPTH
        assert app.changes[-1].depth_after and store.columns("default") == list(DEFAULT_COLUMNS)


async def test_a_command_line_list_is_not_saved_and_the_chooser_says_so(conf):
    lists, current = build_watchlists(["TCS:NSE"], None)
    assert not lists[0].saved
    app = start(lists, current)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.press("c")
        note = str(app.screen.query_one("#columns-note").render())
        assert "given on the command line" in note and "until you quit" in note
        await pilot.press("down", "space", "enter")
        assert "exchange" not in app.model.column_keys()
    assert store.columns("command line") is None and conf.read_text() == MINE


def test_a_saved_choice_with_an_unknown_key_opens_without_it(conf, caplog):
    store.save_columns("banks", ["symbol", "ltp", "gamma", "oi"])
    lists, _ = build_watchlists(None, "banks")
    assert lists[1].columns == ["symbol", "ltp", "gamma", "oi"]
    app = start(lists, 1)
    assert app.model.column_keys() == ["symbol", "ltp", "oi"] and "gamma" in caplog.text
    assert store.columns("banks") == ["symbol", "ltp", "gamma", "oi"]  # the file is left as it is


def test_a_malformed_columns_entry_leaves_the_list_its_default_columns(conf, caplog):
    conf.write_text(MINE + '\n[columns]\nbanks = "symbol"\n')
    lists, _ = build_watchlists(None, None)
    assert lists[1].columns is None and "columns.banks" in caplog.text and str(conf) in caplog.text


def test_the_choice_without_a_screen():
    choice = ColumnChoice(["ltp", "symbol", "volume", "unknown"])
    assert choice.order[:3] == ["symbol", "ltp", "volume"] and choice.keys() == ["symbol", "ltp", "volume"]
    assert not choice.toggle() and not choice.move(1)  # the symbol is always shown, always first
    choice.move_cursor(1)
    assert not choice.move(-1)  # nothing goes above the symbol
    assert choice.move(1) and choice.order[:3] == ["symbol", "volume", "ltp"] and choice.cursor == 2
    choice.move_cursor(100)
    last = choice.selected
    assert choice.toggle() and choice.keys() == ["symbol", "volume", "ltp", last]
    choice.reset(["symbol", "ltp"])
    assert choice.keys() == ["symbol", "ltp"] and choice.selected == last
