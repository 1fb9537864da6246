"""``oaws tail`` and ``oaws subscribe``: ticks to stdout, for people and for pipes."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import tzinfo
from typing import Annotated, Any

import orjson
import typer

from oaws.aio import run
from oaws.autostart import open_client
from oaws.cli.common import (
    AUTH_TIMEOUT,
    ApiKeyOpt,
    AuthTimeoutOpt,
    AutostartOpt,
    DepthOpt,
    Instruments,
    JsonOpt,
    ModeOpt,
    UrlOpt,
    UsageError,
    client_settings,
    command,
    resolve_auth_timeout,
    resolve_depth,
    resolve_instruments,
    resolve_mode,
)
from oaws.client import FeedStatus, OrderUpdate, ServerError, Status, Tick, refusal
from oaws.config import ClientSettings, time_zone
from oaws.format import clock, indian, order_line, plural, price, signed
from oaws.instruments import DEFAULT_DEPTH, Instrument
from oaws.ticks import change_of

GREEN, RED, RESET = "\x1b[32m", "\x1b[31m", "\x1b[0m"
#: the widest the instrument column of ``tail`` grows (a longer name pushes its own line only)
NAME_CAP = 40

app = typer.Typer()


@command(app)
def tail(
    instruments: Instruments = None,
    json: JsonOpt = False,
    mode: ModeOpt = "quote",
    depth: DepthOpt = DEFAULT_DEPTH,
    count: Annotated[
        int | None, typer.Option("--count", "-n", min=1, help="Stop after N ticks (order updates count too).")
    ] = None,
    stats: Annotated[
        bool, typer.Option("--stats", help="Report end-to-end latency p50/p99 on stderr every second.")
    ] = False,
    orders: Annotated[
        bool,
        typer.Option("--orders", help="Print order updates too (only them when no instrument is given)."),
    ] = False,
    bars: Annotated[
        str | None,
        typer.Option(
            "--bars",
            metavar="INTERVAL",
            help="Print bars of INTERVAL (1m 3m 5m 10m 15m 30m 60m 1d) built from the ticks, "
            "each as a JSON line when it is final (docs/bars.md); --count counts bars.",
            show_default=False,
        ),
    ] = None,
    live: Annotated[bool, typer.Option("--live", help="With --bars: also print the forming bar on each tick.")] = False,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    autostart: AutostartOpt = True,
    auth_timeout: AuthTimeoutOpt = AUTH_TIMEOUT,
) -> None:
    """Stream ticks (and order updates with --orders) as lines, or JSON lines with --json, until Ctrl-C or --count."""
    resolved = resolve_mode(mode)
    if live and bars is None:
        raise UsageError("--live goes with --bars INTERVAL (the forming bar of each tick)")
    if bars is not None:
        from oaws.bars.aggregator import IntervalError, parse_interval
        from oaws.cli.live_bars import tail_bars

        try:
            interval = parse_interval(bars)
        except IntervalError as exc:
            raise UsageError(f"--bars: {exc}") from None
        if orders or stats:
            raise UsageError(f"--bars prints bars only, not with {'--orders' if orders else '--stats'}")
        raise typer.Exit(
            run(
                tail_bars(
                    resolve_instruments(instruments),
                    max(resolved, 2),  # Quote at least: its ticks carry the day's volume
                    interval,
                    live=live,
                    count=count,
                    settings=client_settings(url, api_key, autostart),
                    auth_timeout=resolve_auth_timeout(auth_timeout),
                )
            )
        )
    raise typer.Exit(
        run(
            _tail(
                [] if orders and not instruments else resolve_instruments(instruments),
                resolved,
                depth=resolve_depth(resolved, depth),
                as_json=json,
                count=count,
                stats=stats,
                orders=orders,
                settings=client_settings(url, api_key, autostart),
                auth_timeout=resolve_auth_timeout(auth_timeout),
            )
        )
    )


@command(app)
def subscribe(
    instruments: Instruments = None,
    json: JsonOpt = False,
    mode: ModeOpt = "quote",
    depth: DepthOpt = DEFAULT_DEPTH,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each instrument's tick.")
    ] = 10.0,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    autostart: AutostartOpt = True,
    auth_timeout: AuthTimeoutOpt = AUTH_TIMEOUT,
) -> None:
    """Print the latest tick of each instrument, then exit."""
    resolved = resolve_mode(mode)
    raise typer.Exit(
        run(
            _snapshot(
                resolve_instruments(instruments),
                resolved,
                depth=resolve_depth(resolved, depth),
                as_json=json,
                timeout=timeout,
                settings=client_settings(url, api_key, autostart),
                auth_timeout=resolve_auth_timeout(auth_timeout),
            )
        )
    )


def is_index(instrument: Instrument) -> bool:
    """An index (``NSE_INDEX``, ``BSE_INDEX``...): a price with no trades, so no book and no volume."""
    return instrument.exchange.endswith("_INDEX")


def name_width(instruments: list[Instrument]) -> int:
    """The instrument column of ``tail``: as wide as the longest instrument subscribed, at most ``NAME_CAP``."""
    return min(max((len(str(i)) for i in instruments), default=22), NAME_CAP)


def _levels(depth: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bid and ask levels of a tick's ``depth``, empty ones (no price, no quantity) left out."""
    if not isinstance(depth, dict):
        return [], []

    def side(levels: Any) -> list[dict[str, Any]]:
        if not isinstance(levels, list):
            return []
        return [lv for lv in levels if isinstance(lv, dict) and (lv.get("price") or lv.get("quantity"))]

    return side(depth.get("buy")), side(depth.get("sell"))


def tick_line(
    instrument: Instrument,
    data: dict[str, Any],
    *,
    width: int = 22,
    color: bool = False,
    tz: tzinfo | None = None,
) -> str:
    """One human-readable line for ``oaws tail``: time, instrument (in a column ``width`` wide),
    price, change, volume and the best bid and ask with their quantities (an index has neither)."""
    change, pct = change_of(data)
    parts = [clock(data.get("ltt") or data.get("timestamp"), tz), f"{instrument!s:<{width}}"]
    parts.append(f"{price(data.get('ltp')):>12}")
    if change is not None:
        move = f"{signed(change):>10} {signed(pct, '%'):>8}"
        if color:
            move = (GREEN if change > 0 else RED if change < 0 else "") + move + RESET
        parts.append(move)
    if data.get("volume") and not is_index(instrument):
        parts.append(f"vol {indian(data['volume'])}")
    bids, asks = ([], []) if is_index(instrument) else _levels(data.get("depth"))
    if bids or asks:
        bid = f"{indian(bids[0].get('quantity') or 0)} @ {price(bids[0].get('price'))}" if bids else "-"
        ask = f"{price(asks[0].get('price'))} @ {indian(asks[0].get('quantity') or 0)}" if asks else "-"
        parts.append(f"{bid} / {ask}")
    return "  ".join(parts)


def _err(line: str) -> None:
    sys.stderr.write(f"oaws: {line}\n")
    sys.stderr.flush()


class LatencyStats:
    """End-to-end latency (the feed's stamp to here), reported per second and at the end.

    The first tick of each instrument and mode after a (re)connection is no sample, marked
    as a snapshot or not: it is the last one the server (or its feed, for a mode the bus
    had not carried yet) held when the subscription began, and its stamp says how old the
    last trade is, not how fast the feed is. A tick marked as a snapshot later (a subscribe
    again) is none either.
    """

    def __init__(self) -> None:
        self.window: list[float] = []
        self.all: list[float] = []
        self.mark = time.monotonic()
        #: (instrument, mode) of which a tick came since the connection was made
        self.seen: set[tuple[Instrument, int]] = set()

    def connected(self) -> None:
        """A new connection: its first tick of each stream is a snapshot again."""
        self.seen.clear()

    def add(self, tick: Tick) -> None:
        key = (tick.instrument, tick.mode)
        if key not in self.seen:
            self.seen.add(key)
            return
        if tick.snapshot:
            return
        ms = tick.latency_ms
        if ms is not None:
            self.window.append(ms)

    @staticmethod
    def summary(values: list[float]) -> str:
        if not values:
            return "no timestamped ticks"
        v = sorted(values)
        p50, p99 = v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))]
        return f"{plural(len(v), 'tick')}, latency p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {v[-1]:.2f} ms"

    def maybe_report(self) -> None:
        now = time.monotonic()
        if now - self.mark >= 1.0:
            _err(self.summary(self.window))
            self.all.extend(self.window)
            self.window.clear()
            self.mark = now

    def final(self) -> None:
        self.all.extend(self.window)
        _err("total: " + self.summary(self.all))


def _waiting(event: Status) -> None:
    """What a command says of a connection that is not up yet: still waiting, or retrying."""
    if event.state == "authenticating":
        _err(event.detail)
    elif event.state == "reconnecting":
        wait = max(0.0, (event.retry_at or time.time()) - time.time())
        _err(f"{event.detail}; reconnecting in {wait:.1f} s")


async def _tail(
    instruments: list[Instrument],
    mode: int,
    *,
    depth: int = DEFAULT_DEPTH,
    as_json: bool,
    count: int | None,
    stats: bool,
    settings: ClientSettings,
    auth_timeout: float = AUTH_TIMEOUT,
    orders: bool = False,
) -> int:
    out = sys.stdout.buffer
    color = sys.stdout.isatty()
    tz = None if as_json else time_zone()
    width = name_width(instruments)
    latency = LatencyStats() if stats else None
    failed: set[Instrument] = set()
    written = 0
    try:
        async with await open_client(settings, instruments, mode, depth=depth, auth_timeout=auth_timeout) as client:
            if orders:
                await client.subscribe_orders()
            async for event in client:
                if isinstance(event, OrderUpdate):
                    line = orjson.dumps(event.message) if as_json else order_line(event.message).encode()
                    out.write(line + b"\n")
                    out.flush()
                    written += 1
                    if count is not None and written >= count:
                        return 0
                elif isinstance(event, Tick):
                    if as_json:
                        out.write(orjson.dumps(event.message) + b"\n")
                    else:
                        text = tick_line(event.instrument, event.data, width=width, color=color, tz=tz)
                        out.write(text.encode() + b"\n")
                    out.flush()
                    written += 1
                    if latency is not None:
                        latency.add(event)
                        latency.maybe_report()
                    if count is not None and written >= count:
                        return 0
                elif isinstance(event, ServerError):
                    if event.fatal:
                        _err(refusal(settings.url, event))
                        return 1
                    _err(str(event))
                    if event.instrument is not None:
                        failed.add(event.instrument)
                        if failed >= set(instruments):
                            return 1
                elif isinstance(event, Status):
                    _waiting(event)
                    if event.state == "connected" and latency is not None:
                        latency.connected()
                elif isinstance(event, FeedStatus):
                    if event.state != FeedStatus.ENDED:
                        _err(event.message)  # no feed on the bus (and, later, one that joined): wait on
                        continue
                    if count is None:
                        _err(event.message)
                        return 0
                    _err(f"{event.message} ({written:,} of the {count:,} asked for came)")
                    return 1
    finally:
        if latency is not None:
            latency.final()
    return 0


async def _snapshot(
    instruments: list[Instrument],
    mode: int,
    *,
    depth: int = DEFAULT_DEPTH,
    as_json: bool,
    timeout: float,
    settings: ClientSettings,
    auth_timeout: float = AUTH_TIMEOUT,
) -> int:
    tz = None if as_json else time_zone()
    ticks: dict[Instrument, Tick] = {}
    errors: dict[Instrument, ServerError] = {}
    pending = set(instruments)
    #: the server's last word on its feed (no feed on the bus, a replay that has ended)
    feed: FeedStatus | None = None
    loop = asyncio.get_running_loop()
    async with await open_client(settings, instruments, mode, depth=depth, auth_timeout=auth_timeout) as client:
        try:
            # --timeout counts once the connection is up: until then the client's own limits hold
            # (open_timeout, then auth_timeout for a server that sets up its broker first)
            async with asyncio.timeout(None) as deadline:
                async for event in client:
                    if isinstance(event, Status):
                        _waiting(event)
                        if event.state == "connected" and deadline.when() is None:
                            deadline.reschedule(loop.time() + timeout)
                    elif isinstance(event, Tick) and event.instrument in pending:
                        ticks[event.instrument] = event
                        pending.discard(event.instrument)
                    elif isinstance(event, ServerError):
                        if event.fatal:
                            _err(refusal(settings.url, event))
                            return 1
                        if event.instrument in pending:
                            errors[event.instrument] = event
                            pending.discard(event.instrument)
                    elif isinstance(event, FeedStatus):
                        feed = None if event.state == FeedStatus.LIVE else event
                        if event.state == FeedStatus.ENDED:
                            break  # the last ticks came before it: none will come any more
                    if not pending:
                        break
        except TimeoutError:
            pass
    if as_json:
        out = sys.stdout.buffer
        for instrument in instruments:
            if instrument in ticks:
                out.write(orjson.dumps(ticks[instrument].message) + b"\n")
        out.flush()
    elif ticks:  # no table at all rather than a header over nothing
        _table([ticks[i] for i in instruments if i in ticks], tz)
    for instrument in instruments:
        if instrument in errors:
            _err(str(errors[instrument]))
        elif instrument not in ticks and feed is not None and feed.state == FeedStatus.ENDED:
            _err(f"{instrument}: no tick: {feed.message}")
        elif instrument not in ticks:
            _err(f"{instrument}: no tick within {timeout:g} s" + (f": {feed.message}" if feed is not None else ""))
    return 0 if len(ticks) == len(instruments) else 1


def _table(ticks: list[Tick], tz: tzinfo | None) -> None:
    """The latest tick of each instrument as a table; in Depth mode, each book below it."""
    from rich.table import Table

    from oaws.cli.output import print_tables

    table = Table(box=None, header_style="bold", pad_edge=False)
    widest = max((len(str(t.instrument)) for t in ticks), default=10)
    for name, justify in (
        ("Instrument", "left"),
        ("LTP", "right"),
        ("Change", "right"),
        ("Change %", "right"),
        ("Open", "right"),
        ("High", "right"),
        ("Low", "right"),
        ("Prev close", "right"),
        ("Volume", "right"),
        ("Last trade", "right"),
    ):
        table.add_column(
            name,
            justify=justify,
            no_wrap=True,  # type: ignore[arg-type]
            min_width=widest if name == "Instrument" else None,
        )
    books = []
    for tick in ticks:
        d: dict[str, Any] = tick.data
        change, pct = change_of(d)
        style = "green" if (change or 0) > 0 else "red" if (change or 0) < 0 else ""
        table.add_row(
            str(tick.instrument),
            price(d.get("ltp")),
            f"[{style}]{signed(change)}[/]" if style else signed(change),
            f"[{style}]{signed(pct, '%')}[/]" if style else signed(pct, "%"),
            price(d.get("open")),
            price(d.get("high")),
            price(d.get("low")),
            price(d.get("close")),
            "" if is_index(tick.instrument) else indian(d.get("volume")),  # an index trades no volume
            clock(d.get("ltt") or d.get("timestamp"), tz),
        )
        book = None if is_index(tick.instrument) else _book(tick)
        if book is not None:
            books.append(book)
    # piped: as wide as it takes, never cut, no trailing spaces; on a terminal: the terminal's width
    print_tables(table, *books)


def _book(tick: Tick) -> Any:
    """The market depth of a Depth tick as a table (orders, quantity, price a side), or None without one."""
    from rich.table import Table

    bids, asks = _levels(tick.data.get("depth"))
    if not bids and not asks:
        return None
    book = Table(title=f"{tick.instrument} depth", title_justify="left", box=None, header_style="bold", pad_edge=False)
    for name in ("Orders", "Bid qty", "Bid", "Ask", "Ask qty", "Orders"):
        book.add_column(name, justify="right", no_wrap=True)

    def cells(level: dict[str, Any] | None) -> tuple[str, str, str]:
        if level is None:
            return "", "", ""
        orders = level.get("orders")
        return (
            indian(orders) if orders is not None else "",
            indian(level.get("quantity") or 0),
            price(level.get("price")),
        )

    for n in range(max(len(bids), len(asks))):
        b_orders, b_qty, b_price = cells(bids[n] if n < len(bids) else None)
        a_orders, a_qty, a_price = cells(asks[n] if n < len(asks) else None)
        book.add_row(b_orders, b_qty, b_price, a_price, a_qty, a_orders)
    return book
