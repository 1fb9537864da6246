"""Writing recordings: the header, the writer with its buffer and rotation, ticks as lines without parsing.

See ``oaws.recording`` for the format.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from oaws import __version__
from oaws.instruments import Instrument
from oaws.recording import gz
from oaws.recording.errors import FORMAT, VERSION, RecordingError

#: the writer hands its buffer to the OS when it holds this much, or at the next ``tick``
BUFFER_BYTES = 256 * 1024
#: gzip level 3: about 10x smaller than the text and several times faster than the default 6
GZIP_LEVEL = 3
#: bytes a gzip part keeps free under ``--rotate SIZE`` for what a member adds to its data at most
#: (header, CRC, length, block headers), since the room counts buffered lines uncompressed
GZIP_SLACK = 64
#: a partial last member with at most this much in it is recovered before appending (else kept as is)
SALVAGE_BYTES = 64 << 20
#: the room of a part without a size limit
UNLIMITED = sys.maxsize


def stamp(ns: int) -> str:
    """A header's ``started``: ISO 8601 to the millisecond in exchange time (``oaws.config.time_zone``,
    IST unless set), with its offset: ``2026-12-02T09:15:00.123+05:30``."""
    from oaws import config

    try:
        tz = config.time_zone()
    except config.ConfigError:  # said when the command started; a file changed since is not the recording's concern
        tz = None
    at = datetime.fromtimestamp(ns / 1e9, tz) if tz is not None else datetime.fromtimestamp(ns / 1e9).astimezone()
    return at.isoformat(timespec="milliseconds")


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
        "started": stamp(started),
        # the session's start: every part of one session (--rotate) carries the same
        "session_ns": started,
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

    Gzip: each hand-over is one complete gzip member (``oaws.recording.gz``), so a crash
    leaves complete members and at most one partial member at the end. Before appending to
    a gzip file, a partial member at its end is replaced by its complete lines (``notice``
    says so). A write that fails (a full disk) is cut off again, so the file never holds a
    torn line or a partial member that this writer made.

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
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        #: told, in one sentence, what was repaired at the end of a file before appending to it
        self.notice = notice or (lambda _: None)
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
        #: ticks skipped because they cannot be written as JSON (values nested over 254 deep)
        self.unwritable = 0
        #: every file this writer created or appended to, in order
        self.files: list[str] = []
        self.part = 0
        self._buf: list[bytes] = []
        self._buffered = 0
        self._raw: IO[bytes] | None = None
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
            if existed and self.gzip:
                self._repair_gzip(target)
            raw = open(target, "ab", buffering=0)  # noqa: SIM115 - closed in _close_part
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
        self._raw = self._out = raw
        self._size = size
        self._room = self._limit - size if self._limit else UNLIMITED
        self._part_base = self.ticks + self.gaps
        self.files.append(target)
        if self.part > 1:
            self._write_header()

    def _write_header(self) -> None:
        header = dict(self.header, part=self.part)
        if self.part > 1:
            now = time.time_ns()
            header["started_ns"] = now
            header["started"] = stamp(now)
        line = orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE)
        self._buf.append(line)
        self._buffered += len(line)
        self._room -= len(line)
        self._header_written = True

    def _repair_gzip(self, target: str) -> None:
        """Before appending: replace a partial member at the end of ``target`` by its complete lines.

        What is left there is a write cut short (``kill -9``, a full disk) or, from an older
        oaws, a whole session whose stream was never closed. Its complete lines go back as
        one complete member, so that the file is complete members again (``zcat`` reads it);
        one over ``SALVAGE_BYTES`` stays as it is (oaws reads past it, ``zcat`` stops there).
        """
        with open(target, "r+b") as f:
            head = f.read(len(gz.MAGIC))
            if head != gz.MAGIC:
                if not head or gz.MAGIC.startswith(head):  # empty, or a member's first bytes only
                    f.truncate(0)
                    return
                raise RecordingError(f"{target} is not a gzip file: record to another name, or without .gz")
            end = gz.tail(f)
            if end.partial_start is None:
                return
            lines = gz.salvage(f, end.partial_start, SALVAGE_BYTES)
            if lines is None:
                self.notice(
                    f"{target} ends in a compressed session that was never closed (an older oaws, killed); "
                    "appending behind it (oaws reads both, zcat stops there)"
                )
                return
            blob = gz.member(lines, GZIP_LEVEL) if lines else b""
            f.seek(end.partial_start)
            f.write(blob)
            f.truncate(end.partial_start + len(blob))
            f.flush()
            with contextlib.suppress(OSError):
                os.fsync(f.fileno())
        cut = end.size - end.partial_start
        if lines:
            n = lines.count(b"\n")
            self.notice(
                f"{target} ended in a compressed part cut short (a recorder killed, or a full disk): "
                f"kept its {n:,} complete line{'s' if n != 1 else ''}, appending after them"
            )
        else:
            self.notice(
                f"{target} ended in {cut:,} bytes of a compressed part cut short (a recorder killed, or a full "
                "disk) holding no complete line: removed them, appending after the rest"
            )

    def _close_part(self) -> None:
        self._drain()
        try:
            if self._raw is not None:
                with contextlib.suppress(OSError):  # durable on disk; not possible on every file (/dev/full)
                    os.fsync(self._raw.fileno())
                self._raw.close()
            elif self._out is not None:
                self._out.flush()
        except OSError as exc:
            raise _write_error(self.current, exc) from None
        finally:
            self._raw = self._out = None
        self._done_bytes += self._size
        self._size = 0

    # Lines ---------------------------------------------------------------------------
    def write_tick(self, message: dict[str, Any], received_ns: int) -> None:
        """One ``market_data`` message as received; ``received_ns`` is added to it (and to ``message``)."""
        message["received_ns"] = received_ns
        try:
            line = orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # orjson.JSONEncodeError: nested over 254 deep, say; skipped, counted
            self.unwritable += 1
            if self.unwritable == 1:
                self.notice("skipped a tick that cannot be written as JSON (nested too deep?); counting any others")
            return
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
        if self.gzip:
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
        if self._raw is None:  # standard output
            try:
                self._out.write(data)
                self._out.flush()
            except BrokenPipeError:
                raise  # the reader went away (`| head`): the caller stops quietly
            except OSError as exc:
                raise _write_error(self.current, exc) from None
            self._size += len(data)
            return
        blob = gz.member(data, GZIP_LEVEL) if self.gzip else data
        fd = self._raw.fileno()
        view = memoryview(blob)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):  # no torn line, no partial member left behind
                os.ftruncate(fd, self._size)
            if isinstance(exc, BrokenPipeError):
                exc = BrokenPipeError(errno.EPIPE, "broken pipe")
            raise _write_error(self.current, exc) from None
        self._size += len(blob)
        if self.gzip and self._limit is not None:
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
            if self._raw is not None:
                self._raw.close()
        except OSError:
            pass
        self._raw = self._out = None
        for path in self._created:
            try:
                if os.path.getsize(path) == 0:
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
