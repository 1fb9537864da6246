"""The index ribbon above the grid: the indices with their change, and the list's movers.

Two lines. Each index is a cell: its name on the first line, its LTP and change % on the
second. On the right the current list's top gainers (first line) and losers (second line)
by change %. When the screen is narrow the movers go first (three each, then two, one,
none), then the indices from the right. No Textual here: the widget draws the pieces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from oaws.instruments import Instrument, parse_many
from oaws.names import readable
from oaws.ticks import change_of, is_index
from oaws.tui.models.columns import Piece, direction_style, price_text, signed_text

#: what the ribbon shows unless the config file's ``ribbon`` says otherwise
DEFAULT_RIBBON: tuple[str, ...] = ("NIFTY:NSE_INDEX", "BANKNIFTY:NSE_INDEX", "SENSEX:BSE_INDEX", "INDIAVIX:NSE_INDEX")
#: the names traders read (OpenAlgo's symbols are short); any other instrument shows its symbol
INDEX_NAMES: dict[str, str] = {
    "NIFTY:NSE_INDEX": "NIFTY 50",
    "BANKNIFTY:NSE_INDEX": "NIFTY BANK",
    "FINNIFTY:NSE_INDEX": "NIFTY FIN",
    "MIDCPNIFTY:NSE_INDEX": "NIFTY MIDCAP SEL",
    "NIFTYNXT50:NSE_INDEX": "NIFTY NEXT 50",
    "INDIAVIX:NSE_INDEX": "INDIA VIX",
    "SENSEX:BSE_INDEX": "SENSEX",
    "BANKEX:BSE_INDEX": "BANKEX",
}
#: the most movers of each side shown
MOVERS = 3
GAP = 3


def default_ribbon() -> list[Instrument]:
    return parse_many(list(DEFAULT_RIBBON))


class RibbonModel:
    """The ribbon's indices and their last ticks; the movers are read from the grid's rows when drawn."""

    def __init__(self, indices: Iterable[Instrument], grouping: str = "indian") -> None:
        self.indices: list[Instrument] = list(dict.fromkeys(indices))
        #: the last tick of each index (the app stores it: one dict assignment per tick)
        self.quotes: dict[Instrument, Mapping[str, Any]] = {}
        self.grouping = grouping

    def __bool__(self) -> bool:
        return bool(self.indices)

    @staticmethod
    def name(instrument: Instrument) -> str:
        return INDEX_NAMES.get(str(instrument), instrument.symbol)

    def _cell(self, instrument: Instrument) -> tuple[list[Piece], list[Piece]]:
        data = self.quotes.get(instrument)
        top: list[Piece] = [(self.name(instrument), "label")]
        if not data:
            return top, [("—", "muted")]
        _, pct = change_of(data)
        style = direction_style(pct)
        return top, [
            (price_text(data.get("ltp"), self.grouping), "value"),
            (" ", "plain"),
            (signed_text(pct, "%", "none"), style),
        ]

    @staticmethod
    def movers(
        rows: Iterable[tuple[Instrument, Mapping[str, Any]]], count: int = MOVERS
    ) -> tuple[list[tuple[Instrument, float]], list[tuple[Instrument, float]]]:
        """The ``count`` biggest gainers (highest change % first) and losers (lowest first); indices left out."""
        moved = []
        for instrument, data in rows:
            if is_index(instrument):
                continue
            _, pct = change_of(data)
            if isinstance(pct, (int, float)):
                moved.append((instrument, float(pct)))
        moved.sort(key=lambda m: m[1], reverse=True)
        gainers = [m for m in moved if m[1] > 0][:count]
        losers = [m for m in reversed(moved) if m[1] < 0][:count]
        return gainers, losers

    def lines(
        self, width: int, rows: Iterable[tuple[Instrument, Mapping[str, Any]]] = ()
    ) -> tuple[list[Piece], list[Piece]]:
        """The two lines as styled pieces, at most ``width`` cells each."""
        cells = [self._cell(i) for i in self.indices]
        gainers, losers = self.movers(rows)

        def side(mark: str, movers: list[tuple[Instrument, float]], n: int) -> list[Piece]:
            if not movers or not n:
                return []
            pieces: list[Piece] = [(mark, "up" if mark == "▲" else "down")]
            for instrument, pct in movers[:n]:
                pieces += [
                    (" " + readable(instrument) + " ", "symbol"),
                    (signed_text(pct, "%", "none"), direction_style(pct)),
                    (" ", "plain"),
                ]
            return pieces[:-1]

        def length(pieces: list[Piece]) -> int:
            return sum(len(t) for t, _ in pieces)

        shown = len(cells)
        n = MOVERS
        while True:
            widths = [max(length(top), length(bottom)) for top, bottom in cells[:shown]]
            used = sum(widths) + GAP * max(0, shown - 1)
            up, down = side("▲", gainers, n), side("▼", losers, n)
            movers = max(length(up), length(down))
            total = used + ((GAP + 2 + movers) if movers else 0)
            if total <= width or (not movers and shown <= 1):
                break
            if movers:
                n -= 1
            else:
                shown -= 1
        first: list[Piece] = []
        second: list[Piece] = []
        for k, ((top, bottom), w) in enumerate(zip(cells[:shown], widths, strict=True)):
            if k:
                first.append((" " * GAP, "plain"))
                second.append((" " * GAP, "plain"))
            first += top + [(" " * (w - length(top)), "plain")]
            second += bottom + [(" " * (w - length(bottom)), "plain")]
        if movers:
            for line, pieces in ((first, up), (second, down)):
                line += [(" " * GAP, "plain"), ("│ ", "muted"), *pieces]
        return first, second
