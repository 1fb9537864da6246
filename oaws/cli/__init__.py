"""The ``oaws`` command line: each subcommand parses, then hands over."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from oaws import __version__
from oaws import config as cfg

app = typer.Typer(
    name="oaws",
    help="Live prices for Indian markets: a market watch, scriptable streams, and a market-data proxy "
    "that speaks OpenAlgo's WebSocket protocol.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A mistake the user can fix: one sentence on stderr, exit 1."""


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"oaws: {message}", err=True)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from oaws.background import BackgroundError
    from oaws.client import ClientError
    from oaws.instruments import InstrumentError
    from oaws.recording import RecordingError
    from oaws.server.curve import CurveError
    from oaws.server.service import ServiceError

    return (
        UserError,
        BackgroundError,
        ClientError,
        InstrumentError,
        ServiceError,
        cfg.ConfigError,
        CurveError,
        RecordingError,
    )


def friendly(fn: F) -> F:
    """Turn the user's mistakes and Ctrl-C into one line and an exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # the reader went away (`| head -1`): not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except _user_errors() as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"oaws {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details on stderr.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose:
        # websockets' DEBUG log dumps every frame, and an authenticate frame carries the API key
        logging.getLogger("websockets").setLevel(logging.INFO)


# Shared options ----------------------------------------------------------------
Instruments = Annotated[
    list[str] | None,
    typer.Argument(
        help="SYMBOL:EXCHANGE, e.g. RELIANCE:NSE NIFTY:NSE_INDEX. None: the default watchlist.", show_default=False
    ),
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="Proxy URL (env OAWS_URL; default ws://127.0.0.1:8765).", show_default=False)
]
ApiKeyOpt = Annotated[str | None, typer.Option("--api-key", help="API key (env OAWS_API_KEY).", show_default=False)]
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode", "-m", help="ltp, quote or depth (1, 2, 3) (env OAWS_MODE; default quote).", show_default=False
    ),
]
NoAutostartOpt = Annotated[
    bool, typer.Option("--no-autostart", help="Do not start a background server when none answers.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One compact JSON object per line.")]


HostOpt = Annotated[
    str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).", show_default=False)
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port", "-p", min=0, max=65535, help="WebSocket port; 0 picks a free one (default 8765).", show_default=False
    ),
]
BusOpt = Annotated[
    str | None, typer.Option("--bus", help="ZeroMQ bus endpoint (default tcp://127.0.0.1:5555).", show_default=False)
]
FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="Replay from TIME: 09:15[:30] (on the recording's first day), an ISO datetime or epoch ms.",
        show_default=False,
    ),
]
ToOpt = Annotated[
    str | None, typer.Option("--to", help="Replay up to TIME (same forms as --from).", show_default=False)
]


def resolve_instruments(given: list[str] | None, watchlist: str | None = None) -> list[Any]:
    """The instruments given, else the named or default watchlist of the config file, else the built-in list."""
    from oaws.instruments import DEFAULT_WATCHLIST, parse_many

    if given:
        return parse_many(given)
    lists = cfg.watchlists()
    if watchlist is not None:
        if watchlist not in lists:
            known = ", ".join(sorted(lists)) or "none"
            raise UserError(f"no watchlist named {watchlist!r} in {cfg.config_path()} (known: {known})")
        return parse_many(lists[watchlist])
    return parse_many(lists.get("default") or list(DEFAULT_WATCHLIST))


def resolve_mode(mode: str | None) -> int:
    from oaws.instruments import parse_mode

    return parse_mode(cfg.get("mode", mode))


# Commands ----------------------------------------------------------------------
@app.command()
@friendly
def serve(
    broker: Annotated[
        str | None,
        typer.Option("--broker", "-b", help="sim, angel or replay (env OAWS_BROKER; default sim).", show_default=False),
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="all, feed, proxy or forwarder (default all).", show_default=False)
    ] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    bus: BusOpt = None,
    api_key: ApiKeyOpt = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the simulated market (deterministic prices).")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option("--rate", help="Simulated ticks per second per instrument (default 3).", show_default=False),
    ] = None,
    replay: Annotated[
        list[str] | None, typer.Option("--replay", help="Recording(s) to serve with --broker replay.")
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed: 1 real time, 10 ten times faster, 0 at once.")
    ] = 1.0,
    loop: Annotated[bool, typer.Option("--loop", help="Replay the recordings again and again.")] = False,
    instruments: Annotated[
        str | None,
        typer.Option(
            "--instruments", help="The broker's instrument master file (env OAWS_INSTRUMENTS).", show_default=False
        ),
    ] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-w", min=1, max=64, help="Proxy processes sharing the port (SO_REUSEPORT), for several cores."
        ),
    ] = 1,
    slow_timeout: Annotated[
        float,
        typer.Option(
            "--slow-timeout", help="Seconds a client may stay behind (conflated) before it is closed with 1008."
        ),
    ] = 3.0,
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", help="Serve wss:// with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="The certificate's private key (PEM).")] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option("--allowed-origin", help="A browser origin allowed to connect (repeatable; default: any)."),
    ] = None,
    feeds: Annotated[
        str | None,
        typer.Option(
            "--feeds", help="--role forwarder: where feeds connect (default tcp://127.0.0.1:5556).", show_default=False
        ),
    ] = None,
    bus_connect: Annotated[
        bool, typer.Option("--bus-connect", help="A feed connects to --bus (a forwarder) instead of binding it.")
    ] = False,
    curve: Annotated[
        str | None,
        typer.Option(
            "--curve", help="Encrypt and authenticate the bus with the keys in this directory (`oaws keys generate`)."
        ),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; `oaws stop` stops it.")
    ] = False,
    background: Annotated[bool, typer.Option("--background", hidden=True)] = False,
    worker: Annotated[bool, typer.Option("--worker", hidden=True)] = False,
) -> None:
    """Run the feed and the WebSocket proxy (in the foreground; --detach for the background)."""
    from oaws.aio import run
    from oaws.server.service import ServeOptions, Service, serve_forever

    if replay and broker is None:
        broker = "replay"  # --replay FILE says which feed, whatever the config's broker
    elif replay and broker != "replay":
        raise UserError(f"--replay serves recordings with --broker replay, not --broker {broker}")
    if detach:
        _detach(
            broker=broker,
            role=role,
            host=host,
            port=port,
            bus=bus,
            api_key=api_key,
            seed=seed,
            rate=rate,
            replay=replay,
            speed=speed,
            loop=loop,
            workers=workers if workers != 1 else None,
            slow_timeout=slow_timeout if slow_timeout != 3.0 else None,
            tls_cert=os.path.abspath(tls_cert) if tls_cert else None,
            tls_key=os.path.abspath(tls_key) if tls_key else None,
            allowed_origin=allowed_origin,
            feeds=feeds,
            bus_connect=bus_connect,
            curve=os.path.abspath(curve) if curve else None,
            instruments=os.path.abspath(instruments) if instruments else None,
            **{"from": start, "to": end},
        )
        return
    replay_from, replay_to = replay_bounds(replay or [], start, end)
    opts = ServeOptions(
        replay_from=replay_from,
        replay_to=replay_to,
        instruments=instruments,
        broker=cfg.get("broker", broker),
        role=cfg.get("role", role),
        host=cfg.get("host", host),
        port=cfg.get("port", port),
        bus=cfg.get("bus", bus),
        api_key=cfg.get("api_key", api_key),
        seed=cfg.get("seed", seed),
        rate=cfg.get("rate", rate),
        replay=replay or [],
        speed=speed,
        loop=loop,
        workers=workers,
        worker=worker,
        slow_timeout=slow_timeout,
        tls_cert=tls_cert,
        tls_key=tls_key,
        allowed_origins=tuple(allowed_origin or ()),
        bus_connect=bus_connect,
        curve_dir=curve,
        **({"feeds": feeds} if feeds else {}),
    )
    if background:
        _serve_in_background(opts)
        return
    logging.getLogger("oaws").setLevel(min(logging.getLogger().level, logging.INFO))

    def ready(service: Service) -> None:
        if worker:
            return
        d = service.describe()
        if d["role"] == "forwarder":
            typer.echo(f"oaws: forwarding feeds at {d['feeds']} to proxies at {d['bus']}; Ctrl-C stops", err=True)
            return
        where = f"on {d['url']}" if d["url"] else "(feed only)"
        more = f" with {workers} proxy processes" if workers > 1 else ""
        typer.echo(f"oaws: serving {where}{more}: {d['broker']} feed, bus {d['bus']}; Ctrl-C stops", err=True)

    run(lambda: serve_forever(opts, ready))


def replay_bounds(files: list[str], start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """``--from`` / ``--to`` as epoch ms; a bare time of day is on the recording's first day, in ``time_zone``."""
    if not start and not end:
        return None, None
    from oaws.recording import first_time_ns, parse_time

    day = first_time_ns(files) if files and any(t and ":" in t for t in (start, end)) else None
    tz = cfg.time_zone()
    return (parse_time(start, day, tz) if start else None, parse_time(end, day, tz) if end else None)


def _detach(
    *,
    api_key: str | None,
    replay: list[str] | None,
    loop: bool,
    speed: float,
    allowed_origin: list[str] | None,
    bus_connect: bool,
    **given: Any,
) -> None:
    """Re-run `oaws serve` with the same options as a background process and wait until it answers."""
    from oaws import background

    args: list[str] = []
    for name, value in given.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    for path in replay or []:
        args += ["--replay", os.path.abspath(path)]
    for origin in allowed_origin or []:
        args += ["--allowed-origin", origin]
    if loop:
        args.append("--loop")
    if bus_connect:
        args.append("--bus-connect")
    if speed != 1.0:
        args += ["--speed", str(speed)]
    if api_key is not None:
        os.environ["OAWS_API_KEY"] = api_key  # to the child by environment: never on a command line `ps` shows
    state = background.read_state()
    port = cfg.get("port", given.get("port"))
    if not (state and state.alive) and port and cfg.get("role", given.get("role")) in ("all", "proxy"):
        # an oaws server in the foreground, or under systemd, already serves where this one would
        host = cfg.get("host", given.get("host"))
        url = f"ws://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
        figures = background.health(url)
        if figures is not None:
            typer.echo(
                f"oaws: a server is already running at {url} (pid {figures.get('pid')}), "
                "not started by `oaws serve --detach`; `oaws stop` leaves it alone",
                err=True,
            )
            return
    try:
        state = background.detach(args)
    except background.BackgroundError as exc:
        raise UserError(str(exc)) from None
    _, _, log_path = background.paths()
    if state.info.get("already"):
        typer.echo(f"oaws: a server is already running: pid {state.pid}, {state.url} (log {log_path})", err=True)
        return
    typer.echo(
        f"oaws: server running in the background: pid {state.pid}, {state.url}, "
        f"{state.info.get('broker')} feed, log {log_path}"
    )


def _serve_in_background(opts: Any) -> None:
    """The body of a detached server: hold the lock, log to the rotating file, serve."""
    import time

    from oaws import background
    from oaws.aio import run
    from oaws.server.service import Service, serve_forever

    os.umask(0o077)  # its files (state, log, broker tokens) are the user's alone
    lock = background.ServerLock()
    if not lock.acquire():
        raise typer.Exit(background.LOST_RACE)
    log_path = background.log_to_file()
    log = logging.getLogger("oaws")

    def ready(service: Service) -> None:
        info = {
            "pid": os.getpid(),
            **service.describe(),
            "version": __version__,
            "started": time.time(),
            "log": str(log_path),
        }
        lock.publish(info)
        log.info("background server ready: pid %s, %s", info["pid"], info["url"])

    try:
        run(lambda: serve_forever(opts, ready))  # a user error ends in `friendly`, whose stderr is the log
    finally:
        log.info("background server stopped")
        lock.release()


@app.command()
@friendly
def stop(
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait before SIGKILL.")] = 5.0,
) -> None:
    """Stop the background server (SIGTERM; SIGKILL after --timeout)."""
    from oaws import background

    pid = background.stop(timeout)
    if pid is None:
        from oaws.cli.common import answering

        other = cfg.serve_url()
        also = (
            f"; the server answering at {other} was not started by oaws in the background" if answering(other) else ""
        )
        typer.echo(f"oaws: no background server is running{also}", err=True)
    else:
        typer.echo(f"oaws: stopped the background server (pid {pid})", err=True)


@app.command()
@friendly
def status(
    json: JsonOpt = False,
) -> None:
    """Is a background server running? Its figures. Exit 0 running, 3 not running, 1 stale state."""
    from oaws.cli.status import show_status

    raise typer.Exit(show_status(as_json=json))


@app.command()
@friendly
def tail(
    instruments: Instruments = None,
    json: JsonOpt = False,
    mode: ModeOpt = None,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N ticks.")] = None,
    stats: Annotated[
        bool, typer.Option("--stats", help="Report end-to-end latency p50/p99 on stderr every second.")
    ] = False,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    no_autostart: NoAutostartOpt = False,
) -> None:
    """Stream ticks as lines (or JSON lines with --json) until Ctrl-C or --count."""
    from oaws.cli.stream import tail as run_tail

    raise typer.Exit(
        run_tail(
            resolve_instruments(instruments),
            resolve_mode(mode),
            as_json=json,
            count=count,
            stats=stats,
            settings=cfg.client_settings(url, api_key, no_autostart),
        )
    )


@app.command()
@friendly
def subscribe(
    instruments: Instruments = None,
    json: JsonOpt = False,
    mode: ModeOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each instrument's tick.")
    ] = 10.0,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    no_autostart: NoAutostartOpt = False,
) -> None:
    """Print the latest tick of each instrument, then exit."""
    from oaws.cli.stream import snapshot

    raise typer.Exit(
        snapshot(
            resolve_instruments(instruments),
            resolve_mode(mode),
            as_json=json,
            timeout=timeout,
            settings=cfg.client_settings(url, api_key, no_autostart),
        )
    )


keys_app = typer.Typer(help="CURVE keys for a bus between hosts.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
@friendly
def keys_generate(
    directory: Annotated[
        str | None, typer.Argument(help="Where to write them (default: STATE_DIR/curve).", show_default=False)
    ] = None,
) -> None:
    """Make the bus key pair, a client key pair and the list of authorized clients."""
    from pathlib import Path

    from oaws.server.curve import CurveError, generate

    target = Path(directory).expanduser() if directory else cfg.state_dir() / "curve"
    try:
        files = generate(target)
    except CurveError as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"oaws: wrote {len(files)} files to {target}:")
    for f in files:
        typer.echo(f"  {f}")
    typer.echo(
        "the feed (or forwarder) host needs the whole directory; each proxy host needs bus.key, "
        "client.key and client.key_secret. Pass --curve DIR to every `oaws serve` on the bus."
    )


#: Commands that live in modules of their own under oaws/cli/, each with ``register(app)``.
COMMAND_MODULES: tuple[str, ...] = ("watch", "record", "angel")


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"oaws.cli.{name}").register(app)


_register_commands()


def main() -> None:
    """The ``oaws`` command: a mistake on the command line is one line on stderr and exit 2."""
    try:  # typer vendors click since 0.22; before, it used click itself
        from typer._click.exceptions import ClickException, UsageError
    except ImportError:  # pragma: no cover
        from click import ClickException, UsageError  # type: ignore[no-redef]

    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        message = exc.format_message().rstrip(".")
        if message:  # empty: a bare `oaws`, whose help is already printed
            where = exc.ctx.command_path if exc.ctx is not None else "oaws"
            sys.stderr.write(f"oaws: {message} (see `{where} --help`)\n")
        sys.exit(exc.exit_code)
    except ClickException as exc:
        sys.stderr.write(f"oaws: {exc.format_message()}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
