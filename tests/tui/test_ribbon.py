"""The index ribbon: the indices with their change, the list's top gainers and losers, what
goes first on a narrow screen, the subscriptions it adds, and its setting in the config file."""

from __future__ import annotations

from functools import partial

import pytest

from oaws import config as cfg
from oaws.cli.watch import build_ribbon
from oaws.client import Status, Tick
from oaws.instruments import DEFAULT_WATCHLIST, QUOTE, parse, parse_many
from oaws.tui.models.ribbon import RibbonModel, default_ribbon
from oaws.tui.models.watch import Watchlist

from .conftest import FIXED_NS, scripted_app
from .conftest import until as until_

#: conftest's ``until`` with room for a loaded machine (the store's thread, a real server)
until = partial(until_, timeout=20.0)


NIFTY, BANK, SENSEX, VIX = default_ribbon()
STOCKS = parse_many(["RELIANCE:NSE", "INFY:NSE", "TCS:NSE", "SBIN:NSE", "ITC:NSE", "HDFCBANK:NSE", "WIPRO:NSE"])
#: change % of each stock: three up, three down, one flat
MOVES = [2.5, 1.0, 0.4, -0.3, -1.2, -3.0, 0.0]


def tick(instrument, ltp: float, pct: float) -> Tick:
    close = round(ltp / (1 + pct / 100), 2)
    data = {
        "ltp": ltp,
        "close": close,
        "change": round(ltp - close, 2),
        "change_percent": pct,
        "ltt": FIXED_NS // 10**6,
    }
    return Tick(instrument, QUOTE, data, {}, FIXED_NS)


def feed() -> list:
    ticks = [tick(s, 100.0 + n, pct) for n, (s, pct) in enumerate(zip(STOCKS, MOVES, strict=True))]
    ticks += [tick(NIFTY, 25912.35, 0.12), tick(BANK, 58010.0, -0.05), tick(SENSEX, 84512.1, 0.1)]
    ticks += [tick(VIX, 14.52, 1.2)]
    return [Status("connected", "ws://127.0.0.1:8765"), *ticks]


def ribbon_text(app) -> list[str]:
    ribbon = app.main.ribbon
    ribbon.update()
    return [ribbon.render_line(y).text.rstrip() for y in range(2)]


async def test_the_ribbon_shows_the_indices_and_the_lists_movers_and_not_in_the_grid():
    script = feed()
    app, client = scripted_app(script, [Watchlist("default", list(STOCKS))], ribbon=default_ribbon())
    async with app.run_test(size=(160, 20)) as pilot:
        await until(pilot, lambda: app.events >= len(script), what="every scripted event")
        top, bottom = ribbon_text(app)
        assert top.split("│")[0].split() == ["NIFTY", "50", "NIFTY", "BANK", "SENSEX", "INDIA", "VIX"]
        assert "25,912.35 +0.12%" in bottom and "58,010.00 -0.05%" in bottom and "14.52 +1.20%" in bottom
        assert top.split("│")[1].split() == ["▲", "RELIANCE", "+2.50%", "INFY", "+1.00%", "TCS", "+0.40%"]
        assert bottom.split("│")[1].split() == ["▼", "HDFCBANK", "-3.00%", "ITC", "-1.20%", "SBIN", "-0.30%"]
        # the indices are subscribed at Quote besides the list, and are not rows of the grid
        asked = [(i, mode) for kind, (items, mode) in client.requests if kind == "subscribe" for i in items]
        assert {(NIFTY, QUOTE), (BANK, QUOTE), (SENSEX, QUOTE), (VIX, QUOTE)} <= set(asked)
        assert app.model.view == list(STOCKS)

        await pilot.resize_terminal(110, 20)  # narrower: fewer movers
        await pilot.pause()
        top, bottom = ribbon_text(app)
        assert "INDIA VIX" in top and "│" in top and "TCS" not in top
        await pilot.resize_terminal(80, 20)  # narrower still: no movers, the indices stay
        await pilot.pause()
        top, bottom = ribbon_text(app)
        assert "│" not in top and "NIFTY 50" in top and "SENSEX" in top


async def test_an_index_in_the_list_is_asked_for_once_and_the_movers_leave_indices_out():
    lists = [Watchlist("default", parse_many(list(DEFAULT_WATCHLIST)))]
    app, client = scripted_app([Status("connected", "ws://127.0.0.1:8765")], lists, ribbon=[NIFTY, VIX])
    async with app.run_test(size=(160, 20)) as pilot:
        await until(pilot, lambda: client.requests, what="the ribbon's subscription")
        asked = [i for kind, (items, _) in client.requests if kind == "subscribe" for i in items]
        assert asked == [VIX]  # NIFTY comes with the list already
    gainers, losers = RibbonModel.movers(
        [(NIFTY, {"change_percent": 3.0}), (parse("SBIN:NSE"), {"change_percent": -1})]
    )
    assert gainers == [] and losers == [(parse("SBIN:NSE"), -1.0)]


def test_without_ticks_the_indices_show_a_dash_and_the_width_is_kept():
    model = RibbonModel(default_ribbon())
    top, bottom = model.lines(200)
    assert [t for t, s in top if s == "label"] == ["NIFTY 50", "NIFTY BANK", "SENSEX", "INDIA VIX"]
    assert [t for t, s in bottom if s == "muted"] == ["—"] * 4
    for width in (200, 90, 60, 30):
        for line in model.lines(width, [(parse("TCS:NSE"), {"change_percent": 1.0})]):
            assert sum(len(t) for t, _ in line) <= max(width, len("NIFTY BANK"))


@pytest.fixture
def conf(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    return path


def test_the_ribbon_setting(conf):
    assert build_ribbon() == default_ribbon()  # no file: the four
    assert build_ribbon(shown=False) == []  # --no-ribbon
    conf.write_text('ribbon = ["FINNIFTY:NSE_INDEX", "BANKEX:BSE_INDEX"]\n')
    assert build_ribbon() == parse_many(["FINNIFTY:NSE_INDEX", "BANKEX:BSE_INDEX"])
    conf.write_text("ribbon = []\n")
    assert build_ribbon() == []
    conf.write_text('ribbon = "NIFTY"\n')
    with pytest.raises(cfg.ConfigError, match=r"^ribbon in .*config.toml must be a list of instruments"):
        build_ribbon()
    conf.write_text('ribbon = ["NIFTY"]\n')
    with pytest.raises(cfg.ConfigError, match=r"^ribbon in .*config.toml: "):
        build_ribbon()
