"""``oaws sim dhan`` (and ``oaws dhan-sim``): a local Dhan for developing offline.

A command function with typer's annotations, declared by the plugin (``Broker.simulator``)
so that the command line registers it without knowing Dhan.
"""

from __future__ import annotations

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
    Faults on demand: POST /sim/drop, /sim/silent?seconds=N, /sim/garbage, /sim/expire,
    /sim/disconnect?code=N, /sim/rest-fault?status=N&count=N, /sim/order.
    """
    from oaws.brokers import simulation
    from oaws.brokers.dhan import simulator

    def ready(sim: simulator.DhanSimulator) -> None:
        sim_url = f"{sim.api_url}/sim"
        simulation.announce(
            f"Dhan simulator on {host}",
            sim.env(),
            "Then: oaws login dhan && oaws instruments update --broker dhan && oaws serve --broker dhan\n"
            "The market feed, 20-level depth and order updates share the feed port (paths /, /twentydepth, /orders).\n"
            "Faults on demand, on the connections open at that moment:\n"
            f"  curl -X POST {sim_url}/drop                      # drop them without a close frame\n"
            f"  curl -X POST '{sim_url}/silent?seconds=60'       # no ticks, pings or pongs for 60 s\n"
            f"  curl -X POST '{sim_url}/garbage?kind=truncated'  # a malformed packet (or kind=length, kind=code)\n"
            f"  curl -X POST {sim_url}/expire                    # expire the token: disconnect 807, profile 401\n"
            f"  curl -X POST '{sim_url}/disconnect?code=805'     # a disconnect packet with that reason, then close\n"
            f"  curl -X POST '{sim_url}/rest-fault?status=429&count=3'  # the next REST calls answer 429\n"
            f'  curl -X POST -d \'{{"Status":"Traded"}}\' {sim_url}/order  # an order update on /orders\n'
            f"  curl {sim_url}/state                             # what is connected and subscribed",
        )

    simulation.run_command(host, simulator.run(host, rest_port, feed_port, tick_interval, on_ready=ready))
