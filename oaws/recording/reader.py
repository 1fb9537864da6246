"""Reading recordings: lines as dicts (gzip or not, damaged or cut short), merged timelines."""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterator
from datetime import tzinfo
from typing import Any

import orjson

from oaws.instruments import Instrument, InstrumentError, make, parse
from oaws.recording.errors import READ_CHUNK, RecordingError, Warn, log_warning


def _chunks(path: str, warn: Warn) -> Iterator[bytes]:
    """The file's bytes, decompressed when they are gzip (several members, too)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        data = f.read(READ_CHUNK)
        if data[:2] != b"\x1f\x8b":
            while data:
                yield data
                data = f.read(READ_CHUNK)
            return
        decoder = zlib.decompressobj(wbits=31)
        in_member = True
        while True:
            if not data:
                data = f.read(READ_CHUNK)
                if not data:
                    break
            if not in_member:
                decoder = zlib.decompressobj(wbits=31)
                in_member = True
            try:
                out = decoder.decompress(data)
            except zlib.error:
                warn(f"{path}: the compressed data is damaged; the rest of the file is skipped")
                return
            if out:
                yield out
            if decoder.eof:
                in_member = False
                data = decoder.unused_data
            else:
                data = b""
        if in_member:
            tail = decoder.flush()
            if tail:
                yield tail
            warn(f"{path}: the compressed stream ends early (the recorder did not close it); read what it holds")


def records(path: str, warn: Warn = log_warning) -> Iterator[dict[str, Any]]:
    """Every line of a recording as a dict, in file order.

    A last line cut short (a crash mid-write) is skipped with a warning; so is any other
    line that is not a JSON object (with one warning for all of them, at the end).
    """
    rest = b""
    bad = 0
    first_bad = 0
    number = 0
    loads = orjson.loads
    for chunk in _chunks(path, warn):
        if rest:
            chunk = rest + chunk
        lines = chunk.split(b"\n")
        rest = lines.pop()
        for line in lines:
            number += 1
            if not line or line.isspace():
                continue
            try:
                body = loads(line)
            except orjson.JSONDecodeError:
                body = None
            if isinstance(body, dict):
                yield body
            else:
                bad += 1
                first_bad = first_bad or number
    if rest and not rest.isspace():
        try:
            body = loads(rest)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            yield body
        else:
            warn(f"{path}: skipped a truncated last line (the recorder stopped mid-write)")
    if bad:
        warn(
            f"{path}: skipped {bad} line{'s' if bad > 1 else ''} that {'are' if bad > 1 else 'is'} "
            f"not JSON (first: line {first_bad})"
        )


def read_header(path: str) -> dict[str, Any] | None:
    """The header of a recording, or None when its first line is not one."""
    for body in records(path, warn=lambda _: None):
        return body if body.get("type") == "header" else None
    return None


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
