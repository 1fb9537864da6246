"""Lists edited on screen are saved at once and are there at the next start, and in
``oaws watchlist show``: add, remove, reorder, new, rename, delete; the user's comments stay.

Each test has a config file of its own (OAWS_CONFIG) and builds the watch as ``oaws watch``
does (``build_watchlists`` over the store), against a real in-process server.
"""

from __future__ import annotations

import json
from functools import partial

import pytest
from typer.testing import CliRunner

from oaws import store
from oaws.cli import app as cli
from oaws.cli.watch import build_watchlists
from oaws.instruments import parse
from oaws.tui.add import AddScreen
from oaws.tui.dialogs import ConfirmDialog, NameDialog

from .conftest import live_app
from .conftest import until as until_

#: conftest's ``until`` with room for a loaded machine (the store's thread, a real server)
until = partial(until_, timeout=20.0)


CONFIG = """\
# my own settings: oaws keeps this comment
watchlist = ["RELIANCE:NSE", "INFY:NSE", "TCS:NSE"]  # the default, by hand

[watchlists]
banks = ["HDFCBANK:NSE"]  # the banks
"""


@pytest.fixture
def conf(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    for key in ("OAWS_URL", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE", "OAWS_BROKER", "OAWS_BUS", "OAWS_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    return path


def watch(url: str, given: list[str] | None = None, name: str | None = None):
    """The watch as ``oaws watch`` builds it: the lists from the config file, edits saved by the store."""
    lists, current = build_watchlists(given, name)
    return live_app(url, lists, current=current, store=store)


def shown(name: str) -> list[str]:
    """The list as ``oaws watchlist show NAME --json`` prints it."""
    result = CliRunner().invoke(cli, ["watchlist", "show", name, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["instruments"]


def names(app) -> list[str]:
    return [w.name for w in app.model.watchlists]


def said(app, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


async def test_add_remove_and_reorder_are_saved_and_there_at_the_next_start(service, conf):
    app = watch(service.url)
    async with app.run_test(size=(150, 24)) as pilot:
        await pilot.press("a", *"wipro", "enter")  # a bare symbol: NSE assumed, and said
        await until(pilot, lambda: said(app, "added WIPRO:NSE (assumed NSE)"), what="the add said")
        await until(pilot, lambda: store.lists()["default"][-1] == "WIPRO:NSE", what="the add saved")

        await pilot.press("a", *"infy:nse", "enter")  # listed already: said, nothing saved twice
        await until(pilot, lambda: said(app, "INFY:NSE is already in default"), what="the duplicate said")

        await pilot.press("home", "d")  # RELIANCE goes
        await until(pilot, lambda: "RELIANCE:NSE" not in store.lists()["default"], what="the removal saved")

        await pilot.press("end", "shift+up", "shift+up")  # WIPRO two places up, to the top
        await until(pilot, lambda: [i.symbol for i in app.model.view] == ["WIPRO", "INFY", "TCS"], what="moved up")
        await until(pilot, lambda: store.lists()["default"] == ["WIPRO:NSE", "INFY:NSE", "TCS:NSE"], what="order")
        await pilot.press("shift+down")
        await until(pilot, lambda: [i.symbol for i in app.model.view] == ["INFY", "WIPRO", "TCS"], what="moved down")
        await until(pilot, lambda: store.lists()["default"] == ["INFY:NSE", "WIPRO:NSE", "TCS:NSE"], what="order")
        await pilot.press("shift+down")
        assert app.model.selected == parse("WIPRO:NSE")
        await pilot.press("q")
    # the last move was saved before the app let go (the store's thread is waited for)
    assert shown("default") == ["INFY:NSE", "TCS:NSE", "WIPRO:NSE"]
    text = conf.read_text()
    assert "# my own settings: oaws keeps this comment" in text and "# the banks" in text

    again = watch(service.url)
    async with again.run_test(size=(150, 24)):
        assert [str(i) for i in again.model.watchlist.instruments] == ["INFY:NSE", "TCS:NSE", "WIPRO:NSE"]


async def test_new_rename_and_delete_a_list_on_screen(service, conf):
    app = watch(service.url)
    async with app.run_test(size=(150, 24)) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, NameDialog)
        await pilot.press(*"banks", "enter")  # taken: the dialog says so and stays
        assert isinstance(app.screen, NameDialog)
        assert "exists" in str(app.screen.query_one("#name-error").render())
        await pilot.press("ctrl+u", *"energy", "enter")
        await until(pilot, lambda: app.model.watchlist.name == "energy" and app.model.view == [], what="the new list")
        await pilot.press("a", *"ongc", "enter")
        await until(pilot, lambda: store.lists().get("energy") == ["ONGC:NSE"], what="the new list saved")
        await until(pilot, lambda: app.model.rows[parse("ONGC:NSE")].data.get("ltp"), what="its ticks")

        await pilot.press("r")
        await pilot.press("ctrl+u", *"oil & gas", "enter")
        await until(pilot, lambda: app.model.watchlist.name == "oil & gas", what="renamed on screen")
        await until(pilot, lambda: "oil & gas" in store.lists() and "energy" not in store.lists(), what="renamed")

        await pilot.press("tab")  # to the default list (after the last comes the first)
        assert app.model.watchlist.name == "default"
        await pilot.press("x")  # the default list is not deleted
        assert not isinstance(app.screen, ConfirmDialog) and said(app, "the default list cannot be deleted")
        await pilot.press("r")
        assert not isinstance(app.screen, NameDialog) and said(app, "the default list keeps its name")

        await pilot.press("tab")  # banks
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # kept
        assert "banks" in names(app)
        await pilot.press("x", "y")
        await until(pilot, lambda: names(app) == ["default", "oil & gas"], what="deleted on screen")
        await until(pilot, lambda: "banks" not in store.lists(), what="the deletion saved")
        await pilot.press("q")
    assert shown("oil & gas") == ["ONGC:NSE"]
    text = conf.read_text()
    assert "# my own settings: oaws keeps this comment" in text and "# the default, by hand" in text

    again = watch(service.url, name="oil & gas")
    async with again.run_test(size=(150, 24)):
        assert names(again) == ["default", "oil & gas"]
        assert again.model.watchlist.name == "oil & gas"
        assert [str(i) for i in again.model.watchlist.instruments] == ["ONGC:NSE"]


async def test_a_command_line_list_is_edited_on_screen_only_and_says_so_once(service, conf):
    app = watch(service.url, given=["SBIN:NSE"])
    async with app.run_test(size=(150, 24)) as pilot:
        await pilot.press("a", *"itc", "enter")
        await pilot.press("a", *"ongc", "enter")
        await until(pilot, lambda: [i.symbol for i in app.model.view] == ["SBIN", "ITC", "ONGC"], what="both added")
        notices = [n for n in app._notifications if "not saved" in n.message]
        assert len(notices) == 1 and "command line" in notices[0].message
        await pilot.press("q")
    assert conf.read_text() == CONFIG


async def test_a_save_that_fails_is_a_notification_and_the_screen_keeps_the_edit(service, conf, monkeypatch):
    app = watch(service.url)

    def refuse(name, items):
        raise store.StoreError(f"cannot write {conf}: the disk is full")

    monkeypatch.setattr(store, "save_list", refuse)
    async with app.run_test(size=(150, 24)) as pilot:
        await pilot.press("a", *"itc", "enter")
        await until(pilot, lambda: said(app, "the disk is full"), what="the failure said")
        assert parse("ITC:NSE") in app.model.view
        assert isinstance(app.screen, type(app.main)) and not isinstance(app.screen, AddScreen)
