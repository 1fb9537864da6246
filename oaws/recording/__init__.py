"""Recordings: ticks as JSON lines, written so that a crash cannot corrupt what came before.

A recording is a text file of JSON objects, one a line, optionally gzip-compressed (the
name ends in ``.gz``; readers look at the bytes, not the name). Three kinds of line, told
apart by ``type``:

* ``header`` — the first line of every file (and of every later session appended to it)::

    {"type":"header","format":"oaws-recording","version":1,"source":"ws://127.0.0.1:8765",
     "broker":"sim","instruments":["RELIANCE:NSE"],"mode":2,"started_ns":...,
     "started":"2026-12-02T09:15:00.123+05:30","session_ns":...,"part":1,"oaws":"0.1.0"}

  ``started`` is ``started_ns`` in exchange time (``time_zone``) with its offset. With
  ``--rotate`` each part starts with a header of its own (``part`` its file's number,
  ``started`` its own start), all of one session carrying the same ``session_ns``.

* ``market_data`` — one tick, the proxy's message exactly as it was received, plus
  ``received_ns``: the local receive time in epoch nanoseconds. Replay paces by it.
* ``gap`` — ``{"type":"gap","from_ns":...,"to_ns":...,"reason":"..."}``: the connection
  was down, so ticks between those two receive times may be missing.

``Recorder`` (``oaws.recording.recorder``) is ``oaws record``'s loop: a client's ticks into a
``Writer``. It is imported on first use, so that readers of recordings (``oaws replay``'s
feed among them) do not load the WebSocket client.

Why lines and not a binary format: ``grep``, ``jq`` and ``oaws tail --json`` speak it, and
a crash can only cut the last line short. The writer buffers in memory and hands whole
lines to the OS at least once a second (the caller's timer calls ``Writer.tick``), so a
killed recorder loses at most its last second; readers skip a cut last line with a warning.
A gzip recording is one complete member per hand-over (``oaws.recording.gz``), read member
by member in bounded memory; docs/recordings.md says what survives what.
"""

from oaws.recording.errors import FORMAT, VERSION, RecordingError
from oaws.recording.reader import (
    first_tick_ns,
    first_time_ns,
    instrument_of,
    instruments_in,
    read_header,
    received_ns,
    records,
    tick_span,
    timeline,
    when,
)
from oaws.recording.summary import Summary, count_sessions, empty_window, no_ticks, summarize, window_words
from oaws.recording.table import read  # pandas and pyarrow load when it is called, not here
from oaws.recording.units import human_size, parse_duration, parse_rotate, parse_time
from oaws.recording.writer import Writer, make_header, market_lines, part_path

__all__ = [
    "FORMAT",
    "VERSION",
    "RecordingError",
    "Summary",
    "Writer",
    "count_sessions",
    "empty_window",
    "first_tick_ns",
    "first_time_ns",
    "human_size",
    "instrument_of",
    "instruments_in",
    "make_header",
    "market_lines",
    "no_ticks",
    "parse_duration",
    "parse_rotate",
    "parse_time",
    "part_path",
    "read",
    "read_header",
    "received_ns",
    "records",
    "summarize",
    "tick_span",
    "timeline",
    "when",
    "window_words",
]
