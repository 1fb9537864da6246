"""``oaws watch``: the market-watch screen.

A thin app: the feed worker turns client events into model updates (no Textual message
per tick), a timer redraws what changed at a fixed frame rate, and a one-second timer
rolls the status line. The app never imports the server: it is handed a ``connect``
function that returns an ``oaws.client.Client`` (or anything with the same surface),
which is how the command line reaches (and autostarts) a server and how tests feed it
deterministic events.

What lasts goes through a store (``oaws.store``, handed in by the command line; None in
most tests): list edits, alerts, the notify settings. Every call to it runs on one thread
of its own, in order, so the screen never waits on the disk and a save is never
overtaken by a later read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual.app import App, ScreenStackError
from textual.binding import Binding, BindingType

from oaws.alerts import KINDS, TRIGGERED, Alert, AlertBook, describe_value, parse_condition
from oaws.client import AuthError, ClientError, Event, FeedStatus, ServerError, Status, Tick
from oaws.config import ConfigError
from oaws.format import price
from oaws.instruments import DEFAULT_WATCHLIST, DEPTH, QUOTE, Instrument, InstrumentError, parse
from oaws.notify import Notifier
from oaws.protocol.codes import NOT_AUTHENTICATED
from oaws.tui.add import Added, AddScreen
from oaws.tui.chart import ChartScreen, History
from oaws.tui.depth import DepthScreen
from oaws.tui.dialogs import AlertDialog, ConfirmDialog, NameDialog
from oaws.tui.grid import QuoteGrid
from oaws.tui.help import COVERED, EXTRA_KEYS, KEYS, HelpScreen
from oaws.tui.messages import ColumnsChanged, DepthRefused, DepthRequested, SortRequested
from oaws.tui.models.chart import DEFAULT_INTERVAL, ChartModel
from oaws.tui.models.completion import Completer, resolve_instrument
from oaws.tui.models.health import Health
from oaws.tui.models.ribbon import RibbonModel
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
#: the ribbon is redrawn this many times a second at most (not per tick)
RIBBON_FPS = 4.0
#: what the store's thread reads back: (the store's version, its alerts, its [notify] settings), None for unread
AlertsRead = tuple[int, list[Alert] | None, Mapping[str, Any] | None]
#: how an alert's reading is named in its notification
READING = {"ltp": "LTP", "change_percent": "change", "oi": "OI"}


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
        # the chart of the selected row; here, not on WatchScreen, and only acted on over the grid
        Binding("g", "chart", "Chart", show=False),
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
        ribbon: Iterable[Instrument] = (),
        store: Any = None,
        history: History | None = None,
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
        self.ribbon = RibbonModel(ribbon, grouping)
        self._ribbon_set = frozenset(self.ribbon.indices)
        self._ribbon_every = max(1, round(fps / RIBBON_FPS))
        self._frames = 0
        #: what the client was asked for, by instrument (``_sync`` keeps it to what is needed)
        self.held: dict[Instrument, set[int]] = {}
        #: the instrument whose depth view is open
        self.depth_of: Instrument | None = None
        #: lists, alerts, settings: ``oaws.store`` (or anything with its functions); None keeps nothing
        self.store = store
        self._disk_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oaws-store") if store else None
        self.book = AlertBook()
        self.notifier: Notifier | None = None
        self.ring = True
        #: the store's version when the alerts were last read; a count of local alert edits
        self._alerts_version: int | None = None
        self._alerts_edits = 0
        self._reading = False
        self._told: set[str] = set()
        #: the broker's bars for the chart: (instrument, interval, days) -> bars; None: live bars only
        self.history = history
        #: the chart's model of the instrument it shows, fed every tick of it (one dict lookup a tick)
        self.charted: dict[Instrument, ChartModel] = {}
        self.chart_interval = DEFAULT_INTERVAL

    def get_default_screen(self) -> WatchScreen:
        self.main = WatchScreen(self.model, self.health, self.ribbon)
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
        if self._disk_thread is not None:
            self._disk_thread.shutdown(wait=True)  # an edit made just before quitting is saved
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
        if self.store is not None:
            self._load()

    # The feed ----------------------------------------------------------------------
    async def _pump(self) -> None:
        """Client events into the model; every failure becomes a notification, never a crash."""
        asked = self.model.wanted()
        mode = self.model.mode_for(self.mode)
        try:
            client = await self.connect(asked, mode)
            self.client, self.held = client, {i: {mode} for i in asked}
            self._sync()  # what was added meanwhile, the ribbon, the alerts' instruments
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
        apply, count, check = self.model.apply, self.health.tick, self.book.check
        indices, quotes = self._ribbon_set, self.ribbon.quotes
        charted = self.charted  # changed in place, never replaced
        async for event in client:
            self.events += 1
            if type(event) is Tick:
                self.ticks += 1
                instrument, data = event.instrument, event.data
                apply(instrument, data)
                count(event.latency_ms, snapshot=event.snapshot)
                seen.add(instrument)
                if instrument in indices and event.mode >= QUOTE:
                    quotes[instrument] = data
                if charted and event.mode >= QUOTE and instrument in charted:
                    charted[instrument].add(data)  # its bars need a Quote tick's volume
                fired = check(instrument, data)  # one dict lookup for an instrument without alerts
                if fired:
                    self._fired(instrument, fired, data)
            elif isinstance(event, Status):
                self._status(event)
            elif isinstance(event, ServerError):
                self._server_error(event)
            elif isinstance(event, FeedStatus):
                self._feed_status(event)

    def _feed_status(self, event: FeedStatus) -> None:
        """The server's word on its feed (none on the bus, a replay that ended): on the status
        line until the feed is live again, and said once."""
        live = event.state == FeedStatus.LIVE
        self.health.notice = "" if live else event.message
        if not live:
            self.notify(event.message, title="The feed", severity="warning", timeout=15)
        self._refresh_status()

    def _status(self, event: Status) -> None:
        self.health.connection(event.state, event.detail, event.retry_at)
        if event.state == "connected":
            self.model.set_stale(False)
        elif event.state == "reconnecting":
            self.model.set_stale(True)
        self._refresh_status()

    def _server_error(self, event: ServerError) -> None:
        if event.fatal:
            if event.code == NOT_AUTHENTICATED:
                self._refused(f"{self.health.url} requires an API key", title="API key required")
            else:
                self._refused(f"{self.health.url} refused the API key: {event.message}")
            return
        if event.instrument is not None:
            self.model.fail(event.instrument, event.code.replace("_", " ").lower())
        self.notify(event.text, title=event.code, severity="warning", timeout=8)

    def _refused(self, message: str, title: str = "Authentication refused") -> None:
        self.health.connection("refused", message)
        self.model.set_stale(True)
        self.notify(
            f"{message}: quit with q, then pass --api-key or set OAWS_API_KEY",
            title=title,
            severity="error",
            timeout=60,
        )
        self._refresh_status()

    def _send(self, call: Callable[[FeedClient], Awaitable[None]]) -> None:
        """Run a subscription change on the client, if there is one yet (else it is in the wanted list)."""
        client = self.client
        if client is not None:
            self.run_worker(call(client), group="subscriptions", exit_on_error=False)

    def needed(self) -> dict[Instrument, set[int]]:
        """What the screen needs of the feed: the list at its mode, Depth of the depth view's
        instrument, the ribbon's indices and the armed alerts' instruments at the modes they
        need (unless the list already has them at that mode or above)."""
        mode = self.model.mode_for(self.mode)
        need = {i: {mode} for i in self.model.watchlist.instruments}
        if self.depth_of is not None and mode < DEPTH:
            need.setdefault(self.depth_of, set()).add(DEPTH)
        for instrument in self.charted:  # the chart's bars need the volume of Quote ticks
            modes = need.setdefault(instrument, set())
            if not modes or max(modes) < QUOTE:
                modes.add(QUOTE)
        extra = dict.fromkeys(self.ribbon.indices, QUOTE)
        for instrument, at in self.book.watched().items():
            extra[instrument] = max(at, extra.get(instrument, 0))
        for instrument, at in extra.items():
            modes = need.setdefault(instrument, set())
            if not modes or max(modes) < at:
                modes.add(at)
        return need

    def _sync(self) -> None:
        """Subscribe what is needed and not held, unsubscribe what is held and no longer needed."""
        if self.client is None:
            return  # the first connection asks for the list; the rest follows once it is there
        need, held = self.needed(), self.held
        start: dict[int, list[Instrument]] = {}
        stop: dict[int, list[Instrument]] = {}
        for instrument, modes in need.items():
            for mode in modes - held.get(instrument, set()):
                start.setdefault(mode, []).append(instrument)
        for instrument, modes in held.items():
            for mode in modes - need.get(instrument, set()):
                stop.setdefault(mode, []).append(instrument)
        self.held = need
        for mode, items in start.items():
            self._send(lambda c, items=items, mode=mode: c.subscribe(items, mode))
        for mode, items in stop.items():
            self._send(lambda c, items=items, mode=mode: c.unsubscribe(items, mode))

    # The store -----------------------------------------------------------------------
    def _disk(self, what: str, call: Callable[[], Any], then: Callable[[Any], None] | None = None) -> None:
        """Run ``call`` on the store's thread; ``then(result)`` back on the screen. A failure is a notification."""
        if self._disk_thread is None:
            return
        future = self._disk_thread.submit(call)

        async def wait() -> None:
            try:
                result = await asyncio.wrap_future(future)
            except Exception as exc:
                self._disk_failed(what, exc)
                if then is not None:
                    then(None)
                return
            if then is not None:
                then(result)

        self.run_worker(wait(), group="disk", exit_on_error=False)

    def _disk_failed(self, what: str, exc: Exception) -> None:
        message = str(exc) or type(exc).__name__
        if message in self._told:  # a broken file says so once, not every second
            return
        self._told.add(message)
        log.warning("%s failed: %s", what, message)
        self.notify(message, title=f"{what} failed", severity="error", timeout=15)

    def _tell_once(self, key: str, message: str) -> None:
        if key not in self._told:
            self._told.add(key)
            self.notify(message, timeout=6)

    def _save_list(self) -> None:
        """The current list as it is now, saved (unless it lives only on screen)."""
        watchlist = self.model.watchlist
        if not watchlist.saved:
            self._tell_once("unsaved", f"{watchlist.name!r} is the command line's list: its edits are not saved")
            return
        store = self.store
        if store is None:
            return
        name, items = watchlist.name, [str(i) for i in watchlist.instruments]
        self._disk("saving the list", lambda: store.save_list(name, items))

    def _load(self) -> None:
        """At start: the alerts and the notify settings (read again whenever the file changes)."""
        self._check_alerts()

    def _check_alerts(self) -> None:
        """Once a second: read the alerts and [notify] again if the file changed (``oaws alerts add``
        meanwhile, or a hand edit)."""
        if self.store is None or self._reading:
            return
        store, seen, edits = self.store, self._alerts_version, self._alerts_edits
        self._reading = True

        def read() -> AlertsRead:
            version = store.version()
            if version == seen:
                return version, None, None
            return version, store.alerts(), store.notify_settings()

        def done(result: AlertsRead | None) -> None:
            self._reading = False
            self._alerts_read(result, edits)

        self._disk("reading the alerts", read, done)

    def _alert_edit(self, what: str, call: Callable[[Any], object]) -> None:
        """An alert change saved on the store's thread, then the alerts read back."""
        store = self.store
        if store is None:
            self.notify("alerts are kept in the config file, which this watch does not use", severity="warning")
            return
        self._alerts_edits += 1
        edits = self._alerts_edits

        def work() -> AlertsRead:
            call(store)
            return store.version(), store.alerts(), None

        self._disk(what, work, lambda result: self._alerts_read(result, edits))

    def _alerts_read(self, result: AlertsRead | None, edits: int) -> None:
        # an edit made on screen after this read was asked for is not in it: the next look reads it
        if result is None or edits != self._alerts_edits:
            return
        version, alerts, settings = result
        self._alerts_version = version
        if settings is not None:
            self.notifier = Notifier.from_settings(settings)
            self.ring = bool(settings.get("bell", True))
        if alerts is not None:
            self.book.replace(alerts)
            self._alerts_changed()

    def _alerts_changed(self) -> None:
        self._show_marks()
        self._sync()
        for screen in self.screen_stack:
            if isinstance(screen, AlertDialog):
                screen.show_alerts()

    def _show_marks(self) -> None:
        """A mark on each row with a triggered alert, none on the others."""
        marks: dict[Instrument, str] = {}
        for alert in self.book.alerts():
            if alert.state == TRIGGERED:
                try:
                    marks.setdefault(parse(alert.instrument), alert.describe())
                except InstrumentError:
                    continue
        for instrument in list(self.model.rows):
            self.model.set_mark(instrument, marks.get(instrument))

    def _fired(self, instrument: Instrument, fired: list[Alert], data: Mapping[str, Any]) -> None:
        for alert in fired:
            reading = describe_value(alert, alert.triggered_value) if alert.triggered_value is not None else "met"
            text = f"{alert.describe()} — {READING.get(alert.field, alert.field)} {reading}"
            ltp = data.get("ltp")
            if alert.field != "ltp" and isinstance(ltp, (int, float)):
                text += f", LTP {price(ltp)}"
            self.notify(text, title=f"Alert {alert.id}", severity="warning", timeout=30)
            if self.ring:
                self.bell()
            if self.notifier is not None:
                self.notifier.fire(alert, data)
            if self.store is not None:
                copy = dataclasses.replace(alert)
                self._alert_edit("saving the alert", lambda store, copy=copy: store.save_alert(copy))
            self.model.set_mark(instrument, alert.describe())
        self._sync()  # an instrument outside the list with no armed alert left is no longer needed

    # Timers ------------------------------------------------------------------------
    def frame(self) -> None:
        if self.paused:
            return
        try:
            screen = self.screen
        except ScreenStackError:  # a frame that fires while the app is closing
            return
        if isinstance(screen, ChartScreen):
            # a few times a second, as the ribbon; the grid and the ribbon wait (their rows stay
            # marked as changed): under an opaque screen, a repaint of theirs repaints its cells too
            if self._frames % self._ribbon_every == 0:
                screen.redraw()
            self._frames += 1
            return
        self.grid.redraw()
        if isinstance(screen, DepthScreen):
            screen.redraw()
        ribbon = self.main.ribbon
        if ribbon is not None and self._frames % self._ribbon_every == 0:
            ribbon.update()
        self._frames += 1

    def second(self) -> None:
        self.health.roll()
        self._refresh_status()
        self._check_alerts()

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

    def matches(self, text: str, limit: int = 8) -> list[tuple[str, str]]:
        """The completions with what the add dialog shows of each (the company's or contract's name)."""
        return self.completer.matches(text, limit, self.session_candidates())

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
        def added(result: Added | None) -> None:
            if result is None:
                return
            instrument = result.instrument
            if self.model.add(instrument):
                self._sync()
                self._show_marks()
                self._save_list()
                assumed = f" (assumed {instrument.exchange})" if result.assumed else ""
                self.notify(f"added {instrument}{assumed}", timeout=3)
            else:
                self.notify(f"{instrument} is already in {self.model.watchlist.name}", timeout=3)
            self.frame()

        self._fetch_more_completions()
        self.push_screen(AddScreen(self.complete, self.resolve, self.matches), added)

    def action_remove(self) -> None:
        instrument = self.model.selected
        if instrument is not None and self.model.remove(instrument):
            self._sync()
            self._save_list()
            self.notify(f"removed {instrument}", timeout=2)
            self.frame()

    def action_reorder(self, delta: int) -> None:
        instrument = self.model.selected
        if instrument is not None and self.model.reorder(instrument, delta):
            self._save_list()
            self.grid.redraw()
            self._refresh_status()

    def _name_taken(self, name: str, keep: str | None = None) -> str | None:
        """Why ``name`` cannot name a list (taken, or not a name the store keeps), or None."""
        if name != keep and self.model.index_of(name) is not None:
            return f"a watchlist named {name!r} exists"
        check = getattr(self.store, "check_name", None)
        if check is not None:
            try:
                check(name)  # no disk: the rules of a name
            except ConfigError as exc:  # the store's StoreError
                return str(exc)
        return None

    def _switched(self, new: list[Instrument], gone: list[Instrument]) -> None:
        self._sync()
        self._show_marks()
        self.grid.redraw()
        if self.main.ribbon is not None:
            self.main.ribbon.update()
        self._refresh_status()

    def action_new_list(self) -> None:
        def named(name: str | None) -> None:
            if name is None:
                return
            try:
                self._switched(*self.model.create_list(name))
            except ValueError as exc:
                self.notify(str(exc), severity="warning")
                return
            store = self.store
            if store is not None:
                self._disk("saving the new list", lambda: store.create_list(name, []))
            self.notify(f"new watchlist {name!r}: a adds to it", timeout=4)

        self.push_screen(NameDialog("New watchlist: its name", check=self._name_taken), named)

    def action_rename_list(self) -> None:
        watchlist = self.model.watchlist
        if watchlist.saved and watchlist.name == "default":
            self.notify(
                "the default list keeps its name (it is watchlist = [...] in the config file)", severity="warning"
            )
            return

        def named(name: str | None) -> None:
            if name is None or name == watchlist.name:
                return
            try:
                old = self.model.rename_list(name)
            except ValueError as exc:
                self.notify(str(exc), severity="warning")
                return
            store = self.store
            if store is not None and watchlist.saved:
                self._disk("renaming the list", lambda: store.rename_list(old, name))
            self.notify(f"renamed {old!r} to {name!r}", timeout=3)
            self._refresh_status()

        check = lambda name: self._name_taken(name, keep=watchlist.name)  # noqa: E731
        self.push_screen(NameDialog(f"Rename {watchlist.name!r} to", watchlist.name, check), named)

    def action_delete_list(self) -> None:
        watchlist = self.model.watchlist
        if watchlist.saved and watchlist.name == "default":
            self.notify("the default list cannot be deleted", severity="warning")
            return
        if len(self.model.watchlists) < 2:
            self.notify("the only watchlist cannot be deleted", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if not yes or self.model.watchlist is not watchlist:
                return
            self._switched(*self.model.delete_list())
            store = self.store
            if store is not None and watchlist.saved:
                name = watchlist.name
                self._disk("deleting the list", lambda: store.delete_list(name))
            self.notify(f"deleted the watchlist {watchlist.name!r}", timeout=3)

        count = len(watchlist.instruments)
        self.push_screen(
            ConfirmDialog(f"Delete the watchlist {watchlist.name!r} ({count} instrument{'s' if count != 1 else ''})?"),
            answered,
        )

    # Alerts on screen --------------------------------------------------------------
    def action_alerts(self) -> None:
        instrument = self.model.selected
        if instrument is None:
            self.notify("no instrument selected: a adds one", severity="warning")
            return
        row = self.model.rows.get(instrument)
        data = dict(row.data) if row is not None else {}
        book = self.book
        dialog: AlertDialog

        def add(kind: str, value: float) -> None:
            try:
                kind, value = parse_condition(kind, value)
            except ValueError as exc:
                dialog.say(str(exc))
                return
            self._alert_edit("saving the alert", lambda store: store.add_alert(str(instrument), kind, value))
            self.notify(f"alert set: {instrument} {KINDS[kind][2]} {value:g}", timeout=3)

        def rearm(alert_id: int) -> None:
            self._alert_edit("re-arming the alert", lambda store: store.rearm(alert_id))

        def remove(alert_id: int) -> None:
            self._alert_edit("removing the alert", lambda store: store.remove_alert(alert_id))

        dialog = AlertDialog(instrument, data, lambda: book.for_instrument(instrument), add, rearm, remove)
        self.push_screen(dialog)

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
            self.notify("one watchlist only: n makes another", timeout=3)
            return
        self._switched(*self.model.switch(step))

    def on_depth_requested(self, message: DepthRequested) -> None:
        instrument = message.instrument
        self.depth_of = instrument
        self._sync()

        def closed(_: None) -> None:
            # only the Depth mode goes: the grid's mode was held all along, so the grid misses no tick
            self.depth_of = None
            self._sync()

        self.push_screen(DepthScreen(self.model, self.health, instrument), closed)

    def on_depth_refused(self, message: DepthRefused) -> None:
        # the server refused it: Depth is not asked for again while the view is open
        if self.depth_of == message.instrument:
            self.depth_of = None
            self._sync()

    def on_columns_changed(self, message: ColumnsChanged) -> None:
        # a column that needs Depth (bid/ask, OI) came or went: the list is held at the mode it needs now
        if message.mode_changed:
            self._sync()
        self.grid.redraw()

    def action_chart(self) -> None:
        """`g`: the chart of the selected instrument, fed its ticks (at Quote mode at least) while open."""
        if self.screen is not self.main:
            return  # a key of the grid's: not over the depth view, a dialog, or the chart itself
        instrument = self.model.selected
        if instrument is None:
            self.notify("no instrument selected: a adds one", severity="warning")
            return
        chart = ChartModel(instrument, self.chart_interval)
        row = self.model.rows.get(instrument)
        if row is not None and isinstance(row.data.get("ltp"), (int, float)):
            chart.add(row.data)  # its latest tick: the forming bar is there at once
        self.charted[instrument] = chart
        self._sync()

        def closed(_: None) -> None:
            self.chart_interval = chart.interval.name  # the next chart opens at the interval left
            self.charted.pop(instrument, None)
            self._sync()
            self._frames = 0  # the grid and the ribbon catch up at once
            self.frame()

        self.push_screen(ChartScreen(chart, self.model, self.health, self.history), closed)

    def action_pause(self) -> None:
        self.paused = not self.paused
        self._refresh_status()
        if not self.paused:
            self.frame()

    def action_help(self) -> None:
        named = {token for key, _ in KEYS for token in key.split()} | COVERED
        more = {}
        for binding in WatchScreen.BINDINGS:
            if isinstance(binding, Binding):
                for key in binding.key.split(","):
                    shown = binding.key_display or key
                    if shown not in named and key not in named:
                        more[shown] = EXTRA_KEYS.get(key, binding.description.lower())
        self.push_screen(HelpScreen(more))
