"""angel-sim lists the simulated market's index options in its master and prices them the
same way: Black-Scholes on the smile from its own index, so put-call parity holds."""

from __future__ import annotations

import math
import time

import orjson

from oaws.brokers.angel import wire
from oaws.brokers.angel.master import Master, rows_from_raw
from oaws.brokers.angel.simulator import AngelSimulator, fixture_master_bytes, master_with_options
from oaws.brokers.sim.options import expiries, years_to
from oaws.brokers.sim.universe import RATE
from oaws.instruments import Instrument
from oaws.names import today


def test_the_master_keeps_the_fixture_and_adds_today_s_index_options():
    raw = master_with_options(fixture_master_bytes())
    records = orjson.loads(raw)
    assert records[:43] == orjson.loads(fixture_master_bytes())
    master = Master(rows_from_raw(raw), "test")
    nifty = master.options("NIFTY")
    assert {c.expiry for c in nifty if c.expiry >= today()} == set(
        expiries("NIFTY", today())
    )  # and the fixture's 2024 one
    assert {c.lot_size for c in nifty if c.expiry >= today()} == {65} and {
        c.exchange for c in master.options("SENSEX")
    } == {"BFO"}
    assert len({r["token"] for r in records}) == len(records)


def test_angel_sim_prices_a_call_and_a_put_with_parity_within_a_tick():
    sim = AngelSimulator(seed=4)
    contracts = sim.master.options("NIFTY")
    expiry = expiries("NIFTY", today())[1]
    spot = sim._instrument(wire.NSE_CM, "99926000")
    assert spot is not None
    checked = 0
    for strike in (24200.0, 24350.0, 24500.0):
        pair = {c.right: c for c in contracts if c.expiry == expiry and c.strike == strike}
        prices = {}
        for right, c in pair.items():
            resolved = sim.master.resolve(Instrument(c.symbol, c.exchange))
            packet = sim._next_packet(wire.LTP, wire.NSE_FO, resolved.token)
            assert packet is not None
            prices[right] = packet.ltp / 100
        s = spot.ltp / 100
        years = years_to(expiry, time.time())
        assert abs((prices["CE"] - prices["PE"]) - (s - strike * math.exp(-RATE * years))) <= 0.05 + 0.01
        checked += 1
    assert checked == 3
