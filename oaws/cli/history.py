"""``oaws history``: the broker's candles of one instrument, through the server."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from oaws.aio import run
from oaws.cli.common import (
    ApiKeyOpt,
    AutostartOpt,
    JsonOpt,
    UrlOpt,
    UsageError,
    client_settings,
    command,
)

if TYPE_CHECKING:
    from oaws.bars import Bar

app = typer.Typer()

FORMATS = ("table", "csv", "jsonl")


@command(app)
def history(
    instrument: Annotated[str, typer.Argument(help="SYMBOL:EXCHANGE, e.g. RELIANCE:NSE.", show_default=False)],
    interval: Annotated[str, typer.Option("--interval", "-i", help="1m, 3m, 5m, 10m, 15m, 30m, 60m or 1d.")] = "5m",
    days: Annotated[int, typer.Option("--days", "-d", min=1, max=400, help="The last N days, today among them.")] = 1,
    json: JsonOpt = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or jsonl.")] = "table",
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    autostart: AutostartOpt = True,
) -> None:
    """Print the broker's candles of an instrument (a table, --format csv, or JSON lines with --json)."""
    from oaws.autostart import autostart as start_server
    from oaws.bars import IntervalError, parse_interval
    from oaws.client import fetch_history
    from oaws.instruments import InstrumentError, parse

    try:
        wanted = parse(instrument)
        iv = parse_interval(interval)
    except (InstrumentError, IntervalError) as exc:
        raise UsageError(str(exc)) from None
    shape = "jsonl" if json else fmt.lower()
    if shape not in FORMATS:
        raise UsageError(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    settings = client_settings(url, api_key, autostart)
    start_server(settings)
    bars = run(fetch_history(settings.url, wanted, iv, days=days, api_key=settings.api_key))
    if shape == "table":
        _table(bars, f"{wanted} {iv.name}, {days} day{'s' if days != 1 else ''}")
        return
    if shape == "csv":
        from oaws.cli.bars import write_text

        write_text(bars, "csv", sys.stdout)
    else:
        import orjson

        for bar in bars:
            sys.stdout.write(orjson.dumps(bar.as_dict()).decode() + "\n")
    sys.stdout.flush()


def _table(bars: list[Bar], title: str) -> None:
    from rich.table import Table

    from oaws.bars import iso
    from oaws.cli.output import print_tables
    from oaws.format import indian

    if not bars:
        sys.stderr.write(f"oaws: the broker gave no candles for {title}\n")
        return
    table = Table(title=title, title_justify="left")
    for name in ("start", "open", "high", "low", "close", "volume", "oi"):
        table.add_column(name, justify="left" if name == "start" else "right")
    for b in bars:
        table.add_row(
            iso(b.start_ms), f"{b.open:.2f}", f"{b.high:.2f}", f"{b.low:.2f}", f"{b.close:.2f}",
            indian(b.volume), "" if b.oi is None else indian(b.oi),
        )  # fmt: skip
    print_tables(table)
