"""What the market watch shows, decided without a screen.

Ticks land here at whatever rate the feed sends them; the screen asks, a few times a
second, which rows changed and what each of them says now. Nothing in this module knows
Textual: a row is described as ``(text, style name)`` pieces that the grid widget turns
into a strip with the styles of ``app.tcss``. That keeps the hot path (``apply``) down to
a few dict operations and lets the tests check every decision without a terminal.
"""

from __future__ import annotations

import heapq
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from oaws.format import indian
from oaws.instruments import Instrument, InstrumentError, make, parse

#: how long the changed digits of a new LTP stay highlighted (seconds)
FLASH_SECONDS = 0.6
#: prices kept per row for the sparkline
HISTORY = 32
#: a sorted grid re-sorts at most this often (seconds), so rows do not jump on every tick
RESORT_SECONDS = 1.0
#: the sort orders ``s`` cycles through
SORT_CYCLE: tuple[str, ...] = ("given", "change_percent", "symbol", "volume")
GROUPINGS: tuple[str, ...] = ("indian", "intl", "none")
SPARKS = "▁▂▃▄▅▆▇█"

Piece = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    #: "left" or "right"
    align: str
    #: columns are dropped from the highest number down when the screen is narrow
    drop: int
    #: ascending by default when sorted by this column (text); numbers sort high first
    ascending: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("symbol", "Symbol", 10, "left", 0, ascending=True),
    Column("exchange", "Exch", 9, "left", 6, ascending=True),
    Column("ltp", "LTP", 10, "right", 0),
    Column("change", "Chg", 9, "right", 3),
    Column("change_percent", "Chg%", 7, "right", 1),
    Column("open", "Open", 10, "right", 9),
    Column("high", "High", 10, "right", 7),
    Column("low", "Low", 10, "right", 7),
    Column("close", "Prev", 10, "right", 8),
    Column("volume", "Volume", 12, "right", 4),
    Column("ltt", "Time", 8, "right", 5),
    Column("spark", "Trend", 16, "left", 2),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
SORT_LABELS = {
    "given": "as given",
    "change_percent": "change %",
    "symbol": "symbol",
    "volume": "volume",
    "exchange": "exchange",
    "ltp": "LTP",
    "change": "change",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "prev close",
    "ltt": "time",
    "spark": "trend",
}
GAP = 2
INDEX_EXCHANGES = frozenset({"NSE_INDEX", "BSE_INDEX"})


def is_index(instrument: Instrument) -> bool:
    """Indices have no volume and no order book: their empty fields stay blank, not zero."""
    return instrument.exchange in INDEX_EXCHANGES


def group_digits(value: int, grouping: str) -> str:
    if grouping == "indian":
        return indian(value)
    if grouping == "intl":
        return f"{value:,}"
    return str(value)


def price_text(value: Any, grouping: str = "indian") -> str:
    """A price with two decimals and the chosen digit grouping (1,23,456.70 in Indian style)."""
    if not isinstance(value, (int, float)):
        return ""
    whole, _, frac = f"{abs(value):.2f}".partition(".")
    sign = "-" if value < 0 and (whole != "0" or frac != "00") else ""
    return f"{sign}{group_digits(int(whole), grouping)}.{frac}"


def signed_text(value: Any, suffix: str = "", grouping: str = "indian") -> str:
    if not isinstance(value, (int, float)):
        return ""
    text = price_text(abs(value), grouping)
    return ("+" if value > 0 else "-" if value < 0 else "") + text + suffix


def changed_from(old: str, new: str) -> int:
    """Where the changed digits of ``new`` start, as an index into ``new``; len(new) when none changed."""
    shift = len(new) - len(old)
    for i, ch in enumerate(new):
        j = i - shift
        if j < 0 or old[j] != ch:
            return i
    return len(new)


def sparkline(values: Iterable[float], width: int) -> str:
    """The last ``width`` values as block characters scaled between their low and high."""
    points = list(values)[-width:]
    if not points:
        return ""
    low, high = min(points), max(points)
    if high == low:
        return SPARKS[3] * len(points)
    scale = (len(SPARKS) - 1) / (high - low)
    return "".join(SPARKS[round((p - low) * scale)] for p in points)


def change_of(data: dict[str, Any]) -> tuple[float | None, float | None]:
    """(change, change %) from the tick, or from LTP and previous close when the tick has none."""
    change, pct = data.get("change"), data.get("change_percent")
    if change is None:
        ltp, close = data.get("ltp"), data.get("close")
        if isinstance(ltp, (int, float)) and isinstance(close, (int, float)) and close:
            change = ltp - close
            pct = change / close * 100
    return change, pct


def direction_style(value: Any) -> str:
    if not isinstance(value, (int, float)) or value == 0:
        return "flat"
    return "up" if value > 0 else "down"


@dataclass(slots=True)
class Row:
    instrument: Instrument
    data: dict[str, Any] = field(default_factory=dict)
    history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    #: +1 / -1: which way the last LTP change went
    move: int = 0
    #: where the flashing part of the LTP text starts, and until when (monotonic seconds)
    flash_from: int = 0
    flash_until: float = 0.0
    error: str | None = None
    ticks: int = 0


@dataclass(slots=True)
class Watchlist:
    name: str
    instruments: list[Instrument]


class WatchModel:
    """Rows, their order, the cursor and what changed since the screen last looked.

    ``clock`` is monotonic seconds (flashes, re-sorting); tests pass a fixed one.
    """

    def __init__(
        self,
        watchlists: list[Watchlist],
        *,
        current: int = 0,
        grouping: str = "indian",
        clock: Callable[[], float] = time.monotonic,
        tz: tzinfo | None = None,
    ) -> None:
        if not watchlists:
            watchlists = [Watchlist("default", [])]
        if grouping not in GROUPINGS:
            raise ValueError(f"unknown digit grouping {grouping!r}; use one of {', '.join(GROUPINGS)}")
        self.watchlists = watchlists
        self.current = current % len(watchlists)
        self.grouping = grouping
        self.clock = clock
        self.tz = tz
        self.rows: dict[Instrument, Row] = {}
        self.view: list[Instrument] = []
        self.position: dict[Instrument, int] = {}
        self.sort = "given"
        self.descending = False
        self.selected: Instrument | None = None
        self.stale = False
        self.dirty: set[Instrument] = set()
        self.flashing: dict[Instrument, float] = {}
        #: the order changed (sort, add, remove, switch): the whole grid must be redrawn
        self.reordered = True
        self._changed_since_sort = False
        self._sorted_at = float("-inf")
        self._show_list()

    # Watchlists -------------------------------------------------------------------
    @property
    def watchlist(self) -> Watchlist:
        return self.watchlists[self.current]

    def switch(self, step: int) -> tuple[list[Instrument], list[Instrument]]:
        """Show the next (+1) or previous (-1) watchlist; returns (to subscribe, to unsubscribe)."""
        before = set(self.watchlist.instruments)
        self.current = (self.current + step) % len(self.watchlists)
        after = self.watchlist.instruments
        self._show_list()
        return [i for i in after if i not in before], [i for i in before if i not in set(after)]

    def add(self, instrument: Instrument) -> bool:
        """Add to the current watchlist and select it; False when it is there already."""
        self.selected = instrument
        if instrument in self.watchlist.instruments:
            self.reordered = True
            return False
        self.watchlist.instruments.append(instrument)
        self._show_list()
        self.selected = instrument
        return True

    def remove(self, instrument: Instrument) -> bool:
        """Remove from the current watchlist; the cursor moves to the next row."""
        if instrument not in self.watchlist.instruments:
            return False
        index = self.position.get(instrument, 0)
        self.watchlist.instruments.remove(instrument)
        self.rows.pop(instrument, None)
        self._show_list()
        self.selected = self.view[min(index, len(self.view) - 1)] if self.view else None
        return True

    def wanted(self) -> list[Instrument]:
        return list(self.watchlist.instruments)

    def _show_list(self) -> None:
        for instrument in self.watchlist.instruments:
            if instrument not in self.rows:
                self.rows[instrument] = Row(instrument)
        self._sort_now()
        if self.selected not in self.position:
            self.selected = self.view[0] if self.view else None

    # Ticks ------------------------------------------------------------------------
    def apply(self, instrument: Instrument, data: dict[str, Any]) -> bool:
        """Take one tick; False when the instrument is not on screen (its tick is ignored)."""
        row = self.rows.get(instrument)
        if row is None:
            return False
        old = row.data.get("ltp")
        ltp = data.get("ltp")
        row.data = data
        row.ticks += 1
        row.error = None
        if isinstance(ltp, (int, float)):
            if ltp != old and isinstance(old, (int, float)):
                row.move = 1 if ltp > old else -1
                now = self.clock()
                start = changed_from(price_text(old, self.grouping), price_text(ltp, self.grouping))
                row.flash_from = min(row.flash_from, start) if row.flash_until > now else start
                row.flash_until = now + FLASH_SECONDS
                self.flashing[instrument] = row.flash_until
            row.history.append(float(ltp))
        self.dirty.add(instrument)
        self._changed_since_sort = True
        return True

    def fail(self, instrument: Instrument, message: str) -> None:
        """The server refused this instrument: its row says why instead of prices."""
        row = self.rows.get(instrument)
        if row is not None:
            row.error = message
            self.dirty.add(instrument)

    def set_stale(self, stale: bool) -> None:
        """Connection lost (True) or back (False): every row is dimmed or undimmed."""
        if stale != self.stale:
            self.stale = stale
            self.reordered = True

    # What the screen redraws ------------------------------------------------------
    def take_changes(self) -> tuple[bool, set[Instrument]]:
        """(whole grid, changed rows) since the last call, counting flashes that just ended."""
        now = self.clock()
        if self.flashing:
            ended = [i for i, until in self.flashing.items() if until <= now]
            for instrument in ended:
                del self.flashing[instrument]
            self.dirty.update(ended)
        if self.sort != "given" and self._changed_since_sort and now - self._sorted_at >= RESORT_SECONDS:
            old = self.view
            self._sort_now()
            self.reordered = self.reordered or self.view != old
        whole, dirty = self.reordered, self.dirty
        self.reordered, self.dirty = False, set()
        return whole, dirty

    # Sorting ----------------------------------------------------------------------
    def cycle_sort(self) -> str:
        """The next of ``SORT_CYCLE``, each in its natural direction."""
        key = SORT_CYCLE[(SORT_CYCLE.index(self.sort) + 1) % len(SORT_CYCLE)] if self.sort in SORT_CYCLE else "given"
        self.sort_by(key)
        return key

    def sort_by(self, key: str, descending: bool | None = None) -> None:
        """Sort by a column key (or "given"); sorting by the current key again reverses it."""
        if key != "given" and key not in COLUMN_BY_KEY:
            raise ValueError(f"cannot sort by {key!r}")
        if descending is None:
            if key == self.sort and key != "given":
                descending = not self.descending
            else:
                descending = key != "given" and not COLUMN_BY_KEY[key].ascending
        self.sort, self.descending = key, descending
        self._sort_now()

    def _sort_key(self, instrument: Instrument) -> tuple[int, Any]:
        row = self.rows[instrument]
        key = self.sort
        if key == "symbol":
            return 0, instrument.symbol
        if key == "exchange":
            return 0, (instrument.exchange, instrument.symbol)
        if key == "change_percent" or key == "change":
            change, pct = change_of(row.data)
            value = pct if key == "change_percent" else change
        elif key == "spark":
            value = (
                (row.history[-1] - row.history[0]) / row.history[0] if len(row.history) > 1 and row.history[0] else None
            )
        else:
            value = row.data.get(key)
        # rows without a value go last whichever the direction
        if not isinstance(value, (int, float)):
            return (0 if self.descending else 1), 0.0
        return (1 if self.descending else 0), value

    def _sort_now(self) -> None:
        given = self.watchlist.instruments
        if self.sort == "given":
            view = list(given)
        else:
            view = sorted(given, key=self._sort_key, reverse=self.descending)
        self.view = view
        self.position = {instrument: n for n, instrument in enumerate(view)}
        self._sorted_at = self.clock()
        self._changed_since_sort = False
        self.reordered = True

    # The cursor -------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        return self.position.get(self.selected, 0) if self.selected is not None else 0

    def select_index(self, index: int) -> Instrument | None:
        if not self.view:
            return None
        old = self.selected
        self.selected = self.view[max(0, min(index, len(self.view) - 1))]
        if old != self.selected:
            if old is not None:
                self.dirty.add(old)
            self.dirty.add(self.selected)
        return self.selected

    def move(self, delta: int) -> Instrument | None:
        return self.select_index(self.cursor + delta)

    # Presentation -----------------------------------------------------------------
    def layout(self, width: int) -> list[tuple[Column, int]]:
        """The columns that fit in ``width`` cells, with their widths."""
        longest = max((len(i.symbol) for i in self.view), default=6)
        columns = [(c, max(c.width, len(c.title)) if c.key != "symbol" else max(6, min(longest, 24))) for c in COLUMNS]
        while len(columns) > 2 and sum(w for _, w in columns) + GAP * (len(columns) - 1) > width:
            worst = max(columns, key=lambda cw: cw[0].drop)
            columns.remove(worst)
        return columns

    def header(self, layout: list[tuple[Column, int]]) -> list[Piece]:
        pieces: list[Piece] = []
        for n, (column, width) in enumerate(layout):
            title = column.title
            style = "header"
            if column.key == self.sort:
                title = title + ("▼" if self.descending else "▲")
                style = "header-sorted"
            if n:
                pieces.append((" " * GAP, "header"))
            pieces.append((title.rjust(width) if column.align == "right" else title.ljust(width), style))
        return pieces

    def cells(self, instrument: Instrument, layout: list[tuple[Column, int]]) -> list[Piece]:
        """One row as styled pieces, padded to the layout (without the cursor or stale dimming)."""
        row = self.rows[instrument]
        data = row.data
        g = self.grouping
        change, pct = change_of(data)
        trend = direction_style(change)
        now = self.clock() if row.flash_until else 0.0
        pieces: list[Piece] = []
        for n, (column, width) in enumerate(layout):
            if n:
                pieces.append((" " * GAP, "plain"))
            key = column.key
            if key == "symbol":
                pieces.append((instrument.symbol[:width].ljust(width), "symbol"))
                continue
            if key == "exchange":
                pieces.append((instrument.exchange[:width].ljust(width), "muted"))
                continue
            if row.error is not None:
                # the reason takes the room of the figures
                room = sum(w for _, w in layout[n:]) + GAP * (len(layout) - n - 1)
                pieces.append((row.error[:room].ljust(room), "error"))
                break
            if key == "ltp":
                text = price_text(data.get("ltp"), g)
                pad = " " * max(0, width - len(text))
                if row.flash_until > now and row.flash_from < len(text):
                    flash = "flash-up" if row.move > 0 else "flash-down"
                    pieces += [(pad + text[: row.flash_from], trend), (text[row.flash_from :], flash)]
                else:
                    pieces.append((pad + text, trend))
                continue
            if key == "change":
                text, style = signed_text(change, "", g), trend
            elif key == "change_percent":
                text, style = signed_text(pct, "%", "none"), trend
            elif key == "volume":
                volume = data.get("volume")
                shown = isinstance(volume, (int, float)) and not (volume == 0 and is_index(instrument))
                text, style = (group_digits(int(volume), g) if shown else ""), "plain"
            elif key == "ltt":
                text, style = self.clock_text(data.get("ltt") or data.get("timestamp")), "muted"
            elif key == "spark":
                history = row.history
                text = sparkline(history, width)
                style = direction_style(history[-1] - history[0]) if len(history) > 1 else "flat"
                pieces.append((text.ljust(width), "spark-" + style))
                continue
            else:
                text, style = price_text(data.get(key), g), "plain"
            pieces.append((text[-width:].rjust(width) if column.align == "right" else text[:width].ljust(width), style))
        return pieces

    def clock_text(self, ms: Any) -> str:
        if not isinstance(ms, (int, float)) or ms <= 0:
            return ""
        return datetime.fromtimestamp(ms / 1000, self.tz).strftime("%H:%M:%S")


# Depth --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Level:
    price: str
    quantity: str
    orders: str
    #: quantity as a share of the largest quantity on either side (0..1), for the bar
    share: float


@dataclass(frozen=True, slots=True)
class DepthFigures:
    bids: list[Level]
    asks: list[Level]
    total_bid: str
    total_ask: str
    #: share of the buy side in the total quantity of both sides (0..1), None without totals
    buy_share: float | None
    facts: list[tuple[str, str]]
    spread: str


def _levels(side: Any) -> list[dict[str, Any]]:
    return [lv for lv in side if isinstance(lv, dict)][:5] if isinstance(side, list) else []


def depth_view(data: dict[str, Any], grouping: str = "indian", tz: tzinfo | None = None) -> DepthFigures:
    """Five levels a side with bar lengths, the day's figures, and who leads the book."""
    depth = data.get("depth") if isinstance(data.get("depth"), dict) else {}
    buys, sells = _levels(depth.get("buy")), _levels(depth.get("sell"))
    biggest = max((int(lv.get("quantity") or 0) for lv in buys + sells), default=0) or 1

    def level(lv: dict[str, Any] | None) -> Level:
        if lv is None or not lv.get("quantity"):
            return Level("", "", "", 0.0)
        qty = int(lv.get("quantity") or 0)
        return Level(
            price_text(lv.get("price"), grouping),
            group_digits(qty, grouping),
            str(lv.get("orders") or ""),
            qty / biggest,
        )

    bids = [level(buys[n] if n < len(buys) else None) for n in range(5)]
    asks = [level(sells[n] if n < len(sells) else None) for n in range(5)]
    tb, ts = data.get("total_buy_quantity"), data.get("total_sell_quantity")
    share = tb / (tb + ts) if isinstance(tb, int) and isinstance(ts, int) and tb + ts > 0 else None
    spread = ""
    best_bid = buys[0].get("price") if buys else None
    best_ask = sells[0].get("price") if sells else None
    if isinstance(best_bid, (int, float)) and isinstance(best_ask, (int, float)) and best_bid and best_ask:
        spread = price_text(best_ask - best_bid, grouping)
    change, pct = change_of(data)
    facts = [
        ("LTP", price_text(data.get("ltp"), grouping)),
        (
            "Change",
            f"{signed_text(change, '', grouping)} ({signed_text(pct, '%', 'none')})" if change is not None else "",
        ),
        ("Open", price_text(data.get("open"), grouping)),
        ("High", price_text(data.get("high"), grouping)),
        ("Low", price_text(data.get("low"), grouping)),
        ("Prev close", price_text(data.get("close"), grouping)),
        # zero volume, average and last quantity mean "none" (an index, or before the first trade)
        ("Avg price", price_text(data.get("avg_trade_price"), grouping) if data.get("avg_trade_price") else ""),
        ("Volume", group_digits(int(data["volume"]), grouping) if data.get("volume") else ""),
        (
            "Last qty",
            group_digits(int(data["last_trade_quantity"]), grouping) if data.get("last_trade_quantity") else "",
        ),
        (
            "Circuits",
            f"{price_text(data.get('lower_circuit'), grouping)} – {price_text(data.get('upper_circuit'), grouping)}"
            if data.get("upper_circuit")
            else "",
        ),
        ("OI", group_digits(int(data["oi"]), grouping) if data.get("oi") else ""),
        (
            "Last trade",
            datetime.fromtimestamp(data["ltt"] / 1000, tz).strftime("%H:%M:%S")
            if isinstance(data.get("ltt"), (int, float)) and data["ltt"] > 0
            else "",
        ),
    ]
    return DepthFigures(
        bids,
        asks,
        group_digits(tb, grouping) if isinstance(tb, int) else "",
        group_digits(ts, grouping) if isinstance(ts, int) else "",
        share,
        [(k, v) for k, v in facts if v],
        spread,
    )


def bar(share: float, width: int) -> str:
    """A horizontal bar of ``share`` (0..1) of ``width`` cells, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, share)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + ("" if not part else " ▏▎▍▌▋▊▉"[part]))[:width]


# The status line ----------------------------------------------------------------
#: Ticks stamped longer ago than this (ms) are no latency sample. A live tick reaches the
#: screen in milliseconds, and one that falls behind cannot get seconds late: the proxy
#: conflates a slow client (latest tick per instrument only) and closes it after 3 s of
#: that. So a stamp more than 5 s old means the tick was not just made: a tick replayed by
#: ``oaws replay`` (it keeps its recorded ``ts_ns``, minutes or days old), a snapshot of the
#: last known tick that no subscription reply announced, or a server whose clock is far
#: off ours. Shown as latency, any of them says the feed is slow when it is not.
LIVE_LATENCY_MS = 5_000.0


def subscribed_in(body: dict[str, Any]) -> list[Instrument]:
    """The instruments a subscription reply says were subscribed (both the batch and the single form)."""
    kind = body.get("type")
    if kind == "subscribe":
        entries = body.get("subscriptions")
    elif kind == "subscription":
        entries = [body]
    else:
        return []
    subscribed = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("status") == "success":
            try:
                subscribed.append(make(entry.get("symbol"), entry.get("exchange")))
            except InstrumentError:
                continue
    return subscribed


class Health:
    """Connection state, ticks per second and latency, rolled over once a second."""

    def __init__(self, url: str, *, stale_after: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.stale_after = stale_after
        self.clock = clock
        self.state = "connecting"
        self.detail = ""
        self.retry_at: float | None = None
        self.count = 0
        self.latencies: list[float] = []
        self.tps = 0
        self.latency: tuple[float, float] | None = None
        self.last_tick: float | None = None
        self.notice = ""
        #: instruments whose next tick is the server's snapshot of the last known one
        self.snapshot_due: set[Instrument] = set()

    def connection(self, state: str, detail: str = "", retry_at: float | None = None) -> None:
        self.state, self.detail, self.retry_at = state, detail, retry_at
        if state == "connected":
            # a new connection: the client resubscribes, and those replies announce the snapshots again
            self.snapshot_due.clear()

    def subscribed(self, instruments: Iterable[Instrument]) -> None:
        """The server confirmed these subscriptions (first ones, added, after a reconnect, a mode change).

        Right after its reply it sends the last tick it knows of each, which may be minutes
        old: that tick says how old the market's last trade is, not how fast the feed is.
        (When the server knows no tick yet, the first live tick is skipped instead: one
        sample less, never a wrong one.)
        """
        self.snapshot_due.update(instruments)

    def tick(self, instrument: Instrument, latency_ms: float | None) -> None:
        self.count += 1
        due = self.snapshot_due
        if due and instrument in due:
            due.discard(instrument)
        elif latency_ms is not None and latency_ms <= LIVE_LATENCY_MS:
            self.latencies.append(latency_ms)

    def roll(self) -> None:
        """Close the current second: ticks per second and latency p50 / max of its live samples (none: no figure)."""
        now = self.clock()
        if self.count:
            self.last_tick = now
        self.tps = self.count
        if self.latencies:
            v = sorted(self.latencies)
            self.latency = (v[len(v) // 2], v[-1])
        else:
            self.latency = None
        self.count = 0
        self.latencies = []

    @property
    def stale(self) -> bool:
        """Connected, ticks came before, and none for ``stale_after`` seconds."""
        return (
            self.state == "connected"
            and self.last_tick is not None
            and self.count == 0
            and self.clock() - self.last_tick >= self.stale_after
        )

    def pieces(self) -> list[Piece]:
        """The status line: where, how the connection is, how busy, how fast."""
        now = self.clock()
        if self.state == "connected" and self.stale:
            state = (f"stale: no tick for {now - (self.last_tick or now):.0f} s", "status-stale")
        elif self.state == "connected":
            state = ("● connected", "status-ok")
        elif self.state == "reconnecting":
            wait = f", retry in {max(0.0, (self.retry_at or now) - now):.0f} s" if self.retry_at else ""
            state = (f"○ reconnecting{wait}: {self.detail}" if self.detail else f"○ reconnecting{wait}", "status-bad")
        elif self.state == "refused":
            state = (f"✕ {self.detail}", "status-bad")
        else:
            state = ("… connecting", "status-wait")
        pieces: list[Piece] = [(self.url, "status-url"), ("  ", "status"), state, (f"  {self.tps} ticks/s", "status")]
        if self.latency is not None:
            pieces.append((f"  latency {self.latency[0]:.1f} ms (max {self.latency[1]:.1f})", "status"))
        if self.notice:
            pieces.append((f"  {self.notice}", "status-notice"))
        return pieces


# Completion ---------------------------------------------------------------------
#: Which exchange a bare symbol means first (RELIANCE: NSE before BSE; contracts last).
EXCHANGE_PREFERENCE = {e: i for i, e in enumerate(("NSE", "NSE_INDEX", "BSE", "BSE_INDEX", "NFO", "BFO", "MCX", "CDS"))}


def _rank(upper: str) -> tuple[int, int, str]:
    """Shorter symbols first (the one typed in full, then cash and indices before contracts), then by exchange."""
    symbol, _, exchange = upper.partition(":")
    return len(symbol), EXCHANGE_PREFERENCE.get(exchange, len(EXCHANGE_PREFERENCE)), upper


class Completer:
    """Completion over a fixed set of candidates, fast enough for an instrument master (100k+) on every key.

    The candidates are sorted once, upper-cased: those starting with what is typed are one
    slice, found by bisection. The slower scan for candidates that only contain it runs
    only when the prefixes do not fill the list. Small, changing candidates (the session's
    watchlists) come as ``extra`` on each call instead of rebuilding the whole set.
    """

    def __init__(self, candidates: Iterable[str] = ()) -> None:
        shown: dict[str, str] = {}
        for candidate in candidates:
            upper = candidate.upper()
            if upper == candidate:
                upper = candidate  # one string, not two, for the usual upper-case symbol
            shown.setdefault(upper, candidate)
        self._shown = shown
        self._keys = sorted(shown)

    def __len__(self) -> int:
        return len(self._keys)

    def with_more(self, more: Iterable[str]) -> Completer:
        """A completer of these candidates and ``more`` (these win a tie of spelling)."""
        return Completer([*self._shown.values(), *more])

    def complete(self, text: str, limit: int = 8, extra: Iterable[str] = (), *, anywhere: bool = True) -> list[str]:
        """Candidates that start with ``text`` first, then (``anywhere``) those that contain it, case-insensitive."""
        needle = text.strip().upper()
        if not needle or limit <= 0:
            return []
        keys = self._keys
        extras: dict[str, str] = {}
        for candidate in extra:
            extras.setdefault(candidate.upper(), candidate)
        lo = bisect_left(keys, needle)
        hi = bisect_left(keys, needle + "\U0010ffff", lo)
        starts = heapq.nsmallest(limit, keys[lo:hi], key=_rank)
        found = self._best(starts, [u for u in extras if u.startswith(needle)], limit)
        if anywhere and len(found) < limit:
            inside = heapq.nsmallest(
                limit - len(found), (u for u in keys if needle in u and not u.startswith(needle)), key=_rank
            )
            more = [u for u in extras if needle in u and not u.startswith(needle)]
            found += self._best(inside, more, limit - len(found))
        return [self._shown.get(u) or extras[u] for u in found]

    @staticmethod
    def _best(ours: list[str], extra: list[str], limit: int) -> list[str]:
        return sorted(set(ours).union(extra), key=_rank)[:limit]


def complete(text: str, candidates: Iterable[str], limit: int = 8) -> list[str]:
    """Candidates that start with ``text`` first, then those that contain it (case-insensitive)."""
    return Completer(candidates).complete(text, limit)


def resolve_instrument(text: str, candidates: Iterable[str] | Completer, extra: Iterable[str] = ()) -> Instrument:
    """What the user meant: ``SYMBOL:EXCHANGE`` as written; a bare symbol is the known instrument of
    that symbol (NSE first), else the first completion of what was typed, else that symbol on NSE."""
    text = text.strip()
    if not text:
        raise InstrumentError("type an instrument, e.g. RELIANCE:NSE")
    if ":" in text:
        return parse(text)
    completer = candidates if isinstance(candidates, Completer) else Completer(candidates)
    extra = list(extra)
    exact = completer.complete(text + ":", 1, extra, anywhere=False)
    if exact:
        return parse(exact[0])
    matches = completer.complete(text, 1, extra)
    return parse(matches[0] if matches else text + ":NSE")
