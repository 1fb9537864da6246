"""The add dialog's completion: instruments that start with what was typed, then those whose company
name has a word starting so, then those that contain it."""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping

from oaws.instruments import Instrument, InstrumentError, parse
from oaws.names import NAMES, readable
from oaws.ticks import DERIVATIVE_EXCHANGES

#: Which exchange a bare symbol means first (RELIANCE: NSE before BSE; contracts last).
EXCHANGE_PREFERENCE = {e: i for i, e in enumerate(("NSE", "NSE_INDEX", "BSE", "BSE_INDEX", "NFO", "BFO", "MCX", "CDS"))}


def _rank(upper: str) -> tuple[int, int, str]:
    """Shorter symbols first (the one typed in full, then cash and indices before contracts), then by exchange."""
    symbol, _, exchange = upper.partition(":")
    return len(symbol), EXCHANGE_PREFERENCE.get(exchange, len(EXCHANGE_PREFERENCE)), upper


#: a candidate: ``SYMBOL:EXCHANGE``, or (``SYMBOL:EXCHANGE``, its company or contract name)
Candidate = str | tuple[str, str]
_WORD = re.compile(r"[A-Z0-9&]+")


class Completer:
    """Completion over a fixed set of candidates, fast enough for an instrument master (100k+) on every key.

    The candidates are sorted once, upper-cased: those starting with what is typed are one
    slice, found by bisection. Company names (``names``, the built-in ``oaws.names.NAMES``
    always among them) are indexed by word, sorted once too: "infosys" or "reliance ind"
    finds the instruments whose name has a word starting so (then the whole text typed, at
    a word's start). The slower scan for candidates that only contain what is typed runs
    only when the others do not fill the list. Small, changing candidates (the session's
    watchlists) come as ``extra`` on each call instead of rebuilding the whole set.
    """

    def __init__(self, candidates: Iterable[Candidate] = (), names: Mapping[str, str] | None = None) -> None:
        shown: dict[str, str] = {}
        named: dict[str, str] = {}
        for candidate in candidates:
            if isinstance(candidate, tuple):
                candidate, name = candidate
                if name:
                    named.setdefault(candidate.upper(), name)
            upper = candidate.upper()
            if upper == candidate:
                upper = candidate  # one string, not two, for the usual upper-case symbol
            shown.setdefault(upper, candidate)
        for candidate, name in (names or {}).items():
            named.setdefault(candidate.upper(), name)
        for candidate, name in NAMES.items():
            named.setdefault(candidate, name)
        self._shown = shown
        self._keys = sorted(shown)
        #: upper-case candidate -> its name, and (WORD, candidate) of every word of every name, sorted
        self._names = named
        #: each name as its words after a space (" RELIANCE INDUSTRIES"): a phrase typed is looked up in it
        self._spaced = {upper: " " + " ".join(_WORD.findall(name.upper())) for upper, name in named.items()}
        self._words = sorted({(word, upper) for upper, spaced in self._spaced.items() for word in spaced.split()})

    def __len__(self) -> int:
        return len(self._keys)

    def with_more(self, more: Iterable[Candidate], names: Mapping[str, str] | None = None) -> Completer:
        """A completer of these candidates and ``more`` (these win a tie of spelling, and of names)."""
        return Completer([*self._shown.values(), *more], {**(names or {}), **self._names})

    def name_of(self, candidate: str) -> str:
        """The company's or index's name of ``candidate``, "" when none is known."""
        return self._names.get(candidate.upper(), "")

    def describe(self, candidate: str) -> str:
        """How the add dialog shows a completion: the instrument, then its readable contract or company name.

        ``NIFTY26DEC2424000CE:NFO  NIFTY 26 DEC 24000 CE``, ``INFY:NSE  Infosys``, ``TCS:NSE`` (no name known)."""
        symbol, _, exchange = candidate.rpartition(":")
        spelt = readable(Instrument(symbol.upper(), exchange.upper())) if exchange in DERIVATIVE_EXCHANGES else ""
        if spelt and spelt != symbol.upper():
            return f"{candidate}  {spelt}"
        name = self.name_of(candidate)
        return f"{candidate}  {name}" if name and name.upper() != symbol.upper() else candidate

    def matches(self, text: str, limit: int = 8, extra: Iterable[str] = ()) -> list[tuple[str, str]]:
        """``complete``'s candidates with what the dialog shows of each: (candidate, ``describe(candidate)``)."""
        return [(c, self.describe(c)) for c in self.complete(text, limit, extra)]

    def complete(self, text: str, limit: int = 8, extra: Iterable[str] = (), *, anywhere: bool = True) -> list[str]:
        """Candidates that start with ``text`` first, then those whose name has a word starting with it,
        then (``anywhere``) those that contain it; case-insensitive. A contract typed with spaces
        (``nifty 26 dec``) is looked up without them too."""
        needle = text.strip().upper()
        if not needle or limit <= 0:
            return []
        keys = self._keys
        extras: dict[str, str] = {}
        for candidate in extra:
            extras.setdefault(candidate.upper(), candidate)
        found = self._best(self._starting(needle, limit), [u for u in extras if u.startswith(needle)], limit)
        squeezed = needle.replace(" ", "")
        if len(found) < limit and squeezed != needle and squeezed:
            more = self._starting(squeezed, limit)
            found += [
                u for u in self._best(more, [u for u in extras if u.startswith(squeezed)], limit) if u not in found
            ]
            found = found[:limit]
        if anywhere and len(found) < limit:
            taken = set(found)
            shown = self._shown
            by_name = self._named(needle, limit - len(found), lambda u: u not in taken and (u in shown or u in extras))
            found += by_name
        if anywhere and len(found) < limit:
            taken = set(found)
            inside = heapq.nsmallest(
                limit - len(found),
                (u for u in keys if needle in u and not u.startswith(needle) and u not in taken),
                key=_rank,
            )
            more = [u for u in extras if needle in u and not u.startswith(needle) and u not in taken]
            found += self._best(inside, more, limit - len(found))
        return [self._shown.get(u) or extras[u] for u in found]

    def _starting(self, needle: str, limit: int) -> list[str]:
        keys = self._keys
        lo = bisect_left(keys, needle)
        hi = bisect_left(keys, needle + "\U0010ffff", lo)
        return heapq.nsmallest(limit, keys[lo:hi], key=_rank)

    def _named(self, needle: str, limit: int, wanted: Callable[[str], bool]) -> list[str]:
        """Candidates whose name has a word starting with ``needle``'s first word, and ``needle`` at a word's start."""
        first = _WORD.findall(needle)
        if not first:
            return []
        words = self._words
        lo = bisect_left(words, (first[0],))
        hi = bisect_left(words, (first[0] + "\U0010ffff",), lo)
        if len(first) == 1:
            hits = {upper for _, upper in words[lo:hi] if wanted(upper)}
        else:
            phrase, spaced = " " + " ".join(first), self._spaced
            hits = {upper for _, upper in words[lo:hi] if phrase in spaced[upper] and wanted(upper)}
        return heapq.nsmallest(limit, hits, key=_rank)

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
