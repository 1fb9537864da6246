"""The watch's decisions without a screen: formatting, flashes, sorting, layout, depth, status."""

from __future__ import annotations

import re
import time
from datetime import timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oaws.client import Tick
from oaws.instruments import Instrument, InstrumentError, parse, parse_many
from oaws.names import NAMES
from oaws.tui.models.columns import FLASH_SECONDS, RESORT_SECONDS, changed_from, price_text, signed_text, sparkline
from oaws.tui.models.completion import Completer, complete, resolve_instrument
from oaws.tui.models.depth import bar, depth_view
from oaws.tui.models.health import Health
from oaws.tui.models.watch import Watchlist, WatchModel

IST = timezone(timedelta(hours=5, minutes=30))
REL, INFY, TCS = parse("RELIANCE:NSE"), parse("INFY:NSE"), parse("TCS:NSE")
#: the wall clock of these tests: 2025-11-25 10:15:00 IST, the day of ``quote``'s trades
TODAY = 1_764_045_900.0


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def model(*symbols: str, clock: Clock | None = None, **kw) -> WatchModel:
    return WatchModel(
        [Watchlist("w", parse_many(list(symbols or ("RELIANCE:NSE", "INFY:NSE", "TCS:NSE"))))],
        clock=clock or Clock(),
        tz=IST,
        wall=lambda: TODAY,
        **kw,
    )


def quote(ltp: float, close: float = 100.0, volume: int = 1000, **extra) -> dict:
    change = round(ltp - close, 2)
    return {
        "ltp": ltp,
        "close": close,
        "open": close,
        "high": ltp,
        "low": ltp,
        "volume": volume,
        "change": change,
        "change_percent": round(change / close * 100, 2),
        "ltt": 1_764_045_900_000,
        **extra,
    }


def text(m: WatchModel, instrument: Instrument, width: int = 200) -> str:
    return "".join(t for t, _ in m.cells(instrument, m.layout(width)))


def test_prices_use_indian_grouping_with_two_decimals_and_options_for_others():
    assert price_text(123456.7) == "1,23,456.70"
    assert price_text(123456.7, "intl") == "123,456.70"
    assert price_text(123456.7, "none") == "123456.70"
    assert price_text(-1234.5) == "-1,234.50"
    assert price_text(None) == ""
    assert signed_text(12.5) == "+12.50" and signed_text(-0.25, "%") == "-0.25%" and signed_text(0) == "0.00"


def test_volume_column_groups_digits_the_indian_way_or_as_asked():
    m = model("RELIANCE:NSE")
    m.apply(REL, quote(101, volume=1234567))
    assert "12,34,567" in text(m, REL)
    plain = model("RELIANCE:NSE", grouping="none")
    plain.apply(REL, quote(101, volume=1234567))
    assert "1234567" in text(plain, REL) and "12,34,567" not in text(plain, REL)
    with pytest.raises(ValueError):
        model(grouping="roman")


def test_changed_digits_are_found_from_the_right():
    assert changed_from("1,480.05", "1,480.10") == 6
    assert changed_from("1,480.05", "1,480.05") == 8
    assert changed_from("999.95", "1,000.00") == 0  # a longer number flashes whole
    assert changed_from("1,000.00", "999.95") == 0


def test_a_tick_flashes_only_the_changed_digits_in_its_direction_then_stops():
    clock = Clock()
    m = model(clock=clock)
    m.apply(REL, quote(1480.05))
    m.take_changes()
    m.apply(REL, quote(1480.10))
    layout = m.layout(200)
    pieces = m.cells(REL, layout)
    assert ("10", "flash-up") in pieces
    assert any(t.endswith("1,480.") and s == "up" for t, s in pieces)
    m.apply(REL, quote(1479.95))
    assert ("79.95", "flash-down") in m.cells(REL, layout)  # still flashing: the union of both changes
    clock.now += FLASH_SECONDS + 0.01
    _, dirty = m.take_changes()
    assert REL in dirty  # the end of a flash redraws the row
    assert not any(s.startswith("flash") for _, s in m.cells(REL, layout))


def test_only_rows_that_ticked_are_reported_changed():
    m = model()
    assert m.take_changes()[0] is True  # first frame: everything
    m.apply(INFY, quote(101))
    assert m.take_changes() == (False, {INFY})
    assert m.take_changes() == (False, set())
    assert m.apply(parse("SBIN:NSE"), quote(1)) is False  # not on screen: ignored


def test_sort_cycles_and_resorts_at_most_once_a_second():
    clock = Clock()
    m = model(clock=clock)
    for instrument, ltp in ((REL, 101), (INFY, 103), (TCS, 99)):
        m.apply(instrument, quote(ltp))
    assert m.cycle_sort() == "change_percent"
    assert m.view == [INFY, REL, TCS] and m.descending
    m.take_changes()
    m.apply(TCS, quote(110))
    assert m.take_changes()[0] is False and m.view == [INFY, REL, TCS]  # not yet: rows stay put
    clock.now += RESORT_SECONDS
    whole, _ = m.take_changes()
    assert whole and m.view == [TCS, INFY, REL]
    assert m.cycle_sort() == "symbol" and m.view == [INFY, REL, TCS]
    assert m.cycle_sort() == "volume"
    assert m.cycle_sort() == "given" and m.view == [REL, INFY, TCS]


def test_sorting_by_the_same_column_again_reverses_and_rows_without_values_go_last():
    m = model("RELIANCE:NSE", "INFY:NSE", "TCS:NSE")
    m.apply(REL, quote(101))
    m.apply(INFY, quote(102))
    m.sort_by("ltp")
    assert m.view == [INFY, REL, TCS]
    m.sort_by("ltp")
    assert not m.descending and m.view == [REL, INFY, TCS]
    with pytest.raises(ValueError):
        m.sort_by("colour")


def test_the_selection_follows_its_instrument_through_a_resort():
    m = model()
    m.apply(REL, quote(90))
    m.apply(INFY, quote(110))
    m.select_index(0)
    assert m.selected == REL
    m.sort_by("change_percent")
    assert m.selected == REL and m.cursor == 1
    assert m.move(-5) == INFY and m.move(10) == TCS


def test_add_and_remove_change_the_current_watchlist_and_the_cursor():
    m = model()
    assert m.add(parse("SBIN:NSE")) and m.view[-1] == parse("SBIN:NSE") and m.selected == parse("SBIN:NSE")
    assert not m.add(REL)
    m.select_index(1)
    assert m.remove(INFY) and m.selected == TCS and INFY not in m.view
    assert not m.remove(INFY)


def test_switching_watchlists_says_what_to_subscribe_and_unsubscribe():
    lists = [Watchlist("a", [REL, INFY]), Watchlist("b", [INFY, TCS])]
    m = WatchModel(lists)
    assert m.switch(1) == ([TCS], [REL])
    assert m.view == [INFY, TCS] and m.watchlist.name == "b"
    assert m.switch(1) == ([REL], [TCS])


def test_narrow_screens_drop_the_least_useful_columns_first():
    m = model()
    wide = [c.key for c, _ in m.layout(200)]
    assert wide[:3] == ["symbol", "exchange", "ltp"] and "spark" in wide and "open" in wide
    narrow = [c.key for c, _ in m.layout(60)]
    assert narrow[:2] == ["symbol", "ltp"] and "change_percent" in narrow and "open" not in narrow
    assert sum(w for _, w in m.layout(60)) + 2 * (len(narrow) - 1) <= 60


def test_a_refused_instrument_shows_the_reason_and_stale_rows_are_flagged():
    m = model()
    m.fail(REL, "symbol not found")
    assert "symbol not found" in text(m, REL)
    m.take_changes()
    m.set_stale(True)
    assert m.stale and m.take_changes()[0] is True


def test_time_column_is_the_last_trade_time_in_the_given_zone():
    m = model()
    m.apply(REL, quote(101))
    assert "10:15:00" in text(m, REL)


def test_sparkline_scales_between_low_and_high():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5], 8) == "▄▄▄"
    assert sparkline(range(100), 4) == "▁▃▆█"
    assert sparkline([], 4) == ""


def test_depth_bars_are_shares_of_the_largest_quantity():
    data = quote(
        100,
        total_buy_quantity=300,
        total_sell_quantity=100,
        depth={
            "buy": [{"price": 99.95, "quantity": 200, "orders": 3}, {"price": 99.9, "quantity": 100, "orders": 1}],
            "sell": [{"price": 100.05, "quantity": 50, "orders": 2}],
        },
    )
    view = depth_view(data)
    assert [lv.share for lv in view.bids[:2]] == [1.0, 0.5] and view.asks[0].share == 0.25
    assert view.bids[4].price == "" and view.asks[1].quantity == ""
    assert view.spread == "0.10" and view.buy_share == 0.75
    assert ("Prev close", "100.00") in view.facts
    assert bar(0.5, 4) == "██" and bar(0.5, 1) == "▌" and bar(0, 5) == ""


def test_depth_facts_read_openalgos_names():
    # a Depth tick as OpenAlgo's own server sends it: last_quantity, no last_trade_quantity
    openalgo = depth_view(quote(100, average_price=99.5, last_quantity=25, depth={"buy": [], "sell": []}))
    assert ("Avg price", "99.50") in openalgo.facts and ("Last qty", "25") in openalgo.facts
    oaws = depth_view(quote(100, last_trade_quantity=7))  # a Quote tick has only Quote's name
    assert ("Last qty", "7") in oaws.facts


def test_status_line_reports_connection_rate_latency_and_silence():
    clock = Clock(1000.0)
    h = Health("ws://x", stale_after=5, clock=clock)
    assert "connecting" in "".join(t for t, _ in h.pieces())
    h.connection("connected")
    for ms in (1.0, 2.0, 9.0):
        h.tick(ms)
    h.roll()
    line = "".join(t for t, _ in h.pieces())
    assert "3 ticks/s" in line and "latency 2.0 ms (max 9.0)" in line
    clock.now += 6
    h.roll()
    assert h.stale and "no tick for 6 s" in "".join(t for t, _ in h.pieces())
    h.connection("reconnecting", "the connection dropped", clock.now + 3)
    line = "".join(t for t, _ in h.pieces())
    assert "reconnecting, retry in 3 s" in line and not h.stale


def test_a_slow_authentication_shows_how_long_the_watch_has_waited():
    clock = Clock(1000.0)
    h = Health("ws://x", clock=clock)
    h.connection("connecting", "ws://x")
    clock.now += 1
    h.connection("authenticating", "waiting for ws://x to answer authenticate (up to 30 s)")
    clock.now += 7
    h.connection("authenticating", "waiting for ws://x to answer authenticate (up to 30 s)")  # the same wait
    assert "waiting 7 s for the server to authenticate" in "".join(t for t, _ in h.pieces())
    h.connection("connected")
    assert "connected" in "".join(t for t, _ in h.pieces())


NOW_NS = 1_764_045_900_000_000_000


def received(instrument: Instrument, made_ns: int, now_ns: int = NOW_NS, *, snapshot: bool = False) -> Tick:
    """A tick made at ``made_ns`` (its ``ts_ns``) and received at ``now_ns``, as the client makes them."""
    data = {"ltp": 100.0, "ts_ns": made_ns, "timestamp": made_ns // 1_000_000}
    message = {"type": "market_data", "symbol": instrument.symbol, "exchange": instrument.exchange, "data": data}
    if snapshot:
        message["snapshot"] = True
    return Tick(instrument, 2, data, message, now_ns)


def count(h: Health, t: Tick) -> None:
    """What the app does with a tick."""
    h.tick(t.latency_ms, snapshot=t.snapshot)


def latency(h: Health) -> str:
    h.roll()
    line = "".join(t for t, _ in h.pieces())
    return line[line.index("latency") :] if "latency" in line else ""


def test_live_ticks_are_latency_samples():
    h = Health("ws://x", clock=Clock(1000.0))
    h.connection("connected")
    for ms in (0.4, 0.5, 2.5):
        count(h, received(REL, NOW_NS - int(ms * 1e6)))
    assert latency(h) == "latency 0.5 ms (max 2.5)" and h.tps == 3


def test_a_marked_snapshot_is_a_tick_but_no_latency_sample_whatever_its_age():
    h = Health("ws://x", clock=Clock(1000.0))
    h.connection("connected")
    # the server's last known ticks, marked: one 3 s old (young enough to pass for live), one 15 s old
    for t in (
        received(REL, NOW_NS - 3_000_000_000, snapshot=True),
        received(INFY, NOW_NS - 14_935_700_000, snapshot=True),
    ):
        assert t.snapshot
        count(h, t)
    for t in (received(REL, NOW_NS - 400_000), received(INFY, NOW_NS - 600_000)):
        assert not t.snapshot
        count(h, t)
    assert latency(h) == "latency 0.6 ms (max 0.6)" and h.tps == 4  # ticks all the same, samples only live
    # nothing is guessed: the first tick after a subscription, unmarked, is a live one (OpenAlgo sends no snapshot)
    count(h, received(TCS, NOW_NS - 700_000))
    assert latency(h) == "latency 0.7 ms (max 0.7)"


def test_only_a_true_top_level_mark_makes_a_snapshot():
    for mark in (False, "true", 1, None):
        t = received(REL, NOW_NS)
        t.message["snapshot"] = mark
        assert not t.snapshot
    t = received(REL, NOW_NS)
    t.data["snapshot"] = True  # a feed's own field inside the tick is not the proxy's mark
    assert not t.snapshot


def test_old_stamps_are_no_latency_sample_and_without_samples_no_latency_shows():
    h = Health("ws://x", clock=Clock(1000.0))
    h.connection("connected")
    # a replay of a recording made 12 minutes ago: every tick carries its recorded time
    for n in range(5):
        count(h, received(REL, NOW_NS - 763_353_900_000 + n * 250_000_000))
    assert latency(h) == "" and h.tps == 5 and h.latency is None
    # only the "timestamp" (epoch ms) field: the same rule
    t = received(INFY, 0)
    t.data.pop("ts_ns")
    t.data["timestamp"] = NOW_NS // 1_000_000 - 6_000
    count(h, t)
    assert latency(h) == ""
    # a second with both: only the live one counts, 5 s is still live
    h.tick(763_353.9)
    h.tick(5_000.0)
    h.tick(1.2)
    h.tick(1.4)
    assert latency(h) == "latency 1.4 ms (max 5000.0)"


def test_completion_prefers_prefixes_then_substrings():
    known = ["RELIANCE:NSE", "INFY:NSE", "NIFTY:NSE_INDEX", "BANKNIFTY:NSE_INDEX", "reliance:nse"]
    assert complete("nif", known) == ["NIFTY:NSE_INDEX", "BANKNIFTY:NSE_INDEX"]
    assert complete("rel", known) == ["RELIANCE:NSE"]
    assert complete("", known) == []


def test_completion_ranks_the_symbol_typed_nse_first_and_contracts_last():
    known = ["RELIANCE26DEC24FUT:NFO", "RELIANCE:BSE", "RELAXO:NSE", "RELIANCE:NSE", "NIFTYBEES:NSE", "NIFTY:NSE_INDEX"]
    assert complete("reli", known) == ["RELIANCE:NSE", "RELIANCE:BSE", "RELIANCE26DEC24FUT:NFO"]
    assert complete("rel", known, limit=2) == ["RELAXO:NSE", "RELIANCE:NSE"]
    assert complete("nifty", known)[0] == "NIFTY:NSE_INDEX"  # the index, not the ETF that starts alike
    assert resolve_instrument("reliance", known) == parse("RELIANCE:NSE")


def test_the_completer_merges_the_sessions_own_instruments_and_grows():
    c = Completer(["INFY:NSE", "TCS:NSE"])
    assert c.complete("in", extra=["INDIGO:NSE", "infy:nse"]) == ["INFY:NSE", "INDIGO:NSE"]
    assert c.complete("go", extra=["INDIGO:NSE"]) == ["INDIGO:NSE"]  # contains, from the extras only
    bigger = c.with_more(["INFY:BSE", "tcs:nse"])
    assert len(c) == 2 and len(bigger) == 3 and bigger.complete("tc") == ["TCS:NSE"]  # first spelling wins
    assert bigger.complete("infy", anywhere=False) == ["INFY:NSE", "INFY:BSE"]
    assert resolve_instrument("indigo", c, extra=["INDIGO:BSE"]) == parse("INDIGO:BSE")


def naive(text: str, candidates: list[str], limit: int) -> list[str]:
    """The definition: every candidate checked, prefixes first, each group by rank."""
    needle = text.strip().upper()
    if not needle:
        return []
    first: dict[str, str] = {}
    for c in candidates:
        first.setdefault(c.upper(), c)

    def rank(u: str) -> tuple:
        symbol, _, exchange = u.partition(":")
        order = ("NSE", "NSE_INDEX", "BSE", "BSE_INDEX", "NFO", "BFO", "MCX", "CDS")
        return len(symbol), order.index(exchange) if exchange in order else len(order), u

    def words(text: str) -> list[str]:
        return re.findall(r"[A-Z0-9&]+", text.upper())

    def named(u: str) -> bool:
        """A word of its name starts with the one typed; several typed: they are in its name, the last a prefix."""
        typed, name = words(needle), words(NAMES.get(u, ""))
        if len(typed) == 1:
            return any(w.startswith(typed[0]) for w in name)
        return bool(typed) and " " + " ".join(typed) in " " + " ".join(name)

    squeezed = needle.replace(" ", "")
    starts = sorted((u for u in first if u.startswith(needle)), key=rank)[:limit]
    if squeezed != needle and squeezed:
        starts += sorted((u for u in first if u.startswith(squeezed) and u not in starts), key=rank)
    starts = starts[:limit]
    by_name = sorted((u for u in first if named(u) and u not in starts), key=rank)
    inside = sorted(
        (u for u in first if needle in u and not u.startswith(needle) and u not in starts + by_name), key=rank
    )
    return [first[u] for u in (starts + by_name + inside)[:limit]]


SYMBOLS = st.text("ABCNIFTY&-1 ", min_size=1, max_size=6) | st.sampled_from(
    ["INFY", "TCS", "SBIN", "NIFTY", "BANKNIFTY"]
)
CANDIDATES = st.lists(st.builds("{}:{}".format, SYMBOLS, st.sampled_from(["NSE", "BSE", "NFO", "NSE_INDEX", "X"])))


@given(CANDIDATES, CANDIDATES, st.text("ABCnify:&-1 S", max_size=5) | st.sampled_from(["tata c", "bank", "in", "n b"]),
       st.integers(1, 9))  # fmt: skip
def test_the_completer_finds_what_checking_every_candidate_finds(ours, extra, text, limit):
    assert Completer(ours).complete(text, limit, extra) == naive(text, ours + extra, limit)


def test_completion_over_an_instrument_master_is_quick():
    # about the size of Angel One's master: cash on two exchanges, a few expiries of futures and options
    names = [f"S{n:05d}X" for n in range(2_000)]
    master = [f"{s}:{e}" for s in names for e in ("NSE", "BSE")]
    master += [f"{s}{x}{k}{t}:NFO" for s in names[:500] for x in ("26DEC24", "30JAN25") for k in range(1000, 1500, 20)
               for t in ("CE", "PE")]  # fmt: skip
    c = Completer(master)
    assert len(c) > 50_000
    began = time.perf_counter()
    for text in ("s", "s0", "s01", "s0123", "x26", "dec", "1240ce", "nothing"):
        c.complete(text, 8, ["RELIANCE:NSE"] * 100)
    assert time.perf_counter() - began < 1.0  # eight keys; about 30 ms in all on a quiet machine
    found = c.complete("s00012")
    assert found[:3] == ["S00012X:NSE", "S00012X:BSE", "S00012X26DEC241000CE:NFO"] and len(found) == 8
    assert c.complete("s00012", 20) == naive("s00012", master, 20)


def test_what_is_typed_in_the_add_dialog_resolves_to_what_was_meant():
    known = ["NIFTY:NSE_INDEX", "WIPRO:NSE", "SENSEX:BSE_INDEX"]
    assert resolve_instrument("nifty", known) == parse("NIFTY:NSE_INDEX")  # the known exchange
    assert resolve_instrument("wi", known) == parse("WIPRO:NSE")  # the completion on screen
    assert resolve_instrument("WI:BSE", known) == parse("WI:BSE")  # written in full: as written
    assert resolve_instrument("ZOMATO", known) == parse("ZOMATO:NSE")
    with pytest.raises(InstrumentError):
        resolve_instrument("  ", known)
    with pytest.raises(InstrumentError):
        resolve_instrument("a:b:c", known)
