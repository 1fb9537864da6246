"""What the chart looks like, pinned: an hour of one-minute history and a few live minutes.

The history is a fixed walk; the live ticks come from the seeded simulated market on
conftest's fixed clock (10:15 IST), sent after the chart opened; the app's clocks are fixed,
so every run draws the same picture. Review and update with
``pytest tests/tui/test_chart_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import random

from oaws.bars.aggregator import Bar, Interval
from oaws.instruments import QUOTE, Instrument
from oaws.tui.chart import ChartScreen
from oaws.tui.models.chart import READY

from .conftest import sim_ticks, until
from .test_chart import INFY, REL, at, make_app

LIVE = sim_ticks([REL], 600, mode=QUOTE)  # 10:15:00 to 10:17:30, four a second


def walk(instrument: Instrument, interval: Interval) -> list[Bar]:
    """09:15 to 10:15: from 1,476 to the first live price, a seeded wobble on the way; the
    volumes add up to what the day had traded by the first live tick."""
    rng = random.Random(20)
    step = interval.seconds * 1000
    count = (at("10:15") - at("09:15")) // step
    first = LIVE[0].data
    end, traded = float(first["ltp"]), int(first["volume"])
    weights = [rng.uniform(0.5, 2.0) * (2.5 if i < 5 else 1.0) for i in range(count)]
    out, p = [], 1476.0
    for i in range(count):
        target = 1476.0 + (end - 1476.0) * (i + 1) / count + rng.uniform(-1.5, 1.5)
        o, c = p, round(target, 2)
        high, low = max(o, c) + round(rng.uniform(0, 0.8), 2), min(o, c) - round(rng.uniform(0, 0.8), 2)
        start = at("09:15") + i * step
        volume = int(traded * weights[i] / sum(weights))
        out.append(Bar(instrument.symbol, instrument.exchange, interval.name, start, start + step,
                       o, round(high, 2), round(low, 2), c, volume, final=True))  # fmt: skip
        p = c
    return out


def test_chart(snap_compare):
    async def history(instrument: Instrument, interval: Interval, days: int) -> list[Bar]:
        return walk(instrument, interval)

    app, client = make_app(sim_ticks([INFY], 1, mode=QUOTE), history=history)

    async def open_chart(pilot) -> None:
        await until(pilot, lambda: app.ticks == 1, what="INFY's tick")
        await pilot.press("down", "g", "1")
        await until(pilot, lambda: isinstance(app.screen, ChartScreen), what="the chart")
        chart = app.screen.chart
        await until(pilot, lambda: chart.state == READY and chart.interval.name == "1m", what="the 1m history")
        client.put(*LIVE)
        await until(pilot, lambda: app.ticks == 1 + len(LIVE), what="the live ticks")
        app.second()
        app.screen.redraw()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 32), run_before=open_chart)
