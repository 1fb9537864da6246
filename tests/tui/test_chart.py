"""The chart view in the pilot: `g` opens it on the selected row (and holds Quote mode for it),
live ticks move the forming bar, an interval key buckets again, a failing history says why
with the live bars still drawn, esc goes back (and drops the extra mode)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from oaws.bars.aggregator import Bar, Interval
from oaws.client import ClientError, Event, Status, Tick
from oaws.config import IST
from oaws.instruments import LTP, QUOTE, Instrument
from oaws.tui.app import WatchApp
from oaws.tui.chart import ChartHelp, ChartScreen, ChartView
from oaws.tui.models.chart import READY, UNAVAILABLE
from oaws.tui.models.watch import Watchlist

from .conftest import FIXED_NS, line, until
from .conftest import IST as TZ

REL, INFY = Instrument("RELIANCE", "NSE"), Instrument("INFY", "NSE")
URL = "ws://127.0.0.1:8765"


def at(hhmm: str, second: int = 0) -> int:
    """Epoch ms of 25 Nov 2025 at ``hhmm`` IST (the day of conftest's fixed clock)."""
    h, m = map(int, hhmm.split(":"))
    return int(datetime(2025, 11, 25, h, m, second, tzinfo=IST).timestamp() * 1000)


def tick(instrument: Instrument, ms: int, ltp: float, volume: int, close: float = 1480.0, mode: int = QUOTE) -> Tick:
    data = {"symbol": instrument.symbol, "exchange": instrument.exchange, "ltp": ltp, "ltt": ms,
            "timestamp": ms + 20, "volume": volume, "close": close, "change": round(ltp - close, 2),
            "change_percent": round((ltp - close) / close * 100, 2)}  # fmt: skip
    message = {"type": "market_data", "symbol": instrument.symbol, "exchange": instrument.exchange, "mode": mode}
    return Tick(instrument, mode, data, {**message, "data": data}, (ms + 25) * 1_000_000)


class FeedClient:
    """A client whose events the test sends while the app runs (``put``); it records subscriptions."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        for event in events:
            self.queue.put_nowait(event)
        self.requests: list[tuple[str, Any]] = []

    def put(self, *events: Event) -> None:
        for event in events:
            self.queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    async def subscribe(self, instruments: Iterable[Instrument], mode: int = 2) -> None:
        self.requests.append(("subscribe", (list(instruments), mode)))

    async def unsubscribe(self, instruments: Iterable[Instrument], mode: int | None = None) -> None:
        self.requests.append(("unsubscribe", (list(instruments), mode)))

    async def close(self) -> None:
        pass


def history_bars(instrument: Instrument, interval: Interval, upto: str = "10:15") -> list[Bar]:
    """A steady morning: bars from 09:15 to ``upto`` of 10,000 each, rising 0.5 a bar from 1,478."""
    out, start, end, p = [], at("09:15"), at(upto), 1478.0
    step = interval.seconds * 1000
    while start < end:
        out.append(Bar(instrument.symbol, instrument.exchange, interval.name, start, start + step,
                       p, p + 0.75, p - 0.25, p + 0.5, 10_000, final=True))  # fmt: skip
        start, p = start + step, p + 0.5
    return out


def make_app(events: Iterable[Event] = (), *, history: Any = None, mode: int = QUOTE) -> tuple[WatchApp, FeedClient]:
    """The watch of INFY and RELIANCE with columns that need no Depth: the list is held at ``mode``."""
    client = FeedClient([Status("connected", URL), *events])

    async def connect(instruments: list[Instrument], mode: int) -> FeedClient:
        return client

    lists = [Watchlist("w", [INFY, REL], ["symbol", "ltp", "change_percent"])]
    app = WatchApp(connect, lists, mode=mode, url=URL, clock=lambda: FIXED_NS / 1e9, monotonic=lambda: 1000.0,
                   tz=TZ, roll_every=3600.0, history=history)  # fmt: skip
    return app, client


def drawn(app: WatchApp) -> str:
    """The chart as the screen shows it, redrawn first."""
    screen = app.screen
    assert isinstance(screen, ChartScreen)
    screen.redraw()
    view = screen.query_one(ChartView)
    return "\n".join("".join(text for text, _ in line) for line in view._lines)


async def open_chart(pilot: Any, app: WatchApp, *keys: str) -> ChartScreen:
    await pilot.press(*keys, "g")
    await until(pilot, lambda: isinstance(app.screen, ChartScreen), what="the chart")
    assert isinstance(app.screen, ChartScreen)
    return app.screen


async def test_g_opens_the_chart_of_the_selected_row_in_quote_mode_and_esc_goes_back():
    asked: list[tuple[Instrument, str, int]] = []

    async def history(instrument: Instrument, interval: Interval, days: int) -> list[Bar]:
        asked.append((instrument, interval.name, days))
        return history_bars(instrument, interval)

    app, client = make_app([tick(REL, at("10:15", 1), 1484.0, 1_000), tick(INFY, at("10:15", 1), 1500.0, 500)],
                           history=history, mode=LTP)  # fmt: skip
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.ticks == 2, what="the first ticks")
        screen = await open_chart(pilot, app, "down")  # the second row: RELIANCE
        assert screen.instrument == REL
        await until(pilot, lambda: screen.chart.state == READY, what="the history")
        assert asked == [(REL, "5m", 5)]  # five calendar days: the last session shows before the open
        assert ("subscribe", ([REL], QUOTE)) in client.requests  # the grid's LTP ticks carry no volume
        text = drawn(app)
        assert text.startswith("RELIANCE · NSE  5m   1,484.00  +4.00  +0.27%")
        assert "history: 12 bars from the broker, then live" in text
        assert "Chart · RELIANCE · NSE · 5m" in str(screen.query_one("#chart-title").render())
        await pilot.press("escape")
        assert app.screen is app.main and app.charted == {}
        assert client.requests[-1] == ("unsubscribe", ([REL], QUOTE))
        await pilot.press("question_mark")
        assert not isinstance(app.screen, ChartHelp)  # the grid's help, not the chart's


async def test_live_ticks_move_the_forming_bar_and_an_interval_key_buckets_again():
    async def history(instrument: Instrument, interval: Interval, days: int) -> list[Bar]:
        return history_bars(instrument, interval)

    app, client = make_app([tick(REL, at("10:15", 1), 1484.0, 1_000)], history=history)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.ticks == 1, what="the first tick")
        screen = await open_chart(pilot, app, "down")
        chart = screen.chart
        await until(pilot, lambda: chart.state == READY, what="the history")
        assert chart.bars()[-1].close == 1484.0
        client.put(tick(REL, at("10:16", 0), 1486.5, 1_400), tick(REL, at("10:21", 0), 1485.0, 1_900))
        await until(pilot, lambda: app.ticks == 3, what="two more ticks")
        bars = chart.bars()
        assert [(b.start_ms, b.open, b.high, b.close) for b in bars[-2:]] == [
            (at("10:15"), 1484.0, 1486.5, 1486.5),
            (at("10:20"), 1485.0, 1485.0, 1485.0),
        ]
        assert "C 1,485.00" in drawn(app)
        await pilot.press("1")
        assert chart.interval.name == "1m"
        await until(pilot, lambda: chart.state == READY, what="the 1m history")
        assert [b.start_ms for b in chart.bars()[-3:]] == [at("10:15"), at("10:16"), at("10:21")]
        assert "Chart · RELIANCE · NSE · 1m" in str(screen.query_one("#chart-title").render())
        await pilot.press("right_square_bracket")
        assert chart.interval.name == "3m"
        await pilot.press("question_mark")
        assert isinstance(app.screen, ChartHelp)
        assert any(key.startswith("1") for key, _ in app.screen.rows())
        await pilot.press("x")
        await pilot.press("escape")
        assert app.screen is app.main
        await open_chart(pilot, app)  # the next chart opens at the interval left
        assert app.screen.chart.interval.name == "3m"  # type: ignore[attr-defined]


async def test_a_failing_history_says_why_and_the_live_bars_are_still_drawn():
    release = asyncio.Event()

    async def history(instrument: Instrument, interval: Interval, days: int) -> list[Bar]:
        await release.wait()
        raise ClientError(f"{instrument} has no history on this broker.")

    app, client = make_app([tick(REL, at("10:15", 1), 1484.0, 1_000)], history=history)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.ticks == 1, what="the first tick")
        screen = await open_chart(pilot, app, "down")
        assert "loading history…" in drawn(app)
        release.set()
        await until(pilot, lambda: screen.chart.state == UNAVAILABLE, what="the refusal")
        client.put(tick(REL, at("10:15", 30), 1483.0, 1_200))
        await until(pilot, lambda: app.ticks == 2, what="a live tick")
        text = drawn(app)
        assert "RELIANCE:NSE has no history on this broker (live bars only)" in text
        (live,) = screen.chart.bars()
        assert (live.open, live.low, live.close, live.volume) == (1484.0, 1483.0, 1483.0, 200)
        assert "┃" in text or "╻" in text or "╹" in text  # its candle


async def test_without_history_the_chart_says_so():
    app, _ = make_app([tick(REL, at("10:15", 1), 1484.0, 1_000)])
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.ticks == 1, what="the first tick")
        await open_chart(pilot, app, "down")
        assert "this watch has no history to ask (live bars only)" in drawn(app)


async def test_the_grid_waits_behind_the_chart_and_catches_up_when_it_closes():
    app, client = make_app([tick(INFY, at("10:15", 1), 1500.0, 500), tick(REL, at("10:15", 1), 1484.0, 1_000)])
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.ticks == 2, what="the first ticks")
        app.frame()
        assert "1,500.00" in line(app, 0)
        await open_chart(pilot, app)  # INFY's
        rendered = app.grid.rendered
        client.put(tick(INFY, at("10:15", 5), 1512.5, 700))
        await until(pilot, lambda: app.ticks == 3, what="INFY's tick")
        app.frame()
        assert app.grid.rendered == rendered  # no row drawn under the chart
        assert app.screen.chart.bars()[-1].close == 1512.5  # type: ignore[attr-defined]
        await pilot.press("escape")
        assert app.grid.rendered > rendered
        assert "1,512.50" in app.grid.render_line(0).text


async def test_the_watch_command_asks_the_servers_history_with_its_url_and_key(monkeypatch):
    from oaws import client
    from oaws.bars.aggregator import parse_interval
    from oaws.cli.watch import chart_history
    from oaws.config import ClientSettings

    calls = []

    async def fetch_history(url, instrument, interval, *, days=None, api_key=None, **kw):
        calls.append((url, instrument, interval, days, api_key))
        return history_bars(instrument, interval)

    monkeypatch.setattr(client, "fetch_history", fetch_history, raising=False)
    history = chart_history(ClientSettings("ws://127.0.0.1:9", "secret", autostart=False))
    bars = await history(REL, parse_interval("15m"), 1)
    assert calls == [("ws://127.0.0.1:9", REL, parse_interval("15m"), 1, "secret")]
    assert [b.start_ms for b in bars[:2]] == [at("09:15"), at("09:30")]
