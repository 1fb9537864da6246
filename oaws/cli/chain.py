"""``oaws chain NIFTY``: the option chain of an underlying, once as a table or JSON, or live
as JSON lines (``--watch``). The figures are ``oaws.chain``'s (docs/chain.md).

The contracts come from the broker's instrument master (the configured broker's, as
``oaws instruments`` chooses it); the prices from the server (started in the background
when none answers, as ``oaws tail`` does). The underlying is subscribed first (Quote), then,
once its price says where the money is and the broker's quota allows, the window's
contracts in Depth mode: open interest, bid and ask are Depth's fields.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from oaws.aio import run
from oaws.cli.brokers import BrokerOpt
from oaws.cli.common import (
    AUTH_TIMEOUT,
    ApiKeyOpt,
    AuthTimeoutOpt,
    AutostartOpt,
    JsonOpt,
    UrlOpt,
    UsageError,
    UserError,
    client_settings,
    command,
    resolve_auth_timeout,
)

if TYPE_CHECKING:
    from oaws.brokers.api import Broker
    from oaws.chain import Chain, ChainView
    from oaws.config import ClientSettings

app = typer.Typer()

#: --watch writes at most this many lines a second
WATCH_RATE = 2.0


@command(app)
def chain(
    underlying: Annotated[
        str, typer.Argument(help="NIFTY, BANKNIFTY, FINNIFTY, MIDCPNIFTY, SENSEX, or a stock with options.")
    ],
    expiry: Annotated[
        str | None,
        typer.Option("--expiry", "-e", help="YYYY-MM-DD (default: the nearest not expired).", show_default=False),
    ] = None,
    strikes: Annotated[
        int | None,
        typer.Option(
            "--strikes",
            "-n",
            min=0,
            max=100,
            help="Strikes each side of the ATM strike (default 10, or [chain] strikes).",
        ),
    ] = None,
    json: JsonOpt = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep it live: one JSON object a line, at most 2 a second.")
    ] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="The table with volume, bid, ask, gamma, theta and vega.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the prices once connected.")
    ] = 10.0,
    broker: BrokerOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    autostart: AutostartOpt = True,
    auth_timeout: AuthTimeoutOpt = AUTH_TIMEOUT,
) -> None:
    """The option chain of an underlying: calls, strikes, puts with OI, IV and greeks (docs/chain.md)."""
    from oaws.chain import DEFAULT_STRIKES, ChainError
    from oaws.configfile import chain_settings

    name = underlying.strip().upper()
    when = _expiry(expiry)
    rate, dividend, configured_strikes = chain_settings(name)
    width = (
        strikes if strikes is not None else configured_strikes if configured_strikes is not None else DEFAULT_STRIKES
    )
    plugin = _broker(broker)
    try:
        model = make_chain(plugin, name, strikes=width, expiry=when, rate=rate, dividend=dividend)
    except ChainError as exc:
        raise UsageError(str(exc)) from None
    raise typer.Exit(
        run(
            _chain(
                model,
                plugin,
                as_json=json,
                watch=watch,
                wide=wide,
                timeout=timeout,
                settings=client_settings(url, api_key, autostart),
                auth_timeout=resolve_auth_timeout(auth_timeout),
            )
        )
    )


def _expiry(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--expiry {text!r} is not a date; write YYYY-MM-DD, e.g. 2026-12-08") from None


def _broker(name: str | None) -> Broker:
    """Whose instrument master lists the contracts: ``--broker``, else the configured broker's."""
    from oaws.cli.brokers import _offering

    return _offering("master", name, "instrument master")


def make_chain(
    plugin: Broker,
    underlying: str,
    *,
    strikes: int,
    expiry: date | None,
    rate: float | None,
    dividend: float | None,
) -> Chain:
    """The chain of ``underlying`` from ``plugin``'s master; ChainError (one sentence) when it has none."""
    from oaws.chain import DEFAULT_DIVIDEND, DEFAULT_RATE, Chain, ChainError, spot_of
    from oaws.instruments import valid_symbol

    if not valid_symbol(underlying):
        raise ChainError(f"{underlying!r} is not an underlying; write its symbol, e.g. NIFTY or RELIANCE")
    master = plugin.master() if plugin.master is not None else None
    options = getattr(master, "options", None)
    if options is None:
        raise ChainError(f"the {plugin.name} broker's instrument master lists no options")
    contracts = options(underlying)
    if not contracts:
        raise ChainError(
            f"{plugin.title}'s instrument master lists no options on {underlying} "
            f"(an index or a stock with options, e.g. NIFTY, BANKNIFTY, RELIANCE; "
            f"or no master yet: `oaws instruments update --broker {plugin.name}`)"
        )
    model = Chain(
        underlying,
        spot_of(underlying),
        contracts,
        strikes=strikes,
        rate=DEFAULT_RATE if rate is None else rate,
        dividend=DEFAULT_DIVIDEND if dividend is None else dividend,
    )
    if expiry is not None:
        model.set_expiry(expiry)
    return model


def _err(line: str) -> None:
    sys.stderr.write(f"oaws: {line}\n")
    sys.stderr.flush()


def _quota(model: Chain, plugin: Broker, info: dict[str, Any]) -> None:
    """Refuse (UserError, exit 1) a window the proxy's per-client limit or the broker's quota
    cannot hold; ``info`` is the server's ``get_broker_info`` answer (its feed's figures)."""
    from oaws import config
    from oaws.chain import ChainError, check_quota, window_size

    needed = window_size(model.strikes)
    held = info.get("subscriptions", info.get("instruments"))
    in_use = held if isinstance(held, int) and not isinstance(held, bool) else 0
    per_client = config.get("max_instruments_per_client")
    try:
        check_quota(needed, per_client or None, 0, who="the proxy (max_instruments_per_client)")
        check_quota(needed, plugin.limits.subscriptions, in_use, who=plugin.title)
    except ChainError as exc:
        raise UserError(str(exc)) from None


async def _chain(
    model: Chain,
    plugin: Broker,
    *,
    as_json: bool,
    watch: bool,
    wide: bool,
    timeout: float,
    settings: ClientSettings,
    auth_timeout: float,
) -> int:
    from oaws.autostart import open_client
    from oaws.chain import preload
    from oaws.client import BrokerInfo, FeedStatus, ServerError, Status, Tick, refusal
    from oaws.instruments import DEPTH, QUOTE

    loaded = asyncio.get_running_loop().run_in_executor(None, preload)  # vollib's import, while we connect
    spot = model.spot
    info: dict[str, Any] | None = None
    spot_seen = False
    window: set[Any] | None = None  # the contracts subscribed (None: not yet)
    priced: set[Any] = set()
    failed: dict[Any, str] = {}
    feed: FeedStatus | None = None
    out = sys.stdout.buffer
    last_line = 0.0
    dirty = False
    loop = asyncio.get_running_loop()
    async with await open_client(settings, [spot], QUOTE, auth_timeout=auth_timeout) as client:
        try:
            async with asyncio.timeout(None) as deadline:
                async for event in client:
                    if isinstance(event, Status):
                        if event.state == "connected":
                            if deadline.when() is None and not watch:
                                deadline.reschedule(loop.time() + timeout)
                            if info is None:
                                await client.get_broker_info()
                        elif event.state == "reconnecting":
                            _err(event.detail)
                    elif isinstance(event, BrokerInfo) and info is None:
                        info = event.body
                        _quota(model, plugin, info)
                    elif isinstance(event, Tick):
                        if model.update(event.data):
                            dirty = True
                        if event.instrument == spot:
                            spot_seen = True
                        elif window is not None and event.instrument in window:
                            priced.add(event.instrument)
                    elif isinstance(event, ServerError):
                        if event.fatal:
                            _err(refusal(settings.url, event))
                            return 1
                        if event.instrument == spot:
                            _err(str(event))
                            return 1
                        if event.instrument is not None:
                            failed[event.instrument] = str(event)
                            if watch:  # no table at the end to say it under
                                _err(str(event))
                        else:
                            _err(str(event))
                    elif isinstance(event, FeedStatus):
                        feed = None if event.state == FeedStatus.LIVE else event
                        if event.state == FeedStatus.ENDED:
                            break
                        if feed is not None:
                            _err(feed.message)
                    if window is None and info is not None and spot_seen:
                        window = model.wanted() - {spot}
                        await client.subscribe(window, DEPTH)
                    elif window is not None:
                        # the window follows the money (once too: the table shows the window as it is)
                        added, removed = model.moved()
                        added.discard(spot)
                        removed.discard(spot)
                        if removed:
                            await client.unsubscribe(removed)
                        if added:
                            await client.subscribe(added, DEPTH)
                        window = (window - removed) | added
                    if window is None:
                        continue
                    if not watch:
                        if window <= priced | set(failed):
                            break
                        continue
                    now = time.monotonic()
                    if dirty and now - last_line >= 1 / WATCH_RATE:
                        await loaded
                        out.write(orjson.dumps(model.view().as_dict()) + b"\n")
                        out.flush()
                        last_line, dirty = now, False
        except TimeoutError:
            pass
    await loaded
    for message in failed.values():
        _err(message)
    if not spot_seen:
        why = f": {feed.message}" if feed is not None else ""
        _err(f"no price for {spot} within {timeout:g} s{why}")
        return 1
    if window is None:
        _err(f"the server did not answer get_broker_info within {timeout:g} s")
        return 1
    missing = window - priced - set(failed)
    if missing:
        _err(f"no price for {len(missing)} of the {len(window)} contracts within {timeout:g} s")
    view = model.view()
    if as_json:
        out.write(orjson.dumps(view.as_dict()) + b"\n")
        out.flush()
    else:
        print_chain(view, wide=wide)
    return 0


# The table ---------------------------------------------------------------------------------


def header(view: ChainView) -> str:
    """The chain's figures in one line, above the table."""
    from oaws.format import price, strike

    spot = price(view.spot_price) if view.spot_price is not None else "no price"
    parts = [
        f"{view.underlying} {spot}",
        f"expiry {view.expiry.isoformat()} ({view.days:.1f} days)",
        f"ATM {strike(view.atm) or '-'}",
        f"PCR {view.pcr:.2f}" if view.pcr is not None else "PCR -",
        f"max pain {strike(view.max_pain) or '-'}",
        f"r {view.rate * 100:.2f} %, q {view.dividend * 100:.2f} %",
    ]
    return "  ".join(parts)


def print_chain(view: ChainView, *, wide: bool = False) -> None:
    """Calls | strike | puts: the ATM strike marked, the in-the-money side shaded (on a terminal)."""
    from rich.table import Table
    from rich.text import Text

    from oaws.chain import Side
    from oaws.cli.output import print_tables
    from oaws.format import indian, price, signed, strike

    def pct(x: float | None) -> str:
        return "" if x is None else f"{x * 100:.1f}"

    def num(x: float | None, digits: int) -> str:
        return "" if x is None else f"{x:.{digits}f}"

    # (heading, cell) a side; the puts' columns mirror the calls'
    columns: list[tuple[str, Any]] = [
        ("OI", lambda s: indian(s.oi)),
        ("ΔOI", lambda s: "" if s.oi_change is None else ("+" if s.oi_change > 0 else "") + indian(s.oi_change)),
    ]
    if wide:
        columns += [("Vol", lambda s: indian(s.volume))]
    columns += [("IV %", lambda s: pct(s.iv)), ("Delta", lambda s: num(s.delta, 2))]
    if wide:
        columns += [
            ("Gamma", lambda s: num(s.gamma, 5)),
            ("Theta", lambda s: num(s.theta, 2)),
            ("Vega", lambda s: num(s.vega, 2)),
            ("Bid", lambda s: price(s.bid)),
            ("Ask", lambda s: price(s.ask)),
        ]
    columns += [("Chg", lambda s: signed(s.change)), ("LTP", lambda s: price(s.ltp))]

    table = Table(title=header(view), title_justify="left", box=None, header_style="bold", pad_edge=False)
    for heading, _ in columns:
        table.add_column(f"{heading}", justify="right", no_wrap=True)
    table.add_column("Strike", justify="center", no_wrap=True)
    for heading, _ in reversed(columns):
        table.add_column(f"{heading}", justify="right", no_wrap=True)

    def cells(side: Side | None, order: list[tuple[str, Any]]) -> list[Text]:
        if side is None:
            return [Text("") for _ in order]
        style = "on grey19" if side.itm else ""
        return [Text(cell(side), style=style) for _, cell in order]

    for row in view.rows:
        mark = Text(f"{strike(row.strike)} ATM" if row.atm else strike(row.strike), style="bold" if row.atm else "")
        table.add_row(*cells(row.call, columns), mark, *cells(row.put, list(reversed(columns))))
    table.caption = (
        "calls left, puts right; IV and greeks: Black-Scholes-Merton (vollib); theta ₹ a day, vega ₹ per 1 % IV"
    )
    table.caption_justify = "left"
    # in a pipe, as wide as the table needs (--wide has 29 columns)
    print_tables(table, width=400 if wide else None)
