"""The commands a broker plugin offers: ``oaws login NAME``, ``oaws instruments update|search``,
``oaws sim NAME`` (with ``oaws NAME-sim`` kept as an alias), and ``oaws brokers``.

Every one goes through the registry (``oaws.brokers``): nothing here knows a broker by
name. Credentials are never options (``ps`` would show them): a broker reads them from
its environment variables or its section of the config file.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from oaws import brokers
from oaws.brokers.api import Broker
from oaws.cli import orders
from oaws.cli.common import UsageError, UserError, command, fail, friendly
from oaws.format import plural
from oaws.instruments import EXCHANGES


def _offering(feature: str, name: str | None, what: str) -> Broker:
    """The broker called ``name`` (or the configured one, or the only one) that offers ``feature``."""
    offering = brokers.with_feature(feature)
    if name is not None:
        broker = _named(name, offering, what)
        if getattr(broker, feature) is None:
            others = ", ".join(b.name for b in offering) or "none"
            raise UsageError(f"the {broker.name} broker has no {what} (brokers with one: {others})")
        return broker
    from oaws import config

    configured = brokers.brokers().get(str(config.get("broker")))
    if configured is not None and getattr(configured, feature) is not None:
        return configured
    if len(offering) == 1:
        return offering[0]
    article = _article(what)
    if not offering:
        raise UserError(f"no installed broker has {article} {what}")
    raise UsageError(f"say which broker with --broker: {', '.join(b.name for b in offering)} have {article} {what}")


def _named(name: str, offering: list[Broker], what: str) -> Broker:
    """The broker called ``name``; an unknown name is a usage error that says which brokers have
    ``what``, and the one meant when the name is in a broker's title (zerodha: kite)."""
    try:
        return brokers.get(name)
    except brokers.UnknownBroker as exc:
        if brokers.broken().get(name.strip().lower()):
            raise  # installed but not loadable: its own sentence
        wanted = name.strip().lower()
        meant = [b for b in brokers.brokers().values() if wanted and wanted in b.title.lower()]
        hint = f" ({', '.join(f'{b.title} is {b.name}' for b in meant)})" if meant else ""
        listed = ", ".join(b.name for b in offering) or "none"
        raise UsageError(f"no broker is called {name!r}{hint}; brokers with {_article(what)} {what}: {listed}") from exc


def _article(what: str) -> str:
    return "an" if what[0] in "aeiou" else "a"


BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        "-b",
        help="Whose instrument master (default: the configured broker's, or the only one).",
        show_default=False,
    ),
]

app = typer.Typer()


def _takes_ask(login: Any) -> bool:
    """Whether a broker's ``login`` asks the user something (it accepts ``ask=``, or any keyword)."""
    import inspect

    try:
        parameters = inspect.signature(login).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "ask" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _read_answer(prompt: str | None) -> str:
    """One line from stdin (after ``prompt`` on stderr, if any); an empty one is a command-line mistake."""
    if prompt is not None:
        sys.stderr.write(prompt)
        sys.stderr.flush()
    line = sys.stdin.readline()
    if prompt is not None and not line.endswith("\n"):
        sys.stderr.write("\n")  # end the prompt's line (Ctrl-D, or a pipe without a newline)
    if not line.strip():
        fail("nothing was read from stdin: paste what the broker's login page gave you (see `oaws login --help`)", 2)
    return line


@command(app)
def login(
    broker: Annotated[str, typer.Argument(help="The broker to log in to (`oaws brokers` lists them).")],
    request_token: Annotated[
        bool,
        typer.Option(
            "--request-token",
            help="Read the login page's answer (e.g. Kite's redirect URL or its request_token) from stdin, "
            "without a prompt: `pbpaste | oaws login kite --request-token`. Never given on the command line.",
        ),
    ] = False,
) -> None:
    """Log in to the broker and keep the session for `oaws serve --broker NAME`.

    Credentials come from the broker's environment variables or its section of the config
    file (`oaws brokers` lists them); the session is stored in the state directory, mode 0600.
    A broker whose login goes through its web page (Kite's, for one) prints the page's URL
    on stderr and reads what the page handed back from stdin.
    """
    chosen = _offering("login", broker, "login")
    if not _takes_ask(chosen.login):
        if request_token:
            fail(f"the {chosen.name} broker logs in without a request token; run `oaws login {chosen.name}`", 2)
        typer.echo(chosen.login())  # type: ignore[misc]
        return

    def ask(prompt: str) -> str:
        return _read_answer(None if request_token else prompt)

    typer.echo(chosen.login(ask=ask))  # type: ignore[misc, call-arg]


instruments_app = typer.Typer(
    help="A broker's instrument master: download it, search it.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@command(instruments_app, "update")
def instruments_update(
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="Where to download it from (default: the broker's own address).", show_default=False
        ),
    ] = None,
    broker: BrokerOpt = None,
) -> None:
    """Download the broker's instrument master into the cache and index it."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    master = _offering("master", broker, "instrument master").master()  # type: ignore[misc]
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

        path, count = master.update(url, advance)
    typer.echo(f"Saved {plural(count, 'instrument')} to {path}.")


@command(instruments_app, "search")
def instruments_search(
    text: Annotated[
        str, typer.Argument(help="Part of a symbol or name, e.g. RELIANCE, nifty, USDINR.", show_default=False)
    ],
    exchange: Annotated[
        str | None,
        typer.Option(
            "--exchange",
            "-e",
            help=f"Only this exchange, of those the broker serves ({', '.join(EXCHANGES)}).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many results.")] = 20,
    json: Annotated[bool, typer.Option("--json", help="One compact JSON object per line.")] = False,
    instruments: Annotated[
        str | None,
        typer.Option(
            "--instruments",
            envvar="OAWS_INSTRUMENTS",
            help="A local copy of the master (default: the cached one).",
            show_default=False,
        ),
    ] = None,
    broker: BrokerOpt = None,
) -> None:
    """Find instruments in a broker's master; the first column is what oaws commands accept."""
    chosen = _offering("master", broker, "instrument master")
    master = chosen.master()  # type: ignore[misc]
    if exchange is not None and exchange.upper() not in master.exchanges:
        served = ", ".join(master.exchanges)
        if exchange.upper() in EXCHANGES:
            wanted = exchange.upper()
            raise UsageError(f"the {chosen.name} broker serves no {wanted} instruments; its exchanges: {served}")
        raise UsageError(f"unknown exchange {exchange!r}; use one of {served}")
    matches = master.search(text, exchange, limit, instruments)
    if json:
        import orjson

        for match in matches:
            sys.stdout.write(orjson.dumps(match.as_dict()).decode() + "\n")
        sys.stdout.flush()
    elif not matches:
        typer.echo(f"oaws: no instrument matches {text!r}", err=True)
    else:
        import shutil

        terminal = sys.stdout.isatty()
        width = shutil.get_terminal_size().columns if terminal else None
        lines = search_table([m.columns() for m in matches], width)
        if terminal and not os.environ.get("NO_COLOR"):
            lines[0] = f"\x1b[1m{lines[0]}\x1b[0m"
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
    if not matches:
        raise typer.Exit(1)


#: the order a narrow terminal gives columns up in (a plugin's own columns go with the symbols);
#: the instrument, the one to copy, is never cut nor dropped
_GIVEN_UP = {"token": 0, "security id": 0, "lot": 2, "type": 3, "name": 4, "strike": 5, "expiry": 6}
#: a name is cut (with "…") down to this many characters before its column is dropped
_NAME_AT_LEAST = 12


def _given_up(column: str) -> int:
    return _GIVEN_UP.get(column, 1)


def search_table(rows: list[dict[str, str]], width: int | None) -> list[str]:
    """The search's table as lines (its header first), ``width`` columns at most.

    ``width`` None (a pipe, a file): every column, every value whole. On a terminal the
    instrument stays whole; the broker's token and symbol are dropped first, then the name
    is shortened, then the lot, the type, the name, the strike and the expiry are dropped
    until the lines fit.
    """
    columns = [c for c in rows[0] if c == "instrument" or any(r.get(c) for r in rows)]  # no empty column
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns}

    def total() -> int:
        return sum(widths[c] for c in columns) + 2 * (len(columns) - 1)

    while width is not None and total() > width and len(columns) > 1:
        first = min((c for c in columns if c != "instrument"), key=_given_up)
        if _given_up(first) > 1 and "name" in columns and widths["name"] > _NAME_AT_LEAST:
            # the broker's own columns are gone: a shorter name before the lot and the type go
            widths["name"] = max(_NAME_AT_LEAST, widths["name"] - (total() - width))
        else:
            columns.remove(first)

    def numeric(column: str) -> bool:
        return column != "instrument" and all(r[column].replace(".", "", 1).isdigit() for r in rows if r.get(column))

    right = {c: numeric(c) for c in columns}

    def cell(column: str, value: str) -> str:
        size = widths[column]
        if len(value) > size:
            value = value[: size - 1] + "…"
        return value.rjust(size) if right[column] else value.ljust(size)

    lines = ["  ".join(cell(c, c) for c in columns)]
    lines += ["  ".join(cell(c, row.get(c, "")) for c in columns) for row in rows]
    return [line.rstrip() for line in lines]


sim_app = typer.Typer(
    help="Local simulators of the brokers' wire formats, and orders on the simulated market, for developing offline.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@command(app, "brokers")
def list_brokers(json: Annotated[bool, typer.Option("--json", help="One JSON object per broker.")] = False) -> None:
    """The brokers oaws can serve (built in and from installed plugins), with their settings."""
    found = brokers.brokers()
    if json:
        import orjson

        for broker in found.values():
            sys.stdout.write(orjson.dumps(_describe(broker)).decode() + "\n")
        for name, why in brokers.broken().items():
            sys.stdout.write(orjson.dumps({"name": name, "error": why}).decode() + "\n")
        return
    width = max((len(s.env) for b in found.values() for s in b.settings or ()), default=20)
    for name, broker in sorted(found.items()):
        offers = [
            w for w, f in (("login", "login"), ("instruments", "master"), ("sim", "simulator")) if getattr(broker, f)
        ]
        typer.echo(f"{name:<10} {broker.title}: {broker.summary}" + (f" [{', '.join(offers)}]" if offers else ""))
        for setting in broker.settings or ():
            typer.echo(f"{'':<10}   {setting.env:<{width}} {setting.help}{' (required)' if setting.required else ''}")
    for name, why in sorted(brokers.broken().items()):
        typer.echo(f"{name:<10} (not loaded) {why}")


def _describe(broker: Broker) -> dict[str, Any]:
    return {
        "name": broker.name,
        "title": broker.title,
        "summary": broker.summary,
        "options": list(broker.options),
        "login": broker.login is not None,
        "instruments": broker.master is not None,
        "sim": broker.simulator is not None,
        "settings": [
            {"name": s.name, "env": s.env, "required": s.required, "secret": s.secret} for s in broker.settings or ()
        ],
        "limits": {
            "depths": list(broker.limits.depths),
            "subscriptions": broker.limits.subscriptions,
            "connections": broker.limits.connections,
            "note": broker.limits.note,
        },
    }


def register(root: typer.Typer) -> None:
    """Add these commands, one ``oaws sim NAME`` per broker with a simulator and its ``NAME-sim`` alias."""
    root.add_typer(app)
    root.add_typer(instruments_app, name="instruments")
    simulators = brokers.with_feature("simulator")
    taken = {broker.name for broker in simulators}
    for broker in simulators:
        run = friendly(broker.simulator)  # type: ignore[arg-type]
        sim_app.command(broker.name)(run)
        root.command(f"{broker.name}-sim", hidden=True)(run)
        for alias in broker.simulator_aliases:
            if alias not in taken:  # a broker's own name, or an alias given before, stands
                taken.add(alias)
                sim_app.command(alias)(run)
    orders.register(sim_app)
    root.add_typer(sim_app, name="sim")
