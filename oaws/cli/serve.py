"""``oaws serve``: the feed and the proxy, in the foreground or in the background.

The options become one ``ServeSettings``; a detached server and the extra workers get
that object as data (``oaws.server.settings``), never a command line rebuilt by hand.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Annotated, Any

import typer

from oaws import __version__
from oaws.cli.common import (
    ApiKeyOpt,
    BusOpt,
    FromOpt,
    HostOpt,
    PortOpt,
    ToOpt,
    UsageError,
    UserError,
    command,
    given_on_command_line,
    replay_bounds,
)
from oaws.config import DEFAULT_HOST, DEFAULT_PORT

app = typer.Typer()


@command(app)
def serve(
    ctx: typer.Context,
    broker: Annotated[
        str,
        typer.Option("--broker", "-b", envvar="OAWS_BROKER", help="The broker to serve (`oaws brokers` lists them)."),
    ] = "sim",
    role: Annotated[str, typer.Option("--role", envvar="OAWS_ROLE", help="all, feed, proxy or forwarder.")] = "all",
    host: HostOpt = DEFAULT_HOST,
    port: PortOpt = DEFAULT_PORT,
    bus: BusOpt = None,
    api_key: ApiKeyOpt = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", envvar="OAWS_SEED", help="Seed of the simulated market (deterministic prices)."),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", envvar="OAWS_RATE", help="Simulated ticks per second per instrument.")
    ] = 3.0,
    always_open: Annotated[
        bool,
        typer.Option(
            "--always-open",
            help="The simulated market trades around the clock (else it keeps the exchanges' sessions, "
            "or OAWS_SIM_HOURS / sim_hours: exchange or always).",
        ),
    ] = False,
    any_symbol: Annotated[
        bool,
        typer.Option(
            "--any-symbol",
            help="The simulated market trades any symbol, priced from its name (else only the instruments it "
            "lists; also OAWS_SIM_ANY_SYMBOL or sim_any_symbol = true).",
        ),
    ] = False,
    replay: Annotated[
        list[str] | None, typer.Option("--replay", help="Recording(s) to serve (implies --broker replay).")
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed: 1 real time, 10 ten times faster, 0 at once.")
    ] = 1.0,
    loop: Annotated[bool, typer.Option("--loop", help="Replay the recordings again and again.")] = False,
    instruments: Annotated[
        str | None,
        typer.Option(
            "--instruments", envvar="OAWS_INSTRUMENTS", help="The broker's instrument master file.", show_default=False
        ),
    ] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            envvar="OAWS_WORKERS",
            min=1,
            max=64,
            help="Proxy processes sharing the port (SO_REUSEPORT), for several cores.",
        ),
    ] = 1,
    slow_timeout: Annotated[
        float,
        typer.Option(
            "--slow-timeout",
            envvar="OAWS_SLOW_TIMEOUT",
            help="Seconds a client may stay behind (conflated) before it is closed with 1008.",
        ),
    ] = 3.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            envvar="OAWS_MAX_CONNECTIONS",
            min=0,
            help="Connections open at once; one more is refused with HTTP 503 (0: no limit).",
        ),
    ] = 1000,
    max_connections_per_address: Annotated[
        int,
        typer.Option(
            "--max-connections-per-address",
            envvar="OAWS_MAX_CONNECTIONS_PER_ADDRESS",
            min=0,
            help="Connections open at once from one address (0: no limit but --max-connections).",
        ),
    ] = 0,
    max_instruments_per_client: Annotated[
        int,
        typer.Option(
            "--max-instruments-per-client",
            envvar="OAWS_MAX_INSTRUMENTS_PER_CLIENT",
            min=1,
            help="(instrument, mode) pairs one client may hold; past it, LIMIT_EXCEEDED.",
        ),
    ] = 3000,
    max_instruments: Annotated[
        int,
        typer.Option(
            "--max-instruments",
            envvar="OAWS_MAX_INSTRUMENTS",
            min=0,
            help="Streams served across all clients, each counted once; past it, LIMIT_EXCEEDED (0: no limit).",
        ),
    ] = 10000,
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", envvar="OAWS_TLS_CERT", help="Serve wss:// with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        str | None, typer.Option("--tls-key", envvar="OAWS_TLS_KEY", help="The certificate's private key (PEM).")
    ] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option("--allowed-origin", help="A browser origin allowed to connect (repeatable; default: any)."),
    ] = None,
    feeds: Annotated[
        str, typer.Option("--feeds", envvar="OAWS_FEEDS", help="--role forwarder: where feeds connect.")
    ] = "tcp://127.0.0.1:5556",
    bus_connect: Annotated[
        bool,
        typer.Option(
            "--bus-connect",
            envvar="OAWS_BUS_CONNECT",
            help="A feed connects to --bus (a forwarder, or a proxy with --bus-bind) instead of binding it.",
        ),
    ] = False,
    bus_bind: Annotated[
        bool,
        typer.Option(
            "--bus-bind",
            envvar="OAWS_BUS_BIND",
            help="The proxy binds --bus and feeds connect to it (OpenAlgo's wiring: its broker adapters connect).",
        ),
    ] = False,
    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream",
            help="The OpenAlgo WebSocket server to serve, ws://HOST:8765 (implies --broker openalgo; "
            "else OPENALGO_WS_URL).",
            show_default=False,
        ),
    ] = None,
    curve: Annotated[
        str | None,
        typer.Option(
            "--curve",
            envvar="OAWS_CURVE",
            help="Encrypt and authenticate the bus with the keys in this directory (`oaws keys generate`).",
        ),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; `oaws stop` stops it.")
    ] = False,
    background: Annotated[bool, typer.Option("--background", hidden=True)] = False,
    worker: Annotated[bool, typer.Option("--worker", hidden=True)] = False,
) -> None:
    """Run the feed and the WebSocket proxy (in the foreground; --detach for the background)."""
    from oaws.server.settings import ServeSettings, inherited

    handed = inherited() if background or worker else None
    if worker and handed is None:
        raise UserError("--worker is started by `oaws serve --workers N`, with its settings in OAWS_SERVE_SETTINGS")
    if handed is not None:
        settings = handed
    else:
        broker = _broker_for(ctx, broker, {"replay": bool(replay), "upstream": bool(upstream)})
        path = os.path.abspath
        replay_from, replay_to = replay_bounds(replay or [], start, end)
        settings = ServeSettings(
            broker=broker,
            role=role,
            host=host,
            port=port,
            bus=bus,
            api_key=api_key,
            feed={
                "seed": seed,
                "rate": rate,
                "hours": "always" if always_open else None,
                "any_symbol": True if any_symbol else None,
                "replay": [path(p) for p in replay or ()],
                "speed": speed,
                "loop": loop,
                "replay_from": replay_from,
                "replay_to": replay_to,
                "instruments": path(instruments) if instruments else None,
                "upstream": upstream,
            },
            slow_timeout=slow_timeout,
            limits=_limits(max_instruments_per_client, max_instruments),
            max_connections=_limit(max_connections),
            max_connections_per_address=_limit(max_connections_per_address),
            workers=workers,
            tls_cert=path(tls_cert) if tls_cert else None,
            tls_key=path(tls_key) if tls_key else None,
            allowed_origins=tuple(allowed_origin or ()),
            feeds=feeds,
            bus_connect=bus_connect,
            bus_bind=bus_bind,
            curve_dir=path(os.path.expanduser(curve)) if curve else None,
        )
    if detach:
        _detach(settings)
    elif background:
        _serve_in_background(settings)
    else:
        _serve_here(settings)


def _limit(value: int) -> int | None:
    """A limit as given (the option's ``min`` refused a negative one): 0 is none."""
    return value or None


def _limits(per_client: int, total: int) -> Any:
    from oaws.protocol.codes import Limits

    return Limits(per_client=per_client, total=_limit(total))


def _broker_for(ctx: typer.Context, broker: str, given: dict[str, bool]) -> str:
    """The broker to serve: as written, else the one an option given implies (``--replay FILE``)."""
    from oaws import brokers

    if given_on_command_line(ctx, "broker"):
        try:
            brokers.get(broker)
        except brokers.UnknownBroker as exc:
            if broker.strip().lower() in brokers.broken():
                raise  # installed but broken: not a mistake on the command line (exit 1)
            raise UsageError(str(exc)) from None  # a bad option value: exit 2, as click's own
    written = {option for option, present in given.items() if present}
    implied = brokers.selected_by(written)
    if implied is None or implied.name == broker:
        return broker
    if given_on_command_line(ctx, "broker"):
        flags = ", ".join(f"--{option}" for option in sorted(written & set(implied.selected_by)))
        raise UserError(f"{flags} goes with --broker {implied.name}, not --broker {broker}")
    return implied.name  # the option says which feed, whatever the config's broker


def _serve_here(settings: Any) -> None:
    from oaws.aio import run
    from oaws.server.service import Service, serve_forever

    logging.getLogger("oaws").setLevel(min(logging.getLogger().level, logging.INFO))

    def ready(service: Service) -> None:
        if settings.worker:
            return
        d = service.describe()
        if d["role"] == "forwarder":
            typer.echo(f"oaws: forwarding feeds at {d['feeds']} to proxies at {d['bus']}; Ctrl-C stops", err=True)
            return
        where = f"on {d['url']}" if d["url"] else "(feed only)"
        more = f" with {settings.workers} proxy processes" if settings.workers > 1 else ""
        typer.echo(f"oaws: serving {where}{more}: {d['broker']} feed, bus {d['bus']}; Ctrl-C stops", err=True)

    run(lambda: serve_forever(settings, ready))


def _detach(settings: Any) -> None:
    """Start a background server with these settings and wait until it answers."""
    from oaws import background

    state = background.read_state()
    if not (state and state.alive) and settings.port and settings.role in ("all", "proxy"):
        # an oaws server in the foreground, or under systemd, already serves where this one would
        host = settings.host
        url = f"ws://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{settings.port}"
        figures = background.health(url)
        if figures is not None:
            typer.echo(
                f"oaws: a server is already running at {url} (pid {figures.get('pid')}), "
                "not started by `oaws serve --detach`; `oaws stop` leaves it alone",
                err=True,
            )
            return
    state = background.detach(settings)
    _, _, log_path = background.paths()
    if state.info.get("already"):
        typer.echo(f"oaws: a server is already running: pid {state.pid}, {state.url} (log {log_path})", err=True)
        return
    # on stderr, as "already running" and every other word of oaws about itself: stdout is for data
    typer.echo(
        f"oaws: server running in the background: pid {state.pid}, {state.url}, "
        f"{state.info.get('broker')} feed, log {log_path}",
        err=True,
    )


def _serve_in_background(settings: Any) -> None:
    """The body of a detached server: hold the lock, log to the rotating file, serve."""
    from oaws import background
    from oaws.aio import run
    from oaws.server.service import Service, serve_forever

    os.umask(0o077)  # its files (state, log, broker tokens) are the user's alone
    # the lock `serve --detach` took and handed over; else (started by hand) our own
    lock = background.ServerLock.inherit()
    if lock is None:
        lock = background.ServerLock()
        if not lock.acquire():
            raise typer.Exit(background.LOST_RACE)
    lock.starting(os.getpid())
    log_path = background.log_to_file()
    log = logging.getLogger("oaws")

    def ready(service: Service) -> None:
        info = {
            "pid": os.getpid(),
            **service.describe(),
            "version": __version__,
            "started": time.time(),
            "log": str(log_path),
            **background.identity(os.getpid()),
        }
        lock.publish(info)
        log.info("background server ready: pid %s, %s", info["pid"], info["url"])

    try:
        run(lambda: serve_forever(settings, ready))  # a user error ends in `friendly`, whose stderr is the log
    finally:
        log.info("background server stopped")
        lock.release()
