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


def empty_window(paths: list[str], start_ms: int | None, end_ms: int | None, tz: tzinfo | None) -> str:
    """One sentence for a window (``--from`` / ``--to``) holding no tick of recordings that hold some."""
    if start_ms is not None and end_ms is not None:
        window = f"between {when(start_ms * 1_000_000, tz)} and {when(end_ms * 1_000_000, tz)}"
    elif start_ms is not None:
        window = f"at or after {when(start_ms * 1_000_000, tz)}"
    else:
        window = f"at or before {when((end_ms or 0) * 1_000_000, tz)}"
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
    #: the most ticks received within one second
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
        return self.ticks / self.span_s if self.span_s > 0 else float(self.ticks)

    def as_json(self) -> dict[str, Any]:
        first_header = self.headers[0] if self.headers else {}
        return {
            "files": self.files,
            "sessions": len(self.headers),
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


def summarize(paths: list[str], warn: Warn | None = None) -> Summary:
    """Count a recording's ticks per instrument and mode, its time span, gaps and peak rate."""
    s = Summary(files=list(paths))

    def note(message: str) -> None:
        s.warnings.append(message)
        if warn is not None:
            warn(message)

    counts = s.instruments
    modes = s.modes
    per_second: dict[int, int] = {}
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
                second = ns // 1_000_000_000
                per_second[second] = per_second.get(second, 0) + 1
            elif kind == "gap":
                s.gaps.append({k: record.get(k) for k in ("from_ns", "to_ns", "reason")})
            elif kind == "header":
                s.headers.append(record)
    s.peak_per_s = max(per_second.values(), default=0)
    return s
