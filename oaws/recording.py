"""Recordings: ticks as JSON lines, written so that a crash cannot corrupt what came before.

A recording is a text file of JSON objects, one a line, optionally gzip-compressed (the
name ends in ``.gz``; readers look at the bytes, not the name). Three kinds of line, told
apart by ``type``:

* ``header`` — the first line of every file (and of every later session appended to it)::

    {"type":"header","format":"oaws-recording","version":1,"source":"ws://127.0.0.1:8765",
     "broker":"sim","instruments":["RELIANCE:NSE"],"mode":2,"started_ns":...,"started":"...",
     "part":1,"oaws":"0.1.0"}

* ``market_data`` — one tick, the proxy's message exactly as it was received, plus
  ``received_ns``: the local receive time in epoch nanoseconds. Replay paces by it.
* ``gap`` — ``{"type":"gap","from_ns":...,"to_ns":...,"reason":"..."}``: the connection
  was down, so ticks between those two receive times may be missing.

Why lines and not a binary format: ``grep``, ``jq`` and ``oaws tail --json`` speak it, and
a crash can only cut the last line short. The writer buffers in memory and hands whole
lines to the OS at least once a second (the caller's timer calls ``Writer.tick``), so a
killed recorder loses at most its last second; readers skip a cut last line with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import heapq
import logging
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any

import orjson

from oaws import __version__
from oaws.instruments import Instrument, InstrumentError, make, parse

log = logging.getLogger(__name__)

FORMAT = "oaws-recording"
VERSION = 1
#: the writer hands its buffer to the OS when it holds this much, or at the next ``tick``
BUFFER_BYTES = 256 * 1024
#: gzip level 3: about 10x smaller than the text and several times faster than the default 6
GZIP_LEVEL = 3
#: bytes a gzip part keeps free under ``--rotate SIZE`` for what closing it adds (last block, CRC, length)
GZIP_SLACK = 64
#: the room of a part without a size limit
UNLIMITED = sys.maxsize
READ_CHUNK = 1 << 20

Warn = Callable[[str], None]


class RecordingError(Exception):
    """A recording cannot be written or read; the message is one sentence for the user."""


def _log_warning(message: str) -> None:
    log.warning("%s", message)


# Units ---------------------------------------------------------------------------
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_TIME_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1.5h``, ``1d`` -> seconds; raises RecordingError."""
    m = _QUANTITY.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or (unit and unit not in _TIME_UNITS) or float(m.group(1)) <= 0:
        raise RecordingError(f"{text!r} is not a duration; write e.g. 30s, 15m, 1h or 1d")
    return float(m.group(1)) * _TIME_UNITS.get(unit, 1)


def parse_rotate(text: str) -> tuple[int | None, float | None]:
    """``--rotate``: a size (``100MB``, ``1GiB``) or an interval (``1h``, ``15m``) -> (bytes, seconds)."""
    m = _QUANTITY.match(text)
    if m and float(m.group(1)) > 0:
        unit = m.group(2).lower()
        if unit in _SIZE_UNITS:
            return int(float(m.group(1)) * _SIZE_UNITS[unit]), None
        if unit in _TIME_UNITS:
            return None, float(m.group(1)) * _TIME_UNITS[unit]
    raise RecordingError(f"{text!r} is neither a size nor an interval; write e.g. --rotate 100MB or --rotate 1h")


def parse_time(text: str, day_of_ns: int | None = None, tz: tzinfo | None = None) -> int:
    """``--from`` / ``--to``: epoch ms, an ISO datetime, or ``HH:MM[:SS]`` on the day of ``day_of_ns``.

    Times without a zone are in ``tz`` (None: the machine's local time), the zone
    ``oaws inspect`` prints them in.
    """
    value = text.strip()
    if re.fullmatch(r"\d{10,16}", value):
        number = int(value)
        return number * 1000 if len(value) <= 10 else number  # epoch seconds, else ms
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?", value)
    if clock:
        hours, minutes, seconds = int(clock.group(1)), int(clock.group(2)), float(clock.group(3) or 0)
        if hours > 23 or minutes > 59 or seconds >= 60:
            raise RecordingError(f"{text!r} is not a time of day")
        base = datetime.fromtimestamp((day_of_ns or time.time_ns()) / 1e9, tz).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        when = base + timedelta(hours=hours, minutes=minutes, seconds=seconds)
        return int(when.timestamp() * 1000)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RecordingError(
            f"{text!r} is not a time; write 09:15, 09:15:30, 2025-01-02T09:15 or epoch milliseconds"
        ) from None
    if parsed.tzinfo is None and tz is not None:
        parsed = parsed.replace(tzinfo=tz)
    return int(parsed.timestamp() * 1000)


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# Writing -------------------------------------------------------------------------
def make_header(
    source: str,
    instruments: Iterable[Instrument],
    mode: int,
    *,
    broker: str | None = None,
    started_ns: int | None = None,
) -> dict[str, Any]:
    started = time.time_ns() if started_ns is None else started_ns
    return {
        "type": "header",
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "broker": broker,
        "instruments": [str(i) for i in instruments],
        "mode": mode,
        "started_ns": started,
        "started": datetime.fromtimestamp(started / 1e9).astimezone().isoformat(timespec="milliseconds"),
        "part": 1,
        "oaws": __version__,
    }


def _write_error(path: str, exc: OSError) -> RecordingError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return RecordingError(f"the disk is full: stopped writing {path} (what was written before is intact)")
    return RecordingError(f"cannot write {path}: {exc.strerror or exc}")


def part_path(path: str, number: int) -> str:
    """``ticks.jsonl.gz`` part 3 -> ``ticks.0003.jsonl.gz``: the number goes before the extensions."""
    p = Path(path)
    name = p.name
    suffix = ""
    if name.endswith(".gz"):
        name, suffix = name[:-3], ".gz"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    return str(p.with_name(f"{stem}.{number:04d}{'.' + ext if ext else ''}{suffix}"))


class Writer:
    """Appends recording lines to a file (or stdout for ``-``), in whole lines.

    Lines collect in memory; ``tick`` (called by the owner at least once a second) and a
    full buffer hand them to the OS, so a crash loses at most that buffer and can only
    leave a cut last line. With ``rotate_bytes`` or ``rotate_seconds`` the recording goes
    to numbered parts (``ticks.0001.jsonl``...), each starting with its own header.

    ``rotate_bytes`` is a limit no part exceeds: each line is checked against the room
    left in the part (a running count, one comparison per write) before it is buffered,
    and goes to the next part when it does not fit; only a line larger than the limit
    exceeds it, alone in its part. For gzip the room counts buffered lines uncompressed
    (an overestimate); when it runs out, the buffer is compressed to learn the real size.
    An existing file is appended to, never overwritten: a new header starts a new session.

    Errors (unwritable path, full disk) raise ``RecordingError``.
    """

    def __init__(
        self,
        path: str,
        header: dict[str, Any],
        *,
        rotate_bytes: int | None = None,
        rotate_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.header = header
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.clock = clock
        self.gzip = path.endswith(".gz")
        self.stdout = path == "-"
        if self.stdout and (rotate_bytes or rotate_seconds):
            raise RecordingError("--rotate needs a file name, not - (standard output)")
        if self.stdout and self.gzip:
            raise RecordingError("cannot gzip standard output; pipe it through gzip instead")
        self.ticks = 0
        self.gaps = 0
        #: every file this writer created or appended to, in order
        self.files: list[str] = []
        self.part = 0
        self._buf: list[bytes] = []
        self._buffered = 0
        self._raw: IO[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        self._out: IO[bytes] | None = None
        self._size = 0
        self._done_bytes = 0
        #: the most bytes the current part may hold on disk (None: no size limit)
        self._limit = max(rotate_bytes - GZIP_SLACK, 1) if rotate_bytes and self.gzip else rotate_bytes or None
        #: bytes the current part can still take: the limit less what is on disk and buffered
        self._room = UNLIMITED
        #: ticks + gaps written before the current part: more now means the part holds a line besides its header
        self._part_base = 0
        self._part_started = clock()
        self._header_written = False
        self._created: list[str] = []
        self._closed = False
        self._open_part()

    # Files ---------------------------------------------------------------------------
    @property
    def current(self) -> str:
        return self.files[-1] if self.files else self.path

    @property
    def size(self) -> int:
        """Bytes on disk of the current file, plus what is buffered."""
        return self._size + self._buffered

    @property
    def total_bytes(self) -> int:
        """Bytes of every file written so far (compressed, for gzip), plus what is buffered."""
        return self._done_bytes + self.size

    def _next_path(self) -> str:
        if not (self.rotate_bytes or self.rotate_seconds):
            return self.path
        number = self.part + 1
        while os.path.exists(part_path(self.path, number)):  # earlier runs: continue after them
            number += 1
        self.part = number - 1
        return part_path(self.path, number)

    def _open_part(self) -> None:
        target = self._next_path()
        self.part += 1
        self._part_started = self.clock()
        self._header_written = False
        if self.stdout:
            self._out = sys.stdout.buffer
            self.files.append("-")
            return
        existed = os.path.exists(target)
        try:
            if os.path.isdir(target):
                raise IsADirectoryError(errno.EISDIR, "it is a directory")
            raw = open(target, "ab")  # noqa: SIM115 - closed in _close_part
            size = raw.seek(0, os.SEEK_END)
            if size and not self.gzip:
                # a crash may have cut the last line short: start on a fresh line
                with open(target, "rb") as check:
                    check.seek(size - 1)
                    if check.read(1) != b"\n":
                        raw.write(b"\n")
                        size += 1
        except OSError as exc:
            raise _write_error(target, exc) from None
        if not existed:
            self._created.append(target)
        self._raw = raw
        self._size = size
        self._room = self._limit - size if self._limit else UNLIMITED
        self._part_base = self.ticks + self.gaps
        self.files.append(target)
        if self.gzip:
            self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0)
            self._out = self._gz
        else:
            self._out = raw
        if self.part > 1:
            self._write_header()

    def _write_header(self) -> None:
        header = dict(self.header, part=self.part)
        if self.part > 1:
            now = time.time_ns()
            header["started_ns"] = now
            header["started"] = datetime.fromtimestamp(now / 1e9).astimezone().isoformat(timespec="milliseconds")
        line = orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE)
        self._buf.append(line)
        self._buffered += len(line)
        self._room -= len(line)
        self._header_written = True

    def _close_part(self) -> None:
        self._drain()
        try:
            if self._gz is not None:
                self._gz.close()
            if self._raw is not None:
                self._raw.flush()
                with contextlib.suppress(OSError):  # durable on disk; not possible on every file (/dev/full)
                    os.fsync(self._raw.fileno())
                self._size = self._raw.tell()
                self._raw.close()
            elif self._out is not None:
                self._out.flush()
        except OSError as exc:
            raise _write_error(self.current, exc) from None
        finally:
            self._gz = self._raw = self._out = None
        self._done_bytes += self._size
        self._size = 0

    # Lines ---------------------------------------------------------------------------
    def write_tick(self, message: dict[str, Any], received_ns: int) -> None:
        """One ``market_data`` message as received; ``received_ns`` is added to it (and to ``message``)."""
        message["received_ns"] = received_ns
        line = orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE)
        if not self._header_written:
            self._write_header()
        n = len(line)
        if n > self._room:
            self._make_room(n)
        self._buf.append(line)
        self.ticks += 1
        self._buffered += n
        self._room -= n
        if self._buffered >= BUFFER_BYTES:
            self._drain()

    def write_lines(self, lines: bytes, count: int) -> None:
        """``count`` ready-made tick lines (see ``market_lines``), each ending in a newline."""
        if not self._header_written:
            self._write_header()
        n = len(lines)
        if n > self._room:
            self._write_split(lines)
        else:
            self._buf.append(lines)
            self.ticks += count
            self._buffered += n
            self._room -= n
        if self._buffered >= BUFFER_BYTES:
            self._drain()

    def write_gap(self, from_ns: int, to_ns: int, reason: str) -> None:
        """Ticks between these receive times may be missing (the connection was down)."""
        if not self._header_written:
            self._write_header()
        line = orjson.dumps(
            {"type": "gap", "from_ns": from_ns, "to_ns": to_ns, "reason": reason}, option=orjson.OPT_APPEND_NEWLINE
        )
        if len(line) > self._room:
            self._make_room(len(line))
        self._buf.append(line)
        self._buffered += len(line)
        self._room -= len(line)
        self.gaps += 1

    def _write_split(self, lines: bytes) -> None:
        """Tick lines that do not all fit in the current part: line by line, rotating where one does not fit."""
        for line in lines.split(b"\n")[:-1]:
            n = len(line) + 1
            if n > self._room:
                self._make_room(n)
            self._buf.append(line + b"\n")
            self.ticks += 1
            self._buffered += n
            self._room -= n

    def _make_room(self, n: int) -> None:
        """The next line (``n`` bytes) does not fit in the room counted: measure (gzip), else rotate.

        A part that holds nothing but its header takes the line anyway: a line larger than
        the limit goes alone in its part rather than nowhere.
        """
        if self._limit is None:
            return
        if self._gz is not None:
            self._drain()  # compressed, the buffered lines take far less than counted
            self._room = self._limit - self._size
            if n <= self._room:
                return
        if self.ticks + self.gaps > self._part_base:
            self._close_part()
            self._open_part()

    def _drain(self) -> None:
        if not self._buf or self._out is None:
            return
        data = b"".join(self._buf)
        self._buf.clear()
        self._buffered = 0
        try:
            self._out.write(data)
            if self._gz is not None:
                self._gz.flush()  # a sync point: everything so far can be decompressed
            else:
                self._out.flush()
        except BrokenPipeError:
            if self.stdout:
                raise  # the reader went away (`| head`): the caller stops quietly
            raise _write_error(self.current, BrokenPipeError(errno.EPIPE, "broken pipe")) from None
        except OSError as exc:
            raise _write_error(self.current, exc) from None
        self._size = self._raw.tell() if self._raw is not None else self._size + len(data)
        if self._gz is not None and self._limit is not None:
            self._room = self._limit - self._size  # the compressed size, now known

    def tick(self) -> None:
        """Hand buffered lines to the OS and rotate when due; call at least once a second."""
        self._drain()
        if self.rotate_seconds and self.clock() - self._part_started >= self.rotate_seconds:
            self._close_part()
            self._open_part()

    def flush(self) -> None:
        self._drain()

    def close(self) -> None:
        """Write what is buffered (a header at least, so the file is a valid recording) and close."""
        if self._closed:
            return
        self._closed = True
        if not self._header_written and self._out is not None:
            self._write_header()
        self._close_part()

    def abort(self) -> None:
        """Close after an error without writing more; remove files this writer created and left empty."""
        self._closed = True
        self._buf.clear()
        self._buffered = 0
        try:
            if self._gz is not None:
                self._gz.close()
            if self._raw is not None:
                self._raw.close()
        except OSError:
            pass
        self._gz = self._raw = self._out = None
        for path in self._created:
            try:
                if os.path.getsize(path) <= 20:  # an empty gzip member is 20 bytes
                    os.remove(path)
            except OSError:
                pass


_BATCH_HEAD = b'[{"type":"market_data",'
_SINGLE_HEAD = b'{"type":"market_data",'
_SEPARATOR = b'},{"type":"market_data"'
_OBJECT_HEAD = b'{"type":"'


def market_lines(frame: bytes, received_ns: int) -> tuple[bytes, int] | None:
    """A frame of ``market_data`` messages as recording lines, without parsing them.

    The proxy's frames are compact JSON: one message, or an array of messages joined by
    commas. Inside a JSON string a ``"`` is always escaped, so ``},{"type":"market_data"``
    can only be the boundary between two messages; replacing each boundary with the
    receive time and a newline turns the frame into lines in one pass of C code instead of
    a parse and a dump per tick. Returns (lines, count), or None for any frame of another
    shape (other messages, whitespace, another server's style), which the caller parses.
    """
    if frame.startswith(_BATCH_HEAD) and frame.endswith(b"}]"):
        body = frame[1:-2]
    elif frame.startswith(_SINGLE_HEAD) and frame.endswith(b"}"):
        body = frame[:-1]
    else:
        return None
    count = body.count(_SEPARATOR) + 1
    if body.count(_OBJECT_HEAD) != count or b"\n" in body:
        return None
    stamp = b',"received_ns":%d}' % received_ns
    return body.replace(_SEPARATOR, stamp + b'\n{"type":"market_data"') + stamp + b"\n", count


# Reading -------------------------------------------------------------------------
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


def records(path: str, warn: Warn = _log_warning) -> Iterator[dict[str, Any]]:
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
    paths: list[str], *, start_ms: int | None = None, end_ms: int | None = None, warn: Warn = _log_warning
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


def _gzip_trouble(path: str) -> str | None:
    """Why a gzip file yields no tick: its data is damaged or cut short (None: neither, or not gzip)."""
    try:
        with open(path, "rb") as f:
            data = f.read(READ_CHUNK)
    except OSError:
        return None
    if data[:2] != b"\x1f\x8b":
        return None
    decoder = zlib.decompressobj(wbits=31)
    try:
        decoder.decompress(data)
    except zlib.error:
        return "its compressed data is damaged"
    return "its compressed data is cut short" if len(data) < READ_CHUNK and not decoder.eof else None


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


def first_tick_ns(
    paths: list[str], *, start_ms: int | None = None, end_ms: int | None = None, warn: Warn = _log_warning
) -> int | None:
    """The receive time of the first tick between ``start_ms`` and ``end_ms`` (None: there is none).

    Reads each file only up to its first tick in the window (to its end when there is none).
    """
    for ns, _ in timeline(paths, start_ms=start_ms, end_ms=end_ms, warn=warn):
        return ns
    return None


def tick_span(paths: list[str], warn: Warn = _log_warning) -> tuple[int, int] | None:
    """The receive times of the first and the last tick of a set of recordings (a full read)."""
    first = last = None
    for ns, _ in timeline(paths, warn=warn):
        first = ns if first is None else min(first, ns)
        last = ns if last is None else max(last, ns)
    return (first, last) if first is not None and last is not None else None


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
        for record in records(path, note):
            kind = record.get("type")
            if kind == "market_data":
                s.ticks += 1
                key = f"{record.get('symbol')}:{record.get('exchange')}"
                counts[key] = counts.get(key, 0) + 1
                mode = record.get("mode")
                if isinstance(mode, int):
                    modes[mode] = modes.get(mode, 0) + 1
                data = record.get("data")
                fseq = data.get("fseq") if isinstance(data, dict) else None
                if isinstance(fseq, int):
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


def instruments_in(paths: list[str], warn: Warn = _log_warning) -> set[Instrument]:
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
