"""``oaws bars`` and ``oaws export``: recordings as bars, and as a typed table of ticks.

Both read what ``oaws record`` wrote (gzip, rotated parts, several files merged by receive
time); ``bars`` reads the Parquet files ``export`` writes too. The bars are
``oaws.bars.Aggregator``'s, the same as ``oaws tail --bars`` and the watch's chart make of
the same ticks (docs/bars.md). A file is written whole or not at all (``table.atomic``):
a full disk or Ctrl-C never leaves half of one behind.

Recordings and instruments share the command line (``oaws bars day.jsonl RELIANCE:NSE``):
an argument that is an existing file is a recording, one that is not and reads as
SYMBOL:EXCHANGE is an instrument, anything else a recording that cannot be read.
"""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from oaws.cli.common import UsageError, command, fail

if TYPE_CHECKING:
    from oaws.bars import Bar
    from oaws.instruments import Instrument

#: the formats of ``oaws bars``, and the file names that imply each
FORMATS = ("csv", "jsonl", "parquet")
EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

app = typer.Typer()

SourcesArg = Annotated[
    list[str],
    typer.Argument(
        help="Recordings (.jsonl, .gz, rotated parts; `oaws bars` also reads `oaws export`'s Parquet), "
        "then SYMBOL:EXCHANGE to keep only those instruments.",
        metavar="RECORDING... [INSTRUMENT]",
        show_default=False,
    ),
]


def split_sources(args: list[str]) -> tuple[list[str], list[Instrument]]:
    """(recordings, instruments) of the command line: a file that exists is a recording; a
    SYMBOL:EXCHANGE that is no file an instrument; anything else a recording (its error
    comes when it is read). A bad instrument is a usage error."""
    from oaws.instruments import InstrumentError, parse_many

    files = [a for a in args if os.path.exists(a) or ":" not in a]
    names = [a for a in args if a not in files]
    if not files:
        raise UsageError("give at least one recording to read")
    try:
        return files, parse_many(names)
    except InstrumentError as exc:
        raise UsageError(str(exc)) from None


def _keeper(instruments: list[Instrument]) -> Any:
    if not instruments:
        return None
    wanted = {(i.symbol, i.exchange) for i in instruments}
    return lambda symbol, exchange: (symbol, exchange) in wanted


def _warn(message: str) -> None:
    typer.echo(f"oaws: warning: {message}", err=True)


def output_format(given: str | None, out: str | None) -> str:
    """The format: ``--format``, else the output file's extension, else csv (to stdout)."""
    if given is not None:
        fmt = given.strip().lower()
        if fmt not in FORMATS:
            raise UsageError(f"--format is one of {', '.join(FORMATS)}, not {given!r}")
    elif out is None or out == "-":
        fmt = "csv"
    else:
        fmt = EXTENSIONS.get(os.path.splitext(out)[1].lower(), "")
        if not fmt:
            raise UsageError(f"cannot tell the format from the name {out}; give --format csv, jsonl or parquet")
    if fmt == "parquet" and (out is None or out == "-"):
        raise UsageError("--format parquet needs -o FILE (Parquet is a file, not lines for a pipe)")
    return fmt


def _rows(bars: list[Bar]) -> Any:
    from oaws.bars import iso

    for b in bars:
        yield (b.symbol, b.exchange, iso(b.start_ms), b.open, b.high, b.low, b.close, b.volume, b.oi, b.ticks)


def write_text(bars: list[Bar], fmt: str, stream: IO[str]) -> None:
    """Bars as CSV (a header line first) or as JSON lines, the columns of ``oaws.bars.COLUMNS``."""
    from oaws.bars import COLUMNS

    if fmt == "csv":
        import csv

        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(("" if v is None else v for v in row) for row in _rows(bars))
        return
    import orjson

    for row in _rows(bars):
        stream.write(orjson.dumps(dict(zip(COLUMNS, row, strict=True))).decode())
        stream.write("\n")


def recording_bars(files: list[str], interval: Any, instruments: list[Instrument]) -> tuple[list[Bar], Any]:
    """The bars of ``files`` (sorted by instrument, then start) and the aggregator that made them."""
    from oaws.bars import Aggregator
    from oaws.recording.table import recording_ticks

    agg = Aggregator(interval)
    add = agg.add
    done: list[Bar] = []
    keep = done.append
    for data in recording_ticks(files, keep=_keeper(instruments), warn=_warn):
        bar = add(data)
        if bar is not None:
            keep(bar)
    done.extend(agg.flush())
    done.sort(key=lambda b: (b.symbol, b.exchange, b.start_ms))
    return done, agg


def _nothing_read(files: list[str], instruments: list[Instrument], fed: int) -> None:
    """Stop (exit 1) when the files hold nothing oaws wrote or none of the instruments asked for."""
    from oaws.recording import no_ticks, read_header
    from oaws.recording.table import is_parquet

    if fed:
        return
    if instruments:
        names = ", ".join(str(i) for i in instruments)
        fail(f"no tick of {names} in {', '.join(files)}")
    if not any(is_parquet(f) or read_header(f) is not None for f in files):
        fail(no_ticks(files))


@command(app)
def bars(
    sources: SourcesArg,
    interval: Annotated[
        str, typer.Option("--interval", "-i", help="1m, 3m, 5m, 10m, 15m, 30m, 60m (1h) or 1d (D).")
    ] = "1m",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="csv, jsonl or parquet (default: from -o's name, else csv).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to FILE (default: standard output).", show_default=False
        ),
    ] = None,
) -> None:
    """Bars (candles) of recordings: one row per instrument and bar, by exchange time (docs/bars.md)."""
    from oaws.bars import IntervalError, parse_interval

    try:
        parsed = parse_interval(interval)
    except IntervalError as exc:
        raise UsageError(str(exc)) from None
    kind = output_format(fmt, out)
    files, instruments = split_sources(sources)
    done, agg = recording_bars(files, parsed, instruments)
    _nothing_read(files, instruments, sum(b.ticks for b in done) + agg.late + agg.skipped)
    for instrument in instruments:
        if not any(b.symbol == instrument.symbol and b.exchange == instrument.exchange for b in done):
            _warn(f"no bar of {instrument}: the recordings hold no trade of it")
    if agg.late:
        _warn(
            f"left out {agg.late:,} tick{'s' if agg.late != 1 else ''} whose exchange time fell in a bar "
            "already final (a stale last-trade time, or a tick that came late)"
        )
    if out is None or out == "-":
        write_text(done, kind, sys.stdout)
        sys.stdout.flush()
        return
    from oaws.recording.table import atomic

    with atomic(out) as temp:
        if kind == "parquet":
            import pyarrow.parquet as pq

            from oaws.recording.table import bars_table

            pq.write_table(bars_table(done), temp, compression="zstd")
        else:
            with open(temp, "w", encoding="utf-8", newline="") as stream:
                write_text(done, kind, stream)
    count = len({(b.symbol, b.exchange) for b in done})
    typer.echo(
        f"oaws: {len(done):,} {parsed} bars of {count:,} instrument{'s' if count != 1 else ''} to {out}", err=True
    )


@command(app)
def export(
    sources: SourcesArg,
    out: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="The Parquet file to write.", show_default=False)
    ],
) -> None:
    """The ticks of recordings as Parquet with a typed schema (docs/bars.md gives it)."""
    from oaws.recording.table import NoTicks, write_parquet

    if out == "-":
        raise UsageError("-o - : Parquet is a file, not lines for a pipe; give a file name")
    files, instruments = split_sources(sources)
    try:
        count = write_parquet(files, out, keep=_keeper(instruments), warn=_warn)
    except NoTicks as exc:
        _nothing_read(files, instruments, 0)
        fail(f"{exc}: nothing written")
    typer.echo(f"oaws: {count:,} ticks to {out}", err=True)
