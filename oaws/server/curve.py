"""ZeroMQ CURVE for a bus that crosses untrusted networks.

``oaws keys generate DIR`` writes, with ZeroMQ's own certificate format:

* ``bus.key`` / ``bus.key_secret``: the bus's key pair. The side that binds (a feed, or
  a forwarder) needs the secret; every proxy needs the public ``bus.key`` to know it
  talks to the real feed.
* ``client.key`` / ``client.key_secret``: the proxies' key pair. ``authorized/client.key``
  lists it as allowed: the binding side refuses any client whose public key is not in
  ``DIR/authorized`` (checked by ZeroMQ's ZAP handler).

Traffic is then encrypted and both ends authenticated. Off unless ``--curve DIR`` is given.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
import zmq.auth


class CurveError(Exception):
    """The key directory is missing or incomplete; one sentence."""


def generate(directory: Path) -> list[Path]:
    """Write a bus key pair, a client key pair and the authorized list; return the files."""
    for name in ("bus", "client"):
        if (directory / f"{name}.key_secret").exists():
            raise CurveError(f"{directory / (name + '.key_secret')} exists already; remove it to make new keys")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        authorized = directory / "authorized"
        authorized.mkdir(exist_ok=True, mode=0o700)
        written = []
        for name in ("bus", "client"):
            public, secret = zmq.auth.create_certificates(str(directory), name)
            Path(secret).chmod(0o600)
            written += [Path(public), Path(secret)]
        shutil.copy(directory / "client.key", authorized / "client.key")
    except OSError as exc:
        raise CurveError(f"cannot write the keys to {directory}: {exc.strerror or exc}") from None
    written.append(authorized / "client.key")
    return written


def _load(path: Path) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise CurveError(f"cannot read the CURVE key {path}: {exc}; make keys with `oaws keys generate`") from None


@dataclass
class Curve:
    directory: Path

    def as_server(self, sock: zmq.Socket[Any]) -> None:
        """The binding side: its own secret key; clients checked against ``authorized/``."""
        public, secret = _load(self.directory / "bus.key_secret")
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    def as_client(self, sock: zmq.Socket[Any]) -> None:
        """A connecting side: the bus's public key and the client pair."""
        server_public, _ = _load(self.directory / "bus.key")
        public, secret = _load(self.directory / "client.key_secret")
        sock.curve_serverkey = server_public
        sock.curve_publickey = public
        sock.curve_secretkey = secret

    def authorize(self, ctx: zmq.Context[Any]) -> Any:
        """Start ZeroMQ's ZAP handler on ``ctx`` allowing the keys in ``authorized/``."""
        authorized = self.directory / "authorized"
        if not authorized.is_dir():
            raise CurveError(f"{authorized} is missing; make keys with `oaws keys generate`")
        if isinstance(ctx, zmq.asyncio.Context):
            from zmq.auth.asyncio import AsyncioAuthenticator

            auth: Any = AsyncioAuthenticator(ctx)
        else:
            from zmq.auth.thread import ThreadAuthenticator

            auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(authorized))
        return auth
