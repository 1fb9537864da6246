"""``oaws watch``: the live market-watch screen (the app itself lives in ``oaws.tui``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated

import typer

from oaws import config as cfg
from oaws.cli import (
    ApiKeyOpt,
    Instruments,
    ModeOpt,
    NoAutostartOpt,
    UrlOpt,
    UserError,
    friendly,
    resolve_instruments,
    resolve_mode,
)

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly
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
        mode: ModeOpt = None,
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
        no_autostart: NoAutostartOpt = False,
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
                settings=cfg.client_settings(url, api_key, no_autostart),
            )
        )


def build_watchlists(given: list[str] | None, name: str | None) -> tuple[list, int]:
    """The lists Tab cycles through, and which one opens: the command line's, else the named or default one."""
    from oaws.instruments import DEFAULT_WATCHLIST, parse_many
    from oaws.tui.models.watch import Watchlist

    first = resolve_instruments(given, name)  # also says which names exist when ``name`` is unknown
    configured = cfg.watchlists()
    lists: list[Watchlist] = [Watchlist("command line", first)] if given else []
    if not given and "default" not in configured:
        lists.append(Watchlist("default", parse_many(list(DEFAULT_WATCHLIST))))
    lists += [Watchlist(list_name, parse_many(items)) for list_name, items in configured.items()]
    current = 0 if given else [w.name for w in lists].index(name or "default")
    return lists, current


def master_instruments() -> list[str]:
    """Every instrument of the Angel One instrument master as ``SYMBOL:EXCHANGE``, if there is one; else none.

    For the add dialog's completion, read in a thread when the dialog first opens (the
    master holds 100k+ records; the watch must not wait for it at start). The same master
    the Angel feed and ``oaws instruments search`` use: OAWS_INSTRUMENTS (or ``instruments``
    of ``[angel]``), else the index ``oaws instruments update`` keeps in the cache. Absent
    or unreadable, completion keeps the built-in symbols: that is no error for the watch.
    """
    try:
        return _master_instruments()
    except Exception:
        log.debug("no instrument master for completion", exc_info=True)
        return []


def _master_instruments() -> list[str]:
    import orjson

    from oaws.brokers.angel.master import (
        INDEX_FILE,
        INDEX_FORMAT,
        SEGMENT,
        SEGMENT_TYPES,
        Master,
        master_dir,
        read_master,
    )
    from oaws.brokers.angel.settings import load_settings
    from oaws.instruments import EXCHANGES, valid_symbol

    given = load_settings().instruments
    path = Path(given).expanduser() if given else master_dir() / INDEX_FILE
    if not path.is_file():
        return []
    # The index's rows as parsed, not a whole Master (tuples and lookup tables): about half
    # the time and a fraction of the memory the watch keeps afterwards. A raw master (only
    # through OAWS_INSTRUMENTS) goes through read_master, which knows its records.
    parsed = orjson.loads(path.read_bytes())
    if isinstance(parsed, dict) and parsed.get("format") == INDEX_FORMAT:
        rows = parsed["rows"]
    else:
        del parsed
        rows = read_master(path).rows  # not load_master: its warning about an old index would print over the screen
    naming = Master([])  # only how oaws writes a record's instrument
    exchanges = frozenset(EXCHANGES)
    found: dict[str, None] = {}
    for row in rows:
        if row[SEGMENT] not in SEGMENT_TYPES:
            continue
        text = naming.instrument_of(row)
        symbol, _, exchange = text.rpartition(":")
        if exchange in exchanges and valid_symbol(symbol):
            found[text] = None
    return list(found)


def run_watch(
    instruments: list[str] | None,
    watchlist: str | None,
    mode: str | None,
    *,
    fps: float,
    grouping: str,
    stale_after: float,
    settings: cfg.ClientSettings,
) -> int:
    from oaws.brokers.sim.feed import known_symbols
    from oaws.cli.common import autostart, open_client
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
        return await open_client(settings, wanted, mode, retry_first=True)

    app = WatchApp(
        connect,
        lists,
        current=current,
        mode=mode_number,
        url=settings.url,
        fps=fps,
        grouping=grouping,
        stale_after=stale_after,
        completions=known_symbols(),
        more_completions=master_instruments,
        tz=tz,
    )
    result = app.run()
    return result if isinstance(result, int) else 0
