"""The add dialog's completion: instruments that start with, then contain, what was typed."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable

from oaws.instruments import Instrument, InstrumentError, parse

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
