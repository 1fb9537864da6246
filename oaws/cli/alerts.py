"""``oaws alerts ...``: price, change and OI alerts from the command line (``oaws.alerts``).

``add``, ``list``, ``remove`` and ``rearm`` edit the alerts kept in the config file
(``oaws.store``); ``watch`` evaluates them without a screen: it subscribes the armed
alerts' instruments, prints each firing as one JSON line, saves it as triggered, and runs
the ``[notify]`` command; it picks up alerts added, removed or re-armed meanwhile
(docs/alerts.md).

The store's refusals (``oaws.store.StoreError``, a ``ConfigError``) become one sentence and
their exit code through ``friendly``, as every command's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oaws.cli.common import (
    AUTH_TIMEOUT,
    ApiKeyOpt,
    AuthTimeoutOpt,
    AutostartOpt,
    JsonOpt,
    UrlOpt,
    client_settings,
    command,
    fail,
    resolve_auth_timeout,
)

if TYPE_CHECKING:
    from oaws.alerts import Alert
    from oaws.config import ClientSettings

app = typer.Typer(help="Price, change and OI alerts: add, list, remove, and watch them fire.", no_args_is_help=True)

#: seconds between looks at the config file for alerts added, removed or re-armed
POLL = 1.0
#: seconds ``watch`` waits at its end for notify commands still running
DRAIN = 10.0


def _say(line: str) -> None:
    sys.stderr.write(f"oaws: {line}\n")
    sys.stderr.flush()


def _find(alert_id: int) -> Alert:
    """The alert of that id, or one sentence and exit 1."""
    from oaws import store

    for alert in store.alerts():
        if alert.id == alert_id:
            return alert
    fail(f"no alert {alert_id}; `oaws alerts list` shows them", 1)
    raise AssertionError("unreachable")


# add --------------------------------------------------------------------------------------
def _condition(help: str, metavar: str) -> Any:
    return typer.Option(help=help, metavar=metavar, show_default=False)


@command(app, "add")
def add(
    instrument: Annotated[str, typer.Argument(help="SYMBOL:EXCHANGE, e.g. RELIANCE:NSE.", show_default=False)],
    above: Annotated[str | None, _condition("Fire when the price is at or above X.", "X")] = None,
    below: Annotated[str | None, _condition("Fire when the price is at or below X.", "X")] = None,
    change_above: Annotated[str | None, _condition("Fire when the day's change is at or above P %.", "P")] = None,
    change_below: Annotated[
        str | None, _condition("Fire when the day's change is at or below P % (e.g. -2 for a 2 % fall).", "P")
    ] = None,
    oi_above: Annotated[str | None, _condition("Fire when open interest is at or above N.", "N")] = None,
    oi_below: Annotated[str | None, _condition("Fire when open interest is at or below N.", "N")] = None,
) -> None:
    """Add an alert: one condition on one instrument; it fires once, then is triggered until re-armed."""
    from oaws import store
    from oaws.alerts import parse_condition
    from oaws.instruments import InstrumentError, parse

    # each option is named like its kind (oaws.alerts.KINDS): --change-below is change_below
    written = {
        "above": above,
        "below": below,
        "change_above": change_above,
        "change_below": change_below,
        "oi_above": oi_above,
        "oi_below": oi_below,
    }
    given = {kind: value for kind, value in written.items() if value is not None}
    if len(given) != 1:
        said = " and ".join("--" + kind.replace("_", "-") for kind in given)
        options = ", ".join("--" + kind.replace("_", "-") for kind in written)
        fail(f"give one condition, not {said}" if given else f"give a condition: one of {options}", 2)
    ((kind, raw),) = given.items()
    try:
        where = parse(instrument)
    except InstrumentError as exc:
        fail(str(exc), 2)
    try:
        kind, value = parse_condition(kind, raw)
    except ValueError as exc:
        fail(f"--{exc}", 2)
    alert = store.add_alert(str(where), kind, value)
    typer.echo(f"oaws: alert {alert.id}: {alert.describe()}")


# list, remove, rearm ----------------------------------------------------------------------
def _rows(alerts: list[Alert]) -> list[tuple[str, ...]]:
    from oaws.alerts import describe_value

    rows = []
    for a in alerts:
        condition = a.describe()[len(a.instrument) + 1 :]
        fired = ""
        if a.triggered_at or a.triggered_value is not None:
            at = describe_value(a, a.triggered_value) if isinstance(a.triggered_value, (int, float)) else "?"
            fired = f"{at} at {_short(a.triggered_at)}"
        rows.append((str(a.id), a.instrument, condition, a.state, _short(a.created), fired))
    return rows


def _short(when: str | None) -> str:
    """``2026-12-02T09:15:32+05:30`` as ``2026-12-02 09:15:32``."""
    if not when:
        return ""
    return when[:19].replace("T", " ")


@command(app, "list")
def list_(json: JsonOpt = False) -> None:
    """List the alerts: id, instrument, condition, state, when made, and when and at what it fired."""
    from oaws import store

    alerts = store.alerts()
    if json:
        import orjson

        out = sys.stdout.buffer
        for alert in alerts:
            out.write(orjson.dumps(alert.to_dict()) + b"\n")
        out.flush()
        return
    if not alerts:
        _say("no alerts; add one with `oaws alerts add RELIANCE:NSE --above 1500`")
        return
    header = ("ID", "Instrument", "Condition", "State", "Created", "Triggered")
    rows = [header, *_rows(alerts)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [
            cell.rjust(w) if i == 0 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        typer.echo("  ".join(cells).rstrip())


AlertId = Annotated[int, typer.Argument(help="The alert's id (`oaws alerts list`).", show_default=False)]


@command(app, "remove")
def remove(alert_id: AlertId) -> None:
    """Remove an alert."""
    from oaws import store

    _find(alert_id)
    alert = store.remove_alert(alert_id)
    typer.echo(f"oaws: removed alert {alert.id}: {alert.describe()}")


@command(app, "rearm")
def rearm(alert_id: AlertId) -> None:
    """Re-arm a triggered alert: it fires again on the next tick that meets it."""
    from oaws import store
    from oaws.alerts import ARMED

    if _find(alert_id).state == ARMED:
        typer.echo(f"oaws: alert {alert_id} is armed already")
        return
    alert = store.rearm(alert_id)
    typer.echo(f"oaws: re-armed alert {alert.id}: {alert.describe()}")


# watch ------------------------------------------------------------------------------------
@command(app, "watch")
def watch(
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Exit after N firings.")] = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    autostart: AutostartOpt = True,
    auth_timeout: AuthTimeoutOpt = AUTH_TIMEOUT,
) -> None:
    """Evaluate the armed alerts without a screen: each firing is one JSON line on stdout, until Ctrl-C or --count."""
    from oaws.aio import run

    settings = client_settings(url, api_key, autostart)
    timeout = resolve_auth_timeout(auth_timeout)
    try:
        code = run(_watch(settings, count=count, auth_timeout=timeout))
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


class _Watch:
    """The alerts being watched, the subscriptions they need, and what firing does.

    An alert armed while the watch runs (added, or re-armed) is checked at once against the
    last tick of its instrument, when one came: it fires on the first tick that meets it
    after it is armed, and the last one received counts (as a subscription's first does).
    """

    def __init__(self, client: Any, out: Any, count: int | None) -> None:
        from oaws import store
        from oaws.alerts import AlertBook
        from oaws.notify import Notifier

        self.client = client
        self.out = out
        self.count = count
        self.fired = 0
        #: set when ``count`` firings have been printed
        self.done = asyncio.Event()
        self.book = AlertBook()
        self.notifier = Notifier()
        #: instrument -> the mode subscribed for it
        self.subscribed: dict[Any, int] = {}
        #: the last tick of each instrument received (one dict store a tick)
        self.last: dict[Any, dict[str, Any]] = {}
        self.version: int | None = None
        self.idle_said = False
        self._store = store
        self._notifier_class = Notifier

    def tick(self, instrument: Any, data: dict[str, Any]) -> None:
        self.last[instrument] = data
        for alert in self.book.check(instrument, data):
            self.fire(alert, data)

    async def reload(self) -> None:
        """Read the alerts and [notify] again when the config file changed; subscribe what they need."""
        from oaws.alerts import ARMED
        from oaws.store import StoreError

        try:
            version = self._store.version()
            if version == self.version:
                return
            alerts = self._store.alerts()
            settings = self._store.notify_settings()
        except StoreError as exc:
            if self.version is None:
                raise
            _say(f"{exc}; keeping the alerts read before")
            self.version = self._store.version()
            return
        self.version = version
        armed_before = {a.id for a in self.book.alerts() if a.state == ARMED}
        self.book.replace(alerts)
        # the same notifier, told the new settings: it keeps reaping what it started
        fresh = self._notifier_class.from_settings(settings)
        self.notifier.command, self.notifier.desktop = fresh.command, fresh.desktop
        wanted = self.book.watched()
        await self._resubscribe(wanted)
        for instrument in list(self.last):
            if instrument not in wanted:
                del self.last[instrument]  # unsubscribed: its last tick will not be the last one
            elif any(a.state == ARMED and a.id not in armed_before for a in self.book.for_instrument(instrument)):
                self.tick(instrument, self.last[instrument])

    async def _resubscribe(self, wanted: dict[Any, int]) -> None:
        gone = [i for i, mode in self.subscribed.items() if wanted.get(i) != mode]
        for instrument in gone:
            await self.client.unsubscribe([instrument], self.subscribed.pop(instrument))
        by_mode: dict[int, list[Any]] = {}
        for instrument, mode in wanted.items():
            if self.subscribed.get(instrument) != mode:
                by_mode.setdefault(mode, []).append(instrument)
        for mode, instruments in sorted(by_mode.items()):
            await self.client.subscribe(instruments, mode)
            self.subscribed.update(dict.fromkeys(instruments, mode))
        if not wanted:
            if not self.idle_said:
                _say("no armed alerts; waiting for one (`oaws alerts add`, `oaws alerts rearm`)")
                self.idle_said = True
        else:
            self.idle_said = False

    def fire(self, alert: Alert, data: dict[str, Any]) -> None:
        """One firing: its JSON line, its triggered state saved, the notifier run."""
        import orjson

        from oaws.notify import alert_text
        from oaws.store import StoreError

        if self.done.is_set():
            return  # --count reached: the rest stay armed for the next watch
        line = {**alert.to_dict(), "ltp": data.get("ltp"), "text": alert_text(alert, data)}
        self.out.write(orjson.dumps(line) + b"\n")
        self.out.flush()
        try:
            self._store.save_alert(alert)
        except StoreError as exc:
            _say(f"alert {alert.id} fired but could not be saved as triggered: {exc}")
        self.notifier.fire(alert, data)
        self.fired += 1
        if self.count is not None and self.fired >= self.count:
            self.done.set()


async def _watch(settings: ClientSettings, *, count: int | None, auth_timeout: float = AUTH_TIMEOUT) -> int:
    from oaws.autostart import open_client
    from oaws.cli.stream import _waiting
    from oaws.client import ServerError, Status, Tick, refusal
    from oaws.instruments import QUOTE

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)  # systemctl stop: a clean exit 0
    client = await open_client(settings, [], QUOTE, auth_timeout=auth_timeout)
    state = _Watch(client, sys.stdout.buffer, count)

    async def poll() -> int:
        while True:
            await asyncio.sleep(POLL)
            await state.reload()

    async def consume() -> int:
        async for event in client:
            if isinstance(event, Tick):
                state.tick(event.instrument, event.data)
            elif isinstance(event, ServerError):
                if event.fatal:
                    _say(refusal(settings.url, event))
                    return 1
                _say(str(event))
            elif isinstance(event, Status):
                _waiting(event)
        return 0

    async def finished() -> int:
        await state.done.wait()
        return 0

    async def stopped() -> int:
        await stop.wait()
        return 0

    try:
        async with client:
            await state.reload()
            tasks = [asyncio.ensure_future(job()) for job in (consume, poll, finished, stopped)]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return next(iter(done)).result()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        # a notify command still running (a phone message on its way) is given time to finish
        await asyncio.to_thread(state.notifier.wait, DRAIN)
