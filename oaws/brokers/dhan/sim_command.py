"""``oaws sim dhan`` (and ``oaws dhan-sim``): a local Zerodha Dhan for developing offline.

A command function with typer's annotations, declared by the plugin (``Broker.simulator``)
so that the command line registers it without knowing Dhan.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer


def dhan_sim(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    rest_port: Annotated[
        int, typer.Option("--rest-port", min=0, max=65535, help="Port of the REST API (0: any free port).")
    ] = 8795,
    feed_port: Annotated[
        int,
        typer.Option(
            "--feed-port", min=0, max=65535, help="Port of the market feed; the 20-depth and order streams share it."
        ),
    ] = 8796,
    tick_interval: Annotated[
        float, typer.Option("--tick-interval", min=0.01, help="Seconds between ticks of each subscription.")
    ] = 0.5,
) -> None:
    """Run a local Dhan (profile, scrip master, market feed, 20-level depth, order updates), offline.

    The `export` lines go to stdout (`oaws dhan-sim > env.sh &` then `. env.sh`), the rest to stderr.
    """
    import asyncio

    from oaws.brokers.dhan import simulator

    def ready(sim: simulator.DhanSimulator) -> None:
        typer.echo(f"Dhan simulator on {host}; point oaws at it with (on stdout):", err=True)
        sys.stdout.write("".join(f"export {name}={value}\n" for name, value in sim.env().items()))
        sys.stdout.flush()

    try:
        asyncio.run(simulator.run(host, rest_port, feed_port, tick_interval, on_ready=ready))
    except OSError as exc:
        typer.echo(f"oaws: cannot start the simulator on {host}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
