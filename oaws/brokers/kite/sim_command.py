"""``oaws sim kite`` (and ``oaws kite-sim``): a local Zerodha Kite for developing offline.

A command function with typer's annotations, declared by the plugin (``Broker.simulator``)
so that the command line registers it without knowing Kite.
"""

from __future__ import annotations

from typing import Annotated

import typer


def kite_sim(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    rest_port: Annotated[
        int, typer.Option("--rest-port", min=0, max=65535, help="Port of the REST API (0: any free port).")
    ] = 8793,
    feed_port: Annotated[
        int, typer.Option("--feed-port", min=0, max=65535, help="Port of the ticker (0: any free port).")
    ] = 8794,
    tick_interval: Annotated[
        float, typer.Option("--tick-interval", min=0.01, help="Seconds between ticks of each subscription.")
    ] = 0.5,
) -> None:
    """Run a local Zerodha Kite (session exchange, instrument dump, ticker) for developing offline.

    The `export` lines go to stdout (`oaws kite-sim > env.sh &` then `. env.sh`), the rest to stderr.
    Faults on demand: POST /sim/drop, /sim/silent?seconds=N, /sim/garbage, /sim/restart?seconds=N,
    /sim/rest-fault?status=S&count=N, /sim/order, /sim/error, /sim/message, /sim/expire.
    """
    from oaws.brokers import simulation
    from oaws.brokers.kite import simulator

    def ready(sim: simulator.KiteSimulator) -> None:
        sim_url = f"{sim.api_url}/sim"
        simulation.announce(
            f"Kite simulator on {host}",
            sim.env(),
            "Then: oaws login kite && oaws instruments update --broker kite && oaws serve --broker kite\n"
            f"The login page ({sim.login_url}) redirects at once to a URL with a fresh request_token.\n"
            "Faults on demand, on the ticker connections open at that moment:\n"
            f"  curl -X POST {sim_url}/drop                          # drop them without a close frame\n"
            f"  curl -X POST '{sim_url}/silent?seconds=60'           # no ticks or heartbeats for 60 s (the default)\n"
            f"  curl -X POST {sim_url}/garbage                       # send each the malformed frames\n"
            f"  curl -X POST '{sim_url}/restart?seconds=5'           # close them with 1012, refuse with 503 for 5 s\n"
            f"  curl -X POST '{sim_url}/rest-fault?status=429&count=3'  # the next 3 REST calls answer 429\n"
            f'  curl -X POST {sim_url}/order -d \'{{"status":"OPEN"}}\'   # push an order update\n'
            f"  curl -X POST '{sim_url}/error?text=oops'             # an error text message\n"
            f"  curl -X POST '{sim_url}/message?text=hello'          # an informational text message\n"
            f"  curl -X POST {sim_url}/expire                        # expire every token (morning expiry), drop them",
        )

    simulation.run_command(host, simulator.run(host, rest_port, feed_port, tick_interval, on_ready=ready))
