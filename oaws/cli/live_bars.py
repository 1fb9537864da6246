"""``oaws tail --bars 1m INSTRUMENT...``: bars from the live ticks as JSON lines.

Each bar is printed once, when it is final (``Bar.as_dict``, ``"final": true``): when a tick
of a later bucket of its instrument arrives, or when the feed's clock passes the bucket's end
by the aggregator's grace (``GRACE_MS``). The feed's clock is the newest tick's ``timestamp``
(the feed's time of the tick, else its ``ltt``) moved on by the monotonic time since that tick
arrived, read every ``TICK_S`` seconds: a quiet instrument's bar is final on time, and a
machine clock that is off does not matter. With ``--live`` each tick also prints its
instrument's forming bar (``"final": false``). The first bar of each instrument counts its
volume from the first tick seen (the stream starts in the middle of a day: counting from zero
would give that bar the day's volume so far), so it is partial. Bars not final when the stream ends (Ctrl-C,
``--count``, the feed ended) are not printed: a bar printed as final never changes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson

from oaws.autostart import open_client
from oaws.bars.aggregator import Aggregator, Bar, Interval
from oaws.client import FeedStatus, ServerError, Status, Tick, refusal
from oaws.config import ClientSettings
from oaws.instruments import Instrument

#: how often the feed's clock is read to finalise quiet instruments' bars
TICK_S = 1.0


class FeedClock:
    """The feed's time: the newest tick's own time plus the monotonic time since it came."""

    def __init__(self, monotonic: Any = time.monotonic) -> None:
        self._monotonic = monotonic
        self._at_ms: float | None = None
        self._seen = 0.0

    def saw(self, data: dict[str, Any]) -> None:
        at = data.get("timestamp") or data.get("ltt")
        if isinstance(at, (int, float)) and not isinstance(at, bool) and (self._at_ms is None or at >= self.now_ms()):
            self._at_ms, self._seen = float(at), self._monotonic()

    def now_ms(self) -> float | None:
        if self._at_ms is None:
            return None
        return self._at_ms + (self._monotonic() - self._seen) * 1000


def _seed(agg: Aggregator, data: dict[str, Any]) -> None:
    """The first tick of an instrument comes in the middle of its day: its first bar counts
    volume from that tick's day volume, not from zero (which would give that bar the whole
    day's volume so far)."""
    volume, at = data.get("volume"), data.get("ltt") or data.get("timestamp")
    if isinstance(volume, int) and not isinstance(volume, bool) and isinstance(at, (int, float)):
        agg.seed_volume(str(data.get("symbol")), str(data.get("exchange")), at, volume)


def _write(bar: Bar) -> None:
    sys.stdout.buffer.write(orjson.dumps(bar.as_dict()) + b"\n")


async def tail_bars(
    instruments: list[Instrument],
    mode: int,
    interval: Interval,
    *,
    live: bool,
    count: int | None,
    settings: ClientSettings,
    auth_timeout: float,
) -> int:
    """Print the bars of ``instruments`` until Ctrl-C, ``count`` final bars, or the feed's end."""
    agg = Aggregator(interval)
    clock = FeedClock()
    printed = 0
    failed: set[Instrument] = set()
    seen: set[tuple[str, str]] = set()

    def final(bars: list[Bar]) -> bool:
        """Print bars made final; True when ``count`` is reached."""
        nonlocal printed
        for bar in bars:
            _write(bar)
            printed += 1
            if count is not None and printed >= count:
                sys.stdout.flush()
                return True
        if bars:
            sys.stdout.flush()
        return False

    async with await open_client(settings, instruments, mode, auth_timeout=auth_timeout) as client:
        events = client.__aiter__()
        next_event: asyncio.Task[Any] | None = None
        try:
            while True:
                if next_event is None:
                    next_event = asyncio.ensure_future(events.__anext__())
                done, _ = await asyncio.wait({next_event}, timeout=TICK_S)
                now = clock.now_ms()
                if now is not None and final(agg.advance(now)):
                    return 0
                if not done:
                    continue
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    return 0
                next_event = None
                if isinstance(event, Tick):
                    clock.saw(event.data)
                    key = (event.instrument.symbol, event.instrument.exchange)
                    if key not in seen:
                        seen.add(key)
                        _seed(agg, event.data)
                    made = agg.add(event.data)
                    if final([made] if made is not None else []):
                        return 0
                    if live:
                        forming = agg.live(event.instrument.symbol, event.instrument.exchange)
                        if forming is not None:
                            _write(forming)
                            sys.stdout.flush()
                elif isinstance(event, ServerError):
                    if event.fatal:
                        print(f"oaws: {refusal(settings.url, event)}", file=sys.stderr)
                        return 1
                    print(f"oaws: {event}", file=sys.stderr)
                    if event.instrument is not None:
                        failed.add(event.instrument)
                        if failed >= set(instruments):
                            return 1
                elif isinstance(event, Status):
                    if event.state in ("authenticating", "reconnecting"):
                        print(f"oaws: {event.detail}", file=sys.stderr)
                elif isinstance(event, FeedStatus):
                    print(f"oaws: {event.message}", file=sys.stderr)
                    if event.state == FeedStatus.ENDED:
                        return 0
        finally:
            if next_event is not None:
                next_event.cancel()
