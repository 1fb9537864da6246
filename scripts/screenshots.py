"""Make screenshots/watch, watch-fno, depth and chart (.svg and .png) from the real app.

    python scripts/screenshots.py            # needs rsvg-convert (Debian: librsvg2-bin) and Fira Code
                                             # (fonts-firacode) for the PNGs
    python scripts/screenshots.py --svg-only # the SVGs alone, which need neither

Without rsvg-convert or the font it stops before writing anything, so that the SVGs and
the PNGs beside them never disagree.

The watch runs against a real in-process server on the simulated market (a fixed seed),
exactly as ``oaws watch`` does on a fresh install: the built-in default list, the index
ribbon, the default columns, with a config file of its own (a temporary one) in which an
alert is set, so that the picture shows one firing. It is left to trade for a few seconds
so that the sparklines fill before each picture is taken. The second list is a few index
futures and options, to show the derivative columns (OI) and the readable contract names.
The chart is RELIANCE's at one minute: the simulated market's history, asked for as the
watch asks for it (``oaws.cli.watch.chart_history``: ``GET /history``, the bus, ``SimFeed.history``),
then the bars of the live ticks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

from oaws.brokers.sim.feed import known_symbols
from oaws.cli.watch import chart_history
from oaws.client import Client
from oaws.config import ClientSettings, time_zone
from oaws.instruments import DEFAULT_WATCHLIST, Instrument, parse_many
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from oaws.tui.app import WatchApp
from oaws.tui.chart import ChartScreen
from oaws.tui.depth import DepthScreen
from oaws.tui.models.ribbon import default_ribbon
from oaws.tui.models.watch import Watchlist

OUT = Path(__file__).resolve().parent.parent / "screenshots"


def last_tuesday(day: date) -> date:
    """NSE's monthly expiry of ``day``'s month: its last Tuesday."""
    end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return end - timedelta(days=(end.weekday() - 1) % 7)


def derivatives(today: date) -> list[str]:
    """NIFTY and BANKNIFTY futures and options of this month's expiry, as the sim lists them."""
    expiry = last_tuesday(today)
    if expiry < today:
        expiry = last_tuesday(expiry + timedelta(days=7))
    tag = expiry.strftime("%d%b%y").upper()
    return [
        "NIFTY:NSE_INDEX",
        f"NIFTY{tag}FUT:NFO",
        f"NIFTY{tag}26000CE:NFO",
        f"NIFTY{tag}26000PE:NFO",
        f"NIFTY{tag}25500PE:NFO",
        f"BANKNIFTY{tag}FUT:NFO",
        f"BANKNIFTY{tag}58000CE:NFO",
        f"BANKNIFTY{tag}58000PE:NFO",
    ]


def missing_for_png() -> str | None:
    """What the PNGs need and this machine lacks, as a sentence; None when nothing is missing."""
    if shutil.which("rsvg-convert") is None:
        return "rsvg-convert"
    fonts = shutil.which("fc-list")
    if fonts is not None:
        listed = subprocess.run([fonts, ":family"], capture_output=True, text=True, check=False).stdout
        if "fira code" not in listed.lower():
            return "the Fira Code font"
    return None


def to_png(svg: Path) -> Path:
    """Render with rsvg-convert; Textual's SVG pads with no-break spaces, which it must keep."""
    converter = shutil.which("rsvg-convert")
    assert converter is not None  # checked before anything was written
    text = re.sub(r"<svg ", '<svg xml:space="preserve" ', svg.read_text(encoding="utf-8"), count=1)
    png = svg.with_suffix(".png")
    subprocess.run([converter, "--format", "png", "--output", str(png)], input=text.encode(), check=True)
    return png


async def main(seconds: float, size: tuple[int, int], out: Path = OUT) -> list[Path]:
    feed = {"seed": 20251125, "rate": 4.0, "hours": "always"}  # at any hour, a market that trades
    service = Service(ServeSettings(port=0, bus="tcp://127.0.0.1:*", feed=feed))
    await service.start()

    async def connect(instruments: list[Instrument], mode: int) -> Client:
        return Client(service.url, instruments=instruments, mode=mode, retry_first=True)

    from oaws import store

    # an alert that fires on the first ticks: the picture shows its notification and mark
    store.add_alert("RELIANCE:NSE", "change_above", -50.0)
    app = WatchApp(
        connect,
        [
            Watchlist("default", parse_many(list(DEFAULT_WATCHLIST))),
            Watchlist("fno", parse_many(derivatives(date.today()))),
        ],
        url=service.url,
        completions=known_symbols(),
        tz=time_zone(),  # as oaws watch shows them: exchange time unless configured
        ribbon=default_ribbon(),
        store=store,
    )
    app.history = chart_history(ClientSettings(url=service.url, api_key=None, autostart=False))
    made: list[Path] = []
    try:
        async with app.run_test(size=size, notifications=True) as pilot:
            await pilot.pause(seconds)
            await pilot.press("down", "down")
            await pilot.pause(0.3)
            made.append(Path(app.save_screenshot("watch.svg", str(out))))
            app.clear_notifications()
            await pilot.press("tab")
            await pilot.pause(seconds / 2)
            made.append(Path(app.save_screenshot("watch-fno.svg", str(out))))
            await pilot.press("shift+tab")
            await pilot.pause(0.3)
            await pilot.press("home", "down", "down")  # RELIANCE again
            await pilot.pause(0.3)
            await pilot.press("enter")
            while not (isinstance(app.screen, DepthScreen) and app.model.rows[app.screen.instrument].data.get("depth")):
                await pilot.pause(0.1)
            await pilot.pause(1.0)
            made.append(Path(app.save_screenshot("depth.svg", str(out))))
            await pilot.press("escape", "g", "1")  # RELIANCE's chart, one-minute bars
            while not (isinstance(app.screen, ChartScreen) and app.screen.chart.state != "loading"):
                await pilot.pause(0.1)
            await pilot.pause(seconds / 2)
            app.screen.redraw()
            await pilot.pause(0.3)
            made.append(Path(app.save_screenshot("chart.svg", str(out))))
    finally:
        await service.stop()
    return made


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Screenshots of oaws watch on the simulated market.")
    parser.add_argument("--seconds", type=float, default=8.0, help="trading time before the first picture")
    parser.add_argument("--size", default="172x26", help="terminal WIDTHxHEIGHT")
    parser.add_argument("--svg-only", action="store_true", help="write the SVGs alone (no rsvg-convert needed)")
    parser.add_argument("--out", type=Path, default=OUT, help="the directory to write to (default: screenshots/)")
    args = parser.parse_args()
    lacking = None if args.svg_only else missing_for_png()
    if lacking is not None:
        sys.exit(
            f"screenshots.py: the PNGs need {lacking} (Debian: apt-get install librsvg2-bin fonts-firacode); "
            "nothing was written (--svg-only writes the SVGs alone)"
        )
    args.out.mkdir(exist_ok=True)
    width, height = (int(x) for x in args.size.split("x"))
    private = tempfile.mkdtemp(prefix="oaws-screenshots-")  # a config and state of its own: yours untouched
    os.environ["OAWS_CONFIG"] = os.path.join(private, "config.toml")
    os.environ["OAWS_STATE_DIR"] = os.path.join(private, "state")
    for svg in asyncio.run(main(args.seconds, (width, height), args.out)):
        print(svg, "" if args.svg_only else to_png(svg))
