"""``oaws chain`` against a running simulated market: the table, --json and its refusals.

The contracts come from an Angel One instrument master written here (``--broker angel``,
``OAWS_INSTRUMENTS``), the prices from the simulated market, which prices any well-formed
option symbol of an underlying with options when told to (``--any-symbol``: these expiries
are not its calendar's); so the command's whole path runs: master, server, subscriptions, the view.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta

import orjson
import pytest

from tests.helpers import OAWS, oaws, start_serve

EXPIRY = date.today() + timedelta(days=10)
LATER = EXPIRY + timedelta(days=21)


def symbol(expiry: date, strike: int, right: str) -> str:
    return f"NIFTY{expiry.strftime('%d%b%y').upper()}{strike}{right}"


@pytest.fixture
def env(cli_env, tmp_path):
    records = [
        {
            "token": str(40000 + n),
            "symbol": symbol(expiry, strike, right),
            "name": "NIFTY",
            "expiry": expiry.strftime("%d%b%Y").upper(),
            "strike": f"{strike * 100}.000000",
            "lotsize": "75",
            "instrumenttype": "OPTIDX",
            "exch_seg": "NFO",
            "tick_size": "5.000000",
        }
        for n, (expiry, strike, right) in enumerate(
            (e, k, r) for e in (EXPIRY, LATER) for k in range(15000, 40000, 100) for r in ("CE", "PE")
        )
    ]
    master = tmp_path / "OpenAPIScripMaster.json"
    master.write_bytes(orjson.dumps(records))
    return {**cli_env, "OAWS_INSTRUMENTS": str(master)}


@pytest.fixture
def url(env):
    proc, url = start_serve(env, "--port", "0", "--bus", "tcp://127.0.0.1:*", "--rate", "20", "--any-symbol")
    yield url
    proc.terminate()
    proc.wait(5)


def chain(env, url, *args: str):
    return oaws(env, "chain", "NIFTY", "--broker", "angel", "--url", url, "--no-autostart", *args)


def test_the_table_shows_the_strikes_around_the_money_with_the_atm_marked(env, url):
    done = chain(env, url, "--strikes", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("NIFTY ") and "PCR" in lines[0] and "max pain" in lines[0]
    assert f"expiry {EXPIRY.isoformat()}" in lines[0]
    rows = [line for line in lines[2:] if line.strip() and not line.startswith("calls left")]
    assert len(rows) == 5
    assert [n for n, line in enumerate(rows) if " ATM " in line] == [2]


def test_json_is_one_object_whose_atm_strike_is_nearest_the_price(env, url):
    done = chain(env, url, "--strikes", "3", "--json", "--expiry", LATER.isoformat())
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["expiry"] == LATER.isoformat() and view["expiries"] == [EXPIRY.isoformat(), LATER.isoformat()]
    strikes = [row["strike"] for row in view["rows"]]
    assert len(strikes) == 7 and strikes == sorted(strikes)
    spot = view["spot_price"]
    assert spot > 0 and abs(view["atm"] - spot) <= 50  # the nearest of strikes 100 apart
    atm = next(row for row in view["rows"] if row["atm"])
    for side in (atm["call"], atm["put"]):
        assert side["ltp"] > 0 and side["oi"] is not None
        assert 0.01 < side["iv"] < 2  # solved, a volatility, not zero
    assert atm["call"]["contract"] == f"{symbol(LATER, int(atm['strike']), 'CE')}:NFO"


def test_an_expiry_not_listed_is_one_sentence_naming_the_listed_ones(env):
    done = oaws(env, "chain", "NIFTY", "--broker", "angel", "--no-autostart", "--expiry", "2020-01-01")
    assert done.returncode == 2
    assert done.stderr == (
        f"oaws: NIFTY has no expiry on 2020-01-01; the expiries are {EXPIRY.isoformat()}, {LATER.isoformat()}\n"
    )


def test_an_underlying_without_options_is_one_sentence(env):
    done = oaws(env, "chain", "NOSUCH", "--broker", "angel", "--no-autostart")
    assert done.returncode == 2
    assert done.stderr.startswith("oaws: Angel One's instrument master lists no options on NOSUCH")
    assert "Traceback" not in done.stderr


def test_watch_writes_the_chain_as_json_lines_until_stopped(env, url):
    args = ["chain", "NIFTY", "--broker", "angel", "--url", url, "--no-autostart", "--strikes", "1", "--watch"]
    proc = subprocess.Popen([*OAWS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
    finally:
        proc.terminate()
        proc.wait(5)
    views = [json.loads(line) for line in lines]
    assert all(v["underlying"] == "NIFTY" and len(v["rows"]) == 3 for v in views)
    assert all(v["spot_price"] > 0 for v in views)
