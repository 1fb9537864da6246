"""``oaws keys generate``: CURVE keys for a bus between hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oaws import config as cfg
from oaws.cli.common import command
from oaws.format import plural

app = typer.Typer(help="CURVE keys for a bus between hosts.", no_args_is_help=True)


@command(app, "generate")
def generate(
    directory: Annotated[
        str | None, typer.Argument(help="Where to write them (default: STATE_DIR/curve).", show_default=False)
    ] = None,
) -> None:
    """Make the bus key pair, a client key pair and the list of authorized clients."""
    from oaws.server.curve import generate as write_keys

    target = Path(directory).expanduser() if directory else cfg.state_dir() / "curve"
    files = write_keys(target)
    typer.echo(f"oaws: wrote {plural(len(files), 'file')} to {target}:")
    for f in files:
        typer.echo(f"  {f}")
    typer.echo(
        "the feed (or forwarder) host needs the whole directory; each proxy host needs bus.key, "
        "client.key and client.key_secret. Pass --curve DIR to every `oaws serve` on the bus."
    )
