"""Fixtures of the watch tests: a real in-process server, and a scripted client for snapshots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import timedelta, timezone
from typing import Any

import orjson
import pytest

from oaws.brokers.sim.feed import SimFeed, payload
from oaws.client import Client, Event, Tick
from oaws.instruments import DEPTH, Instrument, parse_many
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from oaws.tui.app import WatchApp
from oaws.tui.models.watch import Watchlist

IST = timezone(timedelta(hours=5, minutes=30))
#: 2025-11-25 10:15:00 IST, the fixed clock of the snapshots
FIXED_NS = 1_764_045_900_000_000_000


async def start_service(port: int = 0, **options: Any) -> Service:
    feed = {"seed": 3, "rate": options.pop("rate", 20.0)}
    service = Service(ServeSettings(port=port, bus="tcp://127.0.0.1:*", feed=feed, **options))
    await service.start()
    return service


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    s = await start_service()
    yield s
    await s.stop()


def live_app(url: str, lists: list[Watchlist] | list[str], *, api_key: str | None = None, **kw: Any) -> WatchApp:
    """The watch against a real server, reconnecting quickly."""
    if lists and isinstance(lists[0], str):
        lists = [Watchlist("test", parse_many(lists))]  # type: ignore[arg-type]

    async def connect(instruments: list[Instrument], mode: int) -> Client:
        return Client(
            url,
            api_key=api_key,
            instruments=instruments,
            mode=mode,
            retry_first=True,
            backoff=(0.05, 0.2),
            open_timeout=2,
        )

    return WatchApp(connect, lists, url=url, **kw)  # type: ignore[arg-type]


async def until(pilot: Any, condition: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)


def line(app: WatchApp, y: int) -> str:
    """Row ``y`` of the grid as the screen shows it, brought up to date with the model first."""
    app.grid.redraw()
    return app.grid.render_line(y).text


class ScriptedClient:
    """A stand-in for ``oaws.client.Client`` that yields given events, then waits: deterministic screens."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.script = list(events)
        self.requests: list[tuple[str, Any]] = []
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[Event]:
        for event in self.script:
            yield event
        await asyncio.Event().wait()

    async def subscribe(self, instruments: Iterable[Instrument], mode: int = 2) -> None:
        self.requests.append(("subscribe", (list(instruments), mode)))

    async def unsubscribe(self, instruments: Iterable[Instrument], mode: int | None = None) -> None:
        self.requests.append(("unsubscribe", (list(instruments), mode)))

    async def close(self) -> None:
        self.closed = True


def sim_ticks(instruments: list[Instrument], rounds: int, *, seed: int = 1, mode: int = DEPTH) -> list[Tick]:
    """``rounds`` ticks of each instrument from a seeded simulated market, on a fixed clock."""
    feed = SimFeed(seed=seed)
    ticks = []
    for n in range(rounds):
        for instrument in instruments:
            now = FIXED_NS + n * 250_000_000
            data = orjson.loads(payload(feed.tick(instrument, now_ns=now), mode))
            message = {
                "type": "market_data",
                "symbol": instrument.symbol,
                "exchange": instrument.exchange,
                "mode": mode,
                "data": data,
            }
            ticks.append(Tick(instrument, mode, data, message, now + 1_500_000))
    return ticks


def scripted_app(events: list[Event], lists: list[Watchlist], **kw: Any) -> tuple[WatchApp, ScriptedClient]:
    client = ScriptedClient(events)

    async def connect(instruments: list[Instrument], mode: int) -> ScriptedClient:
        return client

    app = WatchApp(
        connect,
        lists,
        url="ws://127.0.0.1:8765",
        clock=lambda: FIXED_NS / 1e9,
        monotonic=lambda: 1000.0,
        tz=IST,
        roll_every=3600.0,
        **kw,
    )  # type: ignore[arg-type]
    return app, client
