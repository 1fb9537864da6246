"""``oaws watch``: the live market-watch screen (the app itself lives in ``oaws.tui``)."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from oaws import config as cfg
from oaws.cli.common import (
    AUTH_TIMEOUT,
    ApiKeyOpt,
    AuthTimeoutOpt,
    AutostartOpt,
    Instruments,
    ModeOpt,
    UrlOpt,
    UsageError,
    client_settings,
    command,
    resolve_auth_timeout,
    resolve_instruments,
    resolve_mode,
)

if TYPE_CHECKING:
    from oaws.bars.aggregator import Bar, Interval
    from oaws.instruments import Instrument
    from oaws.tui.chart import History

app = typer.Typer()


@command(app)
def watch(
    instruments: Instruments = None,
    watchlist: Annotated[
        str | None,
        typer.Option(
            "--watchlist",
            "-w",
            help="Open this named watchlist of the config file (its watchlists table).",
            show_default=False,
        ),
    ] = None,
    mode: ModeOpt = "quote",
    fps: Annotated[float, typer.Option("--fps", help="Screen updates per second.")] = 10.0,
    grouping: Annotated[
        str, typer.Option("--grouping", help="Digit grouping: indian (12,34,567), intl (1,234,567) or none.")
    ] = "indian",
    stale_after: Annotated[
        float,
        typer.Option("--stale-after", help="Seconds without a tick before the status line says the feed is stale."),
    ] = 10.0,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    autostart: AutostartOpt = True,
    auth_timeout: AuthTimeoutOpt = AUTH_TIMEOUT,
    no_ribbon: Annotated[
        bool,
        typer.Option(
            "--no-ribbon", help="No index ribbon above the grid (the config file's ribbon = [...] names its indices)."
        ),
    ] = False,
) -> None:
    """Live market watch: a grid of quotes, market depth, watchlists, alerts (press ? for keys)."""
    raise typer.Exit(
        run_watch(
            instruments,
            watchlist,
            mode,
            fps=fps,
            grouping=grouping,
            stale_after=stale_after,
            settings=client_settings(url, api_key, autostart),
            auth_timeout=resolve_auth_timeout(auth_timeout),
            ribbon=not no_ribbon,
        )
    )


def build_ribbon(shown: bool = True) -> list:
    """The ribbon's indices: the config file's ``ribbon`` (``[]`` for none), else the four of
    ``DEFAULT_RIBBON`` (NIFTY 50, NIFTY BANK, SENSEX, INDIA VIX)."""
    from oaws.instruments import InstrumentError, parse_many
    from oaws.tui.models.ribbon import default_ribbon

    if not shown:
        return []
    raw = cfg.file_config().get("ribbon")
    if raw is None:
        return default_ribbon()
    where = f"ribbon in {cfg.config_path()}"
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise cfg.ConfigError(
            f'{where} must be a list of instruments, e.g. ["NIFTY:NSE_INDEX", "SENSEX:BSE_INDEX"]', code=2
        )
    try:
        return parse_many(raw)
    except InstrumentError as exc:
        raise cfg.ConfigError(f"{where}: {exc}", code=2) from None


def build_watchlists(given: list[str] | None, name: str | None) -> tuple[list, int]:
    """The lists Tab cycles through, and which one opens: the command line's, else the named or default one."""
    from oaws.configfile import watchlists
    from oaws.instruments import DEFAULT_WATCHLIST, parse_many
    from oaws.tui.models.watch import Watchlist

    first = resolve_instruments(given, name)  # also says which names exist when ``name`` is unknown
    configured = watchlists()  # the config file's, entries that are not instruments left out (warned)
    lists: list[Watchlist] = [Watchlist("command line", first, saved=False)] if given else []
    if not given and "default" not in configured:
        lists.append(Watchlist("default", parse_many(list(DEFAULT_WATCHLIST))))
    lists += [Watchlist(list_name, parse_many(items)) for list_name, items in configured.items()]
    _saved_columns(lists)
    current = 0 if given else [w.name for w in lists].index(name or "default")
    return lists, current


def _saved_columns(lists: list) -> None:
    """Each saved list's columns as the column chooser saved them (``[columns]``); a bad entry is
    said (naming the file and key) and that list opens with the default set."""
    import logging

    from oaws import store

    for watchlist in lists:
        if not watchlist.saved:
            continue
        try:
            watchlist.columns = store.columns(watchlist.name)
        except cfg.ConfigError as exc:
            logging.getLogger(__name__).warning("%s; the list %r shows the default columns", exc, watchlist.name)


def chart_history(settings: cfg.ClientSettings) -> History:
    """The chart's history (key ``g``): the broker's bars through the watch's server, with its
    URL and API key (``oaws.client.fetch_history``; its HistoryUnavailable is the chart's sentence)."""

    async def history(instrument: Instrument, interval: Interval, days: int) -> list[Bar]:
        from oaws.client import fetch_history

        return await fetch_history(settings.url, instrument, interval, days=days, api_key=settings.api_key)

    return history


def run_watch(
    instruments: list[str] | None,
    watchlist: str | None,
    mode: str,
    *,
    fps: float,
    grouping: str,
    stale_after: float,
    settings: cfg.ClientSettings,
    auth_timeout: float = AUTH_TIMEOUT,
    ribbon: bool = True,
) -> int:
    from oaws import brokers, store
    from oaws.autostart import autostart, open_client
    from oaws.tui.app import WatchApp
    from oaws.tui.models.columns import GROUPINGS

    if grouping not in GROUPINGS:
        raise UsageError(f"unknown --grouping {grouping!r}; use one of {', '.join(GROUPINGS)}")
    # not finite: nan passes every comparison (a blank screen spinning at 100% CPU), inf means never
    if not math.isfinite(fps) or fps <= 0 or fps > 60:
        raise UsageError(f"--fps must be more than 0 and at most 60, not {fps:g}")
    if not math.isfinite(stale_after) or stale_after <= 0:
        raise UsageError("--stale-after must be a positive number of seconds")
    tz = cfg.time_zone()
    lists, current = build_watchlists(instruments, watchlist)
    indices = build_ribbon(ribbon)
    mode_number = resolve_mode(mode)
    # a screen's escape codes are no use in a file or a pipe (the options are checked first)
    if not sys.stdout.isatty():
        raise UsageError(
            "the watch draws on a terminal, and standard output is not one: `oaws tail` writes lines to pipes"
        )
    # before the screen takes the terminal, so that the line saying a background server
    # was started stays readable above it (open_client's own check then finds it running)
    autostart(settings)

    async def connect(wanted: list, mode: int):
        return await open_client(settings, wanted, mode, retry_first=True, auth_timeout=auth_timeout)

    app = WatchApp(
        connect,
        lists,
        current=current,
        mode=mode_number,
        url=settings.url,
        fps=fps,
        grouping=grouping,
        stale_after=stale_after,
        completions=brokers.completions(),
        more_completions=lambda: brokers.master_completions(names=True),
        tz=tz,
        ribbon=indices,
        store=store,
        history=chart_history(settings),
    )
    result = app.run()
    return result if isinstance(result, int) else 0
