"""The sentences a new user reads (issue 19 #13): which brokers have a login, every exchange
a search can name, counts in the singular."""

from __future__ import annotations

from oaws.cli import status
from oaws.format import plural


def test_a_broker_without_a_login_names_those_with_one(run):
    code, _, err = run("login", "sim")
    assert code == 2
    assert "the sim broker has no login" in err
    for name in ("angel", "dhan", "flattrade", "kite", "shoonya"):
        assert name in err


def test_an_unknown_broker_says_so_and_which_one_was_meant(run):
    code, _, err = run("login", "zerodha")
    assert code == 2 and err.count("\n") == 1
    assert "no broker is called 'zerodha'" in err
    assert "Zerodha Kite is kite" in err
    assert "brokers with a login: angel, dhan, flattrade, kite, shoonya" in err


def test_an_exchange_the_broker_does_not_serve_is_not_called_unknown(run):
    code, _, err = run("instruments", "search", "nifty", "-b", "angel", "-e", "BCD")
    assert code == 2
    assert "the angel broker serves no BCD instruments" in err and "NFO" in err
    code, _, err = run("instruments", "search", "nifty", "-b", "kite", "-e", "FOO")
    assert code == 2
    assert "unknown exchange 'FOO'" in err and "BCD" in err  # Kite serves BCD


def test_the_search_help_lists_every_exchange(run):
    code, out, _ = run("instruments", "search", "--help")
    assert code == 0
    assert "BCD" in " ".join(out.split())


def test_plural():
    assert plural(1, "tick") == "1 tick"
    assert plural(0, "tick") == "0 ticks"
    assert plural(12345, "instrument") == "12,345 instruments"
    assert plural(1, "entry", "entries") == "1 entry" and plural(2, "entry", "entries") == "2 entries"


def test_status_counts_in_the_singular(monkeypatch, capsys):
    figures = {"running": True, "answering": True, "pid": 12, "url": "ws://127.0.0.1:1", "bus": "ipc://x"}
    figures |= {"instruments": 1, "topics": 1, "ticks_conflated": 1, "bus_gaps": 1, "bus_missing": 1, "bus_dropped": 1}
    monkeypatch.setattr(status, "collect", lambda: (status.RUNNING, figures))
    status.show_status(as_json=False)
    out = capsys.readouterr().out
    assert "(1 topic)" in out and "1 tick conflated away" in out and "1 tick lost" in out
    assert "1 malformed message " in out
    assert "1 ticks" not in out and "1 topics" not in out
