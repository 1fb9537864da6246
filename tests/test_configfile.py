"""The config file checked against its schema (issue 19, defects 4 and 5): wrong kinds stop a
command with a sentence naming the file and the key (exit 2), unknown keys are warnings with
the nearest known key, and a bad entry in one watchlist costs only that entry."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oaws.cli import app
from oaws.configfile import check, usable_watchlists

FILE = Path("/home/me/.config/oaws/config.toml")
ANGEL = {"angel": {"api_key": str, "client_code": str, "pin": str}}


def checked(text: str, sections=ANGEL) -> tuple[list[str], list[str]]:
    return check(tomllib.loads(text), FILE, sections)


def test_unknown_top_level_keys_are_warnings_naming_the_nearest_key():
    errors, warnings = checked("prot = 27651\nautostrat = false\n")
    assert errors == []
    assert warnings == [
        f"unknown key prot in {FILE}, ignored; did you mean 'port'?",
        f"unknown key autostrat in {FILE}, ignored; did you mean 'autostart'?",
    ]


def test_unknown_keys_in_tables_and_broker_sections_are_named_with_their_table():
    _, warnings = checked('[notify]\nbel = true\n[angel]\nclient_cod = "x"\n[angle]\nx = 1\n')
    assert f"unknown key notify.bel in {FILE}, ignored; did you mean 'bell'?" in warnings
    assert f"unknown key [angel] client_cod in {FILE}, ignored; did you mean 'client_code'?" in warnings
    assert f"unknown key angle in {FILE}, ignored; did you mean 'angel'?" in warnings


def test_a_key_with_no_near_neighbour_is_warned_about_without_a_guess():
    _, warnings = checked("zzzzzz = 1\n")
    assert warnings == [f"unknown key zzzzzz in {FILE}, ignored"]


def test_a_string_where_a_watchlist_belongs_is_an_error_not_the_built_in_list():
    errors, _ = checked('watchlist = "RELIANCE:NSE"\n')
    assert errors == [
        f"""watchlist = 'RELIANCE:NSE' in {FILE} must be a list, e.g. watchlist = ["RELIANCE:NSE", "INFY:NSE"]"""
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('mode = "fast"\n', "mode = 'fast' in {f} is not a mode; use 1/LTP, 2/Quote or 3/Depth"),
        ("port = 70000\n", "port = 70000 in {f} is out of range: it must be from 0 to 65535"),
        ('autostart = "yes"\n', "autostart = 'yes' in {f} is not a valid bool (true or false)"),
        ("[notify]\ncommand = 3\n", "notify.command = 3 in {f} is not a valid str (text in quotes)"),
        ("[angel]\napi_key = 5\n", "[angel] api_key = 5 in {f} is not a valid str (text in quotes)"),
        ('[[alerts]]\nid = 1\ninstrument = "X:NSE"\nkind = "above"\nvalue = "x"\n', "alerts[0].value = 'x' in {f}"),
    ],
)
def test_a_value_of_the_wrong_kind_is_an_error_naming_the_key_and_the_file(text, said):
    errors, _ = checked(text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(said.format(f=FILE))


def test_a_valid_file_has_no_errors_and_no_warnings():
    text = """
url = "ws://127.0.0.1:8765"
port = 8765
mode = "depth"
autostart = false
rate = 2.5
watchlist = ["RELIANCE:NSE"]

[watchlists]
banks = ["HDFCBANK:NSE", "SBIN:NSE"]

[columns]
banks = ["symbol", "ltp"]

[[alerts]]
id = 1
instrument = "RELIANCE:NSE"
kind = "above"
value = 1500
state = "armed"
created = "2026-12-02T10:00:00+05:30"

[notify]
command = "echo hi"
bell = false

[angel]
client_code = "S123"
"""
    assert checked(text) == ([], [])


def test_one_bad_entry_costs_only_that_entry_of_its_list():
    data = tomllib.loads('watchlist = ["RELIANCE:NSE"]\n[watchlists]\nbanks = ["HDFCBANK:NSE", "FOO"]\n')
    lists, warnings = usable_watchlists(data, FILE)
    assert lists == {"default": ["RELIANCE:NSE"], "banks": ["HDFCBANK:NSE"]}
    assert warnings == [
        f"watchlists.banks in {FILE}: 'FOO' is not an instrument (SYMBOL:EXCHANGE, e.g. RELIANCE:NSE); left out"
    ]


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    return path


def test_the_command_line_stops_on_a_wrong_kind_with_exit_2_and_every_error_on_its_own_line(config_file):
    config_file.write_text('mode = "fast"\nport = "x"\n')
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"oaws: mode = 'fast' in {config_file} is not a mode; use 1/LTP, 2/Quote or 3/Depth"
    assert lines[1] == f"oaws: port = 'x' in {config_file} is not a valid int (a whole number)"
    assert "Traceback" not in result.output


def test_the_command_line_warns_of_unknown_keys_and_goes_on(config_file):
    config_file.write_text("prot = 27651\n")
    result = CliRunner().invoke(app, ["watchlist", "--help"])
    assert result.exit_code == 0
    assert f"oaws: warning: unknown key prot in {config_file}, ignored; did you mean 'port'?" in result.stderr


def test_a_bad_entry_in_another_list_does_not_stop_the_default_list(config_file):
    from oaws.cli.watch import build_watchlists

    config_file.write_text('watchlist = ["RELIANCE:NSE"]\n[watchlists]\nbanks = ["HDFCBANK:NSE", "FOO"]\n')
    lists, current = build_watchlists(None, None)
    assert [(w.name, [str(i) for i in w.instruments]) for w in lists] == [
        ("default", ["RELIANCE:NSE"]),
        ("banks", ["HDFCBANK:NSE"]),
    ]
    assert current == 0
