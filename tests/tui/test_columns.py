"""The grid's columns without a screen: what each new column says, where it is blank, the default
set, the narrow-screen order, the mode the columns need, the dated time, the depth view's notes."""

from __future__ import annotations

from datetime import date, timedelta, timezone

import pytest

from oaws.instruments import DEPTH, LTP, QUOTE, Instrument, parse, parse_many
from oaws.names import readable
from oaws.tui.models.columns import COLUMN_BY_KEY, COLUMNS, DEFAULT_COLUMNS, SYMBOL_WIDTH_MAX
from oaws.tui.models.depth import DEPTHLESS_TICKS, depth_state
from oaws.tui.models.watch import Watchlist, WatchModel, default_columns, known_columns

IST = timezone(timedelta(hours=5, minutes=30))
#: 2025-11-25 10:15:00 IST
NOW = 1_764_045_900.0
REL, OPT, FUT, NIFTY = (
    parse("RELIANCE:NSE"),
    parse("NIFTY25DEC2526000CE:NFO"),
    parse("BANKNIFTY30DEC25FUT:NFO"),
    parse("NIFTY:NSE_INDEX"),
)


def model(*instruments: Instrument, columns: list[str] | None = None, **kw) -> WatchModel:
    return WatchModel(
        [Watchlist("w", list(instruments or (REL, OPT)), columns=columns)], tz=IST, wall=lambda: NOW, **kw
    )


def book(bid: float, bid_qty: int, ask: float, ask_qty: int) -> dict:
    empty = {"price": 0.0, "quantity": 0, "orders": 0}
    return {
        "buy": [{"price": bid, "quantity": bid_qty, "orders": 3}, empty],
        "sell": [{"price": ask, "quantity": ask_qty, "orders": 2}, empty],
    }


def tick(**extra) -> dict:
    return {"ltp": 101.0, "close": 100.0, "ltt": int(NOW * 1000), **extra}


def cell(m: WatchModel, instrument: Instrument, key: str) -> str:
    """The text of one column of a row, stripped (the layout holds just that column beside the symbol)."""
    layout = [(COLUMN_BY_KEY["symbol"], 24), (COLUMN_BY_KEY[key], 14)]
    pieces = m.cells(instrument, layout)
    return "".join(t for t, _ in pieces[2:]).strip()


def test_bid_and_ask_are_the_best_level_of_the_book():
    m = model(REL, columns=["symbol", "bid", "bid_qty", "ask", "ask_qty"])
    m.apply(REL, tick(depth=book(1480.4, 1250, 1480.5, 75_000)))
    assert [cell(m, REL, k) for k in ("bid", "bid_qty", "ask", "ask_qty")] == [
        "1,480.40",
        "1,250",
        "1,480.50",
        "75,000",
    ]
    m.apply(REL, tick(depth={"buy": [{"price": 0.0, "quantity": 0, "orders": 0}], "sell": []}))
    assert [cell(m, REL, k) for k in ("bid", "bid_qty", "ask", "ask_qty")] == ["", "", "", ""]  # no order: blank
    m.apply(REL, tick())  # a Quote tick: no book at all
    assert cell(m, REL, "bid") == "" and cell(m, REL, "ask_qty") == ""


def test_open_interest_and_its_change_from_the_previous_sessions_oi():
    m = model(OPT)
    m.apply(OPT, tick(oi=1_250_000, prev_oi=1_000_000))
    assert cell(m, OPT, "oi") == "12,50,000"
    assert cell(m, OPT, "oi_change") == "+2,50,000"
    assert cell(m, OPT, "oi_change_percent") == "+25.00%"
    m.apply(OPT, tick(oi=900_000, prev_oi=1_000_000))
    assert (cell(m, OPT, "oi_change"), cell(m, OPT, "oi_change_percent")) == ("-1,00,000", "-10.00%")
    oi_styles = [s for _, s in m.cells(OPT, [(COLUMN_BY_KEY["oi_change"], 10)])]
    assert oi_styles == ["down"]


def test_oi_change_percent_alone_gives_the_percentage_and_leaves_the_change_blank():
    m = model(FUT)
    m.apply(FUT, tick(oi=500_000, oi_change_percent=-3.5))
    assert cell(m, FUT, "oi") == "5,00,000"
    assert cell(m, FUT, "oi_change_percent") == "-3.50%"
    assert cell(m, FUT, "oi_change") == ""  # the previous OI is not known, so neither is the change
    m.apply(FUT, tick())  # a feed that gives no OI
    assert [cell(m, FUT, k) for k in ("oi", "oi_change", "oi_change_percent")] == ["", "", ""]


def test_oi_is_blank_not_zero_for_what_is_not_a_future_or_option():
    m = model(REL, NIFTY)
    for instrument in (REL, NIFTY):
        m.apply(instrument, tick(oi=0, prev_oi=0, oi_change_percent=0.0))
        assert [cell(m, instrument, k) for k in ("oi", "oi_change", "oi_change_percent")] == ["", "", ""]
    assert cell(model(OPT), OPT, "oi") == ""  # no tick yet
    zero = model(OPT)
    zero.apply(OPT, tick(oi=0))
    assert cell(zero, OPT, "oi") == "0"  # a derivative's OI of 0 is a figure


def test_the_52_week_range_circuits_and_average_price():
    m = model(REL)
    m.apply(
        REL,
        tick(
            week_52_high=1608.8, week_52_low=1114.85, upper_circuit=1628.0, lower_circuit=1332.0, average_price=1482.56
        ),
    )
    assert [cell(m, REL, k) for k in ("week_52_high", "week_52_low", "upper_circuit", "lower_circuit")] == [
        "1,608.80",
        "1,114.85",
        "1,628.00",
        "1,332.00",
    ]
    assert cell(m, REL, "average_price") == "1,482.56"
    m.apply(REL, tick(average_price=0.0, upper_circuit=0.0))  # zero means none
    assert cell(m, REL, "average_price") == "" and cell(m, REL, "upper_circuit") == ""


def test_a_contract_shows_its_readable_name_and_the_column_grows_to_fit():
    m = model(REL, OPT)
    layout = m.layout(200)
    assert layout[0][0].key == "symbol" and layout[0][1] == len("NIFTY 25 DEC 26000 CE")
    assert "".join(t for t, _ in m.cells(OPT, layout)).startswith("NIFTY 25 DEC 26000 CE  NFO")
    # the cap holds the longest index option people trade (MIDCPNIFTY, a fractional strike) whole ...
    soon = (date.today() + timedelta(days=30)).strftime("%d%b%y").upper()  # its year left out
    option = model(parse(f"MIDCPNIFTY{soon}12875.5CE:NFO"))
    name = readable(option.view[0])
    assert len(name) <= SYMBOL_WIDTH_MAX and option.layout(200)[0][1] == len(name)
    # ... and cuts only what is longer
    long = model(parse("VERYLONGUNDERLYING30DEC2512875.5CE:NFO"))
    assert long.layout(200)[0][1] == SYMBOL_WIDTH_MAX  # capped
    shown = "".join(t for t, _ in long.cells(long.view[0], long.layout(200)))[:SYMBOL_WIDTH_MAX]
    assert shown.endswith("…") and shown.startswith("VERYLONGUNDERLYING")


def test_the_default_set_adds_oi_for_a_list_with_derivatives():
    assert default_columns([REL]) == list(DEFAULT_COLUMNS)
    with_oi = default_columns([REL, FUT])
    assert with_oi[with_oi.index("volume") + 1 : with_oi.index("volume") + 3] == ["oi", "oi_change_percent"]
    m = model(REL)
    assert m.column_keys() == list(DEFAULT_COLUMNS)
    m.add(OPT)
    assert "oi" in m.column_keys()  # the default set follows the list


def test_mode_for_rises_to_depth_only_for_columns_that_need_it():
    quote_only = model(REL, columns=["symbol", "ltp", "change_percent", "volume", "average_price", "ltt"])
    assert quote_only.mode_for(QUOTE) == QUOTE and quote_only.mode_for(LTP) == LTP
    for key in ("bid", "ask_qty", "oi", "oi_change_percent", "upper_circuit", "week_52_low"):
        needs = model(REL, columns=["symbol", "ltp", key])
        assert needs.mode_for(QUOTE) == DEPTH and needs.mode_for(LTP) == DEPTH and needs.mode_for(DEPTH) == DEPTH
    assert model(REL).mode_for(QUOTE) == DEPTH  # the default set shows bid and ask
    assert {c.key for c in COLUMNS if c.depth} == {
        "bid", "bid_qty", "ask", "ask_qty", "oi", "oi_change", "oi_change_percent",
        "upper_circuit", "lower_circuit", "week_52_high", "week_52_low",
    }  # fmt: skip


def test_set_columns_keeps_the_symbol_first_and_skips_unknown_keys(caplog):
    m = model(REL)
    assert m.set_columns(["ltp", "nonsense", "symbol", "ltp", "oi"]) == ["symbol", "ltp", "oi"]
    assert "nonsense" in caplog.text and m.watchlist.columns == ["symbol", "ltp", "oi"]
    assert [c.key for c, _ in m.layout(200)] == ["symbol", "ltp", "oi"]
    assert m.set_columns(None) == list(DEFAULT_COLUMNS) and m.watchlist.columns is None
    assert known_columns(["volume"]) == ["symbol", "volume"]
    # a list that arrives with an unknown key (a file from a newer oaws) opens without it
    stored = WatchModel([Watchlist("w", [REL], columns=["symbol", "ltp", "gamma"])], tz=IST, wall=lambda: NOW)
    assert stored.column_keys() == ["symbol", "ltp"]


def test_columns_are_per_list():
    a, b = Watchlist("a", [REL], columns=["symbol", "ltp"]), Watchlist("b", [REL])
    m = WatchModel([a, b], tz=IST, wall=lambda: NOW)
    assert m.column_keys() == ["symbol", "ltp"] and m.mode_for(QUOTE) == QUOTE
    m.switch(1)
    assert m.column_keys() == list(DEFAULT_COLUMNS) and m.mode_for(QUOTE) == DEPTH


@pytest.mark.parametrize(
    ("width", "shown"),
    [
        (60, ["symbol", "ltp", "change", "change_percent", "volume"]),
        (77, ["symbol", "exchange", "ltp", "change", "change_percent", "volume", "ltt"]),  # an 80-column terminal
        (97, ["symbol", "ltp", "change", "change_percent", "bid", "ask", "volume", "ltt"]),
        (
            137,
            [
                "symbol",
                "exchange",
                "ltp",
                "change",
                "change_percent",
                "bid",
                "ask",
                "volume",
                "open",
                "high",
                "low",
                "ltt",
            ],
        ),
        (200, list(DEFAULT_COLUMNS)),
    ],
)
def test_narrow_screens_keep_price_change_volume_and_time_and_drop_the_trend_first(width, shown):
    m = model(*parse_many(["NIFTY:NSE_INDEX", "BANKNIFTY:NSE_INDEX", "RELIANCE:NSE", "ICICIBANK:NSE"]))
    layout = m.layout(width)
    assert [c.key for c, _ in layout] == shown
    assert sum(w for _, w in layout) + 2 * (len(layout) - 1) <= width


def test_bid_and_ask_high_and_low_come_and_go_together():
    m = model(REL)
    for width in range(30, 220):
        keys = [c.key for c, _ in m.layout(width)]
        assert ("bid" in keys) == ("ask" in keys) and ("high" in keys) == ("low" in keys)


def test_the_drop_order_of_the_default_set():
    ranks = sorted(DEFAULT_COLUMNS, key=lambda k: COLUMN_BY_KEY[k].drop, reverse=True)
    # first to go: the trend, the previous close, the open; kept longest: price and change
    assert ranks[:3] == ["spark", "close", "open"]
    assert ranks[-5:] == ["volume", "change", "change_percent", "symbol", "ltp"]
    order = [COLUMN_BY_KEY[k].drop for k in ("spark", "high", "change", "ltt", "volume")]
    assert order[0] > order[1] > order[2] and order[1] > order[3] > order[2]  # issue 19 item 24


def test_a_trade_from_an_earlier_session_shows_its_date():
    m = model(REL)
    m.apply(REL, tick(ltt=int((NOW - 86_400 * 2) * 1000)))  # two days before, 10:15 IST
    assert m.clock_text(int((NOW - 86_400 * 2) * 1000)) == "23 Nov 10:15"
    assert m.clock_text(int(NOW * 1000) - 1000) == "10:14:59"
    midnight = (NOW - (10 * 3600 + 15 * 60)) * 1000
    assert m.clock_text(midnight) == "00:00:00" and m.clock_text(midnight - 60_000) == "24 Nov 23:59"
    narrow = [w for c, w in m.layout(200) if c.key == "ltt"]
    m.cells(REL, m.layout(200))  # drawing the row finds the date needs room
    assert m.take_changes()[0] is True
    assert narrow == [8] and [w for c, w in m.layout(200) if c.key == "ltt"] == [12]
    assert "23 Nov 10:15" in "".join(t for t, _ in m.cells(REL, m.layout(200)))


def test_today_moves_with_the_wall_clock():
    now = [NOW]
    m = WatchModel([Watchlist("w", [REL])], tz=IST, wall=lambda: now[0])
    ms = int(NOW * 1000)
    assert m.clock_text(ms) == "10:15:00"
    now[0] += 86_400
    assert m.clock_text(ms) == "25 Nov 10:15"


def row(m: WatchModel, instrument: Instrument):
    return m.rows[instrument]


def test_the_depth_view_says_a_refused_symbol_was_refused():
    m = model(REL)
    m.fail(REL, "symbol not found")
    state = depth_state(row(m, REL), 0, index=False, name="RELIANCE:NSE")
    assert state.refused and "refused RELIANCE:NSE: symbol not found" in (state.note or "")
    assert not depth_state(row(m, REL), 0, index=False, name="x").waiting


def test_the_depth_view_says_a_feed_without_depth_has_none():
    m = model(REL)
    assert depth_state(row(m, REL), 0, index=False, name="x").waiting
    m.apply(REL, tick(mode=QUOTE))
    assert "waiting for a Depth tick" in (depth_state(row(m, REL), 0, index=False, name="x").note or "")
    m.apply(REL, tick(mode=DEPTH))  # a Depth tick without a book: this feed has none
    assert "not available from this feed" in (depth_state(row(m, REL), 0, index=False, name="x").note or "")
    quiet = model(REL)  # ticks that do not say their mode: a few of them without a book
    for _ in range(DEPTHLESS_TICKS):
        assert "not available" not in (depth_state(row(quiet, REL), 0, index=False, name="x").note or "")
        quiet.apply(REL, tick())
    assert "not available from this feed" in (depth_state(row(quiet, REL), 0, index=False, name="x").note or "")


def test_the_depth_view_keeps_the_book_through_the_grids_quote_ticks():
    m = model(REL)
    m.apply(REL, tick(mode=DEPTH, oi=0, depth=book(1480.4, 10, 1480.5, 20)))
    m.apply(REL, {**tick(mode=QUOTE), "ltp": 102.0})
    state = depth_state(row(m, REL), 0, index=False, name="x")
    assert state.note is None and state.data["ltp"] == 102.0 and state.data["depth"]["buy"][0]["price"] == 1480.4
    assert depth_state(row(m, NIFTY) if NIFTY in m.rows else None, 0, index=True, name="NIFTY").waiting
    idx = model(NIFTY)
    idx.apply(NIFTY, tick(mode=DEPTH))
    assert depth_state(row(idx, NIFTY), 0, index=True, name="x").note == "An index has no order book."


def test_sorting_by_a_new_column_puts_rows_without_its_figure_last():
    m = model(REL, OPT, FUT)
    m.apply(OPT, tick(oi=300, depth=book(10.0, 5, 10.5, 7)))
    m.apply(FUT, tick(oi=900, depth=book(20.0, 5, 20.5, 1)))
    m.apply(REL, tick(oi=5000, depth=book(30.0, 5, 30.5, 9)))  # an equity's OI is not shown, nor sorted by
    m.sort_by("oi")
    assert m.view == [FUT, OPT, REL]
    m.sort_by("oi")  # again: reversed, the row without OI still last
    assert m.view == [OPT, FUT, REL]
    m.sort_by("ask_qty")
    assert m.view == [REL, OPT, FUT]
