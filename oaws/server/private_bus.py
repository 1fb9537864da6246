"""The all-in-one server's own bus: an ipc socket that only its user can reach.

``oaws serve`` (role ``all``) with no ``--bus`` asked for needs no TCP bus, which anyone
on the machine could connect to (and so read every tick, or make the feed subscribe,
whatever ``--api-key`` says). Its bus is ``ipc://STATE/bus-PID``: a Unix socket, 0600,
in the 0700 state directory, one per server (so a second server starts with ``--port``
alone), removed when it stops; one a killed server left behind is removed by the next.

A socket's path is limited to 107 bytes: when the state directory is too deep for it,
the socket goes to a short directory of the user's own under the temporary directory,
named after the state directory (``/tmp/oaws-UID-HASH``, 0700, refused if not ours).

``oaws sim order`` finds such buses with ``live()``: the sockets there that answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import tempfile
from pathlib import Path

from oaws import config

PREFIX = "bus-"
#: the longest path a Unix socket may have (``sun_path`` holds 108 bytes with the NUL)
IPC_MAX = 107


class PrivateBusError(Exception):
    """No private bus can be made; one sentence."""


def _short_dir(state: Path) -> Path:
    """The short directory for the sockets of ``state`` when ``state`` is too deep."""
    tag = hashlib.sha256(str(state.absolute()).encode()).hexdigest()[:12]
    name = f"oaws-{os.geteuid()}-{tag}"
    base = Path(tempfile.gettempdir())
    if len(str(base / name / PREFIX)) + 8 > IPC_MAX:
        base = Path("/tmp")
    return base / name


def _fits(directory: Path) -> bool:
    return len(os.fsencode(str(directory / f"{PREFIX}{2**22}"))) <= IPC_MAX


def _private(directory: Path) -> Path:
    """``directory`` made (0700) and checked: a real directory of the user's, nobody else's way in."""
    try:
        return config.private_dir(
            directory, f"the private bus's directory {directory}", "remove it or give --bus", follow=False
        )
    except config.ConfigError as exc:
        raise PrivateBusError(str(exc)) from None


def directories() -> list[Path]:
    """Where private buses of this state directory may be: the state directory, then the short one."""
    state = config.state_dir()
    return [state, _short_dir(state)]


def _answers(path: Path) -> bool:
    """Whether a server listens on the socket ``path`` (a stale one refuses)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(os.fsencode(str(path)))
        except OSError:
            return False
    return True


def _sockets(directory: Path) -> list[Path]:
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    found = []
    for p in entries:
        if not p.name.startswith(PREFIX) or not p.name[len(PREFIX) :].isdigit():
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.lstat(p).st_mode):
                found.append(p)
    return sorted(found)


def make() -> str:
    """An address for this process's private bus (``ipc://...``), stale ones cleaned away."""
    try:
        state = config.private_state_dir()
    except config.ConfigError as exc:
        raise PrivateBusError(str(exc)) from None
    directory = state if _fits(state) else _private(_short_dir(state))
    mine = directory / f"{PREFIX}{os.getpid()}"
    for old in _sockets(directory):
        if old != mine and not _answers(old):
            with contextlib.suppress(OSError):
                old.unlink()  # a server killed before it could remove it
    return f"ipc://{mine}"


def path_of(address: str) -> Path:
    return Path(address.removeprefix("@").removeprefix("ipc://"))


def seal(address: str) -> None:
    """Make the bound socket the user's alone (0600; its directory is 0700 already)."""
    with contextlib.suppress(OSError):
        os.chmod(path_of(address), 0o600)


def remove(address: str) -> None:
    with contextlib.suppress(OSError):
        path_of(address).unlink()


def live() -> list[str]:
    """The private buses of servers of this state directory that are running."""
    return [f"ipc://{p}" for d in directories() for p in _sockets(d) if _answers(p)]
