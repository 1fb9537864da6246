"""``oaws sim angel`` (and ``oaws angel-sim``): a local Angel One for developing offline.

A command function with typer's annotations, declared by the plugin (``Broker.simulator``)
so that the command line registers it without knowing Angel.
"""

from __future__ import annotations

from typing import Annotated

import typer


def angel_sim(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    rest_port: Annotated[
        int, typer.Option("--rest-port", min=0, max=65535, help="Port of the REST login (0: any free port).")
    ] = 8791,
    feed_port: Annotated[
        int, typer.Option("--feed-port", min=0, max=65535, help="Port of the feed (0: any free port).")
    ] = 8792,
    order_port: Annotated[
        int | None,
        typer.Option(
            "--order-port",
            min=0,
            max=65535,
            help="Port of the order-status socket (default: the feed's + 1; any free one when the feed's is 0).",
        ),
    ] = None,
    tick_interval: Annotated[
        float, typer.Option("--tick-interval", min=0.01, help="Seconds between ticks of each subscription.")
    ] = 0.5,
) -> None:
    """Run a local Angel One (login, instrument master, feed, order status) for developing offline.

    The `export` lines go to stdout (`oaws angel-sim > env.sh &` then `. env.sh`), the rest
    to stderr. Faults on demand: POST /sim/drop, /sim/silent?seconds=N, /sim/garbage, /sim/expire.
    """
    from oaws.brokers import simulation
    from oaws.brokers.angel import simulator

    def ready(sim: simulator.AngelSimulator) -> None:
        sim_url = f"{sim.api_url}/sim"
        simulation.announce(
            f"Angel One simulator on {host}",
            sim.env(),
            "Then: oaws login angel && oaws instruments update --broker angel && oaws serve --broker angel\n"
            "Faults on demand, on the feed connections open at that moment:\n"
            f"  curl -X POST {sim_url}/drop                  # drop them without a close frame\n"
            f"  curl -X POST '{sim_url}/silent?seconds=60'   # no ticks or pongs for 60 s (the default)\n"
            f"  curl -X POST {sim_url}/garbage               # send each a malformed frame\n"
            f"  curl -X POST {sim_url}/expire                # expire every token (nightly rollover), drop them",
        )

    if order_port is None:
        order_port = feed_port + 1 if feed_port else 0
    simulation.run_command(
        host, simulator.run(host, rest_port, feed_port, tick_interval, on_ready=ready, order_port=order_port)
    )
