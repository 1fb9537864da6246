"""The option chain's model (oaws.chain): IV and greeks against independent figures, the
chain's own figures on hand-worked tables, the window that follows the money, the quota."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oaws.chain import (
    Chain,
    ChainError,
    check_quota,
    expiry_close,
    greeks,
    implied_volatility,
    max_pain,
    price_for_iv,
    spot_of,
    window_size,
)
from oaws.config import IST
from oaws.instruments import Instrument
from oaws.options import OptionContract

EXPIRY = date(2026, 12, 8)
LATER = date(2026, 12, 29)
#: a Wednesday morning, six days before EXPIRY's close
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=IST).timestamp()
NIFTY = Instrument("NIFTY", "NSE_INDEX")


def bsm(right: str, s: float, k: float, t: float, r: float, sigma: float, q: float = 0.0) -> float:
    """Black-Scholes-Merton written out here, with math.erf: the test's own, not vollib's."""

    def n(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    d1 = (math.log(s / k) + (r - q + sigma * sigma / 2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    if right == "CE":
        return s * math.exp(-q * t) * n(d1) - k * math.exp(-r * t) * n(d2)
    return k * math.exp(-r * t) * n(-d2) - s * math.exp(-q * t) * n(-d1)


def contracts(strikes: range, expiry: date = EXPIRY) -> list[OptionContract]:
    tag = expiry.strftime("%d%b%y").upper()
    return [
        OptionContract("NIFTY", expiry, float(k), right, f"NIFTY{tag}{k}{right}", "NFO", 75)
        for k in strikes
        for right in ("CE", "PE")
    ]


def tick_of(contract: OptionContract, **fields: object) -> dict[str, object]:
    return {"symbol": contract.symbol, "exchange": contract.exchange, **fields}


def spot_tick(price: float) -> dict[str, object]:
    return {"symbol": "NIFTY", "exchange": "NSE_INDEX", "ltp": price}


def window(chain: Chain) -> list[float]:
    return [row.strike for row in chain.view().rows]


# -- implied volatility and greeks -------------------------------------------------------------


@pytest.mark.parametrize(
    ("right", "s", "k", "t", "r", "sigma", "q"),
    [
        ("CE", 26000, 26000, 6 / 365, 0.07, 0.14, 0.0),
        ("PE", 26000, 25500, 6 / 365, 0.07, 0.16, 0.0),
        ("CE", 2500, 2700, 0.25, 0.065, 0.30, 0.01),
        ("PE", 2500, 2700, 0.25, 0.065, 0.30, 0.01),
    ],
)
def test_the_iv_of_a_black_scholes_price_is_the_volatility_that_priced_it(right, s, k, t, r, sigma, q) -> None:
    price = bsm(right, s, k, t, r, sigma, q)
    assert implied_volatility(price, s, k, t, r, q, right) == pytest.approx(sigma, abs=1e-6)


def test_greeks_match_hulls_textbook_call() -> None:
    # Hull, Options, Futures and Other Derivatives: S=49, K=50, r=5 %, sigma=20 %, 20 weeks
    s, k, r, sigma, t = 49.0, 50.0, 0.05, 0.2, 0.3846
    assert bsm("CE", s, k, t, r, sigma) == pytest.approx(2.40, abs=0.005)
    delta, gamma, theta, vega = greeks(s, k, t, r, 0.0, sigma, "CE")
    assert delta == pytest.approx(0.522, abs=0.001)
    assert gamma == pytest.approx(0.066, abs=0.0005)
    assert vega * 100 == pytest.approx(12.1, abs=0.05)  # per 1 % here, per unit of sigma in Hull
    assert theta * 365 == pytest.approx(-4.31, abs=0.01)  # per day here, per year in Hull


def test_greeks_of_the_put_follow_from_the_call_by_parity() -> None:
    # the put of Hull's example: delta is the call's less 1, theta the call's plus r*K*exp(-rT)
    # (-4.31 + 0.05 * 50 * exp(-0.05 * 0.3846) = -1.86 a year); gamma and vega are the call's
    s, k, r, sigma, t = 49.0, 50.0, 0.05, 0.2, 0.3846
    delta, gamma, theta, vega = greeks(s, k, t, r, 0.0, sigma, "PE")
    assert delta == pytest.approx(0.522 - 1, abs=0.001)
    assert gamma == pytest.approx(0.066, abs=0.0005)
    assert vega * 100 == pytest.approx(12.1, abs=0.05)
    assert theta * 365 == pytest.approx(-1.86, abs=0.01)


def test_an_iv_below_intrinsic_or_without_time_is_missing_not_zero() -> None:
    assert implied_volatility(5.0, 100, 90, 0.1, 0.05, 0.0, "CE") is None  # intrinsic is about 10.4
    assert implied_volatility(5.0, 100, 110, 0.1, 0.05, 0.0, "PE") is None
    assert implied_volatility(12.0, 100, 90, 0.0, 0.05, 0.0, "CE") is None  # expired
    assert implied_volatility(0.0, 100, 100, 0.1, 0.05, 0.0, "CE") is None  # no price


def test_the_iv_price_is_the_last_trade_unless_it_lies_outside_the_spread() -> None:
    assert price_for_iv(10.0, 9.9, 10.1) == 10.0
    assert price_for_iv(12.0, 9.9, 10.1) == pytest.approx(10.0)  # stale: the market moved away
    assert price_for_iv(None, 9.9, 10.1) == pytest.approx(10.0)
    assert price_for_iv(10.0, None, None) == 10.0
    assert price_for_iv(None, None, None) is None


def test_a_chain_view_solves_the_iv_of_each_side_and_leaves_the_untraded_missing() -> None:
    cs = contracts(range(25800, 26250, 50))
    chain = Chain("NIFTY", NIFTY, cs, strikes=2, rate=0.07, clock=lambda: NOW)
    chain.update(spot_tick(26010.0))
    years = (expiry_close(EXPIRY).timestamp() - NOW) / (365 * 86400)
    priced = {c.symbol: c for c in cs if c.strike in (26000.0, 26050.0)}
    for c in priced.values():
        chain.update(tick_of(c, ltp=round(bsm(c.right, 26010.0, c.strike, years, 0.07, 0.15), 2)))
    view = chain.view()
    assert view.years == pytest.approx(years)
    for row in view.rows:
        for side in (row.call, row.put):
            assert side is not None
            if side.contract.symbol in priced:
                assert side.iv == pytest.approx(0.15, abs=0.002)  # the price is rounded to the paisa
                assert side.delta is not None and side.theta is not None and side.theta < 0
            else:
                assert side.iv is None and side.delta is None and side.vega is None


# -- the chain's figures ----------------------------------------------------------------------

#: the hand-worked table: call OI 100 / 200 / 300 and put OI 300 / 200 / 50 at 100 / 110 / 120
OI = {(100, "CE"): 100, (110, "CE"): 200, (120, "CE"): 300, (100, "PE"): 300, (110, "PE"): 200, (120, "PE"): 50}


def small_chain(spot: float) -> Chain:
    cs = [
        OptionContract("ABC", EXPIRY, float(k), r, f"ABC{k}{r}", "NFO", 1)
        for k in (100, 110, 120)
        for r in ("CE", "PE")
    ]
    chain = Chain("ABC", Instrument("ABC", "NSE"), cs, strikes=5, clock=lambda: NOW)
    chain.update({"symbol": "ABC", "exchange": "NSE", "ltp": spot})
    for c in cs:
        chain.update(tick_of(c, ltp=1.0, oi=OI[(int(c.strike), c.right)]))
    return chain


def test_pcr_is_put_oi_over_call_oi() -> None:
    assert small_chain(113.0).view().pcr == pytest.approx(550 / 600)


def test_max_pain_is_the_strike_of_the_least_payout() -> None:
    # payout at 100: puts 110 (200 x 10) + 120 (50 x 20) = 3000; at 110: calls 100 (100 x 10) +
    # puts 120 (50 x 10) = 1500; at 120: calls 100 (100 x 20) + 110 (200 x 10) = 4000
    assert small_chain(113.0).view().max_pain == 110.0
    assert max_pain([100, 110, 120], []) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 40).map(lambda k: k * 50.0), st.sampled_from(["CE", "PE"]), st.integers(0, 10**6)),
        max_size=30,
    )
)
def test_max_pain_is_the_least_payout_of_a_brute_force_sum(oi) -> None:
    strikes = [k * 50.0 for k in range(1, 41)]

    def payout(x: float) -> float:
        return sum(n * (max(x - k, 0) if right == "CE" else max(k - x, 0)) for k, right, n in oi)

    found = max_pain(strikes, oi)
    if not any(n for _, _, n in oi):
        assert found is None
        return
    assert found is not None
    least = min(payout(x) for x in strikes)
    assert payout(found) == pytest.approx(least, rel=1e-9)
    assert found == min(x for x in strikes if payout(x) == pytest.approx(least, rel=1e-9))  # the lower of ties


def test_the_atm_strike_is_the_nearest_and_the_itm_sides_are_flagged() -> None:
    view = small_chain(113.0).view()
    assert view.atm == 110.0
    assert [row.atm for row in view.rows] == [False, True, False]
    assert [(row.call.itm, row.put.itm) for row in view.rows if row.call and row.put] == [
        (True, False),
        (True, False),
        (False, True),
    ]
    assert small_chain(116.0).view().atm == 120.0


def test_oi_change_comes_from_the_previous_oi() -> None:
    cs = contracts(range(26000, 26050, 50))
    chain = Chain("NIFTY", NIFTY, cs, clock=lambda: NOW)
    chain.update(tick_of(cs[0], ltp=100.0, oi=1500, prev_oi=1200, volume=30, close=90.0))
    side = chain.view().rows[0].call
    assert side is not None
    assert (side.oi, side.oi_change, side.volume, side.change) == (1500, 300, 30, 10.0)


def test_bid_and_ask_are_the_tops_of_the_book() -> None:
    cs = contracts(range(26000, 26050, 50))
    chain = Chain("NIFTY", NIFTY, cs, clock=lambda: NOW)
    book = {"buy": [{"price": 99.5, "quantity": 75}], "sell": [{"price": 100.5, "quantity": 150}]}
    chain.update(tick_of(cs[1], ltp=100.0, depth=book))
    side = chain.view().rows[0].put
    assert side is not None and (side.bid, side.ask) == (99.5, 100.5)


def test_the_view_as_json_names_contracts_and_dates_as_text() -> None:
    body = small_chain(113.0).view().as_dict()
    assert body["expiry"] == "2026-12-08" and body["spot"] == "ABC:NSE"
    assert body["rows"][1]["call"]["contract"] == "ABC110CE:NFO"


# -- expiries ---------------------------------------------------------------------------------


def test_the_default_expiry_is_the_nearest_not_expired() -> None:
    cs = contracts(range(26000, 26100, 50)) + contracts(range(26000, 26100, 50), LATER)
    assert Chain("NIFTY", NIFTY, cs, clock=lambda: NOW).expiry == EXPIRY
    after_close = expiry_close(EXPIRY).timestamp() + 60
    chain = Chain("NIFTY", NIFTY, cs, clock=lambda: after_close)
    assert chain.expiry == LATER and chain.expiries() == [LATER]


def test_an_expiry_not_listed_is_refused_with_the_valid_ones() -> None:
    cs = contracts(range(26000, 26100, 50)) + contracts(range(26000, 26100, 50), LATER)
    chain = Chain("NIFTY", NIFTY, cs, clock=lambda: NOW)
    with pytest.raises(ChainError, match="no expiry on 2026-12-09; the expiries are 2026-12-08, 2026-12-29"):
        chain.set_expiry(EXPIRY + timedelta(days=1))
    chain.set_expiry(LATER)
    assert chain.view().expiry == LATER


def test_a_chain_without_live_contracts_is_refused() -> None:
    with pytest.raises(ChainError, match="NIFTY has no option contracts"):
        Chain("NIFTY", NIFTY, [], clock=lambda: NOW)


# -- the window and the quota -----------------------------------------------------------------


def test_the_window_holds_two_sides_of_2n_plus_1_strikes_and_the_underlying() -> None:
    chain = Chain("NIFTY", NIFTY, contracts(range(25000, 27050, 50)), strikes=10, clock=lambda: NOW)
    chain.update(spot_tick(26010.0))
    wanted = chain.wanted()
    assert len(wanted) == window_size(10) == 43
    assert NIFTY in wanted
    assert window(chain) == [float(k) for k in range(25500, 26550, 50)]


def test_the_window_follows_the_atm_strike_with_hysteresis() -> None:
    cs = contracts(range(25000, 27050, 50))
    by_strike = {(c.strike, c.right): Instrument(c.symbol, c.exchange) for c in cs}
    chain = Chain("NIFTY", NIFTY, cs, strikes=2, clock=lambda: NOW)
    chain.update(spot_tick(26000.0))
    chain.wanted()
    assert window(chain) == [25900.0, 25950.0, 26000.0, 26050.0, 26100.0]

    chain.update(spot_tick(26027.0))  # past the midpoint (26025), inside the margin (to 26030)
    assert chain.moved() == (set(), set())
    assert window(chain)[2] == 26000.0
    assert chain.view().atm == 26050.0  # the ATM mark is the nearest strike all the same

    chain.update(spot_tick(26031.0))  # beyond the margin: the window moves one strike up
    added, removed = chain.moved()
    assert added == {by_strike[(26150.0, "CE")], by_strike[(26150.0, "PE")]}
    assert removed == {by_strike[(25900.0, "CE")], by_strike[(25900.0, "PE")]}
    assert chain.moved() == (set(), set())

    chain.update(spot_tick(26022.0))  # back below the midpoint, inside the margin: stays
    assert chain.moved() == (set(), set())
    chain.update(spot_tick(26019.0))  # beyond it: back down
    added, removed = chain.moved()
    assert added == {by_strike[(25900.0, "CE")], by_strike[(25900.0, "PE")]}


def test_the_window_jumps_when_the_underlying_gaps() -> None:
    chain = Chain("NIFTY", NIFTY, contracts(range(25000, 27050, 50)), strikes=1, clock=lambda: NOW)
    chain.update(spot_tick(26000.0))
    chain.wanted()
    chain.update(spot_tick(26400.0))
    added, removed = chain.moved()
    assert len(added) == len(removed) == 6
    assert window(chain) == [26350.0, 26400.0, 26450.0]


def test_a_new_width_or_expiry_moves_the_subscriptions() -> None:
    cs = contracts(range(25000, 27050, 50)) + contracts(range(25000, 27050, 50), LATER)
    chain = Chain("NIFTY", NIFTY, cs, strikes=2, clock=lambda: NOW)
    chain.update(spot_tick(26000.0))
    chain.wanted()
    chain.set_strikes(3)
    added, removed = chain.moved()
    assert (len(added), len(removed)) == (4, 0)
    chain.set_expiry(LATER)
    added, removed = chain.moved()
    assert len(added) == len(removed) == 14
    assert all("29DEC26" in i.symbol for i in added)


def test_update_says_whether_the_view_changed() -> None:
    cs = contracts(range(25000, 27050, 50))
    chain = Chain("NIFTY", NIFTY, cs, strikes=1, clock=lambda: NOW)
    assert chain.update(spot_tick(26000.0))
    inside = next(c for c in cs if c.strike == 26000.0)
    outside = next(c for c in cs if c.strike == 25000.0)
    assert chain.update(tick_of(inside, ltp=120.0))
    assert not chain.update(tick_of(inside, ltp=120.0))  # the same again
    assert not chain.update(tick_of(outside, ltp=900.0))  # not shown
    assert not chain.update({"symbol": "RELIANCE", "exchange": "NSE", "ltp": 1.0})


def test_the_quota_refusal_is_one_sentence_with_the_strikes_that_fit() -> None:
    with pytest.raises(ChainError) as refused:
        check_quota(43, 1000, 980, who="Angel One")
    # 20 free: 2 x (2 x 4 + 1) + 1 = 19 fit, 2 x (2 x 5 + 1) + 1 = 23 do not
    assert str(refused.value) == (
        "the chain needs 43 subscriptions and Angel One allows 1000 of which 980 are in use; "
        "use --strikes 4 or remove instruments from the watch"
    )
    with pytest.raises(ChainError, match=r"allows 3 of which 3 are in use; remove instruments from the watch$"):
        check_quota(5, 3, 3)
    check_quota(43, 1000, 957)
    check_quota(43, None, 5000)


def test_the_spot_of_an_index_and_of_a_stock() -> None:
    assert spot_of("nifty") == NIFTY
    assert spot_of("SENSEX") == Instrument("SENSEX", "BSE_INDEX")
    assert spot_of("RELIANCE") == Instrument("RELIANCE", "NSE")


# -- the config file's [chain] ------------------------------------------------------------------


def test_the_config_gives_the_rate_and_a_dividend_yield_per_underlying(tmp_path, monkeypatch) -> None:
    from oaws.configfile import chain_settings, check

    path = tmp_path / "config.toml"
    path.write_text("[chain]\nrate = 0.065\ndividend_yield = 0.01\nstrikes = 5\ndividend_yields = {RELIANCE = 0.004}\n")
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    assert chain_settings("RELIANCE") == (0.065, 0.004, 5)
    assert chain_settings("NIFTY") == (0.065, 0.01, 5)
    errors, _ = check({"chain": {"rate": 7, "strikes": -1}}, path)
    assert any(e.startswith("chain.rate = 7 in") and "out of range" in e for e in errors), errors
    assert any(e.startswith("chain.strikes = -1 in") for e in errors), errors


def test_without_a_chain_section_the_defaults_apply(tmp_path, monkeypatch) -> None:
    from oaws.configfile import chain_settings

    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "none.toml"))
    assert chain_settings("NIFTY") == (None, None, None)


# -- oaws chain's quota check -------------------------------------------------------------------


def test_oaws_chain_refuses_a_window_the_brokers_quota_cannot_hold(monkeypatch, tmp_path) -> None:
    from oaws.brokers.api import Broker, BrokerLimits
    from oaws.cli.chain import _quota
    from oaws.cli.common import UserError

    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "none.toml"))
    angel = Broker(name="angel", title="Angel One", make_feed=lambda _: None, limits=BrokerLimits(subscriptions=1000))  # type: ignore[arg-type,return-value]
    chain = Chain("NIFTY", NIFTY, contracts(range(25000, 27050, 50)), strikes=10, clock=lambda: NOW)
    with pytest.raises(UserError) as refused:
        _quota(chain, angel, {"adapter_status": "connected", "subscriptions": 980})
    assert str(refused.value) == (
        "the chain needs 43 subscriptions and Angel One allows 1000 of which 980 are in use; "
        "use --strikes 4 or remove instruments from the watch"
    )
    _quota(chain, angel, {"subscriptions": 957})  # 43 more fit exactly
    monkeypatch.setenv("OAWS_MAX_INSTRUMENTS_PER_CLIENT", "40")
    with pytest.raises(UserError, match=r"the proxy \(max_instruments_per_client\) allows 40; use --strikes 9"):
        _quota(chain, angel, {})


# -- on the simulated market ----------------------------------------------------------------------


def sim_chain(expiry: date, on: date) -> tuple[Chain, float]:
    """A chain of NIFTY fed the simulated market's previous closes of ``on`` (the sim's
    Black-Scholes on its smile at the underlying's close, at the previous day's 15:30), its
    clock at that close so that T is the sim's; (the chain, the spot)."""
    from oaws.brokers.sim import universe

    tag = expiry.strftime("%d%b%y").upper()
    cs = [
        OptionContract("NIFTY", expiry, float(k), r, f"NIFTY{tag}{k}{r}", "NFO", 75)
        for k in range(24000, 27900, 100)
        for r in ("CE", "PE")
    ]
    at = expiry_close(on).timestamp() - 86400
    chain = Chain("NIFTY", NIFTY, cs, strikes=5, rate=universe.RATE, dividend=0.0, clock=lambda: at)
    spot = universe.reference(NIFTY, on)
    assert spot is not None
    chain.update(spot_tick(spot))
    for c in cs:
        price = universe.reference(Instrument(c.symbol, c.exchange), on)
        assert price is not None
        chain.update(tick_of(c, ltp=round(price * 20) / 20))  # to the exchange's tick, as the feed sends it
    return chain, spot


def test_on_the_sim_the_iv_comes_back_as_the_volatility_that_priced_it() -> None:
    from oaws.brokers.sim import options

    chain, spot = sim_chain(date(2026, 12, 29), date(2026, 12, 2))
    view = chain.view()
    sides = [s for row in view.rows for s in (row.call, row.put) if s is not None]
    assert len(sides) == 22
    for side in sides:
        # a price rounded to 0.05 moves the IV by less than 0.05 / vega-per-1 % points
        assert side.iv is not None and side.vega is not None
        smile = options.smile("NIFTY", spot, float(side.contract.strike))
        assert side.iv == pytest.approx(smile, abs=0.05 / side.vega / 100 + 1e-6), side


def test_on_the_sim_put_call_parity_holds_within_a_tick() -> None:
    chain, spot = sim_chain(date(2026, 12, 29), date(2026, 12, 2))
    view = chain.view()
    for row in view.rows:
        assert row.call is not None and row.put is not None
        assert row.call.ltp is not None and row.put.ltp is not None
        forward_value = spot - row.strike * math.exp(-view.rate * view.years)
        # each price is rounded to the tick, so their difference is within one tick
        assert row.call.ltp - row.put.ltp == pytest.approx(forward_value, abs=0.05 + 1e-9)
