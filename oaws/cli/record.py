"""``oaws record``, ``oaws replay`` and ``oaws inspect``: ticks to a file and back.

``record`` is a client like ``tail``: it subscribes and writes every ``market_data``
message to a recording (oaws.recording) with its receive time. Losing data quietly is
the one thing it must not do, so: lines reach the OS at least once a second; SIGINT and
SIGTERM flush and close; a dropped connection is retried and leaves a gap marker; a
full disk stops it with one sentence, keeping what was written. The command builds the
writer and the client; the loop between them is ``oaws.recording.recorder``.
"""

from __future__ import annotations

import sys
from datetime import tzinfo
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oaws import config as cfg
from oaws.cli.common import (
    AUTH_TIMEOUT,
    ApiKeyOpt,
    AuthTimeoutOpt,
    AutostartOpt,
    BusOpt,
    FromOpt,
    HostOpt,
    Instruments,
    JsonOpt,
    ModeOpt,
    PortOpt,
    ToOpt,
    UrlOpt,
    UsageError,
    client_settings,
    command,
    fail,
    replay_bounds,
    resolve_auth_timeout,
    resolve_instruments,
    resolve_mode,
)
from oaws.config import DEFAULT_HOST, DEFAULT_PORT
from oaws.format import plural

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from oaws.client import Client, FrameHook

FileArg = Annotated[
    str, typer.Argument(help="The recording to write; - for standard output; FILE.gz compresses.", show_default=False)
]


def record_to(
    path: str,
    instruments: list[Any],
    mode: int,
    settings: cfg.ClientSettings,
    *,
    rotate: str | None = None,
    count: int | None = None,
    duration: str | None = None,
    live: bool | None = None,
    auth_timeout: float = AUTH_TIMEOUT,
) -> int:
    """Record until a signal, ``count`` ticks or ``duration``; the exit code.

    Nothing listening at the URL is an error at once; a server that answers but cannot
    authenticate yet (OpenAlgo still setting up the broker, a broker error) is retried
    with growing waits until it can, and the ticks are recorded from then on.
    """
    from oaws.aio import run
    from oaws.autostart import open_client
    from oaws.recording import RecordingError, Writer, make_header, parse_duration, parse_rotate
    from oaws.recording.recorder import Recorder, say

    try:  # a bad --rotate or --duration is a command-line mistake: exit 2
        rotate_bytes, rotate_seconds = parse_rotate(rotate) if rotate else (None, None)
        seconds = parse_duration(duration) if duration else None
    except RecordingError as exc:
        raise UsageError(str(exc)) from None
    if count is not None and count <= 0:
        raise RecordingError("--count must be a positive number of ticks")
    header = make_header(settings.url, instruments, mode)
    writer = Writer(path, header, rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds, notice=say)

    def connect(on_frame: FrameHook) -> Awaitable[Client]:
        # open_client starts a background server when none answers (and autostart allows)
        return open_client(settings, instruments, mode, retry_auth=True, auth_timeout=auth_timeout, on_frame=on_frame)

    recorder = Recorder(
        writer,
        instruments,
        connect,
        count=count,
        duration=seconds,
        live=sys.stderr.isatty() if live is None else live,
    )
    return int(run(recorder.run))


app = typer.Typer()


@command(app)
def record(
    file: FileArg,
    instruments: Instruments = None,
    mode: ModeOpt = "quote",
    rotate: Annotated[
        str | None,
        typer.Option(
            "--rotate", help="Start a new numbered file every SIZE (100MB) or INTERVAL (1h).", show_default=False
        ),
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Stop after this long (90s, 15m, 6h).", show_default=False)
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", "-n", min=1, help="Stop after N ticks.", show_default=False)
    ] = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    autostart: AutostartOpt = True,
    auth_timeout: AuthTimeoutOpt = AUTH_TIMEOUT,
) -> None:
    """Append every tick to FILE as JSON lines (a header, then one market_data message per line)."""
    from oaws.recording import RecordingError

    try:
        code = record_to(
            file,
            resolve_instruments(instruments),
            resolve_mode(mode),
            client_settings(url, api_key, autostart),
            rotate=rotate,
            count=count,
            duration=duration,
            auth_timeout=resolve_auth_timeout(auth_timeout),
        )
    except RecordingError as exc:
        fail(str(exc))
    raise typer.Exit(code)


@command(app)
def replay(
    files: Annotated[list[str], typer.Argument(help="Recordings to serve, merged by time.", show_default=False)],
    speed: Annotated[
        float, typer.Option("--speed", help="1 real time, 10 ten times faster, 0 as fast as possible.")
    ] = 1.0,
    loop: Annotated[bool, typer.Option("--loop", help="Start again at the end, forever.")] = False,
    start: FromOpt = None,
    end: ToOpt = None,
    host: HostOpt = DEFAULT_HOST,
    port: PortOpt = DEFAULT_PORT,
    bus: BusOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Serve recordings as the feed, paced by their recorded times (like serve --broker replay)."""
    import logging

    from oaws.aio import run
    from oaws.server.service import Service, serve_forever
    from oaws.server.settings import ServeSettings

    replay_from, replay_to = replay_bounds(list(files), start, end)
    opts = ServeSettings(
        broker="replay",
        role="all",
        host=host,
        port=port,
        bus=bus,
        api_key=api_key,
        feed={"replay": list(files), "speed": speed, "loop": loop, "replay_from": replay_from, "replay_to": replay_to},
    )
    logging.getLogger("oaws").setLevel(min(logging.getLogger().level, logging.INFO))

    def ready(service: Service) -> None:
        d = service.describe()
        pace = "as fast as possible" if speed == 0 else f"at {speed:g}x"
        typer.echo(
            f"oaws: serving on {d['url']}: replay of {len(files)} recording(s) {pace}"
            f"{', looping' if loop else ''}, bus {d['bus']}; it starts with the first subscriber; "
            f"Ctrl-C stops",
            err=True,
        )

    run(lambda: serve_forever(opts, ready))


@command(app)
def inspect(
    files: Annotated[list[str], typer.Argument(help="Recordings to describe.", show_default=False)],
    json: JsonOpt = False,
) -> None:
    """Instruments, tick counts, time span, gaps and rates of recordings."""
    from oaws.recording import RecordingError, no_ticks, summarize

    tz = None if json else cfg.time_zone()
    try:
        summary = summarize(files)
    except RecordingError as exc:
        fail(str(exc))
    if not summary.ticks and not summary.headers:
        # nothing oaws wrote (text, random bytes, an empty or damaged file): one sentence,
        # not the reader's warnings and a summary of zeros
        fail(no_ticks(files))
    for message in summary.warnings:
        typer.echo(f"oaws: warning: {message}", err=True)
    if json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(summary.as_json()) + b"\n")
        sys.stdout.flush()
    else:
        _inspect_table(summary, tz)


def _span(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}" + (f" ({seconds:.3f} s)" if seconds < 60 else "")


def _skipped(skipped: Any) -> str:
    """What the reader skipped, in a few words (``-``: nothing)."""

    def n(count: int, one: str, many: str | None = None) -> str:
        return f"{count:,} {one if count == 1 else many or one + 's'}"

    said = []
    if skipped.damaged_parts or skipped.damaged_bytes:
        said.append(
            f"{n(skipped.damaged_parts, 'damaged compressed part')} ({n(skipped.damaged_bytes, 'byte')})"
            if skipped.damaged_parts
            else f"{n(skipped.damaged_bytes, 'byte')} of compressed junk"
        )
    if skipped.cut_short:
        said.append(n(skipped.cut_short, "compressed stream cut short", "compressed streams cut short"))
    if skipped.not_json:
        said.append(n(skipped.not_json, "line that is not JSON", "lines that are not JSON"))
    if skipped.truncated:
        said.append(n(skipped.truncated, "truncated last line"))
    if skipped.too_long:
        said.append(n(skipped.too_long, "line over 1 MiB", "lines over 1 MiB"))
    if skipped.too_deep:
        said.append(n(skipped.too_deep, "line nested too deep", "lines nested too deep"))
    return ", ".join(said) or "-"


def _inspect_table(summary: Any, tz: tzinfo | None) -> None:
    from rich.table import Table

    from oaws.cli.output import print_tables
    from oaws.instruments import MODE_LABELS
    from oaws.recording import when as _when  # the same times as replay's refusals show

    head = summary.headers[0] if summary.headers else {}
    overview = Table(box=None, show_header=False, pad_edge=False)
    overview.add_column(style="bold")
    overview.add_column()
    modes = ", ".join(f"{MODE_LABELS.get(m, m)} {n:,}" for m, n in sorted(summary.modes.items())) or "-"
    rows = [
        ("Files", ", ".join(summary.files)),
        ("Source", f"{head.get('source') or '-'} ({head.get('broker') or 'unknown broker'})"),
        ("Sessions", str(summary.sessions)),
        ("Ticks", f"{summary.ticks:,}  ({modes})"),
        ("From", _when(summary.first_ns, tz)),
        ("To", _when(summary.last_ns, tz)),
        ("Span", _span(summary.span_s)),
        ("Ticks/s", f"{summary.per_s:,.1f} average, {summary.peak_per_s:,} peak"),
        ("Gaps", str(len(summary.gaps))),
        ("Missing", f"{plural(summary.missing, 'tick')} (counted by the feed's per-topic fseq)"),
        ("Skipped", _skipped(summary.skipped)),
    ]
    for name, value in rows:
        overview.add_row(name, value)
    shown: list[Any] = [overview]
    if summary.instruments:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("Instrument", no_wrap=True)
        table.add_column("Ticks", justify="right")
        table.add_column("Share", justify="right")
        table.add_column("Ticks/s", justify="right")
        for name, n in sorted(summary.instruments.items(), key=lambda kv: (-kv[1], kv[0])):
            per_s = n / summary.span_s if summary.span_s > 0 else float(n)
            table.add_row(name, f"{n:,}", f"{n / summary.ticks:.1%}", f"{per_s:,.2f}")
        shown.append(table)
    if summary.gaps:
        gaps = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("Gap from", "To", "Length", "Reason"):
            gaps.add_column(name, no_wrap=name != "Reason")
        for gap in summary.gaps:
            start, stop = gap.get("from_ns"), gap.get("to_ns")
            length = f"{(stop - start) / 1e9:.1f} s" if isinstance(start, int) and isinstance(stop, int) else "-"
            gaps.add_row(_when(start, tz), _when(stop, tz), length, str(gap.get("reason") or ""))
        shown.append(gaps)
    # piped: whole lines (up to 120 columns) without trailing spaces
    print_tables(*shown, width=120)
