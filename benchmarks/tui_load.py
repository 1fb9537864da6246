"""How much CPU `oaws watch` needs for a busy market: 500 instruments at 1,000 ticks/s.

A real server (Service with SimFeed) runs in a thread of this process on its own event
loop; the watch runs against it over a real WebSocket, and the figure reported is CPU
seconds per wall second of the watch alone:

    python benchmarks/tui_load.py                 # headless app in this process: its thread's CPU
    python benchmarks/tui_load.py --pty           # the real `oaws watch` in a pseudo-terminal: its process's CPU
    python benchmarks/tui_load.py --chart         # headless, with the chart (g) of the first equity open

The headless app does all its work (events, model, the grid's row rendering, Textual's
compositor) except turning the screen update into escape codes and writing them; the
``--pty`` run does that too, as a user's terminal sees it. The target is under 0.25.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from fcntl import ioctl

from oaws.brokers.sim.feed import known_symbols
from oaws.client import Client
from oaws.instruments import Instrument, parse
from oaws.server.service import Service
from oaws.server.settings import ServeSettings


def instruments(count: int) -> list[Instrument]:
    known = [parse(s) for s in known_symbols()]
    extra = [Instrument(f"SIM{n:03d}", "NSE") for n in range(max(0, count - len(known)))]
    return (known + extra)[:count]


class ServerThread:
    """A Service on its own event loop in a thread, so the app's loop and CPU time stay apart."""

    def __init__(self, opts: ServeSettings) -> None:
        self.opts = opts
        self.ready = threading.Event()
        self.url = ""
        self.cpu = 0.0
        self.wall = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopped: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, name="server", daemon=True)

    def start(self) -> str:
        self.thread.start()
        if not self.ready.wait(20):
            raise RuntimeError("the server did not start")
        return self.url

    def stop(self) -> None:
        if self.loop is not None and self.stopped is not None:
            self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        service = Service(self.opts)
        await service.start()
        self.url = service.url
        self.ready.set()
        start, wall = time.thread_time(), time.monotonic()
        await self.stopped.wait()
        self.cpu, self.wall = time.thread_time() - start, time.monotonic() - wall
        await service.stop()


async def day_of_bars(instrument: Instrument, interval, days: int) -> list:
    """--chart's history: a full session of bars up to now (a chart as wide as the screen)."""
    from oaws.bars.aggregator import Bar

    step = interval.seconds * 1000
    now = int(time.time() * 1000) // step * step
    return [
        Bar(instrument.symbol, instrument.exchange, interval.name, t, t + step, 100.0 + i % 9, 101.0 + i % 9,
            99.0 + i % 9, 100.5 + i % 9, 1000 + i, final=True)
        for i, t in enumerate(range(now - 375 * 60_000, now, step))
    ]  # fmt: skip


async def headless(
    url: str, wanted: list[Instrument], seconds: float, warmup: float, size: tuple[int, int], sort: str,
    chart: bool = False,
) -> dict:  # fmt: skip
    from oaws.tui.app import WatchApp
    from oaws.tui.chart import ChartScreen, ChartView
    from oaws.tui.models.watch import Watchlist

    async def connect(instruments: list[Instrument], mode: int) -> Client:
        return Client(url, instruments=instruments, mode=mode, retry_first=True)

    app = WatchApp(connect, [Watchlist("load", list(wanted))], url=url, history=day_of_bars if chart else None)
    async with app.run_test(size=size) as pilot:
        if sort != "given":
            app.model.sort_by(sort)  # re-sorted (and so wholly redrawn) once a second
        if chart:
            await pilot.pause(0.5)
            app.model.select_index(wanted.index(app_chart(wanted)))  # an equity: volume bars too
            await pilot.press("g")  # its chart, open for the whole run
        await pilot.pause(warmup)
        if chart and not isinstance(app.screen, ChartScreen):
            raise RuntimeError("the chart did not open")
        draws0 = app.screen.query_one(ChartView).draws if chart else 0
        ticks0, rows0 = app.ticks, app.grid.rendered
        cpu0, wall0, proc0 = time.thread_time(), time.monotonic(), time.process_time()
        await asyncio.sleep(seconds)
        cpu, wall, proc = time.thread_time() - cpu0, time.monotonic() - wall0, time.process_time() - proc0
        ticks, rows = app.ticks - ticks0, app.grid.rendered - rows0
        draws = app.screen.query_one(ChartView).draws - draws0 if chart else None
    return {"wall": wall, "cpu": cpu, "process_cpu": proc, "ticks": ticks, "rows": rows, "chart_draws": draws}


def app_chart(wanted: list[Instrument]) -> Instrument:
    """The instrument --chart charts."""
    return next(i for i in wanted if i.exchange == "NSE")


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_pty(url: str, wanted: list[Instrument], seconds: float, warmup: float, size: tuple[int, int]) -> dict:
    """The real command in a pseudo-terminal whose output is read (and dropped) like a terminal would."""
    master, slave = pty.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oaws", "watch", "--url", url, "--no-autostart", *(str(i) for i in wanted)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    written = 0

    def drain(until: float) -> None:
        nonlocal written
        while time.monotonic() < until:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    written += len(os.read(master, 1 << 16))
                except OSError:
                    return

    drain(time.monotonic() + warmup)
    cpu0, wall0, written0 = proc_cpu(proc.pid), time.monotonic(), written
    drain(time.monotonic() + seconds)
    cpu, wall = proc_cpu(proc.pid) - cpu0, time.monotonic() - wall0
    os.write(master, b"q")
    drain(time.monotonic() + 1.0)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    os.close(master)
    return {"wall": wall, "cpu": cpu, "bytes": written - written0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000.0, help="ticks per second over all instruments")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--size", default="160x50", help="terminal WIDTHxHEIGHT")
    parser.add_argument("--pty", action="store_true", help="run the real `oaws watch` in a pseudo-terminal")
    parser.add_argument("--sort", default="given", help="headless: sort by this column (change_percent, volume...)")
    parser.add_argument("--chart", action="store_true", help="headless: the chart of the first equity open")
    args = parser.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    wanted = instruments(args.instruments)
    server = ServerThread(
        ServeSettings(
            port=0,
            bus="tcp://127.0.0.1:*",
            feed={"seed": 1, "rate": args.rate / len(wanted), "hours": "always", "any_symbol": True},
        )
    )
    url = server.start()
    try:
        if args.pty:
            result = in_pty(url, wanted, args.seconds, args.warmup, size)  # type: ignore[arg-type]
        else:
            result = asyncio.run(headless(url, wanted, args.seconds, args.warmup, size, args.sort, args.chart))  # type: ignore[arg-type]
    finally:
        server.stop()
    where = "oaws watch process in a pty" if args.pty else "headless app thread"
    print(
        f"{len(wanted)} instruments, simulated {args.rate:g} ticks/s, {size[0]}x{size[1]} terminal, "
        f"{result['wall']:.1f} s measured after {args.warmup:g} s warm-up"
    )
    if "ticks" in result:
        print(
            f"app received {result['ticks'] / result['wall']:.0f} ticks/s, rendered "
            f"{result['rows'] / result['wall']:.0f} rows/s"
        )
        print(f"whole process (app + server + ZeroMQ threads): {result['process_cpu'] / result['wall']:.3f} CPU s/s")
    if result.get("chart_draws") is not None:
        print(f"the chart of {app_chart(wanted)} open: drawn {result['chart_draws'] / result['wall']:.1f} times/s")
    if "bytes" in result:
        print(f"terminal output: {result['bytes'] / result['wall'] / 1024:.1f} KiB/s")
    print(f"server thread (feed and proxy): {server.cpu / max(server.wall, 1e-9):.3f} CPU s/s over its whole run")
    print(f"{where}: {result['cpu'] / result['wall']:.3f} CPU seconds per wall second")


if __name__ == "__main__":
    main()
