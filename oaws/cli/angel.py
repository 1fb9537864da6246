"""Angel One commands: ``oaws login angel``, ``oaws instruments update|search``, ``oaws angel-sim``.

Each command parses its options and hands over to ``oaws.brokers.angel``; heavy
imports happen inside the commands so that ``oaws --help`` stays fast. Credentials are
never options (``ps`` would show them): they come from ``ANGEL_*`` or the config file.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(fn: F) -> F:
    """Angel and config problems as one sentence on stderr and exit 1; Ctrl-C as exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from oaws.brokers.angel.errors import AngelError
        from oaws.config import ConfigError

        try:
            return fn(*args, **kwargs)
        except (AngelError, ConfigError) as exc:
            typer.echo(f"oaws: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@_friendly
def login(
    broker: Annotated[str, typer.Argument(help="The broker to log in to (angel).", show_default=False)],
) -> None:
    """Log in to the broker and keep the session for `oaws serve --broker angel`.

    Reads ANGEL_API_KEY, ANGEL_CLIENT_CODE, ANGEL_PIN and ANGEL_TOTP_SECRET (or the [angel]
    section of the config file); stores the session tokens in the state directory, mode 0600.
    """
    if broker.lower() != "angel":
        typer.echo(f"oaws: unknown broker {broker!r}; only angel needs a login", err=True)
        raise typer.Exit(1)
    from oaws.brokers.angel.session import login as angel_login
    from oaws.brokers.angel.session import save_session
    from oaws.brokers.angel.settings import load_settings
    from oaws.config import time_zone
    from oaws.format import moment

    session = angel_login(load_settings())
    path = save_session(session)
    until = f"{moment(session.expires, time_zone()):%Y-%m-%d %H:%M %Z}"
    who = f"{session.client_code} ({session.name})" if session.name else session.client_code
    typer.echo(f"Logged in to Angel One as {who}; session saved to {path}, valid until about {until}.")


instruments_app = typer.Typer(
    help="Angel One's instrument master: download it, search it.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@instruments_app.command("update")
@_friendly
def instruments_update(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Where to download the master from (env ANGEL_MASTER_URL; default: Angel's OpenAPIScripMaster.json).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download Angel One's instrument master into the cache and index it."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from oaws.brokers.angel.master import update_master
    from oaws.brokers.angel.settings import load_settings

    source = url or load_settings().master_url
    console = Console(stderr=True)
    with Progress(
        TextColumn("instrument master"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a bar on a pipe or file is only noise (and a stray blank line)
    ) as progress:
        task = progress.add_task("download", total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        path, master = update_master(source, progress=advance)
    typer.echo(f"Saved {len(master)} instruments to {path}.")


@instruments_app.command("search")
@_friendly
def instruments_search(
    text: Annotated[
        str, typer.Argument(help="Part of a symbol or name, e.g. RELIANCE, nifty, USDINR.", show_default=False)
    ],
    exchange: Annotated[
        str | None,
        typer.Option("--exchange", "-e", help="Only this exchange (NSE, NFO, NSE_INDEX...).", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many results.")] = 20,
    json: Annotated[bool, typer.Option("--json", help="One compact JSON object per line.")] = False,
    instruments: Annotated[
        str | None,
        typer.Option(
            "--instruments",
            help="A local copy of the master (env OAWS_INSTRUMENTS; default: the cached one).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Find instruments in Angel One's master; the first column is what oaws commands accept."""
    from oaws.brokers.angel.master import EXCHANGE_SEGMENTS, load_master
    from oaws.brokers.angel.settings import load_settings

    if exchange is not None and exchange.upper() not in EXCHANGE_SEGMENTS:
        typer.echo(f"oaws: unknown exchange {exchange!r}; use one of {', '.join(EXCHANGE_SEGMENTS)}", err=True)
        raise typer.Exit(1)
    master = load_master(load_settings(instruments=instruments).instruments)
    matches = master.search(text, exchange, limit)
    if json:
        import orjson

        for match in matches:
            sys.stdout.write(orjson.dumps(match.as_dict()).decode() + "\n")
        sys.stdout.flush()
    elif not matches:
        typer.echo(f"oaws: no instrument matches {text!r}", err=True)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for column in ("instrument", "angel symbol", "token", "type", "name", "expiry", "lot"):
            table.add_column(column, justify="right" if column in ("token", "lot") else "left")
        for m in matches:
            table.add_row(
                m.instrument, m.angel_symbol, m.token, m.instrument_type or "EQ", m.name, m.expiry, str(m.lot_size)
            )
        Console().print(table)
    if not matches:
        raise typer.Exit(1)


@_friendly
def angel_sim(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    rest_port: Annotated[
        int, typer.Option("--rest-port", min=0, max=65535, help="Port of the REST login (0: any free port).")
    ] = 8791,
    feed_port: Annotated[
        int, typer.Option("--feed-port", min=0, max=65535, help="Port of the feed (0: any free port).")
    ] = 8792,
    tick_interval: Annotated[
        float, typer.Option("--tick-interval", min=0.01, help="Seconds between ticks of each subscription.")
    ] = 0.5,
) -> None:
    """Run a local Angel One (login, instrument master, feed) for developing offline.

    The `export` lines go to stdout (`oaws angel-sim > env.sh &` then `. env.sh`), the rest
    to stderr. Faults on demand: POST /sim/drop, /sim/silent?seconds=N, /sim/garbage, /sim/expire.
    """
    import asyncio

    from oaws.brokers.angel import simulator

    def ready(sim: simulator.AngelSimulator) -> None:
        typer.echo(f"Angel One simulator on {host}; point oaws at it with (on stdout):", err=True)
        # stdout carries only the exports, flushed now: the simulator runs on, so nothing else would flush them
        sys.stdout.write("".join(f"export {name}={value}\n" for name, value in sim.env().items()))
        sys.stdout.flush()
        sim_url = f"{sim.api_url}/sim"
        typer.echo(
            "Then: oaws login angel && oaws instruments update && oaws serve --broker angel\n"
            "Faults on demand, on the feed connections open at that moment:\n"
            f"  curl -X POST {sim_url}/drop                  # drop them without a close frame\n"
            f"  curl -X POST '{sim_url}/silent?seconds=60'   # no ticks or pongs for 60 s (the default)\n"
            f"  curl -X POST {sim_url}/garbage               # send each a malformed frame\n"
            f"  curl -X POST {sim_url}/expire                # expire every token (nightly rollover), drop them",
            err=True,
        )

    try:
        asyncio.run(simulator.run(host, rest_port, feed_port, tick_interval, on_ready=ready))
    except OSError as exc:
        typer.echo(f"oaws: cannot start the simulator on {host}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    """Add ``login``, ``instruments`` and ``angel-sim`` to the ``oaws`` command line."""
    app.command("login")(login)
    app.add_typer(instruments_app, name="instruments")
    app.command("angel-sim")(angel_sim)
