"""What every command shares: one-sentence errors, the options declared once, the config
file as the options' defaults, and the instruments and mode a command is given.

Precedence (SPEC §4) is click's own: the command line, then the option's environment
variable (``envvar=``), then the config file (``config_defaults`` feeds click's
``default_map``), then the default.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from oaws import config as cfg
from oaws.protocol.client import AUTH_TIMEOUT as AUTH_TIMEOUT  # the default of --auth-timeout

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A mistake the user can fix: one sentence on stderr, exit 1."""

    code = 1


class UsageError(UserError):
    """A mistake on the command line (a bad option value): one sentence on stderr, exit 2,
    as click's own usage errors."""

    code = 2


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"oaws: {message}", err=True)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from oaws.background import BackgroundError
    from oaws.brokers.api import BrokerError
    from oaws.client import ClientError
    from oaws.instruments import InstrumentError
    from oaws.recording import RecordingError
    from oaws.server.curve import CurveError
    from oaws.server.service import ServiceError
    from oaws.server.settings import SettingsError

    return (
        UserError,
        BackgroundError,
        BrokerError,
        ClientError,
        InstrumentError,
        ServiceError,
        SettingsError,
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
            fail(str(exc), getattr(exc, "code", 1) if isinstance(exc, (cfg.ConfigError, UserError)) else 1)

    return wrapper  # type: ignore[return-value]


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """``app.command`` with ``friendly`` around the function."""

    def register(fn: F) -> F:
        app.command(name, **kwargs)(friendly(fn))
        return fn

    return register


# The config file as the options' defaults -------------------------------------------
def check_config_file() -> None:
    """The whole config file against its schema (``oaws.configfile``): a value of the wrong
    kind stops the command (one sentence, exit 2), an unknown key or a watchlist entry that
    is not an instrument is a warning on stderr."""
    data = cfg.file_config()
    if not data:
        return
    from oaws import configfile

    sections: dict[str, dict[str, type]] = {}
    if any(key not in configfile.TopLevel.model_fields for key in data):
        # a table the top level does not know may be a broker's: ask the plugins (only then,
        # so that a file without broker sections never loads them)
        from oaws import brokers

        for broker in brokers.brokers().values():
            spec = broker.settings
            if spec is not None and hasattr(spec, "section"):
                sections[spec.section] = {s.name: s.kind for s in spec}
    for warning in configfile.check_file(sections):
        typer.echo(f"oaws: warning: {warning}", err=True)


def config_defaults(group: Any) -> dict[str, Any]:
    """click's ``default_map`` for ``group`` (the ``oaws`` command): every option named like a
    top-level setting of the config file (``port``, ``broker``, ``mode``...) defaults to its
    value there, checked here so that a wrong one is a sentence that names the file."""
    given = cfg.file_config()
    settings = {key: value for key, value in given.items() if key in cfg.DEFAULTS and not isinstance(value, dict)}
    if not settings:
        return {}
    where = cfg.config_path()
    checked = {key: cfg.cast(f"{key} in {where}", value, cfg.DEFAULTS[key], key) for key, value in settings.items()}

    def defaults(cmd: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, sub in getattr(cmd, "commands", {}).items():
            inner = defaults(sub)
            if inner:
                found[name] = inner
        for param in getattr(cmd, "params", ()):
            if param.name in checked and getattr(param, "envvar", None):
                found[param.name] = checked[param.name]
        return found

    return defaults(group)


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether the option was written on the command line or set in its environment variable
    (not left to the config file or the default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


# Options shared by several commands ---------------------------------------------------
Instruments = Annotated[
    list[str] | None,
    typer.Argument(
        help="SYMBOL:EXCHANGE, e.g. RELIANCE:NSE NIFTY:NSE_INDEX. None: the default watchlist.", show_default=False
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="OAWS_URL", help="Proxy URL (default: where `oaws serve` listens).", show_default=False
    ),
]
ApiKeyOpt = Annotated[
    str | None, typer.Option("--api-key", envvar="OAWS_API_KEY", help="The proxy's API key.", show_default=False)
]
ModeOpt = Annotated[
    str,
    typer.Option("--mode", "-m", envvar="OAWS_MODE", help="ltp, quote or depth (1, 2, 3)."),
]
DepthOpt = Annotated[
    int,
    typer.Option("--depth", min=1, help="Levels a side in depth mode: 5, or 20 where the broker offers it (Angel)."),
]
AutostartOpt = Annotated[
    bool,
    typer.Option(
        "--autostart/--no-autostart",
        envvar="OAWS_AUTOSTART",
        help="Start a background server when none answers at the default URL.",
    ),
]
AuthTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--auth-timeout",
        envvar="OAWS_AUTH_TIMEOUT",
        help="Seconds to wait for the server to answer authenticate (OpenAlgo sets up the broker first: up to 15 s).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One compact JSON object per line.")]
HostOpt = Annotated[str, typer.Option("--host", envvar="OAWS_HOST", help="Address to listen on.")]
PortOpt = Annotated[
    int,
    typer.Option("--port", "-p", envvar="OAWS_PORT", min=0, max=65535, help="WebSocket port; 0 picks a free one."),
]
BusOpt = Annotated[
    str | None,
    typer.Option(
        "--bus",
        envvar="OAWS_BUS",
        help="ZeroMQ bus endpoint (default: role all's own private ipc socket; other roles tcp://127.0.0.1:5555).",
        show_default=False,
    ),
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


# What a client command is given -------------------------------------------------------
def resolve_instruments(given: list[str] | None, watchlist: str | None = None) -> list[Any]:
    """The instruments given, else the named or default watchlist of the config file, else the built-in list."""
    from oaws.instruments import DEFAULT_WATCHLIST, parse_many

    if given:
        return parse_many(given)
    from oaws.configfile import watchlists

    lists = watchlists()
    if watchlist is not None:
        if watchlist not in lists:
            known = ", ".join(sorted(lists)) or "none"
            raise UserError(f"no watchlist named {watchlist!r} in {cfg.config_path()} (known: {known})")
        return parse_many(lists[watchlist])
    return parse_many(lists.get("default") or list(DEFAULT_WATCHLIST))


def resolve_mode(mode: str) -> int:
    """``--mode`` as a number; a bad one is a usage error (exit 2) that says where it was given."""
    from oaws.instruments import InstrumentError, parse_mode

    try:
        return parse_mode(mode)
    except InstrumentError:
        pass
    use = "use 1/LTP, 2/Quote or 3/Depth"
    if any(arg in ("--mode", "-m") or arg.startswith(("--mode=", "-m")) for arg in sys.argv[1:]):
        raise UsageError(f"invalid --mode {mode!r}; {use}")
    if os.environ.get("OAWS_MODE"):
        raise UsageError(f"OAWS_MODE={mode} is not a mode; {use}")
    raise cfg.ConfigError(f"mode = {mode!r} in {cfg.config_path()} is not a mode; {use}", 2)


def resolve_depth(mode: int, depth: int) -> int:
    """``--depth`` checked against the mode: more than five levels is for ``--mode depth`` only."""
    from oaws.instruments import DEFAULT_DEPTH, DEPTH

    if depth != DEFAULT_DEPTH and mode != DEPTH:
        raise UsageError(f"--depth {depth} needs --mode depth")
    return depth


def resolve_auth_timeout(seconds: float) -> float:
    """``--auth-timeout`` checked: a positive, finite number of seconds (nan passes click's own range checks)."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"--auth-timeout must be a positive number of seconds, not {seconds:g}")
    return seconds


def client_settings(url: str | None, api_key: str | None, autostart: bool) -> cfg.ClientSettings:
    """Where a client command connects; without ``--url``, where ``oaws serve`` would listen."""
    if url is not None:
        check_url(url)
    return cfg.ClientSettings(url=url or cfg.serve_url(), api_key=api_key, autostart=autostart)


def check_url(url: str) -> None:
    """A UsageError (one sentence, exit 2) unless ``url`` is a ws:// or wss:// address with a
    host and, if any, a numeric port (``ws://127.0.0.1:8765,`` would otherwise fail deep in
    the connection with a traceback)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number 0-65535)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"--url {url!r} is not a WebSocket address such as ws://127.0.0.1:8765")


def replay_bounds(files: list[str], start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """``--from`` / ``--to`` as epoch ms; a bare time of day is on the recording's first day, in ``time_zone``."""
    if not start and not end:
        return None, None
    from oaws.recording import first_time_ns, parse_time

    day = first_time_ns(files) if files and any(t and ":" in t for t in (start, end)) else None
    tz = cfg.time_zone()
    return (parse_time(start, day, tz) if start else None, parse_time(end, day, tz) if end else None)
