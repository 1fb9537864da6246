"""``oaws sim noren`` (and ``oaws sim shoonya``, ``oaws sim flattrade``...): a local Noren OMS host.

One simulator answers as any registered Noren broker (``--as NAME``); each broker's own
``oaws sim NAME`` answers as that broker by default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from oaws.brokers.noren.family import HOSTS


def simulator_for(default: str) -> Callable[..., Any]:
    """The ``oaws sim`` command function that answers as ``default`` unless told ``--as``."""

    def noren_sim(
        as_: Annotated[
            str, typer.Option("--as", help=f"The Noren broker to answer as ({', '.join(sorted(HOSTS))}).")
        ] = default,
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        rest_port: Annotated[
            int, typer.Option("--rest-port", min=0, max=65535, help="Port of the REST API (0: any free port).")
        ] = 8797,
        feed_port: Annotated[
            int, typer.Option("--feed-port", min=0, max=65535, help="Port of the feed (0: any free port).")
        ] = 8798,
        tick_interval: Annotated[
            float, typer.Option("--tick-interval", min=0.01, help="Seconds between updates of each subscription.")
        ] = 0.5,
    ) -> None:
        """Run a local Noren OMS host (login, symbol masters, feed with partial updates, orders), offline.

        The `export` lines go to stdout (`oaws sim noren > env.sh &` then `. env.sh`), the rest to stderr.
        Faults on demand: POST /sim/drop, /sim/silent?seconds=N, /sim/garbage, /sim/expire,
        /sim/rest-fault?status=503&count=1, /sim/block, /sim/restart?seconds=N, /sim/order.
        """
        from oaws.brokers import simulation
        from oaws.brokers.noren import simulator

        name = as_.strip().lower()
        if name not in HOSTS:
            typer.echo(f"oaws: --as {as_!r} is not a Noren broker; choose one of {', '.join(sorted(HOSTS))}", err=True)
            raise typer.Exit(2)

        def ready(sim: simulator.NorenSimulator) -> None:
            title = f"Noren simulator ({HOSTS[name].title}) on {host}"
            simulation.announce(title, sim.env(), fault_help(name, sim.control_url))

        simulation.run_command(
            host, simulator.run(HOSTS[name], host, rest_port, feed_port, tick_interval, on_ready=ready)
        )

    return noren_sim


def fault_help(name: str, sim_url: str) -> str:
    """What the simulator prints on stderr once ready: the next commands, and its faults as curl lines."""
    return (
        f"Then: oaws login {name} && oaws instruments update --broker {name} && oaws serve --broker {name}\n"
        "Faults on demand, on the feed connections open at that moment:\n"
        f"  curl -X POST {sim_url}/drop                        # drop them without a close frame\n"
        f"  curl -X POST '{sim_url}/silent?seconds=60'         # no updates, heartbeats or pongs for 60 s\n"
        f"  curl -X POST {sim_url}/garbage                     # send each malformed messages\n"
        f"  curl -X POST '{sim_url}/rest-fault?status=503&count=1'  # the next REST request fails\n"
        f"  curl -X POST {sim_url}/block                       # the next logins: user blocked\n"
        f"  curl -X POST '{sim_url}/restart?seconds=5'         # close them, refuse connections for 5 s\n"
        f'  curl -X POST {sim_url}/order -d \'{{"norenordno":"1","status":"OPEN"}}\'  # push an order message\n'
        f"  curl -X POST {sim_url}/expire                      # expire every session token, drop them"
    )
