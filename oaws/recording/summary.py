"""What a recording holds: ``oaws inspect``'s summary, and the sentences that say why a set holds no tick."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from oaws.protocol.bus import tick_fseq
from oaws.recording import gz
from oaws.recording.errors import Warn
from oaws.recording.reader import Skipped, read_header, received_ns, records, tick_span, when


def _gzip_trouble(path: str) -> str | None:
    """Why a gzip file yields no tick: its data is damaged or cut short (None: neither, or not gzip).

    Reads the whole file member by member, in bounded memory, discarding what it inflates.
    """
    try:
        with open(path, "rb") as f:
            if f.read(len(gz.MAGIC)) != gz.MAGIC:
                return None
            damage = gz.Damage()
            for _ in gz.gunzip(f, damage):
                pass
    except OSError:
        return None
    if damage.damaged or damage.skipped:
        return "its compressed data is damaged"
    return "its compressed data is cut short" if damage.cut_short else None


def _names(paths: list[str]) -> str:
    return ", ".join(paths) if len(paths) <= 3 else f"{', '.join(paths[:2])} and {len(paths) - 2} more"


def no_ticks(paths: list[str]) -> str:
    """One sentence for a set of recordings without a single tick, saying the likely reason.

    Replay refuses such a set (it would serve nothing, forever); ``inspect`` refuses it
    unless a header shows it is a recording whose session received nothing.
    """
    recorded = all(read_header(p) is not None for p in paths)
    if len(paths) == 1:
        path, trouble = paths[0], _gzip_trouble(paths[0])
        if recorded and trouble != "its compressed data is damaged":
            return f"{path} holds no ticks: its recorder received none"
        if trouble:
            return f"{path} holds no ticks: {trouble}"
        return f"{path} holds no ticks (is it a recording made by `oaws record`?)"
    if recorded:
        return f"none of {_names(paths)} holds a tick: their recorders received none"
    return f"none of {_names(paths)} holds a tick (are they recordings made by `oaws record`?)"


def window_words(start_ms: int | None, end_ms: int | None, tz: tzinfo | None) -> str:
    """A replay's window (``--from`` / ``--to``) in words: ``between A and B``, ``at or after A``..."""
    if start_ms is not None and end_ms is not None:
        return f"between {when(start_ms * 1_000_000, tz)} and {when(end_ms * 1_000_000, tz)}"
    if start_ms is not None:
        return f"at or after {when(start_ms * 1_000_000, tz)}"
    return f"at or before {when((end_ms or 0) * 1_000_000, tz)}"


def empty_window(paths: list[str], start_ms: int | None, end_ms: int | None, tz: tzinfo | None) -> str:
    """One sentence for a window (``--from`` / ``--to``) holding no tick of recordings that hold some."""
    window = window_words(start_ms, end_ms, tz)
    span = tick_span(paths, warn=lambda _: None)
    which, they = (paths[0], "it spans") if len(paths) == 1 else ("the recordings", "they span")
    spanned = f" ({they} {when(span[0], tz)} to {when(span[1], tz)})" if span else ""
    return f"no tick of {which} falls {window}{spanned}"


# Summaries -----------------------------------------------------------------------
@dataclass
class Summary:
    """What ``oaws inspect`` shows about one or more recordings."""

    files: list[str] = field(default_factory=list)
    headers: list[dict[str, Any]] = field(default_factory=list)
    ticks: int = 0
    instruments: dict[str, int] = field(default_factory=dict)
    modes: dict[int, int] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None
    gaps: list[dict[str, Any]] = field(default_factory=list)
    #: the most ticks received within one second (any second, not only a whole one of the clock)
    peak_per_s: int = 0
    #: ticks the feed's per-topic count (``fseq``) says were sent but are not in the recording
    missing: int = 0
    #: lines and compressed data the reader skipped (damage, junk, a cut last line)
    skipped: Skipped = field(default_factory=Skipped)
    warnings: list[str] = field(default_factory=list)

    @property
    def span_s(self) -> float:
        if self.first_ns is None or self.last_ns is None:
            return 0.0
        return (self.last_ns - self.first_ns) / 1e9

    @property
    def per_s(self) -> float:
        """Ticks a second between the first tick and the last: N ticks are N - 1 intervals.

        A recording under a second long has no rate to extrapolate: its ticks all came
        within one second, so that is their count (and the peak's).
        """
        span = self.span_s
        return (self.ticks - 1) / span if span >= 1 else float(self.ticks)

    @property
    def sessions(self) -> int:
        """Recording sessions: a run of ``oaws record``, however many parts ``--rotate`` cut it into."""
        return count_sessions(self.headers)

    def as_json(self) -> dict[str, Any]:
        first_header = self.headers[0] if self.headers else {}
        return {
            "files": self.files,
            "sessions": self.sessions,
            "source": first_header.get("source"),
            "broker": first_header.get("broker"),
            "mode": first_header.get("mode"),
            "ticks": self.ticks,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "span_s": round(self.span_s, 3),
            "ticks_per_s": round(self.per_s, 1),
            "peak_ticks_per_s": self.peak_per_s,
            "missing": self.missing,
            "instruments": dict(sorted(self.instruments.items(), key=lambda kv: (-kv[1], kv[0]))),
            "modes": {str(k): v for k, v in sorted(self.modes.items())},
            "gaps": self.gaps,
            "skipped": self.skipped.as_json(),
            "warnings": self.warnings,
        }


def _recording(header: dict[str, Any]) -> tuple[object, ...]:
    """What the parts of one session share in their headers (sessions before ``session_ns``)."""
    listed = header.get("instruments")
    return (header.get("source"), header.get("mode"), tuple(listed) if isinstance(listed, list) else listed)


def count_sessions(headers: list[dict[str, Any]]) -> int:
    """The sessions these headers belong to. Every part of a recording cut by ``--rotate``
    starts with a header; they name their session by ``session_ns`` (the session's start).
    A header without one (oaws before it) starts a session unless it is a part after the
    first (``part`` > 1) whose previous part is in the set too, for the same recording."""
    named: set[int] = set()
    legacy: list[dict[str, Any]] = []
    for header in headers:
        session = header.get("session_ns")
        if type(session) is int:
            named.add(session)
        else:
            legacy.append(header)
    parts = {(_recording(h), h.get("part")) for h in legacy}
    started = 0
    for header in legacy:
        part = header.get("part")
        if not (type(part) is int and part > 1 and (_recording(header), part - 1) in parts):
            started += 1
    return len(named) + started


#: the peak counts ticks in one-second windows that start at every tenth of a second
_TENTH_NS = 100_000_000


def _peak(per_tenth: dict[int, int]) -> int:
    """The most ticks in ten consecutive tenths of a second (one second), from counts per tenth."""
    tenths = sorted(per_tenth)
    best = total = 0
    low = 0
    for tenth in tenths:
        total += per_tenth[tenth]
        while tenths[low] <= tenth - 10:
            total -= per_tenth[tenths[low]]
            low += 1
        best = max(best, total)
    return best


def summarize(paths: list[str], warn: Warn | None = None) -> Summary:
    """Count a recording's ticks per instrument and mode, its time span, gaps and peak rate."""
    s = Summary(files=list(paths))

    def note(message: str) -> None:
        s.warnings.append(message)
        if warn is not None:
            warn(message)

    counts = s.instruments
    modes = s.modes
    per_tenth: dict[int, int] = {}
    timed = 0
    fseqs: dict[tuple[object, object, object], int] = {}
    for path in paths:
        for record in records(path, note, s.skipped):
            kind = record.get("type")
            if kind == "market_data":
                s.ticks += 1
                key = f"{record.get('symbol')}:{record.get('exchange')}"
                counts[key] = counts.get(key, 0) + 1
                mode = record.get("mode")
                if isinstance(mode, int):
                    modes[mode] = modes.get(mode, 0) + 1
                data = record.get("data")
                fseq = tick_fseq(data) if isinstance(data, dict) else None
                if fseq is not None:
                    topic = (record.get("symbol"), record.get("exchange"), mode)
                    seen = fseqs.get(topic)
                    if seen is not None and fseq > seen + 1:
                        s.missing += fseq - seen - 1
                    fseqs[topic] = fseq  # lower: the feed restarted and counts afresh
                ns = received_ns(record)
                if ns is None:
                    continue
                if s.first_ns is None or ns < s.first_ns:
                    s.first_ns = ns
                if s.last_ns is None or ns > s.last_ns:
                    s.last_ns = ns
                tenth = ns // _TENTH_NS
                per_tenth[tenth] = per_tenth.get(tenth, 0) + 1
                timed += 1
            elif kind == "gap":
                s.gaps.append({k: record.get(k) for k in ("from_ns", "to_ns", "reason")})
            elif kind == "header":
                s.headers.append(record)
    # under a second from the first tick to the last, every tick came within one second
    s.peak_per_s = timed if s.span_s < 1 else _peak(per_tenth)
    return s
