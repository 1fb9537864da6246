"""Reading recordings: lines as dicts (gzip or not, damaged or cut short), merged timelines."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import orjson

from oaws.instruments import Instrument, InstrumentError, make, parse
from oaws.recording import gz
from oaws.recording.errors import READ_CHUNK, RecordingError, Warn, log_warning

#: the longest line read; a longer one is skipped (and counted), never held whole
MAX_LINE = 1 << 20
#: orjson writes values nested at most this deep; a line with more brackets is checked
DEEP = 254


@dataclass
class Skipped:
    """What the readers skipped, summed over files (``oaws inspect`` shows it)."""

    #: lines that are not a JSON object (damaged lines included)
    not_json: int = 0
    #: lines longer than ``MAX_LINE``
    too_long: int = 0
    #: lines nested too deep to be written out again
    too_deep: int = 0
    #: last lines cut short (a crash mid-write)
    truncated: int = 0
    #: gzip members dropped (damaged), and the compressed bytes skipped with them
    damaged_parts: int = 0
    damaged_bytes: int = 0
    #: gzip streams that end early, or that were cut short with another behind them
    cut_short: int = 0

    def add(self, damage: gz.Damage) -> None:
        self.damaged_parts += damage.damaged
        self.damaged_bytes += damage.skipped
        self.cut_short += damage.unfinished + damage.cut_short

    def as_json(self) -> dict[str, int]:
        return dict(vars(self))

    def __bool__(self) -> bool:
        return any(vars(self).values())


def _chunks(path: str, warn: Warn, skipped: Skipped | None = None) -> Iterator[bytes | None]:
    """The file's bytes in pieces of at most about 1 MiB, decompressed member by member when they are gzip.

    None (``gz.BREAK``) marks where a damaged or cut-short member ended: the line being
    read there is dropped. Damage is warned about once, at the end (``gz.Damage``).
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        damage = gz.Damage()
        try:
            data = f.read(READ_CHUNK)
            if data[:3] != gz.MAGIC:
                while data:
                    yield data
                    data = f.read(READ_CHUNK)
                return
            yield from gz.gunzip(f, damage)
        except OSError as exc:  # a read error (EIO, a directory...): one sentence, not a traceback
            raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None
        if skipped is not None:
            skipped.add(damage)
        for sentence in damage.sentences(path):
            warn(sentence)


def _reserialisable(body: dict[str, Any]) -> bool:
    """Whether a parsed line can be written out again (orjson refuses values nested over 254 deep)."""
    try:
        orjson.dumps(body)
    except TypeError:  # orjson.JSONEncodeError: "Recursion limit reached"
        return False
    return True


def records(path: str, warn: Warn = log_warning, skipped: Skipped | None = None) -> Iterator[dict[str, Any]]:
    """Every line of a recording as a dict, in file order, in bounded memory.

    A last line cut short (a crash mid-write) is skipped with a warning; so is any other
    line that is not a JSON object, a line longer than ``MAX_LINE`` (never held whole in
    memory) and one nested too deep to be served again (one warning for each kind, at the end).
    ``skipped`` (if given) adds up what was skipped.
    """
    rest = b""
    long_line = False  # inside a line already longer than MAX_LINE: skip to its end
    bad = too_long = too_deep = truncated = 0
    first_bad = 0
    number = 0
    loads = orjson.loads

    def parse(line: bytes) -> dict[str, Any] | None:
        nonlocal bad, first_bad, too_deep
        try:
            body = loads(line)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            bad += 1
            first_bad = first_bad or number
            return None
        if line.count(b"[") + line.count(b"{") > DEEP and not _reserialisable(body):
            too_deep += 1
            return None
        return body

    for chunk in _chunks(path, warn, skipped):
        if chunk is None:  # a damaged member ended here: what was left of its line is lost
            if rest or long_line:
                number += 1
                bad += 1
                first_bad = first_bad or number
            rest, long_line = b"", False
            continue
        if long_line:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            chunk = chunk[end + 1 :]
            long_line = False
            number += 1
        elif rest:
            chunk = rest + chunk
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if len(rest) > MAX_LINE:
            rest, long_line = b"", True
            too_long += 1
        for line in lines:
            number += 1
            if not line or line.isspace():
                continue
            if len(line) > MAX_LINE:
                too_long += 1
                continue
            body = parse(line)
            if body is not None:
                yield body
    if long_line:
        pass  # counted in too_long already
    elif rest and not rest.isspace():
        number += 1
        try:
            body = loads(rest)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            if rest.count(b"[") + rest.count(b"{") <= DEEP or _reserialisable(body):
                yield body
            else:
                too_deep += 1
        else:
            truncated = 1
            warn(f"{path}: skipped a truncated last line (the recorder stopped mid-write)")
    if skipped is not None:
        skipped.not_json += bad
        skipped.too_long += too_long
        skipped.too_deep += too_deep
        skipped.truncated += truncated
    if bad:
        warn(
            f"{path}: skipped {bad} line{'s' if bad > 1 else ''} that {'are' if bad > 1 else 'is'} "
            f"not JSON (first: line {first_bad})"
        )
    if too_long:
        warn(f"{path}: skipped {too_long} line{'s' if too_long > 1 else ''} longer than {MAX_LINE >> 20} MiB")
    if too_deep:
        warn(
            f"{path}: skipped {too_deep} line{'s' if too_deep > 1 else ''} nested more than {DEEP} deep "
            "(too deep to serve again)"
        )


def read_header(path: str) -> dict[str, Any] | None:
    """The header of a recording, or None when its first line is not one (reads only that line)."""
    head = b""
    for chunk in _chunks(path, lambda _: None):
        if chunk is None:
            if head:
                break
            continue  # a damaged first member: the header may follow
        head = (head + chunk).lstrip()
        if b"\n" in head or len(head) > MAX_LINE:
            break
    line = head.split(b"\n", 1)[0]
    if len(line) > MAX_LINE:
        return None
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) and body.get("type") == "header" else None


def received_ns(record: dict[str, Any]) -> int | None:
    """When a tick arrived: ``received_ns``, else (``oaws tail --json`` output) its ``timestamp``."""
    ns = record.get("received_ns")
    if isinstance(ns, int):
        return ns
    data = record.get("data")
    ms = data.get("timestamp") if isinstance(data, dict) else None
    if isinstance(ms, (int, float)) and not isinstance(ms, bool):
        return int(ms * 1_000_000)
    return None


def instrument_of(record: dict[str, Any]) -> Instrument | None:
    try:
        return make(record.get("symbol"), record.get("exchange"))
    except InstrumentError:
        return None


def timeline(
    paths: list[str], *, start_ms: int | None = None, end_ms: int | None = None, warn: Warn = log_warning
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The ticks of several recordings as one stream ordered by receive time: (ns, message).

    Files are merged (rotated parts follow each other; recordings of different instruments
    interleave). A tick without a time keeps the time of the tick before it.
    """
    lo = start_ms * 1_000_000 if start_ms is not None else None
    hi = (end_ms + 1) * 1_000_000 if end_ms is not None else None

    def ticks(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
        last = 0
        for record in records(path, warn):
            if record.get("type") != "market_data":
                continue
            ns = received_ns(record)
            last = ns if ns is not None else last
            if lo is not None and last < lo:
                continue
            if hi is not None and last >= hi:
                break
            yield last, record

    streams = [ticks(p) for p in paths]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=lambda item: item[0])


def when(ns: int | None, tz: tzinfo | None) -> str:
    """A receive time as ``oaws inspect`` shows it: date, time to the millisecond, the zone's abbreviation."""
    if ns is None:
        return "-"
    from oaws.format import moment

    at = moment(ns / 1e9, tz)
    return f"{at:%Y-%m-%d %H:%M:%S}.{ns // 1_000_000 % 1000:03d} {at:%Z}"


def first_tick_ns(
    paths: list[str], *, start_ms: int | None = None, end_ms: int | None = None, warn: Warn = log_warning
) -> int | None:
    """The receive time of the first tick between ``start_ms`` and ``end_ms`` (None: there is none).

    Reads each file only up to its first tick in the window (to its end when there is none).
    """
    for ns, _ in timeline(paths, start_ms=start_ms, end_ms=end_ms, warn=warn):
        return ns
    return None


def tick_span(paths: list[str], warn: Warn = log_warning) -> tuple[int, int] | None:
    """The receive times of the first and the last tick of a set of recordings (a full read)."""
    first = last = None
    for ns, _ in timeline(paths, warn=warn):
        first = ns if first is None else min(first, ns)
        last = ns if last is None else max(last, ns)
    return (first, last) if first is not None and last is not None else None


def instruments_in(paths: list[str], warn: Warn = log_warning) -> set[Instrument]:
    """Every instrument a set of recordings holds: from their headers, or by reading files without one."""
    found: set[Instrument] = set()
    for path in paths:
        header = read_header(path)
        listed = header.get("instruments") if header else None
        if isinstance(listed, list):
            for text in listed:
                try:
                    found.add(parse(str(text)))
                except InstrumentError:
                    pass
        for record in records(path, warn) if not isinstance(listed, list) else ():
            if record.get("type") == "market_data":
                instrument = instrument_of(record)
                if instrument is not None:
                    found.add(instrument)
    return found


def first_time_ns(paths: list[str]) -> int | None:
    """The earliest receive time of a set of recordings (headers' start, else the first tick)."""
    best: int | None = None
    for path in paths:
        for record in records(path, warn=lambda _: None):
            ns = record.get("started_ns") if record.get("type") == "header" else received_ns(record)
            if isinstance(ns, int):
                best = ns if best is None else min(best, ns)
                break
    return best
