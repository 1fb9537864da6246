"""The simulated market's options: the exchanges' expiry calendar, put-call parity on the
live chain, the smile coming back as the IV ``oaws.chain`` solves, OI and volume that move."""

from __future__ import annotations

import itertools
import math
import subprocess
from datetime import date, datetime, timedelta

import orjson
import pytest

from oaws import sessions
from oaws.brokers.api import BrokerError
from oaws.brokers.sim import broker
from oaws.brokers.sim.feed import TICK_SIZE, SimFeed
from oaws.brokers.sim.options import (
    UNDERLYINGS,
    expiries,
    option_contracts,
    smile,
    strikes,
    symbol,
    years_to,
)
from oaws.brokers.sim.universe import RATE
from oaws.chain import Chain, implied_volatility
from oaws.config import IST
from oaws.instruments import Instrument
from oaws.options import CALL, PUT
from tests.helpers import oaws, start_serve

TUESDAY, THURSDAY = 1, 3
#: a Wednesday of 2026, 11:00 IST: the feed's and the chain's clock
ON = date(2026, 3, 4)
NOW = datetime(2026, 3, 4, 11, 0, tzinfo=IST).timestamp()
NIFTY = Instrument("NIFTY", "NSE_INDEX")


def test_nifty_has_weeklies_on_tuesdays_and_three_monthlies_on_the_last_tuesday():
    found = expiries("NIFTY", ON)
    assert found[:4] == [date(2026, 3, 10), date(2026, 3, 17), date(2026, 3, 24), date(2026, 3, 30)]
    # 31 March 2026 is a holiday: the month's expiry moves to Monday 30 March
    assert date(2026, 3, 31) not in found
    assert date(2026, 4, 28) in found and date(2026, 5, 26) in found
    for d in found:
        tuesday = d + timedelta(days=(TUESDAY - d.weekday()) % 7)
        assert d == tuesday or not sessions.trading_day(tuesday), d


def test_sensex_expires_on_thursdays_and_a_holiday_moves_it_a_day_earlier():
    found = expiries("SENSEX", date(2026, 3, 20))
    assert found[0] == date(2026, 3, 25)  # 26 March 2026 is a holiday
    for d in found:  # a Thursday, or the trading day before a Thursday that is a holiday
        thursday = d + timedelta(days=(THURSDAY - d.weekday()) % 7)
        assert d == thursday or not sessions.trading_day(thursday), d
    assert UNDERLYINGS["SENSEX"].exchange == "BFO"


def test_the_other_indices_and_the_stocks_have_monthlies_only():
    for name in ("BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "RELIANCE", "TCS"):
        assert expiries(name, ON) == [date(2026, 3, 30), date(2026, 4, 28), date(2026, 5, 26)], name
    assert expiries("BANKNIFTY", date(2026, 11, 2))[0] == date(2026, 11, 23)  # 24 November: a holiday
    assert expiries("IRCTC", ON) == [] and option_contracts("IRCTC", ON) == []


def test_an_expiry_day_lists_its_own_contracts_and_the_next_day_does_not():
    assert expiries("NIFTY", date(2026, 3, 10))[0] == date(2026, 3, 10)
    assert expiries("NIFTY", date(2026, 3, 11))[0] == date(2026, 3, 17)


@pytest.mark.parametrize(
    ("name", "lot", "step"),
    [("NIFTY", 65, 50), ("BANKNIFTY", 30, 100), ("FINNIFTY", 60, 50), ("MIDCPNIFTY", 120, 25), ("SENSEX", 20, 100)],
)
def test_lots_strike_steps_and_symbols(name, lot, step):
    contracts = option_contracts(name, ON)
    grid = strikes(name)
    assert {c.lot_size for c in contracts} == {lot}
    assert {b - a for a, b in itertools.pairwise(grid)} == {step}
    assert len(contracts) == 2 * len(grid) * len(expiries(name, ON))
    first = contracts[0]
    assert first.symbol == f"{name}{first.expiry.strftime('%d%b%y').upper()}{int(first.strike)}{first.right}"
    assert symbol("NIFTY", date(2026, 12, 8), 26000, CALL) == "NIFTY08DEC2626000CE"


def _chain_ticks(feed: SimFeed, expiry: date, grid: list[float]) -> tuple[float, dict[tuple[float, str], dict]]:
    """The underlying's tick, then a tick of every call and put of ``grid``, at one instant."""
    ns = int(NOW * 1e9)
    spot = feed.tick(NIFTY, now_ns=ns)["ltp"]
    ticks = {}
    for k in grid:
        for right in (CALL, PUT):
            ticks[k, right] = feed.tick(Instrument(symbol("NIFTY", expiry, k, right), "NFO"), now_ns=ns)
    return float(spot), ticks


def _feed() -> SimFeed:
    return SimFeed(seed=3, clock=lambda: NOW)


def test_put_call_parity_holds_on_the_simulated_chain_within_a_tick():
    feed = _feed()
    expiry = expiries("NIFTY", ON)[1]
    grid = strikes("NIFTY")[25:56]
    for _ in range(5):  # the underlying moves between rounds; parity follows it
        spot, ticks = _chain_ticks(feed, expiry, grid)
        years = years_to(expiry, NOW)
        for k in grid:
            call, put = ticks[k, CALL]["ltp"], ticks[k, PUT]["ltp"]
            if min(call, put) <= TICK_SIZE:  # at the floor the price is no longer the model's
                continue
            assert abs((call - put) - (spot - k * math.exp(-RATE * years))) <= TICK_SIZE + 1e-9, k


def test_the_iv_oaws_chain_solves_from_a_simulated_price_is_the_smile_that_priced_it():
    feed = _feed()
    expiry = expiries("NIFTY", ON)[2]
    near, _ = _chain_ticks(feed, expiry, [])
    atm = round(near / 50) * 50
    spot, ticks = _chain_ticks(feed, expiry, [k for k in strikes("NIFTY") if abs(k - atm) <= 600])
    model = Chain("NIFTY", NIFTY, option_contracts("NIFTY", ON), strikes=10, rate=RATE, clock=lambda: NOW)
    model.set_expiry(expiry)
    model.update({"symbol": "NIFTY", "exchange": "NSE_INDEX", "ltp": spot})
    for tick in ticks.values():
        model.update(tick)
    view = model.view()
    checked = 0
    for row in view.rows:
        for side in (row.call, row.put):
            assert side is not None and side.iv is not None
            wanted = smile("NIFTY", spot, row.strike)
            # the price is rounded to the tick: the IV within half a tick's worth of vega
            assert abs(side.iv - wanted) <= 0.5 * TICK_SIZE / (side.vega * 100) + 1e-6, (row.strike, side.iv, wanted)
            checked += 1
    assert checked == 42
    # and the skew is there: a lower strike is priced at a higher volatility
    assert view.rows[0].put.iv > view.rows[-1].put.iv
    years = years_to(expiry, NOW)
    atm = view.rows[10]
    direct = implied_volatility(atm.call.ltp, spot, atm.strike, years, RATE, 0.0, CALL)
    assert direct == pytest.approx(smile("NIFTY", spot, atm.strike), abs=1e-4)


def test_oi_and_volume_move_in_lots():
    feed = _feed()
    option = Instrument(symbol("NIFTY", expiries("NIFTY", ON)[0], 26000, CALL), "NFO")
    first = feed.tick(option)
    later = [feed.tick(option) for _ in range(30)]
    volumes = [first["volume"], *(t["volume"] for t in later)]
    assert volumes == sorted(volumes) and volumes[-1] > volumes[0]
    assert all((b - a) % 65 == 0 for a, b in itertools.pairwise(volumes))
    assert len({t["oi"] for t in later}) > 5
    assert first["prev_oi"] > 0 and "oi_change_percent" in first


def test_the_sim_master_lists_today_s_options_and_refuses_to_download():
    master = broker.master()
    listed = master.options("NIFTY")
    assert listed and all(c.exchange == "NFO" and c.underlying == "NIFTY" for c in listed)
    assert master.options("IRCTC") == []
    with pytest.raises(BrokerError, match="no instrument master to download"):
        master.update(None, None)


@pytest.fixture
def url(cli_env):
    proc, url = start_serve(cli_env, "--port", "0", "--bus", "tcp://127.0.0.1:*", "--rate", "20")
    yield url
    proc.terminate()
    proc.wait(5)


@pytest.mark.process
def test_oaws_chain_nifty_on_the_simulated_market(cli_env, url):
    done = oaws(cli_env, "chain", "NIFTY", "--url", url, "--no-autostart", "--strikes", "3", "--json")
    assert done.returncode == 0, done.stderr
    view = orjson.loads(done.stdout)
    assert view["underlying"] == "NIFTY" and len(view["rows"]) == 7
    assert view["expiries"][0] >= date.today().isoformat()
    assert all(row["call"]["iv"] and row["put"]["iv"] for row in view["rows"])
    table = oaws(cli_env, "chain", "SENSEX", "--url", url, "--no-autostart", "--strikes", "1")
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("SENSEX ") and " ATM " in table.stdout
    refused = oaws(cli_env, "instruments", "update", "--broker", "sim")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "no instrument master to download" in refused.stderr
    assert isinstance(refused, subprocess.CompletedProcess)
