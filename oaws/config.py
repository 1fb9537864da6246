"""Settings: command line > environment (``OAWS_*``) > config file > defaults (SPEC §4).

The config file is TOML, at ``$OAWS_CONFIG`` or ``~/.config/oaws/config.toml``
(platformdirs' user config directory)::

    url = "ws://127.0.0.1:8765"
    broker = "sim"
    api_key = "..."
    watchlist = ["RELIANCE:NSE", "INFY:NSE"]

    [watchlists]
    banks = ["HDFCBANK:NSE", "ICICIBANK:NSE", "SBIN:NSE"]

    [angel]
    api_key = "..."
    client_code = "..."
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from dataclasses import dataclass
from datetime import timedelta, timezone, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

import platformdirs

from oaws.protocol.client import AUTH_TIMEOUT

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
DEFAULT_URL = f"ws://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_BUS = "tcp://127.0.0.1:5555"

DEFAULTS: dict[str, Any] = {
    "url": DEFAULT_URL,
    "host": DEFAULT_HOST,
    "port": DEFAULT_PORT,
    "bus": DEFAULT_BUS,
    "broker": "sim",
    "role": "all",
    "api_key": None,
    "mode": "quote",
    "autostart": True,
    "seed": None,
    "rate": 3.0,
    "time_zone": "Asia/Kolkata",
    "auth_timeout": AUTH_TIMEOUT,
    # oaws serve's admission limits (0: no limit)
    "max_connections": 1000,
    "max_connections_per_address": 0,
    "max_instruments_per_client": 3000,
    "max_instruments": 10000,
}

#: India Standard Time has had no daylight saving since 1945: a fixed offset is exact and
#: needs no time-zone database (a slim container may have none)
IST = timezone(timedelta(hours=5, minutes=30), "IST")
_IST_NAMES = frozenset({"asia/kolkata", "asia/calcutta", "ist", "exchange"})


class ConfigError(Exception):
    """The config file or an environment variable cannot be read; the message says which.

    ``code`` is the exit code: 2 for a value of the wrong type or out of range (a mistake
    like one on the command line), 1 otherwise."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def config_path() -> Path:
    env = os.environ.get("OAWS_CONFIG")
    return Path(env).expanduser() if env else platformdirs.user_config_path("oaws") / "config.toml"


def state_dir() -> Path:
    """Where the background server keeps its state file, lock, log and broker tokens."""
    env = os.environ.get("OAWS_STATE_DIR")
    return Path(env).expanduser() if env else platformdirs.user_state_path("oaws")


def private_state_dir() -> Path:
    """The state directory, made if need be, and made the user's alone (0700).

    README promises 0700: one left open to others (1777, 0755) is repaired when it is the
    user's, and refused in one sentence when it is not (another user could plant files in
    it). A symlinked directory is followed: that is the user's own choice of place.
    """
    d = state_dir()
    return private_dir(d, f"the state directory {d}", "set OAWS_STATE_DIR to a directory of your own")


def private_dir(d: Path, what: str, instead: str, *, follow: bool = True) -> Path:
    """``d`` made if need be (0700) and checked: a directory of the user's, repaired to 0700,
    or one sentence about ``what`` saying what to do ``instead``. With ``follow=False`` a
    symbolic link in its place is refused, not followed."""
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = d.stat() if follow else os.lstat(d)
    except OSError as exc:
        raise ConfigError(f"cannot make {what}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{what} is not a directory; {instead}")
    if st.st_uid != os.geteuid():
        raise ConfigError(f"{what} belongs to another user (uid {st.st_uid}); {instead}")
    if stat.S_IMODE(st.st_mode) != 0o700:
        try:
            os.chmod(d, 0o700)
        except OSError as exc:
            raise ConfigError(f"cannot make {what} private (0700): {exc.strerror}") from None
    return d


def cache_dir() -> Path:
    """Where downloaded data (the instrument master) lives."""
    env = os.environ.get("OAWS_CACHE_DIR")
    return Path(env).expanduser() if env else platformdirs.user_cache_path("oaws")


@lru_cache(maxsize=4)
def _read(path: Path, mtime_ns: int) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None


def file_config() -> dict[str, Any]:
    """The parsed config file, or {} when there is none."""
    path = config_path()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    return _read(path, mtime)


def truth(raw: object) -> bool:
    """A yes or no as people write one in a file or a variable; ValueError for anything else."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


#: the kind of each setting whose default (None) does not say it
KINDS: dict[str, type] = {"api_key": str, "seed": int}
#: what each number must be, beyond its type: (lowest, highest), None where unbounded
RANGES: dict[str, tuple[float | None, float | None]] = {"port": (0, 65535)}


def cast(key: str, raw: Any, like: Any, setting: str | None = None) -> Any:
    """``raw`` as the type of ``like`` (a default), checked against the range of ``setting``
    (``RANGES``); ConfigError naming ``key`` (where it was read) when it is not one.

    A file's value must already be of the right kind (``host = ["a"]`` is not a host); a
    variable's text is converted. ``like`` None takes the kind from ``KINDS[setting]``.
    """
    if raw is None:
        return None
    if like is None and setting in KINDS:
        like = KINDS[setting]()
    kind = type(like).__name__ if like is not None else "value"
    try:
        if isinstance(like, bool):
            return truth(raw)
        if isinstance(like, int):
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            value: Any = int(raw)
        elif isinstance(like, float):
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
        elif isinstance(like, str):
            if setting == "mode" and isinstance(raw, int) and not isinstance(raw, bool):
                return str(raw)  # mode = 2
            if not isinstance(raw, str):
                raise ValueError(raw)
            return raw
        else:
            return raw
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{key} = {_shown(raw)} is not a valid {kind}", code=2) from None
    low, high = RANGES.get(setting or "", (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{key} = {_shown(raw)} is out of range: it must be {bounds}", code=2)
    return value


def _shown(raw: Any) -> str:
    """``raw`` as the message shows it: repr, cut short (a huge number or a long list stays one line)."""
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def serve_url() -> str:
    """The URL a server started here with the configured host and port answers at."""
    host = get("host")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"ws://{host}:{get('port')}"


def get(key: str, cli: Any = None, *, default: Any = None, section: str | None = None) -> Any:
    """The value of ``key``: command line, then ``OAWS_KEY``, then the config file, then the default.

    The default ``url`` is where ``oaws serve`` would listen with the configured host and port.
    """
    if key == "url" and cli is None and not os.environ.get("OAWS_URL") and "url" not in file_config():
        return serve_url()
    like = DEFAULTS.get(key, default)
    if cli is not None:
        return cli
    env = os.environ.get(f"OAWS_{key.upper()}")
    if env is not None and env != "":
        return cast(f"OAWS_{key.upper()}", env, like, key)
    cfg = file_config()
    if section:
        cfg = cfg.get(section, {}) if isinstance(cfg.get(section), dict) else {}
    if key in cfg:
        return cast(f"{key} in {config_path()}", cfg[key], like, None if section else key)
    return DEFAULTS.get(key, default)


def time_zone() -> tzinfo | None:
    """The zone oaws shows and reads clock times in: the exchange's (IST) unless set.

    ``local`` means the machine's zone (returned as None, which ``datetime`` takes as
    local); any other value is an IANA name such as ``Europe/London``.
    """
    value = str(get("time_zone")).strip()
    if value.lower() in _IST_NAMES:
        return IST
    if value.lower() == "local":
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        where = (
            f"OAWS_TIME_ZONE={value!r}"
            if os.environ.get("OAWS_TIME_ZONE")
            else f"time_zone = {value!r} in {config_path()}"
        )
        raise ConfigError(
            f"{where} is not a time zone; use Asia/Kolkata (the default), local, or an IANA name"
        ) from None


def watchlists() -> dict[str, list[str]]:
    """Named watchlists of the config file; ``default`` is the top-level ``watchlist``."""
    cfg = file_config()
    lists: dict[str, list[str]] = {}
    if isinstance(cfg.get("watchlist"), list):
        lists["default"] = [str(x) for x in cfg["watchlist"]]
    named = cfg.get("watchlists")
    if isinstance(named, dict):
        for name, items in named.items():
            if isinstance(items, list):
                lists[str(name)] = [str(x) for x in items]
    return lists


@dataclass(frozen=True)
class ClientSettings:
    """What a client command (tail, subscribe, watch, record) needs to reach a server."""

    url: str
    api_key: str | None
    #: start a background server when none answers (only ever at the URL it would serve)
    autostart: bool

    @property
    def may_autostart(self) -> bool:
        return self.autostart and self.url.rstrip("/") == serve_url()


def client_settings(url: str | None = None, api_key: str | None = None, no_autostart: bool = False) -> ClientSettings:
    return ClientSettings(
        url=get("url", url),
        api_key=get("api_key", api_key),
        autostart=False if no_autostart else bool(get("autostart")),
    )
