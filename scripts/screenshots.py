"""Make screenshots/watch.{svg,png} and screenshots/depth.{svg,png} from the real app.

    python scripts/screenshots.py            # needs rsvg-convert (Debian: librsvg2-bin) and Fira Code
                                             # (fonts-firacode) for the PNGs; the SVGs need nothing

The watch runs against a real in-process server on the simulated market (a fixed seed),
exactly as ``oaws watch`` does, and is left to trade for a few seconds so that the
sparklines fill before each picture is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
from pathlib import Path

from oaws.brokers.sim.feed import known_symbols
from oaws.client import Client
from oaws.config import time_zone
from oaws.instruments import DEFAULT_WATCHLIST, Instrument, parse_many
from oaws.server.service import Service
from oaws.server.settings import ServeSettings
from oaws.tui.app import WatchApp
from oaws.tui.depth import DepthScreen
from oaws.tui.models.watch import Watchlist

OUT = Path(__file__).resolve().parent.parent / "screenshots"
WATCHLIST = [
    *DEFAULT_WATCHLIST,
    "BHARTIARTL:NSE",
    "ITC:NSE",
    "LT:NSE",
    "MARUTI:NSE",
    "TATASTEEL:NSE",
    "SENSEX:BSE_INDEX",
]


def to_png(svg: Path) -> Path | None:
    """Render with rsvg-convert; Textual's SVG pads with no-break spaces, which it must keep."""
    converter = shutil.which("rsvg-convert")
    if converter is None:
        print("rsvg-convert not found (apt-get install librsvg2-bin fonts-firacode): SVG only", file=sys.stderr)
        return None
    text = re.sub(r"<svg ", '<svg xml:space="preserve" ', svg.read_text(encoding="utf-8"), count=1)
    png = svg.with_suffix(".png")
    subprocess.run([converter, "--format", "png", "--output", str(png)], input=text.encode(), check=True)
    return png


async def main(seconds: float, size: tuple[int, int]) -> list[Path]:
    feed = {"seed": 20251125, "rate": 4.0, "hours": "always"}  # at any hour, a market that trades
    service = Service(ServeSettings(port=0, bus="tcp://127.0.0.1:*", feed=feed))
    await service.start()

    async def connect(instruments: list[Instrument], mode: int) -> Client:
        return Client(service.url, instruments=instruments, mode=mode, retry_first=True)

    app = WatchApp(
        connect,
        [Watchlist("default", parse_many(WATCHLIST)), Watchlist("banks", [])],
        url=service.url,
        completions=known_symbols(),
        tz=time_zone(),  # as oaws watch shows them: exchange time unless configured
    )
    made: list[Path] = []
    try:
        async with app.run_test(size=size) as pilot:
            await pilot.pause(seconds)
            await pilot.press("down", "down")
            await pilot.pause(0.3)
            made.append(Path(app.save_screenshot("watch.svg", str(OUT))))
            await pilot.press("enter")
            while not (isinstance(app.screen, DepthScreen) and app.model.rows[app.screen.instrument].data.get("depth")):
                await pilot.pause(0.1)
            await pilot.pause(1.0)
            made.append(Path(app.save_screenshot("depth.svg", str(OUT))))
    finally:
        await service.stop()
    return made


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Screenshots of oaws watch on the simulated market.")
    parser.add_argument("--seconds", type=float, default=8.0, help="trading time before the first picture")
    parser.add_argument("--size", default="150x24", help="terminal WIDTHxHEIGHT")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    width, height = (int(x) for x in args.size.split("x"))
    for svg in asyncio.run(main(args.seconds, (width, height))):
        png = to_png(svg)
        print(svg, png or "")
