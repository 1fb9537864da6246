"""Gzip recordings member by member: what survives a crash, a full disk or a damaged byte.

The writer makes one complete gzip member per flush (``compress`` + ``flush`` of a fresh
``zlib.compressobj``), written with one ``os.write`` loop, so what is on disk is always
a run of complete members plus at most one partial member at the end (a write cut short
by ``kill -9`` or a full disk). Concatenated members are standard gzip: ``zcat`` and
Python's ``gzip`` read them.

``gunzip`` reads such a file, or any gzip file, without ever raising and in bounded memory:

* members are inflated one after another, following ``unused_data``, in input pieces of
  ``IN_CHUNK`` bytes and output pieces of at most ``OUT_CHUNK`` (a gzip bomb cannot make
  one call return gigabytes);
* a member's output is held back until its CRC has checked (up to ``HOLD`` bytes, far more
  than a flush writes; a larger member, from an older oaws that wrote one member per
  session, is passed on unchecked as it comes), so a member that fails is dropped whole,
  never served with a wrong byte in it;
* a member that cannot be inflated is dropped and the reader resyncs at the next gzip
  header (``1f 8b 08``) after that member's start; a member cut short with another
  member behind it (older oaws: a killed recorder, then ``record`` to the same file) keeps
  every line it holds; junk between members is skipped. All of it is counted in
  ``Damage``, which the callers turn into one warning.

``tail`` finds where the last complete member ends, so that the writer can cut off (or
recover the lines of) a partial member before appending.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

MAGIC = b"\x1f\x8b\x08"
#: compressed bytes read from the file at a time
IN_CHUNK = 64 * 1024
#: the most decompressed bytes one inflate call returns
OUT_CHUNK = 1 << 20
#: a member's output is held until its CRC checks, up to this much (then passed on unchecked)
HOLD = 8 << 20
#: how far from the end ``tail`` looks for the last members before it reads the whole file
TAIL_WINDOW = 2 << 20
#: the end of a member's output: whatever line was being read stops there (see ``records``)
BREAK = None

Chunks = Iterator[bytes | None]


@dataclass
class Damage:
    """What ``gunzip`` found wrong with a file (all zero: nothing)."""

    #: members dropped: their CRC or length did not check, or they could not be inflated
    damaged: int = 0
    #: compressed bytes skipped: dropped members and junk between members
    skipped: int = 0
    #: members cut short with another member behind them (read as far as they go)
    unfinished: int = 0
    #: the file ends inside a member (read as far as it goes)
    cut_short: bool = False
    #: where the member the file ends inside starts (None: the file ends on a member's end)
    partial_start: int | None = None
    #: where the last complete member ends
    good_end: int = 0
    #: junk at the very end of the file, after the last member: where it starts
    junk_start: int | None = None

    def sentences(self, path: str) -> list[str]:
        """What to tell a reader of ``path``: one warning per kind of trouble."""
        said = []
        if self.damaged or self.skipped:
            parts = f"{self.damaged} damaged part{'s' if self.damaged != 1 else ''} " if self.damaged else ""
            said.append(
                f"{path}: skipped {parts}({self.skipped:,} bytes of compressed data that do not decompress); "
                "read everything around them"
            )
        if self.unfinished:
            said.append(
                f"{path}: {self.unfinished} session{'s' if self.unfinished != 1 else ''} ended without closing "
                "the compressed stream (a recorder was killed) and another was appended behind; read both"
            )
        if self.cut_short:
            said.append(f"{path}: the compressed stream ends early (the recorder did not close it); read what it holds")
        return said


def _find_magic(f: IO[bytes], pos: int) -> int | None:
    """The offset of the next gzip header at or after ``pos`` (None: there is none)."""
    f.seek(pos)
    carry = b""
    base = pos
    while True:
        block = f.read(IN_CHUNK)
        if not block:
            return None
        data = carry + block
        at = data.find(MAGIC)
        if at >= 0:
            return base + at
        carry = data[-(len(MAGIC) - 1) :]
        base += len(data) - len(carry)


def _salvage(backup: zlib._Decompress, piece: bytes) -> tuple[bytes, int]:
    """The output of ``piece`` up to the byte where inflating it fails, and how many bytes of it inflate.

    Bisects on copies of the inflater as it was before ``piece``: log2(len(piece)) tries.
    """
    lo, hi, best = 0, len(piece), b""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        trial = backup.copy()
        try:
            out = trial.decompress(piece[:mid], OUT_CHUNK)
        except zlib.error:
            hi = mid
        else:
            lo, best = mid, out
    return best, lo


def gunzip(f: IO[bytes], damage: Damage, start: int = 0) -> Chunks:
    """The decompressed bytes of a gzip file from ``start`` (a member's start), member by member.

    ``BREAK`` (None) follows a member whose last line may be cut (damage, a cut-short
    member): the reader drops the partial line there instead of joining it to the next
    member's first. Never raises for bad data; ``damage`` says what was skipped.
    """
    if not f.seekable():  # a pipe: spooled to a temporary file, so that a damaged member can be re-scanned
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the garbage collector with the generator
        shutil.copyfileobj(f, spool)
        f = spool
    size = f.seek(0, os.SEEK_END)
    pos = start
    while True:
        member = _find_magic(f, pos)
        if member is None:
            if size > pos:
                damage.skipped += size - pos
                damage.junk_start = pos
                yield BREAK
            return
        if member > pos:
            damage.skipped += member - pos
            yield BREAK
        f.seek(member)
        inflater = zlib.decompressobj(wbits=31)
        consumed = 0
        held: list[bytes] = []
        held_bytes = 0
        while True:
            piece = inflater.unconsumed_tail
            if not piece:
                piece = f.read(IN_CHUNK)
                if not piece:  # the file ends inside this member
                    damage.cut_short = True
                    damage.partial_start = member
                    yield from held  # its last line, if cut, is the reader's truncated last line
                    return
            backup = inflater.copy()
            try:
                out = inflater.decompress(piece, OUT_CHUNK)
            except zlib.error as exc:
                out, good = _salvage(backup, piece)
                at = member + consumed + good  # about where inflating failed
                behind = _next_member_near(f, member, at)
                if behind is not None and "check" not in str(exc):
                    # cut short here, another member behind it (older oaws killed, then appended to)
                    damage.unfinished += 1
                    yield from held
                    if out:
                        yield out
                    yield BREAK
                    pos = behind
                else:
                    # damaged: drop what the member held (a wrong byte must not be served), resync
                    damage.damaged += 1
                    nxt = _find_magic(f, member + 1)
                    end = size if nxt is None else nxt
                    damage.skipped += end - member
                    yield BREAK  # a long member may have passed on a partial line unchecked
                    if nxt is None:
                        return
                    pos = nxt
                break
            consumed += len(piece) - len(inflater.unconsumed_tail) - (len(inflater.unused_data) if inflater.eof else 0)
            if out:
                if held_bytes + len(out) > HOLD:  # larger than any flush: pass it on as it comes
                    yield from held
                    held.clear()
                    held_bytes = HOLD + 1
                    yield out
                else:
                    held.append(out)
                    held_bytes += len(out)
            if inflater.eof:
                yield from held
                pos = member + consumed
                damage.good_end = pos
                damage.partial_start = None
                break


def _next_member_near(f: IO[bytes], member: int, at: int) -> int | None:
    """A gzip header after ``member``'s within a few bytes of ``at``, where ``member`` stopped inflating."""
    lo = max(at - 16, member + 1)
    f.seek(lo)
    found = f.read(max(at + 16 - lo, 0)).find(MAGIC)
    return lo + found if found >= 0 else None


@dataclass
class Tail:
    """Where a gzip file's complete members end, and what follows them."""

    size: int
    #: where appending starts: after the last complete member, or where a partial one (or junk) starts
    good_end: int
    #: the start of a partial member (or of junk) at the end, cut off before appending (None: there is none)
    partial_start: int | None


def tail(f: IO[bytes]) -> Tail:
    """The end of the last complete member of a gzip file, looking first only at its end.

    Every member start found in the last ``TAIL_WINDOW`` bytes is tried, earliest first:
    from a true one, the members inflate cleanly to the end of the file. When none does
    (one long member from an older oaws, or damage near the end), the whole file is read.
    """
    size = f.seek(0, os.SEEK_END)
    lo = max(size - TAIL_WINDOW, 0)
    if lo > 0:
        f.seek(lo)
        window = f.read()
        at = window.find(MAGIC)
        while at >= 0:
            damage = Damage(good_end=lo + at)
            for _ in gunzip(f, damage, lo + at):
                pass
            junk = size - damage.junk_start if damage.junk_start is not None else 0
            if not (damage.damaged or damage.unfinished) and damage.skipped == junk:
                if damage.junk_start is not None:  # a member's first bytes, too few to be a member
                    return Tail(size, damage.junk_start, damage.junk_start)
                return Tail(size, damage.good_end, damage.partial_start)
            at = window.find(MAGIC, at + 1)
    damage = Damage()
    for _ in gunzip(f, damage):
        pass
    if damage.partial_start is not None:
        return Tail(size, damage.partial_start, damage.partial_start)
    if damage.junk_start is not None:
        return Tail(size, damage.junk_start, damage.junk_start)
    return Tail(size, size, None)


def salvage(f: IO[bytes], start: int, limit: int) -> bytes | None:
    """The complete lines of the partial member at ``start``, or None when they pass ``limit`` bytes."""
    out = bytearray()
    for chunk in gunzip(f, Damage(), start):
        if chunk is BREAK:
            break
        out += chunk
        if len(out) > limit:
            return None
    end = out.rfind(b"\n")
    return bytes(out[: end + 1]) if end >= 0 else b""


def member(data: bytes, level: int) -> bytes:
    """``data`` as one complete gzip member (header, deflate stream, CRC and length)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()
