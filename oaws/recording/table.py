"""Recordings as tables: ticks to Parquet with a typed schema, and DataFrames for notebooks.

A recording is JSON lines so that ``grep`` and ``jq`` read it and a crash cuts at most one
line; a quant wants columns with types. ``write_parquet`` turns recordings (gzip, rotated
parts, several merged by receive time) into a Parquet file of ``SCHEMA``, one row group
of ``ROW_GROUP`` ticks at a time, so that a recording of any size converts in bounded
memory. ``read`` gives the same table as a pandas DataFrame, from recordings or from such
a Parquet file.

pyarrow and pandas are imported inside the functions, never at the module's import:
``oaws.recording`` (which re-exports ``read``) is loaded by replay feeds and by ``oaws
--help``, which must not pay the second they take to import.

Values that are not of their column's type (a price given as a string, a bool, a volume
of 1.5) become nulls rather than stopping the conversion: a recording holds what brokers
sent, and one odd field should not cost the day's ticks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from oaws.recording.errors import RecordingError, Warn, log_warning
from oaws.recording.reader import timeline

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from oaws.bars.aggregator import Bar

#: the zone of every timestamp column: exchange time, as oaws shows times everywhere
TZ = "Asia/Kolkata"
#: ticks per row group (and per batch held in memory): about 30 MB of Python objects for Depth ticks
ROW_GROUP = 65_536

#: the columns of the ticks' table, by kind (the order of ``SCHEMA``)
NAMES = ("symbol", "exchange", "broker")
SMALL = ("mode",)
TIMES_MS = ("ltt", "timestamp")
PRICES = (
    "ltp", "open", "high", "low", "close", "average_price", "change", "change_percent",
    "upper_circuit", "lower_circuit", "week_52_high", "week_52_low", "oi_change_percent",
)  # fmt: skip
QUANTITIES = (
    "volume", "last_trade_quantity", "total_buy_quantity", "total_sell_quantity", "oi", "prev_oi", "seq", "fseq",
)  # fmt: skip
DEPTH_SIDES = ("depth_buy", "depth_sell")


class NoTicks(RecordingError):
    """Recordings without a tick (to write): nothing was written."""


def schema() -> pa.Schema:
    """The ticks' schema: names as dictionaries, times as timestamps in IST, prices float64,
    quantities int64, each side of the book a list of (price, quantity, orders)."""
    import pyarrow as pa

    stamp_ms = pa.timestamp("ms", tz=TZ)
    level = pa.struct([("price", pa.float64()), ("quantity", pa.int64()), ("orders", pa.int64())])
    fields = [pa.field(n, pa.dictionary(pa.int32(), pa.string())) for n in NAMES]
    fields += [pa.field("mode", pa.int8())]
    fields += [pa.field(n, stamp_ms) for n in TIMES_MS]
    fields += [pa.field("received", pa.timestamp("ns", tz=TZ))]
    fields += [pa.field(n, pa.float64()) for n in PRICES]
    fields += [pa.field(n, pa.int64()) for n in QUANTITIES]
    fields += [pa.field(n, pa.list_(level)) for n in DEPTH_SIDES]
    return pa.schema(fields, metadata={b"oaws": b"ticks, one row per market_data message of a recording"})


class _Columns:
    """A batch of ticks as one Python list per column (cheaper per tick than a dict per row)."""

    def __init__(self) -> None:
        self.names: dict[str, list[Any]] = {n: [] for n in NAMES}
        self.mode: list[Any] = []
        self.received: list[Any] = []
        self.fields: dict[str, list[Any]] = {n: [] for n in (*TIMES_MS, *PRICES, *QUANTITIES)}
        self.sides: dict[str, list[Any]] = {n: [] for n in DEPTH_SIDES}
        self.rows = 0

    def add(self, record: dict[str, Any]) -> None:
        data = record.get("data")
        if not isinstance(data, dict):
            data = {}
        get = data.get
        names = self.names
        names["symbol"].append(record.get("symbol") or get("symbol"))
        names["exchange"].append(record.get("exchange") or get("exchange"))
        names["broker"].append(record.get("broker"))
        self.mode.append(record.get("mode") or get("mode"))
        self.received.append(record.get("received_ns"))
        for name, values in self.fields.items():
            values.append(get(name))
        depth = get("depth")
        if isinstance(depth, dict):
            self.sides["depth_buy"].append(depth.get("buy"))
            self.sides["depth_sell"].append(depth.get("sell"))
        else:
            self.sides["depth_buy"].append(None)
            self.sides["depth_sell"].append(None)
        self.rows += 1

    def table(self, target: pa.Schema) -> pa.Table:
        arrays = []
        for field in target:
            name = field.name
            if name in self.names:
                values = self.names[name]
            elif name == "mode":
                values = self.mode
            elif name == "received":
                values = self.received
            elif name in self.sides:
                values = self.sides[name]
            else:
                values = self.fields[name]
            arrays.append(_array(values, field.type))
        import pyarrow as pa

        return pa.Table.from_arrays(arrays, schema=target)


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    """``values`` as an array of ``kind``: directly when they all fit (the usual case), else
    value by value, with what does not fit as null."""
    import pyarrow as pa

    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    if pa.types.is_list(kind):
        return pa.array([_levels(v) for v in values], type=kind)
    if pa.types.is_dictionary(kind):
        return pa.array([v if isinstance(v, str) else None for v in values], type=kind)
    if pa.types.is_floating(kind):
        return pa.array([_float(v) for v in values], type=kind)
    return pa.array([_int(v, kind) for v in values], type=kind)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any, kind: pa.DataType | None = None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    number = int(value)
    if kind is not None and getattr(kind, "bit_width", 64) == 8 and not -128 <= number <= 127:
        return None
    return number if -(1 << 63) <= number < (1 << 63) else None


def _levels(side: Any) -> list[dict[str, Any]] | None:
    if not isinstance(side, list):
        return None
    return [
        {"price": _float(lv.get("price")), "quantity": _int(lv.get("quantity")), "orders": _int(lv.get("orders"))}
        for lv in side
        if isinstance(lv, dict)
    ]


def tick_batches(
    paths: list[str],
    *,
    keep: Any = None,
    rows: int = ROW_GROUP,
    warn: Warn = log_warning,
) -> Iterator[pa.Table]:
    """The ticks of recordings (merged by receive time) as tables of ``schema()``, ``rows`` at a time.

    ``keep(symbol, exchange)``, when given, says which ticks to keep."""
    target = schema()
    batch = _Columns()
    for _, record in timeline(paths, warn=warn):
        if keep is not None and not keep(record.get("symbol"), record.get("exchange")):
            continue
        batch.add(record)
        if batch.rows >= rows:
            yield batch.table(target)
            batch = _Columns()
    if batch.rows:
        yield batch.table(target)


@contextlib.contextmanager
def atomic(path: str) -> Iterator[str]:
    """A temporary file beside ``path`` to write, renamed to ``path`` only when the block ends
    well: a full disk, an error or Ctrl-C leaves no half-written file (and ``path``'s old
    content, if any, unharmed). A full disk or an unwritable place is a RecordingError."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield temp
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if exc.errno == errno.ENOSPC:
            raise RecordingError(f"no space left on the device for {path}; nothing was written") from None
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_parquet(
    paths: list[str], out: str, *, keep: Any = None, rows: int = ROW_GROUP, warn: Warn = log_warning
) -> int:
    """The ticks of ``paths`` as a Parquet file ``out`` (written whole or not at all); how many
    ticks. None at all is ``NoTicks``, and ``out`` is left as it was."""
    import pyarrow.parquet as pq

    count = 0
    with atomic(out) as temp:
        with pq.ParquetWriter(temp, schema(), compression="zstd") as writer:
            for table in tick_batches(paths, keep=keep, rows=rows, warn=warn):
                writer.write_table(table, row_group_size=rows)
                count += table.num_rows
        if not count:
            raise NoTicks(f"{', '.join(paths)} hold no ticks to write")
    return count


def _paths(path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        return [os.fspath(path_or_paths)]
    return [os.fspath(p) for p in path_or_paths]


def is_parquet(path: str) -> bool:
    """Whether ``path`` is a Parquet file (by its first bytes, as the readers tell gzip)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_parquet(path: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise RecordingError(f"cannot read {path} as Parquet: {exc}") from None


def read_table(
    path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], warn: Warn = log_warning
) -> pa.Table:
    """The ticks of recordings (JSON lines, gzip, rotated parts) or of Parquet files of ticks, as one pyarrow Table."""
    import pyarrow as pa

    paths = _paths(path_or_paths)
    parquet = [p for p in paths if is_parquet(p)]
    recordings = [p for p in paths if p not in parquet]
    tables = [_read_parquet(p) for p in parquet]
    tables += list(tick_batches(recordings, warn=warn)) if recordings else []
    if not tables:
        return schema().empty_table()
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    if parquet and recordings:  # several sources: in receive time order, as a timeline is
        table = table.sort_by([("received", "ascending")])
    return table


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """A table as a DataFrame: integers that may be null as pandas' nullable integers (not
    floats), timestamps tz-aware, names as categoricals, depth sides as lists of dicts."""
    import pandas as pd
    import pyarrow as pa

    nullable = {pa.int8(): pd.Int8Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
    return table.to_pandas(types_mapper=nullable.get)


def read(path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """The ticks of recordings (``.jsonl``, ``.gz``, rotated parts, or Parquet files that
    ``oaws export`` wrote) as a pandas DataFrame with the columns of ``oaws export``.

    >>> import oaws.recording
    >>> ticks = oaws.recording.read(["day.1.jsonl.gz", "day.2.jsonl.gz"])
    >>> ticks[ticks.symbol == "RELIANCE"].set_index("ltt").ltp.resample("1min").ohlc()
    """
    return to_pandas(read_table(path_or_paths))


def recording_ticks(paths: list[str], *, keep: Any = None, warn: Warn = log_warning) -> Iterator[dict[str, Any]]:
    """The ticks of recordings or Parquet files of ticks as the aggregator takes them (a
    tick's ``data``, with its instrument), in receive time order within each kind of file.

    ``keep(symbol, exchange)``, when given, says which ticks to keep. This is the loop of
    ``oaws bars``: nothing but the JSON parse and a look-up happens per tick."""
    parquet = [p for p in paths if is_parquet(p)]
    recordings = [p for p in paths if p not in parquet]
    for _, record in timeline(recordings, warn=warn) if recordings else ():
        if keep is not None and not keep(record.get("symbol"), record.get("exchange")):
            continue
        data = record.get("data")
        if isinstance(data, dict):
            if "symbol" not in data:  # a message whose instrument is only outside its data
                data = {**data, "symbol": record.get("symbol"), "exchange": record.get("exchange")}
            yield data
    for path in parquet:
        for tick in ticks_of_parquet(path):
            if keep is None or keep(tick.get("symbol"), tick.get("exchange")):
                yield tick


def bars_schema() -> pa.Schema:
    """The bars' schema (``oaws.bars.COLUMNS``): start as a timestamp in IST, prices float64, counts int64."""
    import pyarrow as pa

    names = pa.dictionary(pa.int32(), pa.string())
    return pa.schema(
        [
            ("instrument", names),
            ("exchange", names),
            ("start", pa.timestamp("ms", tz=TZ)),
            *((n, pa.float64()) for n in ("open", "high", "low", "close")),
            ("volume", pa.int64()),
            ("oi", pa.int64()),
            ("ticks", pa.int64()),
        ],
        metadata={b"oaws": b"bars, one row per instrument and bar"},
    )


def bars_table(bars: Iterable[Bar]) -> pa.Table:
    """Bars as a table of ``bars_schema()``."""
    import pyarrow as pa

    rows = list(bars)
    target = bars_schema()
    columns = {
        "instrument": [b.symbol for b in rows],
        "exchange": [b.exchange for b in rows],
        "start": [b.start_ms for b in rows],
        "open": [b.open for b in rows],
        "high": [b.high for b in rows],
        "low": [b.low for b in rows],
        "close": [b.close for b in rows],
        "volume": [b.volume for b in rows],
        "oi": [b.oi for b in rows],
        "ticks": [b.ticks for b in rows],
    }
    return pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) for f in target], schema=target)


def ticks_of_parquet(path: str) -> Iterator[dict[str, Any]]:
    """The ticks of a Parquet file of ``schema()`` as the aggregator's dicts (symbol, exchange,
    ltp, ltt, timestamp in epoch ms, volume, oi), a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        wanted = [
            c for c in ("symbol", "exchange", "ltp", "ltt", "timestamp", "volume", "oi") if c in file.schema_arrow.names
        ]
        for group in range(file.num_row_groups):
            table = file.read_row_group(group, columns=wanted)
            columns: dict[str, list[Any]] = {}
            for name in wanted:
                column = table.column(name)
                if pa.types.is_timestamp(column.type):
                    column = column.cast(pa.timestamp("ms")).cast(pa.int64())
                elif pa.types.is_dictionary(column.type):
                    column = column.cast(pa.string())
                columns[name] = column.to_pylist()
            for values in zip(*columns.values(), strict=True):
                yield dict(zip(wanted, values, strict=True))
    except (OSError, pa.ArrowException) as exc:
        raise RecordingError(f"cannot read {path} as Parquet: {exc}") from None
