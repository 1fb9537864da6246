"""``oaws instruments search``'s table (issue 19 #1): the instrument, the column to copy, is
never cut; a narrow terminal shortens the name and drops other columns; the strike and the
expiry are columns of their own; a pipe gets whole lines."""

from __future__ import annotations

import dataclasses
import importlib
from importlib import resources

import pytest

from oaws.cli.brokers import search_table

MASTER = str(resources.files("oaws.brokers.angel") / "sim_master.json")


def option_row(n: int) -> dict[str, str]:
    return {
        "instrument": f"NIFTY26DEC242{n}000CE:NFO",
        "type": "OPTIDX",
        "expiry": "26DEC2024",
        "strike": f"2{n}000",
        "lot": "25",
        "name": "NIFTY 50 INDEX OPTIONS OF THE NATIONAL STOCK EXCHANGE",
        "angel symbol": f"NIFTY26DEC242{n}000CE",
        "token": f"3501{n}",
    }


def test_a_pipe_gets_every_column_and_whole_lines(run):
    code, out, err = run("instruments", "search", "nifty", "-b", "angel", "-e", "NFO", "--instruments", MASTER)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["instrument", "type", "expiry", "strike", "lot", "name", "angel", "symbol", "token"]
    assert "NIFTY26DEC2424000CE:NFO" in out and "NIFTY26DEC2424000PE:NFO" in out
    assert "…" not in out
    option = next(line for line in lines if line.startswith("NIFTY26DEC2424000CE:NFO"))
    assert option.split()[1:5] == ["OPTIDX", "26DEC2024", "24000", "25"]
    future = next(line for line in lines if line.startswith("NIFTY26DEC24FUT:NFO"))
    assert "24000" not in future.split()  # a future has no strike
    assert all(line == line.rstrip() for line in lines)


def test_an_empty_column_is_left_out(run):
    code, out, _ = run("instruments", "search", "reliance", "-b", "angel", "-e", "NSE", "--instruments", MASTER)
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["instrument", "type", "lot"]  # no expiry, no strike


@pytest.mark.parametrize("width", [80, 60, 40, 30])
def test_a_narrow_terminal_keeps_the_instrument_whole(width):
    rows = [option_row(n) for n in range(4, 8)]
    lines = search_table(rows, width)
    assert all(len(line) <= width for line in lines), lines
    for row, line in zip(rows, lines[1:], strict=True):
        assert line.startswith(row["instrument"] + " ") or line == row["instrument"]
    header = lines[0].split()
    assert "token" not in header and "symbol" not in header  # given up first
    if width >= 60:
        assert {"expiry", "strike"} <= set(header)


def test_the_name_is_shortened_before_a_column_is_dropped():
    lines = search_table([option_row(4)], 80)
    assert lines[0].split() == ["instrument", "type", "expiry", "strike", "lot", "name"]
    assert lines[1].endswith("…") and len(lines[1]) == 80


def test_the_instrument_is_never_cut_even_when_it_alone_is_too_wide():
    lines = search_table([option_row(4)], 10)
    assert lines == ["instrument", "NIFTY26DEC2424000CE:NFO"]


def test_a_pipe_keeps_every_column_whole():
    lines = search_table([option_row(4)], None)
    assert lines[1].split()[-1] == "35014" and "NATIONAL STOCK EXCHANGE" in lines[1]


def fake(match_class: type, **given: object) -> object:
    values = {"int": 25, "float": 0.0, "str": "x", int: 25, float: 0.0, str: "x"}
    kwargs = {f.name: values.get(f.type, "x") for f in dataclasses.fields(match_class)}
    return match_class(**{**kwargs, **given})


@pytest.mark.parametrize("broker", ["angel", "dhan", "kite", "noren"])
def test_every_master_gives_the_expiry_and_the_strike_their_columns(broker):
    module = importlib.import_module(f"oaws.brokers.{broker}.master")
    option = fake(module.Match, instrument="NIFTY26DEC2424000CE:NFO", expiry="26DEC2024", strike=24000.0)
    columns = option.columns()
    assert next(iter(columns)) == "instrument"
    assert columns["expiry"] == "26DEC2024" and columns["strike"] == "24000"
    assert fake(module.Match, strike=83.25).columns()["strike"] == "83.25"
    assert fake(module.Match, strike=-1.0).columns()["strike"] == ""
    assert fake(module.Match, strike=0.0).columns()["strike"] == ""
