"""Units of the recording commands' options: sizes, durations, times of day."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, tzinfo

from oaws.recording.errors import RecordingError

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
