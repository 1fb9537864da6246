"""``oaws watch``: the market-watch screen.

A thin app: the feed worker turns client events into model updates (no Textual message
per tick), a timer redraws what changed at a fixed frame rate, and a one-second timer
rolls the status line. The app never imports the server: it is handed a ``connect``
function that returns an ``oaws.client.Client`` (or anything with the same surface),
which is how the command line reaches (and autostarts) a server and how tests feed it
deterministic events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import tzinfo
from pathlib import Path
from typing import ClassVar, Protocol

from textual.app import App
from textual.binding import Binding, BindingType

from oaws.client import AuthError, ClientError, Event, ServerError, Status, Tick
from oaws.instruments import DEFAULT_WATCHLIST, DEPTH, Instrument
from oaws.tui.add import AddScreen
from oaws.tui.depth import DepthScreen
from oaws.tui.grid import QuoteGrid
from oaws.tui.help import HelpScreen
from oaws.tui.messages import DepthRequested, SortRequested
from oaws.tui.models.completion import Completer, resolve_instrument
from oaws.tui.models.health import Health
from oaws.tui.models.watch import Watchlist, WatchModel
from oaws.tui.screen import WatchScreen
from oaws.tui.status import StatusBar

log = logging.getLogger(__name__)


class FeedClient(Protocol):
    """What the app needs of ``oaws.client.Client``."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def subscribe(self, instruments: Iterable[Instrument], mode: int = 2) -> None: ...

    async def unsubscribe(self, instruments: Iterable[Instrument], mode: int | None = None) -> None: ...

    async def close(self) -> None: ...


#: (instruments, mode) -> a client that will subscribe them once connected
Connect = Callable[[list[Instrument], int], Awaitable[FeedClient]]


class WatchApp(App[int]):
    """The live grid of one watchlist at a time; see ``HelpScreen`` for the keys."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "oaws watch"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        # a market watch is left with Ctrl-C like any terminal ticker (Textual would only hint at ctrl+q)
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Keys"),
    ]

    def __init__(
        self,
        connect: Connect,
        watchlists: list[Watchlist],
        *,
        current: int = 0,
        mode: int = 2,
        url: str = "",
        fps: float = 10.0,
        grouping: str = "indian",
        stale_after: float = 10.0,
        completions: Iterable[str] = (),
        more_completions: Callable[[], Iterable[str]] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        tz: tzinfo | None = None,
        roll_every: float = 1.0,
    ) -> None:
        super().__init__()
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError("the frame rate must be a positive number of frames per second")
        self.connect = connect
        self.mode = mode
        self.fps = fps
        self.roll_every = roll_every
        self.model = WatchModel(watchlists, current=current, grouping=grouping, clock=monotonic, tz=tz, wall=clock)
        self.health = Health(url, stale_after=stale_after, clock=clock)
        self.completer = Completer([*DEFAULT_WATCHLIST, *completions])
        #: more candidates, slow to get (an instrument master): fetched in a thread when `a` is first pressed
        self.more_completions = more_completions
        self.seen: set[Instrument] = set()
        self.client: FeedClient | None = None
        self.paused = False
        #: events taken from the client, for tests and the benchmark
        self.events = 0
        self.ticks = 0

    def get_default_screen(self) -> WatchScreen:
        self.main = WatchScreen(self.model, self.health)
        return self.main

    @property
    def grid(self) -> QuoteGrid:
        return self.main.grid

    #: the signals that end the app as `q` does, restoring the terminal (their default
    #: action would kill it on the alternate screen, mouse reporting on)
    STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def _catch_stop_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread's loop
        loop = asyncio.get_running_loop()
        for sig in self.STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.exit)

    def on_unmount(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in self.STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    def on_mount(self) -> None:
        self._catch_stop_signals()
        self.set_interval(1 / self.fps, self.frame, name="frame")
        self.set_interval(self.roll_every, self.second, name="second")
        self.run_worker(self._pump(), name="feed", exclusive=True, exit_on_error=False)

    # The feed ----------------------------------------------------------------------
    async def _pump(self) -> None:
        """Client events into the model; every failure becomes a notification, never a crash."""
        asked = self.model.wanted()
        try:
            client = self.client = await self.connect(asked, self.mode)
            late = [i for i in self.model.wanted() if i not in set(asked)]
            if late:
                await client.subscribe(late, self.mode)
            try:
                await self._consume(client)
            finally:
                await client.close()
        except AuthError as exc:
            self._refused(str(exc))
        except ClientError as exc:
            self.health.connection("refused", str(exc))
            self.model.set_stale(True)
            self.notify(str(exc), title="Cannot connect", severity="error", timeout=30)
            self._refresh_status()
        except Exception as exc:  # a bug must not leave the terminal in a broken state
            log.exception("feed worker failed")
            self.health.connection("refused", f"feed stopped: {exc}")
            self.model.set_stale(True)
            self.notify(f"The feed stopped: {exc}", title="Error", severity="error", timeout=30)
            self._refresh_status()

    async def _consume(self, client: FeedClient) -> None:
        seen = self.seen
        apply, count = self.model.apply, self.health.tick
        async for event in client:
            self.events += 1
            if type(event) is Tick:
                self.ticks += 1
                instrument = event.instrument
                apply(instrument, event.data)
                count(event.latency_ms, snapshot=event.snapshot)
                seen.add(instrument)
            elif isinstance(event, Status):
                self._status(event)
            elif isinstance(event, ServerError):
                self._server_error(event)

    def _status(self, event: Status) -> None:
        self.health.connection(event.state, event.detail, event.retry_at)
        if event.state == "connected":
            self.model.set_stale(False)
        elif event.state == "reconnecting":
            self.model.set_stale(True)
        self._refresh_status()

    def _server_error(self, event: ServerError) -> None:
        if event.fatal:
            self._refused(f"{self.health.url} refused the API key: {event.message}")
            return
        if event.instrument is not None:
            self.model.fail(event.instrument, event.code.replace("_", " ").lower())
        self.notify(event.text, title=event.code, severity="warning", timeout=8)

    def _refused(self, message: str) -> None:
        self.health.connection("refused", message)
        self.model.set_stale(True)
        self.notify(
            f"{message}. Quit with q, then pass --api-key or set OAWS_API_KEY.",
            title="Authentication refused",
            severity="error",
            timeout=60,
        )
        self._refresh_status()

    def _send(self, call: Callable[[FeedClient], Awaitable[None]]) -> None:
        """Run a subscription change on the client, if there is one yet (else it is in the wanted list)."""
        client = self.client
        if client is not None:
            self.run_worker(call(client), group="subscriptions", exit_on_error=False)

    # Timers ------------------------------------------------------------------------
    def frame(self) -> None:
        if self.paused:
            return
        self.grid.redraw()
        screen = self.screen
        if isinstance(screen, DepthScreen):
            screen.redraw()

    def second(self) -> None:
        self.health.roll()
        self._refresh_status()

    def _refresh_status(self) -> None:
        for screen in self.screen_stack:
            for bar in screen.query(StatusBar):
                bar.paused = self.paused
                bar.refresh()

    # Actions -----------------------------------------------------------------------
    def session_candidates(self) -> list[str]:
        """The instruments of the watchlists and those the feed sent: few, and they change."""
        lists = [str(i) for w in self.model.watchlists for i in w.instruments]
        return list(dict.fromkeys([*lists, *(str(i) for i in self.seen)]))

    def complete(self, text: str, limit: int = 8) -> list[str]:
        return self.completer.complete(text, limit, self.session_candidates())

    def resolve(self, text: str) -> Instrument:
        return resolve_instrument(text, self.completer, self.session_candidates())

    def _fetch_more_completions(self) -> None:
        """Once, in a thread: an instrument master takes a while to read and must not stall the screen."""
        fetch, self.more_completions = self.more_completions, None
        if fetch is None:
            return
        base = self.completer

        async def work() -> None:
            try:
                completer = await asyncio.to_thread(lambda: base.with_more(fetch()))
            except Exception:  # completion is a convenience: without the extra symbols the dialog still works
                log.debug("no extra completions", exc_info=True)
                return
            if len(completer) > len(base):
                self._more_completions_arrived(completer)

        # an asyncio worker awaiting the thread, so that quitting meanwhile simply drops the result
        self.run_worker(work(), name="completions", exit_on_error=False)

    def _more_completions_arrived(self, completer: Completer) -> None:
        self.completer = completer
        for screen in self.screen_stack:
            if isinstance(screen, AddScreen):
                screen.refresh_matches()

    def action_add(self) -> None:
        def added(instrument: Instrument | None) -> None:
            if instrument is None:
                return
            if self.model.add(instrument):
                self._send(lambda c: c.subscribe([instrument], self.mode))
                self.notify(f"added {instrument}", timeout=2)
            self.frame()

        self._fetch_more_completions()
        self.push_screen(AddScreen(self.complete, self.resolve), added)

    def action_remove(self) -> None:
        instrument = self.model.selected
        if instrument is not None and self.model.remove(instrument):
            self._send(lambda c: c.unsubscribe([instrument]))
            self.notify(f"removed {instrument}", timeout=2)
            self.frame()

    def action_sort(self) -> None:
        self.model.cycle_sort()
        self._sorted()

    def on_sort_requested(self, message: SortRequested) -> None:
        self.model.sort_by(message.key)
        self._sorted()

    def _sorted(self) -> None:
        # the header's arrow and the status line say how it is sorted: no toast needed
        self.grid.redraw()
        self._refresh_status()

    def action_watchlist(self, step: int) -> None:
        if len(self.model.watchlists) < 2:
            self.notify("one watchlist only: add [watchlists] to the config file", timeout=3)
            return
        new, gone = self.model.switch(step)
        if gone:
            self._send(lambda c: c.unsubscribe(gone))
        if new:
            self._send(lambda c: c.subscribe(new, self.mode))
        self.grid.redraw()
        self._refresh_status()

    def on_depth_requested(self, message: DepthRequested) -> None:
        instrument = message.instrument
        if self.mode < DEPTH:
            self._send(lambda c: c.subscribe([instrument], DEPTH))

        def closed(_: None) -> None:
            # only the Depth mode goes: the grid's mode was held all along, so the grid misses no tick
            if self.mode < DEPTH:
                self._send(lambda c: c.unsubscribe([instrument], mode=DEPTH))

        self.push_screen(DepthScreen(self.model, self.health, instrument), closed)

    def action_pause(self) -> None:
        self.paused = not self.paused
        self._refresh_status()
        if not self.paused:
            self.frame()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
