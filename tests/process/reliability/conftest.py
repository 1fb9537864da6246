"""The whole broker-side chain under faults: Angel simulator -> AngelFeed -> bus -> proxy -> WebSocket clients.

Pieces for the tests of ``test_broker_faults.py``:

- ``Upstream``: the Angel simulator, restartable on the same ports; every instance it ran is
  kept, so that each tick a client received can be traced to the packet that instance encoded.
- ``RawClient`` (a bare ``websockets`` connection that subscribes once and then only reads)
  and ``LibClient`` (``oaws.client.Client``): what the clients got, and whether they had to do
  anything (reconnect, subscribe again) to keep getting it.
- ``serve_in_process``: ``Service`` (bus + proxy, as ``oaws serve`` runs them) around an
  ``AngelFeed`` built here with test-sized timeouts, because ``oaws serve --broker angel`` has
  no option for backoff or silence windows; the subprocess tests use the real command.
- ``audit``: every tick checked against the simulator's packet, and what was lost.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from oaws import background
from oaws.brokers.angel.feed import AngelFeed
from oaws.brokers.angel.master import Master, rows_from_raw
from oaws.brokers.angel.settings import AngelSettings
from oaws.brokers.angel.simulator import LOGIN_PATH, AngelSimulator, SimConnection, fixture_master_bytes
from oaws.brokers.angel.ticks import ANGEL_MODE
from oaws.client import Client, ServerError, Status, Tick
from oaws.instruments import Instrument, make
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from tests.brokers.angel.conftest import (
    isolated,  # noqa: F401 - the same private cwd, state and environment
    settings_for,
)
from tests.helpers import eventually

OAWS = [sys.executable, "-m", "oaws"]

Sub = tuple[Instrument, int]  # (instrument, client mode)


@pytest.fixture
def master() -> Master:
    return Master(rows_from_raw(fixture_master_bytes()), "fixture")


# The upstream ---------------------------------------------------------------------------
class _Connections(list[SimConnection]):
    """The simulator's list of feed connections; marks each new one silent while ``owner.silence_new``."""

    def __init__(self, owner: TrackingSimulator) -> None:
        super().__init__()
        self.owner = owner

    def append(self, conn: SimConnection) -> None:
        conn.silent = self.owner.silence_new
        super().append(conn)


class TrackingSimulator(AngelSimulator):
    """The simulator, remembering every token it issued (to look for them in logs) and able to
    start every new connection silent (a market that sends only the answer to a subscription)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.issued: set[str] = set()
        self.silence_new = False
        self.connections = _Connections(self)

    def _issue(self) -> dict[str, str]:
        tokens = super()._issue()
        self.issued.update(tokens.values())
        return tokens

    @property
    def login_attempts(self) -> int:
        return sum(r == f"POST {LOGIN_PATH}" for r in self.rest_requests)


@dataclass(eq=False)
class Life:
    sim: TrackingSimulator
    started: float
    stopped: float | None = None


class Upstream:
    """Angel, as one simulator at a time on fixed ports: ``restart`` stops it and starts a fresh one
    (new signing key, so every token issued before is refused, as after a real outage)."""

    def __init__(self, **options: Any) -> None:
        self.options = {"tick_interval": 0.1, **options}
        self.lives: list[Life] = []
        self.rest_port = 0
        self.feed_port = 0

    @property
    def sim(self) -> TrackingSimulator:
        return self.lives[-1].sim

    async def start(self) -> TrackingSimulator:
        life = Life(
            TrackingSimulator(
                rest_port=self.rest_port, feed_port=self.feed_port, seed=len(self.lives) + 1, **self.options
            ),
            time.monotonic(),
        )
        await life.sim.start()
        self.rest_port, self.feed_port = life.sim.rest_port, life.sim.feed_port
        self.lives.append(life)
        return life.sim

    async def stop(self) -> None:
        life = self.lives[-1]
        if life.stopped is None:
            await life.sim.stop()
            life.stopped = time.monotonic()

    async def restart(self, downtime: float) -> TrackingSimulator:
        await self.stop()
        await asyncio.sleep(downtime)
        return await self.start()

    def life_at(self, t: float) -> Life:
        """The instance that was running at monotonic time ``t`` (the last one started by then)."""
        return [life for life in self.lives if life.started <= t][-1]

    def total(self, name: str) -> int:
        return sum(getattr(life.sim, name) for life in self.lives)

    def settings(self) -> AngelSettings:
        return settings_for(self.sim)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    await up.start()
    yield up
    await up.stop()


def angel_key(master: Master, sub: Sub) -> tuple[int, int, str]:
    """The simulator's (Angel mode, exchange type, token) of a client subscription."""
    resolved = master.resolve(sub[0])
    return ANGEL_MODE[sub[1]], resolved.exchange_type, resolved.token


# Clients --------------------------------------------------------------------------------
class Recorder:
    """What a client received: every tick with its local receive time (monotonic)."""

    def __init__(self, name: str, subs: list[Sub]) -> None:
        self.name = name
        self.subs = subs
        self.ticks: dict[Sub, list[tuple[float, dict[str, Any]]]] = {s: [] for s in subs}
        self.unexpected: list[Any] = []

    def _tick(self, t: float, instrument: Instrument, mode: int, data: dict[str, Any]) -> None:
        bucket = self.ticks.get((instrument, mode))
        if bucket is None:
            self.unexpected.append((instrument, mode, data))
        else:
            bucket.append((t, data))

    def fresh_since(self, mark: float) -> bool:
        return all(ticks and ticks[-1][0] > mark for ticks in self.ticks.values())

    def stale(self, mark: float) -> list[str]:
        return [f"{i}/{m}" for (i, m), ticks in self.ticks.items() if not (ticks and ticks[-1][0] > mark)]

    async def fresh_after(self, mark: float, timeout: float = 10.0) -> None:
        """Wait until every subscription has a tick received after ``mark``."""
        await eventually(lambda: self.fresh_since(mark), timeout, what=f"fresh ticks for {self.name}")

    def count(self) -> int:
        return sum(len(t) for t in self.ticks.values())


class RawClient(Recorder):
    """A bare WebSocket client: authenticates, subscribes once per mode, and from then on only reads.

    ``frames_sent`` counts everything it ever sent, so a test can show that it never subscribed
    again; ``closed`` is set if its connection ends.
    """

    def __init__(self, name: str, url: str, subs: list[Sub], api_key: str | None = None) -> None:
        super().__init__(name, subs)
        self.url = url
        self.api_key = api_key
        self.ws: ClientConnection | None = None
        self.frames_sent = 0
        self.closed: str | None = None
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def _send(self, body: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(orjson.dumps(body).decode())
        self.frames_sent += 1

    async def _reply(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(10):
            while True:
                reply = await self.replies.get()
                if reply.get("type") == kind:
                    return reply

    async def open(self) -> RawClient:
        self.ws = await connect(self.url, open_timeout=10, compression=None)
        self._reader = asyncio.create_task(self._read())
        if self.api_key is not None:
            await self._send({"action": "authenticate", "api_key": self.api_key})
            assert (await self._reply("auth")).get("status") == "success"
        by_mode: dict[int, list[Instrument]] = {}
        for instrument, mode in self.subs:
            by_mode.setdefault(mode, []).append(instrument)
        for mode, instruments in by_mode.items():
            symbols = [{"symbol": i.symbol, "exchange": i.exchange} for i in instruments]
            await self._send({"action": "subscribe", "symbols": symbols, "mode": mode})
            reply = await self._reply("subscribe")
            assert all(s["status"] == "success" for s in reply["subscriptions"]), reply
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                now = time.monotonic()
                body = orjson.loads(frame)
                for message in body if isinstance(body, list) else [body]:
                    if message.get("type") == "market_data":
                        self._tick(now, make(message["symbol"], message["exchange"]), message["mode"], message["data"])
                    else:
                        self.replies.put_nowait(message)
            self.closed = f"closed by the server ({self.ws.close_code} {self.ws.close_reason})"
        except ConnectionClosed as exc:
            self.closed = f"dropped ({exc})"

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class LibClient(Recorder):
    """``oaws.client.Client`` (batched frames, its own reconnection) reading in a task; keeps its Status events."""

    def __init__(self, name: str, url: str, subs: list[Sub], api_key: str | None = None) -> None:
        super().__init__(name, subs)
        modes = {m for _, m in subs}
        assert len(modes) == 1, "one mode per LibClient"
        self.client = Client(url, api_key=api_key, instruments=[i for i, _ in subs], mode=modes.pop())
        self.statuses: list[str] = []
        self.errors: list[ServerError] = []
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> LibClient:
        self._task = asyncio.create_task(self._run())
        await eventually(lambda: all(self.ticks.values()), what=f"first ticks for {self.name}")
        return self

    async def _run(self) -> None:
        async for event in self.client:
            if isinstance(event, Tick):
                self._tick(time.monotonic(), event.instrument, event.mode, event.data)
            elif isinstance(event, Status):
                self.statuses.append(event.state)
            elif isinstance(event, ServerError):
                self.errors.append(event)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()


#: Three clients over five instruments and all three modes, two of them sharing a subscription.
CLIENT_SUBS: dict[str, list[tuple[str, int]]] = {
    "raw-a": [("RELIANCE:NSE", 1), ("SBIN:NSE", 2), ("INFY:NSE", 3)],
    "raw-b": [("NIFTY:NSE_INDEX", 2), ("RELIANCE:NSE", 3), ("SBIN:NSE", 2)],
    "lib": [("TCS:NSE", 2), ("HDFCBANK:NSE", 2)],
}


def _parse(spec: str) -> Instrument:
    symbol, exchange = spec.split(":")
    return Instrument(symbol, exchange)


async def open_clients(url: str, api_key: str | None = None) -> list[RawClient | LibClient]:
    """The three clients of CLIENT_SUBS, each with a first tick for every subscription."""
    clients: list[RawClient | LibClient] = []
    for name, specs in CLIENT_SUBS.items():
        subs = [(_parse(s), m) for s, m in specs]
        if name.startswith("raw"):
            raw = await RawClient(name, url, subs, api_key).open()
            await eventually(lambda raw=raw: all(raw.ticks.values()), what=f"first ticks for {name}")
            clients.append(raw)
        else:
            clients.append(await LibClient(name, url, subs, api_key).open())
    return clients


def all_keys(master: Master) -> set[tuple[int, int, str]]:
    return {angel_key(master, (_parse(s), m)) for specs in CLIENT_SUBS.values() for s, m in specs}


async def all_fresh_after(clients: list[RawClient | LibClient], mark: float, timeout: float = 10.0) -> None:
    await eventually(
        lambda: all(c.fresh_since(mark) for c in clients),
        timeout,
        what=lambda: f"fresh ticks; stale: {[(c.name, c.stale(mark)) for c in clients if not c.fresh_since(mark)]}",
    )


def untouched(clients: list[RawClient | LibClient], frames: dict[str, int]) -> list[str]:
    """Problems showing a client had to act: its connection ended, it sent anything more, it reconnected."""
    problems = []
    for c in clients:
        if isinstance(c, RawClient):
            if c.closed:
                problems.append(f"{c.name}: {c.closed}")
            if c.frames_sent != frames[c.name]:
                problems.append(f"{c.name} sent {c.frames_sent - frames[c.name]} more frames")
        elif c.statuses != ["connecting", "connected"]:
            problems.append(f"{c.name} went through {c.statuses}")
        if c.unexpected:
            problems.append(f"{c.name} got ticks it did not ask for: {c.unexpected[:3]}")
    return problems


# Accounting -----------------------------------------------------------------------------
@dataclass
class Audit:
    ticks: int = 0
    lost: int = 0
    #: the longest time (s) between two ticks of one subscription, over all subscriptions and clients
    longest_gap: float = 0.0
    problems: list[str] = field(default_factory=list)
    #: "client instrument/mode" -> packets lost, where any were
    lost_by: dict[str, int] = field(default_factory=dict)


def audit(clients: list[RawClient | LibClient], up: Upstream, master: Master) -> Audit:
    """Check every tick against the packet its simulator encoded (same key, same ltp, in order, once);
    count as lost the packets encoded for a subscription while the client was getting it that never came."""
    result = Audit()
    for client in clients:
        for sub, ticks in client.ticks.items():
            resolved = master.resolve(sub[0])
            key = angel_key(master, sub)
            seen: dict[int, list[int]] = {}
            times = [t for t, _ in ticks]
            for t, data in ticks:
                result.ticks += 1
                life_index = up.lives.index(up.life_at(t))
                packet = up.lives[life_index].sim.sent.get(data["seq"])
                if packet is None or (packet.mode, packet.exchange_type, packet.token) != key:
                    result.problems.append(f"{client.name} {sub}: tick seq {data['seq']} is no packet of {key}")
                    continue
                if data["ltp"] != packet.ltp / resolved.divisor:
                    result.problems.append(f"{client.name} {sub}: ltp {data['ltp']} != {packet.ltp} encoded")
                seen.setdefault(life_index, []).append(data["seq"])
            for life_index, seqs in seen.items():
                if seqs != sorted(set(seqs)):
                    result.problems.append(f"{client.name} {sub}: repeated or reordered ticks in instance {life_index}")
                life = up.lives[life_index]
                # after the last tick the client got, packets were on their way when it stopped listening;
                # before it (or before a later instance's ticks) they should have come
                last_heard = life_index == max(seen)
                encoded = {
                    s
                    for s, p in list(life.sim.sent.items())
                    if (p.mode, p.exchange_type, p.token) == key and s >= seqs[0] and (s <= seqs[-1] or not last_heard)
                }
                missing = len(encoded - set(seqs))
                if missing:
                    where = f"{client.name} {sub[0]}/{sub[1]}"
                    result.lost_by[where] = result.lost_by.get(where, 0) + missing
                    result.lost += missing
            gaps = [b - a for a, b in itertools.pairwise(times)]
            result.longest_gap = max([result.longest_gap, *gaps])
    return result


# The server -----------------------------------------------------------------------------
#: The seed of the feed's rng: with one connection, its backoff sleeps are known in advance.
BACKOFF_SEED = 1


FEED_DEFAULTS: dict[str, Any] = {
    "batch_window": 0.05,
    "backoff_base": 0.05,
    "backoff_cap": 0.4,
    "stable_after": 30.0,
    "silence_timeout": 5.0,
    "heartbeat_interval": 5.0,
    "open_timeout": 3.0,
    "login_timeout": 5.0,
    "market_hours": lambda exchange_types: True,
}


@dataclass
class InProcess:
    service: Service
    feed: AngelFeed

    @property
    def url(self) -> str:
        return self.service.url

    async def health(self) -> dict[str, Any]:
        figures = await asyncio.to_thread(background.health, self.service.url, 5.0)
        assert figures is not None, "the proxy's /health does not answer"
        return figures


@asynccontextmanager
async def serve_in_process(
    up: Upstream, master: Master, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> AsyncIterator[InProcess]:
    """``Service`` as ``oaws serve --broker angel`` builds it (bus, proxy with the feed's status on
    /health), with the AngelFeed made here: ``make_feed`` would take the production timeouts."""
    feed = AngelFeed(
        up.settings(),
        master,
        **{
            **FEED_DEFAULTS,
            "session_file": tmp_path / "state" / "angel-session.json",
            "rng": random.Random(BACKOFF_SEED),
            **options,
        },
    )
    monkeypatch.setattr("oaws.server.service.make_feed", lambda opts: feed)
    service = Service(ServeSettings(broker="angel", port=0, bus="tcp://127.0.0.1:*"))
    await service.start()
    try:
        yield InProcess(service, feed)
    finally:
        await service.stop()


def feed_delays(base: float, cap: float, start: int = 0) -> Iterator[float]:
    """The sleeps the feed's backoff takes from its (start + 1)-th reconnect in a row on.

    Full jitter, written out here rather than taken from ``oaws.brokers.connection``: the n-th
    sleep is uniform in [0, min(cap, base * 2**n)] (one draw from the feed's rng per sleep),
    never below the floor of a tenth of ``base``.
    """
    rng = random.Random(BACKOFF_SEED)
    for attempt in itertools.count():
        delay = max(base / 10, rng.uniform(0, min(cap, base * 2**attempt)))
        if attempt >= start:
            yield delay


def most_reconnects(elapsed: float, base: float, cap: float, start: int = 0) -> int:
    """How many reconnects backoff allows within ``elapsed`` seconds, at most."""
    spent = 0.0
    for n, delay in enumerate(feed_delays(base, cap, start), 1):
        spent += delay  # reconnect n sleeps at least this long before reconnect n + 1 may start
        if spent > elapsed:
            return n
    raise AssertionError("unreachable")


# Subprocesses ---------------------------------------------------------------------------
def cli_env(tmp_path: Path, up: Upstream, **extra: str) -> dict[str, str]:
    """The environment of an ``oaws`` subprocess: private dirs, the simulator's settings, nothing else of ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("OAWS_", "ANGEL_")) or k.lower() in ("http_proxy", "https_proxy", "all_proxy"))
    }
    env.update(
        OAWS_STATE_DIR=str(tmp_path / "state"),
        OAWS_CACHE_DIR=str(tmp_path / "cache"),
        OAWS_CONFIG=str(tmp_path / "config.toml"),
        PYTHONUNBUFFERED="1",
        **up.sim.env(),
        **extra,
    )
    return env


async def oaws(env: dict[str, str], *args: str, timeout: float = 40.0) -> subprocess.CompletedProcess[str]:
    """Run an ``oaws`` command in a thread, so that the simulator on this event loop keeps serving."""
    command = [*OAWS, *args]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=timeout)


class Foreground:
    """``oaws serve`` in the foreground with its stderr read line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env, self.args = env, args
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.url = ""
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Foreground:
        self.proc = await asyncio.create_subprocess_exec(
            *OAWS, "serve", *self.args, env=self.env, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
        )
        self._reader = asyncio.create_task(self._read())
        await eventually(lambda: self.url or self.proc.returncode is not None, 30, what="serve to start")
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            found = re.search(r"serving on (ws://[\w.]+:\d+)", line)
            if found and not self.url:
                self.url = found.group(1)

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None and self._reader is not None
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await self._reader
        return code

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


def distinct_secrets() -> dict[str, str]:
    """Credentials nobody could mistake for anything else in a file (the TOTP secret must be base32)."""
    import pyotp

    return {
        "ANGEL_API_KEY": f"angelkey{secrets.token_hex(10)}",
        "ANGEL_PIN": f"pin{secrets.token_hex(6)}",
        "ANGEL_TOTP_SECRET": pyotp.random_base32(),
        "OAWS_API_KEY": f"proxykey{secrets.token_hex(10)}",
    }
