"""``oaws record``, ``oaws replay`` and ``oaws inspect``: ticks to a file and back.

``record`` is a client like ``tail``: it subscribes and writes every ``market_data``
message to a recording (oaws.recording) with its receive time. Losing data quietly is
the one thing it must not do, so: lines reach the OS at least once a second; SIGINT and
SIGTERM flush and close; a dropped connection is retried and leaves a gap marker; a
full disk stops it with one sentence, keeping what was written.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from datetime import tzinfo
from typing import Annotated, Any

import typer

from oaws import config as cfg
from oaws.cli import (
    ApiKeyOpt,
    BusOpt,
    FromOpt,
    HostOpt,
    Instruments,
    JsonOpt,
    ModeOpt,
    NoAutostartOpt,
    PortOpt,
    ToOpt,
    UrlOpt,
    fail,
    friendly,
    replay_bounds,
    resolve_instruments,
    resolve_mode,
)

#: how often buffered lines go to the OS (the promise is at least once a second)
FLUSH_EVERY = 0.5
FileArg = Annotated[
    str, typer.Argument(help="The recording to write; - for standard output; FILE.gz compresses.", show_default=False)
]


def _err(line: str) -> None:
    # clear a live status line first, so the message does not end up glued to it
    prefix = "\r\x1b[2K" if sys.stderr.isatty() else ""
    sys.stderr.write(f"{prefix}oaws: {line}\n")
    sys.stderr.flush()


class Fatal(Exception):
    """The server refused us for good (API key): already reported; exit 1."""


class Recorder:
    """One ``oaws record`` run: a connection's ticks into a ``Writer`` until stopped.

    Its own receive loop rather than ``Client``'s events: at tens of thousands of ticks a
    second, parsing each message only to write it out again costs more than the rest of
    the recorder, so frames of the proxy's shape go to the file as bytes
    (``recording.market_lines``); anything else is parsed. The semantics are the
    client's: authenticate, subscribe, reconnect with jittered backoff, resubscribe.
    """

    def __init__(
        self,
        writer: Any,
        instruments: list[Any],
        mode: int,
        settings: cfg.ClientSettings,
        *,
        count: int | None = None,
        duration: float | None = None,
        live: bool = False,
        backoff: tuple[float, float] = (0.5, 10.0),
    ) -> None:
        self.writer = writer
        self.instruments = instruments
        self.mode = mode
        self.settings = settings
        self.url = settings.url
        self.count = count
        self.duration = duration
        self.live = live
        self.backoff = backoff
        self.started = time.monotonic()
        self.connected = False
        self.connected_once = False
        self.attempts = 0
        #: receive time of the last frame, for a gap's start
        self.last_ns = 0
        self.last_frame = b""
        self.down_since: int | None = None
        self.down_reason = ""
        #: after a reconnect: (timestamp, seq) of the last tick received before the drop, and
        #: until when (ns) the server's snapshots of older ticks are dropped as repeats
        self.resume_after: tuple[int, int] | None = None
        self.recheck_until = 0
        self.failed: set[Any] = set()
        self._rate_mark = (self.started, 0)
        self.rate = 0.0

    async def run(self) -> int:
        from oaws.cli.common import open_client

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks: list[asyncio.Task[Any]] = []
        try:
            # open_client starts a background server when none answers (and autostart allows)
            client = await open_client(self.settings, self.instruments, self.mode)
            self.url = client.url
            receiver = asyncio.create_task(self._receive())
            tasks = [receiver, asyncio.create_task(stop.wait()), asyncio.create_task(self._tend())]
            if self.duration is not None:
                tasks.append(asyncio.create_task(asyncio.sleep(self.duration)))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not receiver and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            code = receiver.result() if receiver in done else 0
        except Fatal:
            code = 1
        except BaseException:
            self.writer.abort()
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if code != 0 and self.writer.ticks == 0:
            self.writer.abort()  # nothing recorded (refused key...): leave no header-only file behind
            return code
        self.writer.close()
        if self.live:
            self._show(final=True)
        return code

    # The connection ------------------------------------------------------------------
    def _delay(self) -> float:
        base, cap = self.backoff
        return random.uniform(base / 2, min(cap, base * 2 ** min(self.attempts, 16)))

    async def _receive(self) -> int:
        """Connect, record, reconnect after drops; the exit code once ``count`` is reached."""
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        from oaws.client import AuthError, ClientError, ConnectError, dial, explain, with_batch

        url = with_batch(self.url)
        while True:
            try:
                ws = await dial(url, 5)
            except InvalidURI:
                raise ClientError(f"{self.url!r} is not a WebSocket URL; write ws://HOST:PORT") from None
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                if not self.connected_once:
                    raise ConnectError(explain(self.url, exc)) from None
                await self._pause(explain(self.url, exc))
                continue
            reason = "the connection dropped"
            try:
                async with ws:
                    return await self._session(ws)
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == 4401:
                    why = exc.rcvd.reason or "not authenticated"
                    raise AuthError(f"{self.url} closed the connection: {why}") from None
                reason = explain(self.url, exc)
            except (OSError, TimeoutError) as exc:
                reason = explain(self.url, exc)
            self._went_down(reason)
            await self._pause(reason)

    async def _pause(self, reason: str) -> None:
        delay = self._delay()
        self.attempts += 1
        _err(f"{reason}; reconnecting in {delay:.1f} s")
        await asyncio.sleep(delay)

    def _went_down(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
        self.down_since = self.last_ns or time.time_ns()
        self.down_reason = reason
        self.resume_after = _last_tick_key(self.last_frame)

    async def _session(self, ws: Any) -> int:
        import orjson

        from oaws.recording import market_lines

        if self.settings.api_key is not None:
            await ws.send(orjson.dumps({"action": "authenticate", "api_key": self.settings.api_key}).decode())
            async with asyncio.timeout(5):
                while True:
                    body = orjson.loads(await ws.recv(decode=False))
                    if isinstance(body, dict) and body.get("type") == "auth":
                        break
                    if isinstance(body, dict) and body.get("code") == "AUTHENTICATION_ERROR":
                        _err(f"{self.url} refused the API key: {body.get('message', 'invalid API key')}")
                        raise Fatal
        now = time.time_ns()
        if self.down_since is not None:
            self.writer.write_gap(self.down_since, now, self.down_reason)
            _err(f"reconnected to {self.url}; marked a gap of {(now - self.down_since) / 1e9:.1f} s")
            self.down_since = None
            self.recheck_until = now + 1_000_000_000
        self.connected = self.connected_once = True
        self.attempts = 0
        self.last_ns = now
        symbols = [{"symbol": i.symbol, "exchange": i.exchange} for i in self.instruments]
        for start in range(0, len(symbols), 500):
            await ws.send(
                orjson.dumps(
                    {"action": "subscribe", "mode": self.mode, "depth": 5, "symbols": symbols[start : start + 500]}
                ).decode()
            )
        writer = self.writer
        count = self.count
        recv = ws.recv
        time_ns = time.time_ns
        while True:
            frame = await recv(decode=False)
            received = time_ns()
            self.last_ns = received
            fast = None
            if received > self.recheck_until and writer.header["broker"] is not None:
                fast = market_lines(frame, received)
            if fast is not None and (count is None or writer.ticks + fast[1] < count):
                writer.write_lines(*fast)
                self.last_frame = frame
                continue
            if self._parsed(frame, received):
                return 0 if writer.ticks else 1

    def _parsed(self, frame: bytes, received: int) -> bool:
        """Handle a frame the slow way, message by message; True when recording should stop."""
        import orjson

        try:
            body = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return False
        writer = self.writer
        for message in body if isinstance(body, list) else (body,):
            if not isinstance(message, dict):
                continue
            if message.get("type") == "market_data":
                if received <= self.recheck_until and self._seen(message):
                    continue
                if writer.header["broker"] is None:
                    writer.header["broker"] = message.get("broker") or "unknown"
                writer.write_tick(message, received)
                self.last_frame = frame
                if self.count is not None and writer.ticks >= self.count:
                    return True
            elif self._refused(message):
                return True
        return False

    def _seen(self, message: dict[str, Any]) -> bool:
        """Whether a tick sent right after a reconnect repeats one received before the drop.

        On subscribe the server sends the latest tick it holds; if that tick came before
        the last one received (by the feed's timestamp, then sequence), it is not new.
        """
        data = message.get("data")
        if self.resume_after is None or not isinstance(data, dict):
            return False
        key = _tick_key(data)
        return key is not None and key <= self.resume_after

    def _refused(self, message: dict[str, Any]) -> bool:
        """Report subscription errors; True when nothing is left to record or the key was refused."""
        from oaws.client import describe_error
        from oaws.instruments import InstrumentError, make
        from oaws.protocol.client import FATAL_CODES

        kind = message.get("type")
        if message.get("status") == "error" and kind in (None, "error", "subscription", "unsubscription"):
            errors = [message]
        else:
            errors = [e for e in message.get("subscriptions", ()) if isinstance(e, dict) and e.get("status") == "error"]
        for entry in errors:
            code, text = str(entry.get("code") or "ERROR"), str(entry.get("message") or "error")
            if code in FATAL_CODES:
                _err(
                    f"{self.url} requires an API key: pass --api-key or set OAWS_API_KEY"
                    if code == "NOT_AUTHENTICATED"
                    else f"{self.url} refused the API key: {text}"
                )
                raise Fatal
            try:
                instrument = make(entry.get("symbol"), entry.get("exchange"))
            except InstrumentError:
                _err(f"{text} ({code})")
                continue
            _err(f"{describe_error(text, instrument)} ({code})")
            self.failed.add(instrument)
            listed = self.writer.header["instruments"]
            if str(instrument) in listed and self.writer.ticks == 0:
                listed.remove(str(instrument))
        return bool(self.failed) and self.failed >= set(self.instruments)

    # Housekeeping --------------------------------------------------------------------
    async def _tend(self) -> None:
        """Hand lines to the OS (and rotate) every FLUSH_EVERY seconds; refresh the live line."""
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self.writer.tick()
            if self.live:
                self._show()

    def _show(self, final: bool = False) -> None:
        from oaws.recording import human_size

        now = time.monotonic()
        ticks = self.writer.ticks
        mark, marked = self._rate_mark
        if final or now - self.started < 1.0:
            self.rate = ticks / max(now - self.started, 1e-3)  # the average, until a full second is measured
        elif now - mark >= 1.0:
            self.rate = (ticks - marked) / (now - mark)
            self._rate_mark = (now, ticks)
        elapsed = int(now - self.started)
        where = self.writer.current if self.writer.current != "-" else "stdout"
        state = "" if self.connected or final else "  (reconnecting)" if self.connected_once else "  (connecting)"
        line = (
            f"oaws: {'recorded' if final else 'recording'} {where}: {ticks:,} ticks  "
            f"{self.rate:,.0f}/s{' average' if final else ''}  {human_size(self.writer.total_bytes)}  "
            f"{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}{state}"
        )
        sys.stderr.write("\r\x1b[2K" + line + ("\n" if final else ""))
        sys.stderr.flush()


def _tick_key(data: dict[str, Any]) -> tuple[int, int] | None:
    ts, seq = data.get("timestamp"), data.get("seq")
    if not isinstance(ts, (int, float)):
        return None
    return int(ts), seq if isinstance(seq, int) else -1


def _last_tick_key(frame: bytes) -> tuple[int, int] | None:
    """(timestamp, seq) of the last tick in a frame (the last one received before a drop)."""
    import orjson

    try:
        body = orjson.loads(frame) if frame else None
    except orjson.JSONDecodeError:
        return None
    for message in reversed(body if isinstance(body, list) else [body]):
        if isinstance(message, dict) and isinstance(message.get("data"), dict):
            return _tick_key(message["data"])
    return None


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
) -> int:
    """Record until a signal, ``count`` ticks or ``duration``; the exit code."""
    from oaws.cli.common import run
    from oaws.recording import RecordingError, Writer, make_header, parse_duration, parse_rotate

    rotate_bytes, rotate_seconds = parse_rotate(rotate) if rotate else (None, None)
    seconds = parse_duration(duration) if duration else None
    if count is not None and count <= 0:
        raise RecordingError("--count must be a positive number of ticks")
    header = make_header(settings.url, instruments, mode)
    writer = Writer(path, header, rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds)
    recorder = Recorder(
        writer,
        instruments,
        mode,
        settings,
        count=count,
        duration=seconds,
        live=sys.stderr.isatty() if live is None else live,
    )
    return int(run(recorder.run))


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly
    def record(
        file: FileArg,
        instruments: Instruments = None,
        mode: ModeOpt = None,
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
        no_autostart: NoAutostartOpt = False,
    ) -> None:
        """Append every tick to FILE as JSON lines (a header, then one market_data message per line)."""
        from oaws.recording import RecordingError

        try:
            code = record_to(
                file,
                resolve_instruments(instruments),
                resolve_mode(mode),
                cfg.client_settings(url, api_key, no_autostart),
                rotate=rotate,
                count=count,
                duration=duration,
            )
        except RecordingError as exc:
            fail(str(exc))
        raise typer.Exit(code)

    @app.command()
    @friendly
    def replay(
        files: Annotated[list[str], typer.Argument(help="Recordings to serve, merged by time.", show_default=False)],
        speed: Annotated[
            float, typer.Option("--speed", help="1 real time, 10 ten times faster, 0 as fast as possible.")
        ] = 1.0,
        loop: Annotated[bool, typer.Option("--loop", help="Start again at the end, forever.")] = False,
        start: FromOpt = None,
        end: ToOpt = None,
        host: HostOpt = None,
        port: PortOpt = None,
        bus: BusOpt = None,
        api_key: ApiKeyOpt = None,
    ) -> None:
        """Serve recordings as the feed, paced by their recorded times (like serve --broker replay)."""
        import logging

        from oaws.aio import run
        from oaws.server.service import ServeOptions, Service, serve_forever

        replay_from, replay_to = replay_bounds(list(files), start, end)
        opts = ServeOptions(
            broker="replay",
            role="all",
            host=cfg.get("host", host),
            port=cfg.get("port", port),
            bus=cfg.get("bus", bus),
            api_key=cfg.get("api_key", api_key),
            replay=list(files),
            speed=speed,
            loop=loop,
            replay_from=replay_from,
            replay_to=replay_to,
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

    @app.command()
    @friendly
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
            _err(f"warning: {message}")
        if json:
            import orjson

            sys.stdout.buffer.write(orjson.dumps(summary.as_json()) + b"\n")
            sys.stdout.flush()
        else:
            _inspect_table(summary, tz)


def _span(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}" + (f" ({seconds:.3f} s)" if seconds < 60 else "")


def _inspect_table(summary: Any, tz: tzinfo | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from oaws.instruments import MODE_LABELS
    from oaws.recording import when as _when  # the same times as replay's refusals show

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    head = summary.headers[0] if summary.headers else {}
    overview = Table(box=None, show_header=False, pad_edge=False)
    overview.add_column(style="bold")
    overview.add_column()
    modes = ", ".join(f"{MODE_LABELS.get(m, m)} {n:,}" for m, n in sorted(summary.modes.items())) or "-"
    rows = [
        ("Files", ", ".join(summary.files)),
        ("Source", f"{head.get('source') or '-'} ({head.get('broker') or 'unknown broker'})"),
        ("Sessions", str(len(summary.headers))),
        ("Ticks", f"{summary.ticks:,}  ({modes})"),
        ("From", _when(summary.first_ns, tz)),
        ("To", _when(summary.last_ns, tz)),
        ("Span", _span(summary.span_s)),
        ("Ticks/s", f"{summary.per_s:,.1f} average, {summary.peak_per_s:,} peak"),
        ("Gaps", str(len(summary.gaps))),
        ("Missing", f"{summary.missing:,} ticks (counted by the feed's per-topic fseq)"),
    ]
    for name, value in rows:
        overview.add_row(name, value)
    console.print(overview)
    if summary.instruments:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("Instrument", no_wrap=True)
        table.add_column("Ticks", justify="right")
        table.add_column("Share", justify="right")
        table.add_column("Ticks/s", justify="right")
        for name, n in sorted(summary.instruments.items(), key=lambda kv: (-kv[1], kv[0])):
            per_s = n / summary.span_s if summary.span_s > 0 else float(n)
            table.add_row(name, f"{n:,}", f"{n / summary.ticks:.1%}", f"{per_s:,.2f}")
        console.print()
        console.print(table)
    if summary.gaps:
        gaps = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("Gap from", "To", "Length", "Reason"):
            gaps.add_column(name, no_wrap=name != "Reason")
        for gap in summary.gaps:
            start, stop = gap.get("from_ns"), gap.get("to_ns")
            length = f"{(stop - start) / 1e9:.1f} s" if isinstance(start, int) and isinstance(stop, int) else "-"
            gaps.add_row(_when(start, tz), _when(stop, tz), length, str(gap.get("reason") or ""))
        console.print()
        console.print(gaps)
