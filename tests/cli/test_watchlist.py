"""``oaws watchlist ...``: the lists from the command line, in a private config file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from oaws import store
from oaws.cli import app
from oaws.instruments import DEFAULT_WATCHLIST

MINE = """\
# mine
watchlist = ["RELIANCE:NSE"]  # the default

[watchlists]
banks = ["HDFCBANK:NSE", "SBIN:NSE"]  # banks

[columns]
banks = ["symbol", "ltp", "bid", "ask"]

[notify]
command = "echo fired"
bell = false

[[alerts]]
id = 1
instrument = "SBIN:NSE"
kind = "above"
value = 800.0
state = "armed"
created = "2026-12-01T10:00:00+05:30"
"""


@pytest.fixture
def conf(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    for key in ("OAWS_URL", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE", "OAWS_BROKER", "OAWS_BUS"):
        monkeypatch.delenv(key, raising=False)
    return path


@pytest.fixture
def mine(conf):
    conf.write_text(MINE)
    return conf


def oaws(*args: str):
    return CliRunner().invoke(app, ["watchlist", *args])


def test_list_marks_the_default_and_counts(mine):
    result = oaws("list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["* default  1 instrument", "  banks    2 instruments"]
    lines = [json.loads(line) for line in oaws("list", "--json").stdout.splitlines()]
    assert lines == [
        {"name": "default", "count": 1, "default": True, "saved": True},
        {"name": "banks", "count": 2, "default": False, "saved": True},
    ]


def test_without_a_file_the_default_list_is_the_built_in_one(conf):
    assert oaws("list").stdout.strip() == f"* default  {len(DEFAULT_WATCHLIST)} instruments  (built in: not saved yet)"
    assert oaws("show", "default").stdout.split() == list(DEFAULT_WATCHLIST)
    assert not conf.exists()  # reading writes nothing


def test_show(mine):
    assert oaws("show", "banks").stdout == "HDFCBANK:NSE\nSBIN:NSE\n"
    shown = json.loads(oaws("show", "banks", "--json").stdout)
    assert shown == {
        "name": "banks",
        "instruments": ["HDFCBANK:NSE", "SBIN:NSE"],
        "columns": ["symbol", "ltp", "bid", "ask"],
        "saved": True,
    }
    missing = oaws("show", "nope")
    assert missing.exit_code == 2
    assert missing.stderr == f"oaws: no watchlist named 'nope' in {mine} (known: default, banks)\n"


def test_create_rename_delete(mine):
    made = oaws("create", "it", "tcs:nse", "NSE:INFY", "TCS:NSE")
    assert (made.exit_code, made.stdout) == (0, "oaws: created it (2 instruments)\n")
    assert store.lists()["it"] == ["TCS:NSE", "INFY:NSE"]
    assert oaws("create", "empty").stdout == "oaws: created empty (0 instruments)\n"
    assert store.lists()["empty"] == []
    again = oaws("create", "it")
    assert again.exit_code == 2 and "already" in again.stderr
    renamed = oaws("rename", "banks", "my banks")
    assert (renamed.exit_code, renamed.stdout) == (0, "oaws: renamed banks to my banks\n")
    assert store.columns("my banks") == ["symbol", "ltp", "bid", "ask"]
    gone = oaws("delete", "my banks")
    assert (gone.exit_code, gone.stdout) == (0, "oaws: deleted my banks (2 instruments)\n")
    assert list(store.lists()) == ["default", "it", "empty"] and store.columns("my banks") is None
    assert "# mine" in mine.read_text() and "[notify]" in mine.read_text()


def test_the_default_list_keeps_its_name(mine):
    for args in (("rename", "default", "x"), ("rename", "banks", "default"), ("delete", "default")):
        result = oaws(*args)
        assert result.exit_code == 2 and result.stderr.startswith("oaws: the default list")
        assert "Traceback" not in result.output
    assert mine.read_text() == MINE


def test_add_and_remove(mine):
    added = oaws("add", "banks", "AXISBANK:NSE", "sbin:nse")
    assert added.exit_code == 0
    assert added.stdout == "oaws: added 1 to banks (3 instruments); SBIN:NSE was already in it\n"
    removed = oaws("remove", "banks", "HDFCBANK:NSE", "AXISBANK:NSE")
    assert (removed.exit_code, removed.stdout) == (0, "oaws: removed 2 from banks (1 instrument)\n")
    assert store.lists()["banks"] == ["SBIN:NSE"]
    absent = oaws("remove", "banks", "SBIN:NSE", "ITC:NSE")
    assert absent.exit_code == 2 and absent.stderr == "oaws: ITC:NSE is not in banks\n"
    assert store.lists()["banks"] == ["SBIN:NSE"]
    unknown = oaws("add", "nope", "ITC:NSE")
    assert unknown.exit_code == 2 and "no watchlist named 'nope'" in unknown.stderr


def test_adding_to_a_default_list_never_saved_starts_from_the_built_in_one(conf):
    result = oaws("add", "default", "ITC:NSE")
    assert result.stdout == f"oaws: added 1 to default ({len(DEFAULT_WATCHLIST) + 1} instruments)\n"
    assert store.lists()["default"] == [*DEFAULT_WATCHLIST, "ITC:NSE"]


@pytest.mark.parametrize(
    "args", [("add", "banks", "ITC:NSE", "RELIANCE"), ("create", "x", "A:B:C"), ("remove", "banks", "SBIN")]
)
def test_a_bad_instrument_writes_nothing(mine, args):
    result = oaws(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("oaws: ") and result.stderr.count("\n") == 1 and "SYMBOL:EXCHANGE" in result.stderr
    assert mine.read_text() == MINE


def test_a_bad_name_is_one_sentence(mine):
    result = oaws("create", "x" * 41)
    assert result.exit_code == 2 and "longer than 40 characters" in result.stderr
    assert oaws("rename", "banks", " banks").exit_code == 2
    assert mine.read_text() == MINE


def test_a_corrupt_file_is_named_and_kept(conf):
    conf.write_text("watchlist = [\n")
    for args in (("list",), ("add", "default", "ITC:NSE")):
        result = oaws(*args)
        assert result.exit_code != 0 and str(conf) in result.stderr and "Traceback" not in result.output
    assert conf.read_text() == "watchlist = [\n"


def test_the_stores_tables_are_not_taken_as_option_defaults(mine):
    """[columns], [[alerts]], [notify] and alerts_next_id beside the settings: the other
    commands still start, and still read the settings that are theirs."""
    store.add_alert("ITC:NSE", "below", 400)  # writes alerts_next_id too
    mine.write_text("port = 9999\n" + mine.read_text())
    runner = CliRunner()
    for command in (["watch", "--help"], ["serve", "--help"], ["status", "--help"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    assert "9999" in runner.invoke(app, ["serve", "--help"]).output
