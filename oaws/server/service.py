"""``oaws serve``: a feed, a proxy or both, in the foreground, until a signal.

Roles: ``all`` runs a feed and a proxy in one process (the feed binds the bus, the proxy
connects to it; with no bus asked for, a private one: ``oaws.server.private_bus``);
``feed`` runs only the feed (proxies on other processes or hosts connect); ``proxy``
serves whatever publishes on the bus.

The bus either way round (SPEC §3): with ``bus_bind`` the proxy binds it and feeds connect,
as OpenAlgo's broker adapters do to OpenAlgo's proxy (an oaws feed with ``bus_connect``; in
role ``all`` the feed connects to its own proxy, and others may too).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oaws import brokers
from oaws.brokers.api import BrokerError, Feed
from oaws.server import private_bus
from oaws.server.bus import FeedHub, Forwarder, bound
from oaws.server.proxy import Proxy, ProxyOptions
from oaws.server.settings import DEFAULT_BUS, ROLES, ServeSettings
from oaws.server.workers import ENV as BOARD_ENV
from oaws.server.workers import Board, combine

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """The server cannot start; the message is one sentence for the user."""


def make_feed(settings: ServeSettings) -> Feed:
    """The feed of ``settings.broker``, from its plugin (``oaws.brokers``); its refusal is one sentence."""
    try:
        return brokers.get(settings.broker).make_feed(settings.feed)
    except BrokerError as exc:
        raise ServiceError(str(exc)) from None


def tls_context(opts: ServeSettings) -> ssl.SSLContext | None:
    if not opts.tls_cert and not opts.tls_key:
        return None
    if not (opts.tls_cert and opts.tls_key):
        raise ServiceError("TLS needs both --tls-cert and --tls-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(opts.tls_cert, opts.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ServiceError(
            f"cannot load the TLS certificate {opts.tls_cert} and key {opts.tls_key}: "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from None
    return context


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address written as one (``127.0.0.1``, ``::1``,
    ``[::1]``) or exactly ``localhost``: a name is never taken on trust (``127.attacker.example``)."""
    host = host.strip()
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def check_options(opts: ServeSettings) -> None:
    """Refuse what cannot work, in one sentence, before anything binds a port."""
    if not (math.isfinite(opts.slow_timeout) and opts.slow_timeout > 0):
        raise ServiceError(f"--slow-timeout must be a positive number of seconds, not {opts.slow_timeout:g}")
    if opts.role not in ROLES:
        raise ServiceError(f"unknown role {opts.role!r}; choose one of {', '.join(ROLES)}")
    if opts.role in ("all", "proxy") and not is_loopback(opts.host) and not opts.api_key:
        raise ServiceError(f"refusing to listen on {opts.host} without an API key: set --api-key or OAWS_API_KEY")
    if opts.bus_bind and opts.role not in ("all", "proxy"):
        raise ServiceError(
            f"--bus-bind is for a proxy (--role proxy or all), not --role {opts.role}; "
            "a feed connects to a proxy that binds the bus with --bus-connect"
        )
    if opts.bus_bind and opts.workers > 1:
        raise ServiceError(
            "--bus-bind serves one proxy process (the feeds connect to it), not --workers "
            f"{opts.workers}; without --bus-bind the workers share the bus a feed binds"
        )


def wants_private_bus(opts: ServeSettings) -> bool:
    """Whether this server gets a bus of its own: role ``all`` with no bus asked for (a feed
    connecting elsewhere, ``--bus-connect`` without ``--bus-bind``, needs the shared default)."""
    return opts.bus is None and opts.role == "all" and (opts.bus_bind or not opts.bus_connect)


class Service:
    """The running parts of one ``oaws serve``; ``start`` then ``stop``."""

    def __init__(self, opts: ServeSettings) -> None:
        check_options(opts)
        self.opts = opts
        #: the bus address asked for; None until ``start`` makes the private one
        self._bus: str | None = opts.bus if opts.bus is not None or wants_private_bus(opts) else DEFAULT_BUS
        #: the private bus's address, removed at ``stop``
        self.private: str | None = None
        self.feed: Feed | None = None
        self.hub: FeedHub | None = None
        self.forwarder: Forwarder | None = None
        self.proxy: Proxy | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._hub_task: asyncio.Task[None] | None = None
        #: with --workers, where the processes leave their figures for /health (oaws.server.workers)
        self.board: Board | None = None
        self._board_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from oaws.server.bus import BusError
        from oaws.server.curve import Curve, CurveError
        from oaws.server.proxy import ServeError

        o = self.opts
        curve = Curve(Path(o.curve_dir).expanduser()) if o.curve_dir else None
        if self._bus is None:
            try:
                self._bus = self.private = private_bus.make()
            except private_bus.PrivateBusError as exc:
                raise ServiceError(str(exc)) from None
        address = self._bus
        try:
            if o.role == "forwarder":
                self.forwarder = Forwarder(address, o.feeds, curve=curve)
            if o.role in ("all", "feed"):
                self.feed = make_feed(o)
                if not o.bus_bind:
                    self.hub = FeedHub(self.feed, address, connect=o.bus_connect, curve=curve)
            if o.role in ("all", "proxy"):
                bus = bound(address) if o.bus_bind else self.hub.endpoint if self.hub else address
                feed = self.feed
                self.proxy = Proxy(
                    bus,
                    ProxyOptions(
                        host=o.host,
                        port=o.port,
                        api_key=o.api_key,
                        broker=feed.name if feed else o.broker,
                        brokers=tuple(brokers.names()),
                        quota=brokers.get(o.broker).limits.subscriptions if feed else None,
                        limits=o.limits,
                        slow_timeout=o.slow_timeout,
                        soft_limit=o.soft_limit,
                        reuse_port=o.workers > 1 or o.worker,
                        ssl=tls_context(o),
                        allowed_origins=tuple(o.allowed_origins) or None,
                        same_origin=not is_loopback(o.host),
                        max_connections=o.max_connections,
                        max_connections_per_address=o.max_connections_per_address,
                    ),
                    check=feed.check if feed else None,
                    depths=feed.depths if feed else None,
                    feed_status=feed.status if feed else None,
                    curve=curve,
                )
                await self.proxy.start()
            if self.feed is not None and self.hub is None:
                # the proxy binds the bus (its address known once bound): the feed connects to it
                self.hub = FeedHub(self.feed, self.bus, connect=True, curve=curve)
        except (BusError, ServeError, CurveError) as exc:
            if self.hub is not None:
                self.hub.close()
            if self.proxy is not None:
                await self.proxy.close()
            if self.forwarder is not None:
                self.forwarder.close()
            if self.private is not None:
                private_bus.remove(self.private)
            raise ServiceError(str(exc)) from None
        if self.private is not None:
            private_bus.seal(self.private)
        if curve is None:
            if self.forwarder:
                binding = [address, o.feeds]
            else:
                binding = [address] if o.bus_bind or (self.hub and not o.bus_connect) else []
            for endpoint in binding:
                if endpoint.startswith("tcp://") and not is_loopback(endpoint[6:].rpartition(":")[0].strip("[]")):
                    log.warning(
                        "the bus at %s is open to every host that reaches it, unencrypted; "
                        "on a network you do not trust, use --curve (see `oaws keys generate`)",
                        endpoint,
                    )
        if self.hub is not None:
            self._hub_task = asyncio.create_task(self.hub.run())
        elif self.forwarder is not None:
            self._hub_task = asyncio.create_task(self.forwarder.run())
        if self.proxy is not None and (o.worker or o.workers > 1):
            self.board = Board.inherited() if o.worker else Board.create()
            if self.board is not None:
                # /health, on whichever process the kernel hands it to, answers for the server
                self.proxy.gate.stats = self.health
                self._board_task = asyncio.create_task(self._publish())
        if self.proxy is not None and o.workers > 1:
            self._spawn_workers(o.workers - 1)

    def _names(self) -> dict[str, list[str]]:
        assert self.proxy is not None
        routes = self.proxy.routes
        return {
            "topics": [topic.decode(errors="replace") for topic in routes],
            "instruments": sorted({str(route.instrument) for route in routes.values()}),
        }

    def health(self) -> dict[str, Any]:
        """``/health`` of the whole server: this process's figures and the other workers'."""
        assert self.proxy is not None and self.board is not None
        return combine(self.proxy.stats(), self._names(), self.board.others(), self.board.server_pid)

    async def _publish(self) -> None:
        """Once a second, this process's figures on the board, for the others' /health."""
        assert self.proxy is not None and self.board is not None
        while True:
            self.board.publish(self.proxy.stats(), self._names())
            await asyncio.sleep(1.0)

    def _spawn_workers(self, n: int) -> None:
        """Extra proxy processes on the same port and bus: the kernel spreads new
        connections over them (SO_REUSEPORT), so the fan-out uses every core.

        Each gets this server's settings as data, as a proxy of the bus this one serves:
        TLS, origins, CURVE keys and limits included; and the board where every process
        leaves its figures, so that /health answers for the server (oaws.server.workers)."""
        assert self.proxy is not None
        settings = self.opts.replace(
            role="proxy", worker=True, workers=1, bus=self.bus, port=self.proxy.port, broker=self.describe()["broker"]
        )
        args = [sys.executable, "-m", "oaws", "serve", "--worker"]
        env = settings.environment()
        if self.board is not None:
            env[BOARD_ENV] = str(self.board.directory)
        for _ in range(n):
            self.workers.append(subprocess.Popen(args, stdin=subprocess.PIPE, env=env))
        log.info(
            "started %d more proxy processes on port %d: pids %s",
            n,
            self.proxy.port,
            ", ".join(str(w.pid) for w in self.workers),
        )

    @property
    def url(self) -> str:
        return self.proxy.url if self.proxy else ""

    @property
    def bus(self) -> str:
        """Where the bus is: the address bound (its port when ``*`` was asked), or connected to."""
        if self.forwarder is not None:
            return self.forwarder.bus
        if self.opts.bus_bind and self.proxy is not None and self.proxy.reader is not None:
            return self.proxy.reader.address
        return self.hub.endpoint if self.hub else self._bus or ""

    def describe(self) -> dict[str, Any]:
        d = {
            "url": self.url,
            "bus": self.bus,
            "broker": self.feed.name if self.feed else self.opts.broker,
            "role": self.opts.role,
        }
        if self.forwarder is not None:
            d["feeds"] = self.forwarder.feeds
        return d

    async def wait(self) -> None:
        """Until the feed fails (the proxy alone runs until stopped)."""
        if self._hub_task is not None:
            await self._hub_task
        else:
            await asyncio.Event().wait()

    async def stop(self) -> None:
        if self._board_task is not None:
            self._board_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._board_task
        if self.board is not None:
            self.board.leave()
        for w in self.workers:
            if w.stdin is not None:
                w.stdin.close()  # a worker stops when its stdin closes
            w.terminate()
        for w in self.workers:
            try:
                await asyncio.to_thread(w.wait, 3)
            except subprocess.TimeoutExpired:
                w.kill()
        self.workers.clear()
        if self.board is not None and not self.opts.worker:
            self.board.remove()  # the workers are gone: so is their board
        if self.proxy is not None:
            await self.proxy.close()
        if self._hub_task is not None:
            self._hub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._hub_task
        if self.private is not None:
            private_bus.remove(self.private)


async def serve_forever(opts: ServeSettings, on_ready: Callable[[Service], None] | None = None) -> None:
    """Run until SIGINT or SIGTERM, then close clients with 1001 and return."""
    service = Service(opts)
    await service.start()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    if opts.worker:
        # a worker lives as long as its parent: the parent holds our stdin open
        def parent_gone() -> None:
            if not os.read(0, 4096):
                loop.remove_reader(0)
                stopping.set()

        loop.add_reader(0, parent_gone)
    if on_ready is not None:
        on_ready(service)
    waiter = asyncio.create_task(service.wait())
    stopper = asyncio.create_task(stopping.wait())
    try:
        done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done and waiter.exception() is not None:
            exc = waiter.exception()
            log.error("feed stopped: %s", exc)
            raise ServiceError(f"the {opts.broker} feed stopped: {exc}")
    finally:
        stopper.cancel()
        waiter.cancel()
        await service.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
