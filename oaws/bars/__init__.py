"""Bars (candles): the aggregator (``oaws.bars.aggregator``, no I/O) and bars of recordings.

``from oaws.bars import Aggregator, Bar, parse_interval``; ``oaws.bars.from_recording(path,
"5m")`` gives a DataFrame of a recording's bars (docs/bars.md).
"""

from oaws.bars.aggregator import (
    COLUMNS,
    GRACE_MS,
    INTERVALS,
    Aggregator,
    Bar,
    Interval,
    IntervalError,
    bars_of,
    iso,
    parse_interval,
)

__all__ = [
    "COLUMNS",
    "GRACE_MS",
    "INTERVALS",
    "Aggregator",
    "Bar",
    "Interval",
    "IntervalError",
    "bars_of",
    "iso",
    "parse_interval",
]
