"""Bars (candles): the aggregator (``oaws.bars.aggregator``, no I/O) and bars of recordings.

``from oaws.bars import Aggregator, Bar, parse_interval``; ``oaws.bars.from_recording(path,
"5m")`` gives a DataFrame of a recording's bars (docs/bars.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "GRACE_MS",
    "INTERVALS",
    "Aggregator",
    "Bar",
    "Interval",
    "IntervalError",
    "bars_of",
    "from_recording",
    "iso",
    "parse_interval",
]


def from_recording(
    path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], interval: str | Interval = "1m"
) -> pd.DataFrame:
    """The bars of recordings (``.jsonl``, ``.gz``, rotated parts, or Parquet files of ticks
    that ``oaws export`` wrote) as a pandas DataFrame: the columns of ``COLUMNS``, one row per
    instrument and bar, sorted by instrument and start; ``start`` a tz-aware timestamp (IST).

    The same bars as ``oaws bars`` (both are ``Aggregator`` over the same ticks). pandas and
    pyarrow are imported here, not with ``oaws.bars``, which the watch and the brokers load.

    >>> from oaws.bars import from_recording
    >>> bars = from_recording("day.jsonl.gz", "5m")
    >>> bars[bars.instrument == "RELIANCE"].set_index("start")[["open", "high", "low", "close", "volume"]]
    """
    from oaws.recording.table import _paths, bars_table, recording_ticks, to_pandas

    parsed = parse_interval(interval)
    done = bars_of(recording_ticks(_paths(path_or_paths)), parsed)
    done.sort(key=lambda b: (b.symbol, b.exchange, b.start_ms))
    return to_pandas(bars_table(done))
