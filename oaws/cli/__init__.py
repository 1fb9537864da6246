"""The ``oaws`` command line: one module per command or group, joined here.

Each command parses its options and hands over to the library (``oaws.server``,
``oaws.client``, ``oaws.recording``, ``oaws.tui``, the broker plugins); heavy imports
happen inside the commands so that ``oaws --help`` stays fast. A mistake is one sentence
on stderr: exit 2 for the command line's own (click's usage errors), 1 for the rest.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from oaws import __version__
from oaws.cli import (
    alerts,
    bars,
    brokers,
    chain,
    completion,
    history,
    keys,
    lists,
    record,
    serve,
    status,
    stream,
    watch,
)
from oaws.cli.common import check_config_file, config_defaults, friendly
from oaws.cli.help import HumanGroup

app = typer.Typer(
    name="oaws",
    cls=HumanGroup,  # help texts as a person writes them, for every command (oaws.cli.help)
    help="Live prices for Indian markets: a market watch, scriptable streams, and a market-data proxy "
    "that speaks OpenAlgo's WebSocket protocol.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (and `oaws completion SHELL`)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"oaws {__version__}")
        raise typer.Exit()


@app.callback()
@friendly
def main_options(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log debug details on stderr (`oaws watch`: to watch.log in the state directory).",
        ),
    ] = False,
) -> None:
    from oaws.background import ExchangeTimeFormatter

    if verbose and ctx.invoked_subcommand == "watch":
        # the watch's stderr is its screen: its log goes to a file, named once the screen is gone
        from oaws.background import log_debug_to_file

        path = log_debug_to_file("watch.log")
        ctx.call_on_close(lambda: sys.stderr.write(f"oaws: the watch's debug log is in {path}\n"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(ExchangeTimeFormatter())
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    if verbose:
        # websockets' DEBUG log dumps every frame, and an authenticate frame carries the API key
        logging.getLogger("websockets").setLevel(logging.INFO)
    # the config file's settings become the options' defaults, below the environment
    check_config_file()
    ctx.default_map = config_defaults(ctx.command)


for module in (serve, status, stream, watch, record, bars, history):
    app.add_typer(module.app)
brokers.register(app)
app.add_typer(keys.app, name="keys")
app.add_typer(lists.app, name="watchlist")
app.add_typer(alerts.app, name="alerts")
app.add_typer(completion.app)
app.add_typer(chain.app)  # oaws chain (issue 21)


def _click_errors() -> tuple[type[BaseException], type[BaseException]]:
    """(every click error, the abort of a prompt): typer's own names where it has them."""
    base = getattr(typer, "TyperException", None)
    if base is None:  # typer before 0.22 used click itself
        import click

        return click.ClickException, click.Abort
    return base, typer.Abort


def main() -> None:
    """The ``oaws`` command: a mistake on the command line is one line on stderr and exit 2."""
    errors, abort = _click_errors()
    try:
        code = app(standalone_mode=False)
    except abort:
        sys.exit(130)
    except errors as exc:
        message = exc.format_message().rstrip(".")  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        if message:  # empty: a bare `oaws`, whose help is already printed
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            sys.stderr.write(f"oaws: {message}{where}\n")
        sys.exit(getattr(exc, "exit_code", 1))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
