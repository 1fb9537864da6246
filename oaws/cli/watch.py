"""``oaws watch``: the live market-watch screen (the app itself lives in ``oaws.tui``)."""

from __future__ import annotations

import math
from typing import Annotated

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
    UserError,
    client_settings,
    command,
    resolve_auth_timeout,
    resolve_instruments,
    resolve_mode,
)

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
) -> None:
    """Live market watch: a grid of quotes, market depth, watchlists (press ? for keys)."""
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
        )
    )


def build_watchlists(given: list[str] | None, name: str | None) -> tuple[list, int]:
    """The lists Tab cycles through, and which one opens: the command line's, else the named or default one."""
    from oaws.instruments import DEFAULT_WATCHLIST, parse_many
    from oaws.tui.models.watch import Watchlist

    from oaws.configfile import watchlists

    first = resolve_instruments(given, name)  # also says which names exist when ``name`` is unknown
    configured = watchlists()  # entries that are not instruments left out (main_options warned)
    lists: list[Watchlist] = [Watchlist("command line", first, saved=False)] if given else []
    if not given and "default" not in configured:
        lists.append(Watchlist("default", parse_many(list(DEFAULT_WATCHLIST))))
    lists += [Watchlist(list_name, parse_many(items)) for list_name, items in configured.items()]
    current = 0 if given else [w.name for w in lists].index(name or "default")
    return lists, current


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
) -> int:
    from oaws import brokers
    from oaws.autostart import autostart, open_client
    from oaws.tui.app import WatchApp
    from oaws.tui.models.columns import GROUPINGS

    if grouping not in GROUPINGS:
        raise UserError(f"unknown --grouping {grouping!r}; use one of {', '.join(GROUPINGS)}")
    # not finite: nan passes every comparison (a blank screen spinning at 100% CPU), inf means never
    if not math.isfinite(fps) or fps <= 0 or fps > 60:
        raise UserError(f"--fps must be between 0 and 60, not {fps:g}")
    if not math.isfinite(stale_after) or stale_after <= 0:
        raise UserError("--stale-after must be a positive number of seconds")
    tz = cfg.time_zone()
    lists, current = build_watchlists(instruments, watchlist)
    mode_number = resolve_mode(mode)
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
        more_completions=brokers.master_completions,
        tz=tz,
    )
    result = app.run()
    return result if isinstance(result, int) else 0
