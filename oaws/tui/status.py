"""The status line: server, connection, ticks per second, latency; the sessions of the list's
exchanges, then watchlist, count, sort and clock on the right."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from oaws import sessions
from oaws.config import IST
from oaws.tui.models.columns import SORT_LABELS, Piece
from oaws.tui.models.health import Health
from oaws.tui.models.watch import WatchModel

#: between the parts of the line's right side
DOT = " · "
#: the short word of each state, when the full text does not fit
SHORT = {sessions.OPEN: "open", sessions.PRE_OPEN: "pre-open", sessions.CLOSED: "closed", sessions.HOLIDAY: "holiday"}
#: each state's look
STYLE = {sessions.OPEN: "status--session-open", sessions.PRE_OPEN: "status--session-pre-open"}


class Sessions:
    """The sessions of a list's exchanges, worked out at most once a minute or when the
    exchanges change: ``oaws.sessions`` is arithmetic once its calendar is built, and that is
    built in a thread of its own (nothing is shown until it is)."""

    def __init__(self) -> None:
        self._key: tuple[frozenset[str], int] | None = None
        self.states: list[sessions.SessionState] = []

    def of(self, exchanges: frozenset[str], now: float) -> list[sessions.SessionState]:
        if not sessions.loaded():
            sessions.preload()  # once; the status line is redrawn every second, so it shows when done
            return []
        key = (exchanges, int(now // 60))
        if key != self._key:
            self._key = key
            self.states = merged(sessions.states(exchanges, datetime.fromtimestamp(now, IST)))
        return self.states


def merged(states: list[sessions.SessionState]) -> list[sessions.SessionState]:
    """Sessions in the same state with the same times as one: ``NSE/NFO open till 15:30``."""
    alike: dict[tuple[object, ...], list[sessions.SessionState]] = {}
    for state in states:
        alike.setdefault((state.state, state.opens_at, state.closes_at, state.holiday), []).append(state)
    return [replace(group[0], exchange="/".join(s.exchange for s in group)) for group in alike.values()]


class StatusBar(Widget):
    """Redrawn once a second by the app (and when the connection changes), never per tick.

    At a narrow width the right side (list, count, sort, clock) stays whole; what gives way,
    in this order: the server's URL, the tick rate and latency, the sessions' times (``NSE
    open`` instead of ``NSE open till 15:30``), the last sessions, then all of them; the
    connection's state is truncated last.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status--status",
        "status--status-url",
        "status--status-ok",
        "status--status-bad",
        "status--status-wait",
        "status--status-stale",
        "status--status-notice",
        "status--paused",
        "status--right",
        "status--session-open",
        "status--session-pre-open",
    }

    DEFAULT_CSS = """
    StatusBar > .status--session-open { color: $text-success; }
    StatusBar > .status--session-pre-open { color: $text-warning; }
    """

    def __init__(self, health: Health, model: WatchModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.health = health
        self.model = model
        self.paused = False
        self.sessions = Sessions()

    def _pieces(self, pieces: list[Piece]) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for piece, name in pieces:
            text.append(piece, self.get_component_rich_style(f"status--{name}"))
        return text

    def _sessions(self, states: list[sessions.SessionState], short: bool) -> Text:
        text = Text(no_wrap=True)
        for n, state in enumerate(states):
            if n:
                text.append(DOT, self.get_component_rich_style("status--right"))
            words = f"{state.exchange} {SHORT.get(state.state, state.state)}" if short else state.describe()
            text.append(words, self.get_component_rich_style(STYLE.get(state.state, "status--right")))
        return text

    def render(self) -> Text:
        model = self.model
        now = self.health.clock()
        lists = model.watchlists
        where = model.watchlist.name + (f" {model.current + 1}/{len(lists)}" if len(lists) > 1 else "")
        sort = SORT_LABELS.get(model.sort, model.sort) + (" ▼" if model.descending else "")
        clock = datetime.fromtimestamp(now, model.tz).strftime("%H:%M:%S")
        right = Text(no_wrap=True)
        if self.paused:
            right.append(" PAUSED ", self.get_component_rich_style("status--paused"))
            right.append("  ")
        right.append(
            f"{where} · {len(model.view)} · sort {sort} · {clock}", self.get_component_rich_style("status--right")
        )
        room = max(0, self.size.width - right.cell_len - 1)

        pieces = self.health.pieces()
        states = self.sessions.of(frozenset(i.exchange for i in model.watchlist.instruments), now)
        left = self._pieces(pieces)
        market: Text | None = None
        if states:
            # pieces: the URL, a gap, the connection's state, the tick rate, the latency, a notice
            bare = pieces[2:3] + [p for p in pieces[3:] if p[1] == "status-notice"]
            full, short = self._sessions(states, False), self._sessions(states, True)
            fewer = [(bare, self._sessions(states[:n], True)) for n in range(len(states) - 1, 0, -1)]
            tries = ((pieces, full), (pieces[2:], full), (bare, full), (pieces[2:], short), (bare, short), *fewer)
            for shown, market_text in tries:
                candidate = self._pieces(shown)
                if candidate.cell_len + 1 + market_text.cell_len + len(DOT) <= room:
                    left, market = candidate, market_text
                    break
        if market is None:
            left.truncate(room, overflow="ellipsis", pad=True)
            return Text.assemble(left, " ", right, no_wrap=True)
        market.append(DOT, self.get_component_rich_style("status--right"))
        left.truncate(room - market.cell_len, overflow="ellipsis", pad=True)
        return Text.assemble(left, " ", market, right, no_wrap=True)
