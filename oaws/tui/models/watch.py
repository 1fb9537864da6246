"""The watch grid's model: rows, watchlists, their order, the cursor and what changed."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from oaws.instruments import DEPTH, Instrument
from oaws.names import readable
from oaws.ticks import DERIVATIVE_EXCHANGES, change_of, is_index
from oaws.tui.models.columns import (
    COLUMN_BY_KEY,
    DATED_TIME_WIDTH,
    DEFAULT_COLUMNS,
    DERIVATIVE_COLUMNS,
    FLASH_SECONDS,
    GAP,
    GROUPINGS,
    HISTORY,
    RESORT_SECONDS,
    SORT_CYCLE,
    SYMBOL_WIDTH_MAX,
    Column,
    Piece,
    best_level,
    changed_from,
    direction_style,
    group_digits,
    oi_change,
    price_text,
    signed_count,
    signed_text,
    sparkline,
)

log = logging.getLogger(__name__)


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
    #: a mark beside the symbol (an alert that fired: "▲ 1,500.00"), None for none
    mark: str | None = None
    #: the name the symbol column shows (``NIFTY 26 DEC 24000 CE``), worked out once
    label: str = ""
    #: a future or option (OI columns are blank for anything else)
    derivative: bool = False
    #: the latest tick that carried an order book (a Depth tick), for the depth view
    book: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            self.label = readable(self.instrument)
        self.derivative = self.instrument.exchange in DERIVATIVE_EXCHANGES


@dataclass(slots=True)
class Watchlist:
    name: str
    instruments: list[Instrument]
    #: the column keys shown, in order (the column chooser's, saved per list); None: the default set
    columns: list[str] | None = None
    #: False for a list that lives only on screen (given on the command line): edits are not saved
    saved: bool = True


def default_columns(instruments: list[Instrument]) -> list[str]:
    """The columns a list shows until its own are chosen: OI too when it holds futures or options."""
    keys = list(DEFAULT_COLUMNS)
    if any(i.exchange in DERIVATIVE_EXCHANGES for i in instruments):
        at = keys.index("volume") + 1
        keys[at:at] = DERIVATIVE_COLUMNS
    return keys


def known_columns(keys: list[str], where: str = "") -> list[str]:
    """``keys`` without unknown ones (each logged) or repeats, the symbol first whatever was given."""
    unknown = [k for k in keys if k not in COLUMN_BY_KEY]
    if unknown:
        log.warning("unknown columns %s%s left out", ", ".join(map(repr, unknown)), f" of {where}" if where else "")
    kept = [k for k in dict.fromkeys(keys) if k in COLUMN_BY_KEY and k != "symbol"]
    return ["symbol", *kept]


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
        wall: Callable[[], float] = time.time,
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
        #: wall-clock seconds: which day is today, for the Time column
        self.wall = wall
        #: today in ``tz`` as epoch ms [from, until): a trade before it shows its date
        self._today_ms = (0.0, 0.0)
        #: the Time column needs room for a date (a row's last trade is from an earlier session)
        self._dated = False
        #: the columns of the current list, in order
        self.columns: list[Column] = []
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
        return self.switch_to((self.current + step) % len(self.watchlists))

    def switch_to(self, index: int) -> tuple[list[Instrument], list[Instrument]]:
        """Show the watchlist at ``index``; returns (to subscribe, to unsubscribe)."""
        before = set(self.watchlist.instruments)
        self.current = index % len(self.watchlists)
        after = self.watchlist.instruments
        self._dated = False
        self._show_list()
        return [i for i in after if i not in before], [i for i in before if i not in set(after)]

    def index_of(self, name: str) -> int | None:
        return next((n for n, w in enumerate(self.watchlists) if w.name == name), None)

    def create_list(
        self, name: str, instruments: list[Instrument] | None = None
    ) -> tuple[list[Instrument], list[Instrument]]:
        """A new watchlist after the others, shown at once; (to subscribe, to unsubscribe).

        ValueError when a list of that name exists."""
        if self.index_of(name) is not None:
            raise ValueError(f"a watchlist named {name!r} exists")
        self.watchlists.append(Watchlist(name, list(instruments or [])))
        return self.switch_to(len(self.watchlists) - 1)

    def rename_list(self, new: str) -> str:
        """Rename the current watchlist; returns the old name. ValueError when ``new`` is taken."""
        if new != self.watchlist.name and self.index_of(new) is not None:
            raise ValueError(f"a watchlist named {new!r} exists")
        old, self.watchlist.name = self.watchlist.name, new
        return old

    def delete_list(self) -> tuple[list[Instrument], list[Instrument]]:
        """Delete the current watchlist and show the one before it; (to subscribe, to unsubscribe).

        ValueError when it is the only one."""
        if len(self.watchlists) < 2:
            raise ValueError("the only watchlist cannot be deleted")
        gone = self.watchlists.pop(self.current)
        before = set(gone.instruments)
        self.current = max(0, self.current - 1)
        after = self.watchlist.instruments
        for instrument in before - set(after):
            self.rows.pop(instrument, None)
        self._show_list()
        return [i for i in after if i not in before], [i for i in before if i not in set(after)]

    def reorder(self, instrument: Instrument, delta: int) -> bool:
        """Move ``instrument`` ``delta`` places up (-) or down (+) in the list's own order.

        The grid then shows the list as given (a sorted grid has no place to move a row
        to); False when it cannot move (the first row up, the last down)."""
        items = self.watchlist.instruments
        if instrument not in items:
            return False
        if self.sort != "given":
            self.sort, self.descending = "given", False
        here = items.index(instrument)
        there = max(0, min(len(items) - 1, here + delta))
        if there == here:
            self._sort_now()
            return False
        items.insert(there, items.pop(here))
        self._sort_now()
        self.selected = instrument
        return True

    def set_mark(self, instrument: Instrument, mark: str | None) -> None:
        """Show ``mark`` beside the symbol (None: take it away), if the row exists."""
        row = self.rows.get(instrument)
        if row is not None and row.mark != mark:
            row.mark = mark
            self.dirty.add(instrument)
            self.reordered = True  # the symbol column may widen or narrow: laid out again (rare)

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

    def mode_for(self, base: int) -> int:
        """The mode the grid subscribes at: ``base`` (``--mode``), or higher when a shown column
        needs a field only a higher mode carries (bid and ask, OI, circuits, 52 weeks: Depth)."""
        if base < DEPTH and any(c.depth for c in self.columns):
            return DEPTH
        return base

    # Columns ----------------------------------------------------------------------
    def column_keys(self) -> list[str]:
        """The keys of the current list's columns, in order (its own choice, else the default set)."""
        return [c.key for c in self.columns]

    def set_columns(self, keys: list[str] | None) -> list[str]:
        """Show these columns (None: the default set) for the current list; returns the keys kept.

        Unknown keys are left out (and logged), the symbol is always there, first."""
        chosen = None if keys is None else known_columns(list(keys), f"watchlist {self.watchlist.name!r}")
        self.watchlist.columns = chosen
        self._pick_columns()
        return self.column_keys()

    def _pick_columns(self) -> None:
        given = self.watchlist.columns
        if given is None:
            keys = default_columns(self.watchlist.instruments)
        else:
            keys = known_columns(given, f"watchlist {self.watchlist.name!r}")
            if keys != given:
                self.watchlist.columns = keys  # logged once, not at every relayout
        columns = [COLUMN_BY_KEY[k] for k in keys]
        if columns != self.columns:
            self.columns = columns
            self.reordered = True

    def _show_list(self) -> None:
        on = None
        for instrument in self.watchlist.instruments:
            if instrument not in self.rows:
                if on is None:  # the day an expiry's year is judged from: the screen's, not the machine's
                    on = datetime.fromtimestamp(self.wall(), self.tz).date()
                self.rows[instrument] = Row(instrument, label=readable(instrument, on))
        self._pick_columns()
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
        if "depth" in data:
            row.book = data
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
            value = self.number(row, key)
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
        """The list's columns that fit in ``width`` cells, with their widths, in the list's order.

        Columns are taken by how readily they give way (``Column.drop``, lowest first; those of
        one rank together: Bid with Ask, High with Low), skipping a rank that does not fit in
        the room left while a later, narrower one still may: the room is never left empty
        when a column could fill it."""
        rows = self.rows
        # a row's alert mark ("● ") takes room of its own
        longest = max((len(rows[i].label) + 2 * (rows[i].mark is not None) for i in self.view if i in rows), default=6)
        widths: dict[str, int] = {}
        for column in self.columns:
            if column.key == "symbol":
                widths["symbol"] = max(6, min(longest, SYMBOL_WIDTH_MAX))
            elif column.key == "ltt" and self._dated:
                widths["ltt"] = DATED_TIME_WIDTH
            else:
                widths[column.key] = max(column.width, len(column.title))
        ranks: dict[int, list[Column]] = {}
        for column in self.columns:
            ranks.setdefault(column.drop, []).append(column)
        kept: set[str] = set()
        used = -GAP
        for rank in sorted(ranks):
            group = ranks[rank]
            need = sum(widths[c.key] + GAP for c in group)
            if used + need <= width or not kept:
                kept.update(c.key for c in group)
                used += need
        return [(c, widths[c.key]) for c in self.columns if c.key in kept]

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

    def number(self, row: Row, key: str) -> float | None:
        """The value a column shows, as a number (for sorting); None where it shows nothing."""
        data = row.data
        if key in ("bid", "ask", "bid_qty", "ask_qty"):
            level = best_level(data, "buy" if key[0] == "b" else "sell")
            value = None if level is None else level[1 if key.endswith("qty") else 0]
        elif key in ("oi", "oi_change", "oi_change_percent"):
            if not row.derivative:
                return None
            value = data.get("oi") if key == "oi" else oi_change(data)[0 if key == "oi_change" else 1]
        else:
            value = data.get(key)
        return value if isinstance(value, (int, float)) else None

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
                label = row.label
                if len(label) > width:
                    label = label[: width - 1] + "…"
                if row.mark is not None:
                    # an alert fired on this row: a bell before the symbol, until it is re-armed
                    pieces += [("●", "alert"), (" " + label[: max(0, width - 2)].ljust(width - 2), "symbol")]
                else:
                    pieces.append((label.ljust(width), "symbol"))
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
                if len(text) > width and not self._dated:
                    self._dated = True  # an earlier session's trade: the next frame makes room for its date
                    self.reordered = True
            elif key == "spark":
                history = row.history
                text = sparkline(history, width)
                style = direction_style(history[-1] - history[0]) if len(history) > 1 else "flat"
                pieces.append((text.ljust(width), "spark-" + style))
                continue
            elif key in _BOOK:
                level = best_level(data, _BOOK[key])
                if level is None:
                    text, style = "", "plain"
                elif key.endswith("qty"):
                    text, style = _count(level[1], g), "muted"
                else:
                    text, style = price_text(level[0], g), "plain"
            elif key in _OI:
                text, style = self._oi_text(row, key)
            else:
                # open, high, low, close, the average price, circuits, the 52-week range: 0 means none
                value = data.get(key)
                text, style = (price_text(value, g) if value else ""), "plain"
            pieces.append((text[-width:].rjust(width) if column.align == "right" else text[:width].ljust(width), style))
        return pieces

    def _oi_text(self, row: Row, key: str) -> tuple[str, str]:
        """OI and its change: blank for an instrument without OI (not a future or option) or a feed that gives none."""
        if not row.derivative:
            return "", "plain"
        data = row.data
        if key == "oi":
            return _count(data.get("oi"), self.grouping), "plain"
        moved, pct = oi_change(data)
        if key == "oi_change":
            return signed_count(moved, self.grouping), direction_style(moved)
        return signed_text(pct, "%", "none"), direction_style(pct)

    def clock_text(self, ms: Any) -> str:
        """HH:MM:SS of a trade today, ``01 Dec 15:29`` of one from an earlier session."""
        if not isinstance(ms, (int, float)) or ms <= 0:
            return ""
        moment = datetime.fromtimestamp(ms / 1000, self.tz)
        start, end = self._today_ms
        if not start <= self.wall() * 1000 < end:
            start, end = self._today_ms = self._today()
        if ms >= start:
            return moment.strftime("%H:%M:%S")
        return moment.strftime("%d %b %H:%M")

    def _today(self) -> tuple[float, float]:
        now = datetime.fromtimestamp(self.wall(), self.tz)
        if self.tz is None:
            now = now.astimezone()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp() * 1000, (midnight + timedelta(days=1)).timestamp() * 1000


#: the book's columns and the side of their level
_BOOK = {"bid": "buy", "bid_qty": "buy", "ask": "sell", "ask_qty": "sell"}
_OI = frozenset({"oi", "oi_change", "oi_change_percent"})


def _count(value: Any, grouping: str) -> str:
    return group_digits(int(value), grouping) if isinstance(value, (int, float)) else ""
