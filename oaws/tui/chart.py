"""The chart of one instrument: candlesticks, volume, the previous close, live (key ``g``).

``models.chart`` decides everything (the bars, history joined to live ones, the cells);
this module only turns its pieces into strips. The app feeds the screen's model every tick
of the instrument (an Aggregator's few operations: only the forming bar changes) and asks
the view to redraw a few times a second (``RIBBON_FPS``), which it does only when the
model changed. The history is asked for in the background, once per interval: the chart
says "loading history…" meanwhile, then shows it, or the one sentence why there is none,
with the live bars drawn either way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.segment import Segment
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Static

from oaws.bars.aggregator import Bar, Interval, parse_interval
from oaws.client import ClientError
from oaws.instruments import Instrument
from oaws.names import readable
from oaws.ticks import change_of
from oaws.tui.help import HelpScreen
from oaws.tui.models.chart import CHART_INTERVALS, LOADING, READY, ChartModel, Drawing, days_for
from oaws.tui.models.columns import Piece, direction_style, price_text, signed_text
from oaws.tui.models.health import Health
from oaws.tui.models.watch import WatchModel
from oaws.tui.status import StatusBar

log = logging.getLogger(__name__)

#: (instrument, interval, days) -> the broker's bars, oldest first; raises ClientError (one sentence) when it has none
History = Callable[[Instrument, Interval, int], Awaitable[list[Bar]]]

STYLE_NAMES = (
    "plain", "title", "label", "muted", "axis", "up", "down", "flat", "vol-up", "vol-down",
    "prev", "last-up", "last-down", "current", "note",
)  # fmt: skip
#: the chart's keys, for its `?` screen
CHART_KEYS: tuple[tuple[str, str], ...] = (
    ("1 … 8", "interval: " + ", ".join(f"{n} {name}" for n, name in enumerate(CHART_INTERVALS, start=1))),
    ("[  ]  -  +", "finer / coarser interval"),
    ("esc  backspace", "back to the grid"),
    ("?", "these keys"),
    ("q", "quit"),
)


class ChartView(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"chart--{name}" for name in STYLE_NAMES}

    def __init__(self, chart: ChartModel, model: WatchModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chart = chart
        self.model = model
        self.drawing = Drawing(model.grouping)
        self._lines: list[list[Piece]] = []
        #: (the model's version, the size) when last drawn
        self._seen: tuple[int, int, int] = (-1, 0, 0)
        #: times the chart was worked out again, for the tests and the benchmark
        self.draws = 0

    @property
    def title_name(self) -> str:
        row = self.model.rows.get(self.chart.instrument)
        label = row.label if row is not None else readable(self.chart.instrument)
        return f"{label} · {self.chart.instrument.exchange}"

    def update_if_changed(self) -> None:
        key = (self.chart.version, self.size.width, self.size.height)
        if key != self._seen and self.size.width and self.size.height:
            self._seen = key
            self._lines = self.lines()
            self.draws += 1
            self.refresh()

    def on_resize(self) -> None:
        self.update_if_changed()

    def lines(self) -> list[list[Piece]]:
        """The title, the interval line, then the chart."""
        chart, g = self.chart, self.model.grouping
        width, height = self.size.width, self.size.height
        data = chart.last or self._row_data()
        change, pct = change_of(data)
        trend = direction_style(change)
        ltp = data.get("ltp")
        title: list[Piece] = [(self.title_name, "title"), (f"  {chart.interval.name}   ", "label")]
        if isinstance(ltp, (int, float)):
            title += [
                (price_text(ltp, g), trend),
                (f"  {signed_text(change, '', g)}  {signed_text(pct, '%', 'none')}", trend),
            ]
        else:
            title.append(("waiting for the first tick…", "muted"))
        prev = chart.previous_close
        if prev is not None:
            title += [("    ╌╌ prev close ", "prev"), (price_text(prev, g), "prev")]
        bars = chart.bars()
        if bars:
            b = bars[-1]
            title += [
                ("    O ", "label"), (price_text(b.open, g), "plain"),
                (" H ", "label"), (price_text(b.high, g), "plain"),
                (" L ", "label"), (price_text(b.low, g), "plain"),
                (" C ", "label"), (price_text(b.close, g), "plain"),
            ]  # fmt: skip
        keys: list[Piece] = []
        for n, name in enumerate(CHART_INTERVALS, start=1):
            keys += [
                (f"{n}", "label"),
                (f" {name} ", "current" if name == chart.interval.name else "muted"),
                (" ", "plain"),
            ]
        keys.append(("  ", "plain"))
        if chart.state == LOADING:
            keys.append(("loading history…", "note"))
        elif chart.state == READY:
            count = len(chart.history)
            keys.append((f"history: {count} bar{'s' if count != 1 else ''} from the broker, then live", "muted"))
        else:
            keys.append((f"{chart.reason} (live bars only)", "note"))
        frame = self.drawing.draw(
            bars,
            width,
            max(1, height - 3),
            previous_close=prev,
            last=ltp if isinstance(ltp, (int, float)) else None,
            interval=chart.interval,
            exchange=chart.instrument.exchange,
        )
        return [title, keys, [], *frame.lines]

    def _row_data(self) -> dict:
        row = self.model.rows.get(self.chart.instrument)
        return row.data if row is not None else {}

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        style = self.get_component_rich_style
        segments = [Segment(text, style(f"chart--{name}")) for text, name in self._lines[y]]
        used = sum(len(s.text) for s in segments)
        if used < width:
            segments.append(Segment(" " * (width - used), style("chart--plain")))
        return Strip(segments).crop(0, width)


class ChartHelp(HelpScreen):
    """`?` on the chart: its own keys (the main screen's do not work here)."""

    TITLE_TEXT = "Chart keys"
    NOTE = (
        "One column a bar: the body (open to close) heavy, the wicks (high and low) light; "
        "green when it closed at or above its open, red below. Volume under it; the dashed "
        "line is the previous close; times are exchange time (IST). The last bar is forming."
    )

    def rows(self) -> list[tuple[str, str]]:
        return list(CHART_KEYS)


class ChartScreen(Screen[None]):
    """Pushed over the grid by `g`; escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "close", "Back"),
        *(
            Binding(str(n), f"interval('{name}')", "Interval", key_display="1…8", show=n == 1)
            for n, name in enumerate(CHART_INTERVALS, start=1)
        ),
        Binding("left_square_bracket,minus", "step(-1)", "Finer", key_display="["),
        Binding("right_square_bracket,plus", "step(1)", "Coarser", key_display="]"),
        Binding("question_mark", "chart_help", "Keys"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, chart: ChartModel, model: WatchModel, health: Health, history: History | None) -> None:
        super().__init__()
        self.chart = chart
        self.model = model
        self.health = health
        self.history = history

    @property
    def instrument(self) -> Instrument:
        return self.chart.instrument

    def compose(self) -> ComposeResult:
        self.view = ChartView(self.chart, self.model, id="chart")
        yield Static(self._title(), id="chart-title")
        yield self.view
        yield StatusBar(self.health, self.model, id="chart-status")
        yield Footer()

    def _title(self) -> str:
        return f"Chart · {self.view.title_name} · {self.chart.interval.name}"

    def on_mount(self) -> None:
        self._load()
        self.redraw()

    def _load(self) -> None:
        """The history of the current interval, in the background, unless it is there or on its way."""
        name = self.chart.interval.name
        if name in self.chart.states:
            return  # there, or asked for already
        if self.history is None:
            self.chart.history_failed(name, "this watch has no history to ask")
            return
        self.chart.loading(name)
        self.run_worker(self._fetch(parse_interval(name)), group="history", exit_on_error=False)

    async def _fetch(self, interval: Interval) -> None:
        assert self.history is not None
        try:
            bars = await self.history(self.instrument, interval, days_for(interval))
        except ClientError as exc:  # HistoryUnavailable and the connection's failures: one sentence each
            self.chart.history_failed(interval.name, str(exc).rstrip("."))
        except Exception as exc:  # a bug in the history path must not take the chart down
            log.exception("history of %s failed", self.instrument)
            self.chart.history_failed(interval.name, f"the history failed: {exc}")
        else:
            self.chart.history_arrived(interval.name, bars)
        self.redraw()

    def redraw(self) -> None:
        # the frame timer may fire between the push of this screen and its compose
        for view in self.query(ChartView):
            view.update_if_changed()

    def action_interval(self, name: str) -> None:
        if self.chart.set_interval(name):
            self.query_one("#chart-title", Static).update(self._title())
            self._load()
            self.redraw()

    def action_step(self, delta: int) -> None:
        self.action_interval(self.chart.step(delta))

    def action_chart_help(self) -> None:
        self.app.push_screen(ChartHelp())

    def action_close(self) -> None:
        self.dismiss(None)
