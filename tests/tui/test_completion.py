"""The add dialog completes from the Angel One instrument master when one has been downloaded.

The master (the small one shipped for the Angel simulator, as `oaws instruments update`
would index it) lives in a private cache directory; the app reads it in a thread on the
first `a`, never at start, and without one completes from the built-in symbols.
"""

from __future__ import annotations

import threading
from importlib import import_module
from pathlib import Path

import orjson
import pytest

import oaws.cli  # noqa: F401  (first: it registers the commands, so importing a command module first is circular)
from oaws.brokers import master_completions
from oaws.brokers.angel.master import INDEX_FILE, INDEX_FORMAT, index_bytes, rows_from_raw
from oaws.brokers.angel.simulator import fixture_master_bytes
from oaws.brokers.sim.feed import known_symbols
from oaws.instruments import parse, parse_many
from oaws.tui.add import AddScreen
from oaws.tui.models.completion import Completer
from oaws.tui.models.watch import Watchlist

from .conftest import scripted_app, until


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache and config, no OAWS_INSTRUMENTS: where `oaws instruments update` puts the index."""
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("OAWS_INSTRUMENTS", raising=False)
    return tmp_path / "cache" / "angel"


def write_index(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / INDEX_FILE
    path.write_bytes(index_bytes(rows_from_raw(fixture_master_bytes()), "fixture"))
    return path


def test_the_cached_index_gives_every_instrument_as_oaws_writes_it(cache):
    write_index(cache)
    found = master_completions()
    for expected in (
        "RELIANCE:NSE",  # RELIANCE-EQ
        "RELIANCE:BSE",
        "NIFTY:NSE_INDEX",  # "Nifty 50", through the alias table
        "SENSEX:BSE_INDEX",
        "NIFTY26DEC2424000CE:NFO",
        "SENSEX27DEC2480000CE:BFO",
        "CRUDEOIL19DEC24FUT:MCX",
        "USDINR27DEC24FUT:CDS",
        "M&M:NSE",
    ):
        assert expected in found
    assert len(found) == len(set(found)) and len(found) >= 40
    assert parse_many(found)  # every one is an instrument the dialog accepts


def test_oaws_instruments_may_point_at_a_raw_master(cache, tmp_path, monkeypatch):
    raw = tmp_path / "OpenAPIScripMaster.json"
    raw.write_bytes(fixture_master_bytes())
    monkeypatch.setenv("OAWS_INSTRUMENTS", str(raw))
    assert "GOLD05FEB25FUT:MCX" in master_completions()


@pytest.mark.parametrize(
    "content",
    [
        None,  # never downloaded
        b"not json at all",
        orjson.dumps({"format": INDEX_FORMAT, "rows": [["35003"]]}),  # rows cut short
        orjson.dumps({"format": "something-else", "rows": []}),
        "directory",
    ],
)
def test_without_a_readable_master_there_are_no_extra_completions(cache, content):
    if content == "directory":
        (cache / INDEX_FILE).mkdir(parents=True)
    elif content is not None:
        cache.mkdir(parents=True)
        (cache / INDEX_FILE).write_bytes(content)
    assert master_completions() == []


def loader(result):
    """A master loader that records when, and on which thread, the app called it."""
    calls: list[str] = []

    def load():
        calls.append(threading.current_thread().name)
        if isinstance(result, Exception):
            raise result
        return result

    return load, calls


async def test_the_master_is_read_in_a_thread_on_the_first_add_and_its_symbols_complete(cache):
    write_index(cache)
    load, calls = loader(None)
    app, _ = scripted_app(
        [],
        [Watchlist("w", parse_many(["INFY:NSE"]))],
        completions=known_symbols(),
        more_completions=lambda: (load(), master_completions())[1],
    )
    async with app.run_test(size=(150, 24)) as pilot:
        await pilot.pause(0.1)
        assert calls == []  # not at start: most sessions never press `a`
        await pilot.press("a")
        assert isinstance(app.screen, AddScreen)
        await pilot.press(*"crude")
        await until(pilot, lambda: app.screen.query_one("#add-matches").option_count, what="the master's matches")
        assert len(calls) == 1 and calls[0] != threading.main_thread().name
        await pilot.press("tab")
        assert app.screen.query_one("#add-input").value == "CRUDEOIL19DEC24FUT:MCX"
        await pilot.press("enter")
        assert app.model.view[-1] == parse("CRUDEOIL19DEC24FUT:MCX")

        # a bare symbol the master has on two exchanges means NSE; a second `a` reads nothing again
        await pilot.press("a", *"sbin", "enter")
        assert app.model.view[-1] == parse("SBIN:NSE") and len(calls) == 1
        await pilot.press("a", *"nifty26dec2424000p")
        await pilot.pause(0.05)
        first = app.screen.query_one("#add-matches").get_option_at_index(0)
        assert first.id == "NIFTY26DEC2424000PE:NFO"  # what is added; the list shows its readable name too
        assert str(first.prompt) == "NIFTY26DEC2424000PE:NFO  NIFTY 26 DEC 2024 24000 PE"


async def test_a_master_that_cannot_be_read_leaves_the_built_in_completions():
    load, calls = loader(OSError("the disk went away"))
    app, _ = scripted_app(
        [], [Watchlist("w", parse_many(["INFY:NSE"]))], completions=known_symbols(), more_completions=load
    )
    async with app.run_test(size=(150, 24)) as pilot:
        await pilot.press("a", *"hdfcb")
        await until(pilot, lambda: calls, what="the attempt")
        await pilot.pause(0.05)
        await pilot.press("tab")
        assert app.screen.query_one("#add-input").value == "HDFCBANK:NSE"
        await pilot.press("enter")
        assert app.model.view[-1] == parse("HDFCBANK:NSE")
        assert [n.message for n in app._notifications] == ["added HDFCBANK:NSE"]  # and nothing about the master


@pytest.fixture
def kite_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Kite simulator's dump, indexed in a private cache as `oaws instruments update --broker kite` would."""
    from oaws.brokers.kite.dump import build_dump

    kite = import_module("oaws.brokers.kite.master")
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    for name in ("OAWS_INSTRUMENTS", "OAWS_KITE_INSTRUMENTS"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "cache" / "kite"
    directory.mkdir(parents=True)
    (directory / kite.INDEX_FILE).write_bytes(kite.index_bytes(kite.rows_from_csv(build_dump()), "fixture"))
    return directory


def test_a_master_with_a_name_column_names_its_instruments_for_the_dialog(kite_cache):
    plain = master_completions()
    named = master_completions(names=True)
    assert "RELIANCE:NSE" in plain and all(isinstance(c, str) for c in plain)
    pairs = dict(c for c in named if isinstance(c, tuple))
    assert pairs["RELIANCE:NSE"] == "RELIANCE INDUSTRIES" and pairs["INFY:BSE"] == "INFOSYS"
    assert pairs["NIFTY:NSE_INDEX"] == "NIFTY 50"
    # the same instruments either way; contracts carry no name (theirs is only the underlying), nor
    # does a name that is the symbol again (ITC)
    assert [c if isinstance(c, str) else c[0] for c in named] == plain
    assert not any(i.endswith((":NFO", ":MCX", ":CDS")) for i in pairs) and "ITC:NSE" not in pairs


def test_the_completer_finds_instruments_by_a_word_of_their_company_name(kite_cache):
    completer = Completer(["HINDUNILVR:NSE"]).with_more(master_completions(names=True))
    assert completer.complete("reliance industries")[:2] == ["RELIANCE:NSE", "RELIANCE:BSE"]
    assert completer.complete("infosys")[:2] == ["INFY:NSE", "INFY:BSE"]
    assert completer.complete("unilever") == ["HINDUNILVR:NSE"]  # the built-in table's name, not in the master
    assert completer.complete("state bank")[0] == "SBIN:NSE"
    assert completer.complete("industries reliance") == []  # the words in the name's order
    assert completer.describe("INFY:NSE") == "INFY:NSE  INFOSYS"  # the master's spelling wins for its own rows
    assert completer.describe("HINDUNILVR:NSE") == "HINDUNILVR:NSE  Hindustan Unilever"


def test_the_dialogs_text_spells_contracts_out_and_names_companies():
    completer = Completer(["NIFTY26DEC2424000CE:NFO", "INFY:NSE", "ITC:NSE", "FOO:NSE"])
    contract = completer.describe("NIFTY26DEC2424000CE:NFO")
    assert contract.startswith("NIFTY26DEC2424000CE:NFO  NIFTY 26 DEC ") and contract.endswith(" 24000 CE")
    assert completer.describe("INFY:NSE") == "INFY:NSE  Infosys"
    assert completer.describe("ITC:NSE") == "ITC:NSE"  # its name is its symbol
    assert completer.describe("FOO:NSE") == "FOO:NSE"
    assert completer.matches("infosys") == [("INFY:NSE", "INFY:NSE  Infosys")]
    assert completer.complete("nifty 26 dec") == ["NIFTY26DEC2424000CE:NFO"]  # typed as it reads
