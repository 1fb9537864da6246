"""The connections of one broker feed, around the runner: the part Angel, Kite, Dhan and Noren share.

``Connection`` keeps one socket up; a feed holds several (a broker caps the subscriptions
on one connection and the connections a user may open), and every feed did the same
things around them:

- ``keep`` runs one connection and turns what makes it stand down into the feed's fatal
  error (the future ``run`` waits on): the broker's own error class is expected and not
  logged again, anything else is a bug and logged with its traceback, fatal too.
- ``Pool`` is a fixed list of connections (Angel, Kite, Noren): a new key goes on the first
  connection with room under ``per_connection`` (that connection's keep-task started if it
  is not running), the debounced flush collects changes for ``batch_window`` and then
  syncs every connection, giving back an extra connection (not the first) that holds
  nothing; ``run`` keeps the first connection and those holding keys up until cancelled
  or fatal; the figures for ``status`` (reconnects, disconnects, the adapter state).
- ``Throttle``: one log line per ``every`` seconds about garbage of one kind, the frames
  counted in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from oaws.brokers.connection import Connection

K = TypeVar("K", bound=Hashable)
S = TypeVar("S")

#: seconds between two log lines about garbage of one kind
LOG_EVERY = 10.0


async def keep(
    conn: Connection[Any, Any],
    fatal: asyncio.Future[None] | None,
    expected: type[Exception] | tuple[type[Exception], ...],
    log: logging.Logger,
) -> None:
    """Run one connection; what makes it stand down stops the feed (sets ``fatal``)."""
    try:
        await conn.run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the broker's error: the feed cannot go on; anything else is a bug, also fatal
        if not isinstance(exc, expected):
            log.exception("%s failed", conn.label)
        if fatal is not None and not fatal.done():
            fatal.set_exception(exc)


def disconnect_causes(conns: Iterable[Connection[Any, Any]], earlier: Iterable[tuple[float, str]] = ()) -> list[str]:
    """The causes of the latest disconnects of ``conns`` (and ``earlier`` ones), oldest first."""
    every = [*earlier, *(d for conn in conns for d in conn.disconnects)]
    return [cause for _, cause in sorted(every)][-20:]


def failed(fatal: asyncio.Future[None] | None) -> bool:
    """Whether the feed has stood down (its fatal future holds an error)."""
    return fatal is not None and fatal.done() and not fatal.cancelled()


class Pool(Generic[K, S]):
    """A feed's fixed list of connections: room, keep-tasks, the debounced flush, figures (see the module docstring).

    The feed adds a key with ``with_room().keys.add(key)`` (``None``: every connection is
    full) or drops one with ``conn.keys.discard(key)``, then calls ``flush_soon``.
    ``before_sync`` runs at each flush before the connections are synced (Kite marks there
    the tokens to subscribe again at a new mode).
    """

    def __init__(
        self,
        conns: list[Connection[K, S]],
        *,
        name: str,
        per_connection: int,
        batch_window: float,
        expected: type[Exception] | tuple[type[Exception], ...],
        log: logging.Logger,
        before_sync: Callable[[], None] | None = None,
    ) -> None:
        self.conns = conns
        #: tasks are named ``{name}-feed-{index}``
        self.name = name
        self.per_connection = per_connection
        self.expected = expected
        self.log = log
        self.before_sync = before_sync
        #: index -> the task keeping that connection up
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.fatal: asyncio.Future[None] | None = None
        self._flush = Debounced(batch_window, self._sync)

    @property
    def batch_window(self) -> float:
        return self._flush.window

    # Figures ------------------------------------------------------------------------
    @property
    def reconnects(self) -> int:
        return sum(conn.reconnects for conn in self.conns)

    @property
    def disconnects(self) -> list[str]:
        """The causes of the latest disconnects of all connections, oldest first."""
        return disconnect_causes(self.conns)

    @property
    def last_disconnect(self) -> str | None:
        disconnects = self.disconnects
        return disconnects[-1] if disconnects else None

    @property
    def connected(self) -> int:
        """How many connections are open now."""
        return sum(conn.connected for conn in self.conns)

    @property
    def capacity(self) -> int:
        return len(self.conns) * self.per_connection

    def state(self) -> str:
        """The adapter's status: error, connected (every running connection is), else (re)connecting."""
        active = [self.conns[index] for index in self.tasks]
        if failed(self.fatal):
            return "error"
        if active and all(c.state == "connected" for c in active):
            return "connected"
        return "reconnecting" if self.reconnects else "connecting"

    # Connections --------------------------------------------------------------------
    def with_room(self) -> Connection[K, S] | None:
        """The first connection with room for one more key, its keep-task started while the feed runs."""
        for index, conn in enumerate(self.conns):
            if len(conn.keys) < self.per_connection:
                if index not in self.tasks and self.fatal is not None and not self.fatal.done():
                    self.start(index)
                return conn
        return None

    def start(self, index: int) -> None:
        conn = self.conns[index]
        task = asyncio.get_running_loop().create_task(
            keep(conn, self.fatal, self.expected, self.log), name=f"{self.name}-feed-{index}"
        )
        self.tasks[index] = task

    async def run(self, companions: Sequence[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = ()) -> None:
        """Keep the first connection and those holding keys up until cancelled, or raise what stopped the feed.

        ``companions`` (name, coroutine function) run beside them and are cancelled with them
        (Angel's order-status socket).
        """
        loop = asyncio.get_running_loop()
        self.fatal = loop.create_future()
        for index, conn in enumerate(self.conns):
            if index == 0 or conn.keys:
                self.start(index)
        others = [loop.create_task(run(), name=name) for name, run in companions]
        try:
            await self.fatal
        finally:
            tasks = [t for t in (self._flush.task, *others, *self.tasks.values()) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.tasks.clear()

    # The debounced flush ---------------------------------------------------------------
    def flush_soon(self) -> None:
        """Sync every connection ``batch_window`` from now (changes made meanwhile go with it)."""
        self._flush.soon()

    async def _sync(self) -> None:
        if self.before_sync is not None:
            self.before_sync()
        for index, conn in enumerate(self.conns):
            if index > 0 and not conn.keys and index in self.tasks:
                self.tasks.pop(index).cancel()  # an extra connection that holds nothing is given back
            else:
                await conn.sync()


class Debounced:
    """The debounced flush: ``soon`` runs ``flush`` ``window`` seconds later, once for all the calls meanwhile.

    Calls during a flush run it once more after another window. ``before_loop`` (Dhan): a
    call with no event loop running only marks the change (the connections subscribe
    everything when they open); else such a call raises as ``asyncio`` does.
    """

    def __init__(self, window: float, flush: Callable[[], Awaitable[None]], *, before_loop: bool = False) -> None:
        self.window = window
        self.flush = flush
        self.before_loop = before_loop
        #: the running flush, if any (cancelled when the feed stops)
        self.task: asyncio.Task[None] | None = None
        self._dirty = False

    def soon(self) -> None:
        self._dirty = True
        if self.before_loop:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
        else:
            loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._later())

    async def _later(self) -> None:
        """Collect changes for ``window``, then flush; again if more came meanwhile."""
        while self._dirty:
            await asyncio.sleep(self.window)
            self._dirty = False
            await self.flush()


class Throttle:
    """Rate-bounded logging: ``ready(kind)`` is true at most once per ``every`` seconds for each kind."""

    def __init__(self, every: float = LOG_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._logged: dict[str, float] = {}

    def ready(self, kind: str = "") -> bool:
        now = self.clock()
        if now - self._logged.get(kind, -self.every) >= self.every:
            self._logged[kind] = now
            return True
        return False
