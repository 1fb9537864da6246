"""The replay feed: recordings (``oaws record``) served as if they were a live market.

Behind the same bus and proxy as every feed, so ``watch``, ``tail`` and ``record`` work
against a replay unchanged. How it plays:

* Pacing follows the recorded receive times (``received_ns``): at ``speed`` 1 the gaps
  between ticks are the recorded ones, at 10 a tenth of them, at 0 there are none.
  Several files are merged by time (rotated parts follow each other).
* The clock starts when the first client subscribes, after a short pause (``settle``)
  so that a client subscribing to many instruments gets every one from the first tick.
  Instruments nobody wants still move through the timeline, unpublished, so a client
  that subscribes later gets the latest replayed tick at once, as from a live feed.
* A replayed tick keeps its recorded fields (prices, ``seq``, ``timestamp``...), except
  ``fseq``, the bus's per-topic message count, which the bus stamps afresh. Asked
  for a lower mode than recorded, a client gets the tick cut down to that mode's fields
  (SPEC §2) with ``mode`` set to it; asked for a higher one, it gets the tick as recorded
  (its ``data.mode`` says which), since a recording cannot invent depth it never had.
* Recordings made before oaws took OpenAlgo's field names (``avg_trade_price``, no
  ``last_quantity`` in Depth) replay with the new names (``oaws.ticks.upgrade``): the
  clients of today's server read OpenAlgo's names, whenever the tick was recorded, and
  the old name is not sent alongside, since no client of this version reads it. The
  file itself is never rewritten.
* Only instruments in the recording can be subscribed (``SYMBOL_NOT_FOUND`` otherwise),
  and with a window (``start`` / ``end``) only those with a tick in it: the others are
  refused the same way, saying that the recording has none of theirs in the window.
* Recordings without a tick, or a window (``start`` / ``end``) without one, are refused
  when the feed is made, before anything listens: they would serve nothing, forever.
* At the end, without ``loop``, the feed stays up and keeps serving the last ticks; its
  status says ``"ended": true``, and the proxy tells the clients that asked
  (``feed_status``, docs/protocol.md) that no more ticks will come.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from oaws.brokers.api import Feed, FeedError, Rejection
from oaws.instruments import DEPTH, MODES, Instrument, InstrumentError, make
from oaws.protocol.bus import strip_fseq
from oaws.protocol.codes import SYMBOL_NOT_FOUND
from oaws.recording import (
    RecordingError,
    empty_window,
    first_tick_ns,
    instrument_of,
    instruments_in,
    no_ticks,
    timeline,
    window_words,
)
from oaws.ticks import at_mode, upgrade

log = logging.getLogger(__name__)

#: seconds between the first subscription and the first tick
SETTLE = 0.3
#: ticks due this close together go out in one wake-up (seconds)
BATCH_WINDOW = 0.002
#: without pauses (speed 0, or behind schedule), yield to the event loop every this many ticks
YIELD_EVERY = 500

Sleep = Callable[[float], Awaitable[None]]


class _Track:
    """One instrument of the recording: its latest replayed tick and the modes wanted now."""

    __slots__ = ("instrument", "latest", "modes")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        #: (recorded mode, data), a new tuple per tick
        self.latest: tuple[int, dict[str, Any]] | None = None
        self.modes: set[int] = set()


class ReplayFeed(Feed):
    """Serves recordings as the feed (see the module docstring).

    ``start`` / ``end``: epoch ms bounds on the recorded receive times (None: none).
    ``clock`` and ``sleep`` are injectable so tests check the pacing without waiting.
    """

    name = "replay"

    def __init__(
        self,
        files: list[str],
        *,
        speed: float = 1.0,
        loop: bool = False,
        start: int | None = None,
        end: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        settle: float = SETTLE,
    ) -> None:
        super().__init__()
        if not files:
            raise FeedError("--broker replay needs a recording: add --replay FILE")
        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed >= 0):
            raise FeedError(f"the replay speed must be 0 (as fast as possible) or more, not {speed!r}")
        if start is not None and end is not None and start > end:
            raise FeedError("the replay window is empty: --from is after --to")
        for path in files:
            if os.path.isdir(path):
                raise FeedError(f"the recording {path} is a directory, not a file")
            if not os.path.isfile(path):
                raise FeedError(f"the recording {path} does not exist")
        self.files = list(files)
        self.speed = float(speed)
        self.loop = loop
        self.start = start
        self.end = end
        self.clock = clock
        self.sleep = sleep
        self.settle = settle
        self._warned: set[str] = set()
        try:
            self._check_ticks()
            self.known = instruments_in(self.files, self._warn)
            #: with a window, the instruments with a tick in it (None: no window)
            self.in_window = self._in_window()
        except RecordingError as exc:
            raise FeedError(str(exc)) from None
        self._tracks = {instrument: _Track(instrument) for instrument in self.known}
        #: a recorded (symbol, exchange) as written -> its track (None: not an instrument)
        self._by_name: dict[tuple[object, object], _Track | None] = {
            (i.symbol, i.exchange): track for i, track in self._tracks.items()
        }
        self.state = "waiting"
        self.replayed = 0
        #: recorded ticks that could not be written out again (skipped)
        self.unservable = 0
        self.passes = 0
        self.position_ns: int | None = None
        self._first_want = asyncio.Event()
        self._pending: set[tuple[Instrument, int]] = set()

    def _check_ticks(self) -> None:
        """Refuse recordings (or a window of them) without a tick; cheap when there are ticks.

        The readers' warnings (a line that is not JSON...) are held back until the set is
        known to be playable: for a file that is no recording at all, the refusal says it
        in one sentence instead of a warning about its first line.
        """
        notes: list[str] = []
        windowed = self.start is not None or self.end is not None
        if first_tick_ns(self.files, start_ms=self.start, end_ms=self.end, warn=notes.append) is None:
            if not windowed or first_tick_ns(self.files, warn=lambda _: None) is None:
                raise FeedError(no_ticks(self.files))
            from oaws import config

            try:
                tz = config.time_zone()
            except config.ConfigError:
                tz = None
            raise FeedError(empty_window(self.files, self.start, self.end, tz))
        for note in notes:
            self._warn(note)

    def _in_window(self) -> set[Instrument] | None:
        """The instruments with a tick in the window (a read of the window; None without one)."""
        if self.start is None and self.end is None:
            return None
        found: set[Instrument] = set()
        for _, record in timeline(self.files, start_ms=self.start, end_ms=self.end, warn=lambda _: None):
            instrument = instrument_of(record)
            if instrument is not None:
                found.add(instrument)
        return found

    def _refusal(self, instrument: Instrument) -> str | None:
        """Why ``instrument`` cannot be served (None: it can)."""
        if instrument not in self.known:
            return f"{instrument} is not in the recording"
        if self.in_window is not None and instrument not in self.in_window:
            from oaws import config

            try:
                tz = config.time_zone()
            except config.ConfigError:
                tz = None
            return f"the recording has no tick of {instrument} {window_words(self.start, self.end, tz)}"
        return None

    @property
    def wanted(self) -> dict[Instrument, set[int]]:
        """The instruments some proxy wants, with the modes wanted."""
        return {t.instrument: t.modes for t in self._tracks.values() if t.modes}

    def latest(self, instrument: Instrument) -> dict[str, Any] | None:
        """The data of the latest replayed tick of ``instrument``, as recorded."""
        track = self._tracks.get(instrument)
        return track.latest[1] if track is not None and track.latest is not None else None

    def _warn(self, message: str) -> None:
        if message not in self._warned:  # once, not once per loop
            self._warned.add(message)
            log.warning("%s", message)

    # The bus -------------------------------------------------------------------------
    def check(self, instrument: Instrument) -> None:
        why = self._refusal(instrument)
        if why is not None:
            raise Rejection(SYMBOL_NOT_FOUND, why)

    def want(self, instrument: Instrument, mode: int) -> None:
        why = self._refusal(instrument)
        if why is not None:
            if self.publisher is not None:
                self.publisher.reject(instrument, mode, SYMBOL_NOT_FOUND, why)
            return
        self._tracks[instrument].modes.add(mode)
        self._first_want.set()
        self._publish_soon(instrument, mode)

    def unwant(self, instrument: Instrument, mode: int) -> None:
        track = self._tracks.get(instrument)
        if track is not None:
            track.modes.discard(mode)

    def resend(self, instrument: Instrument, mode: int) -> None:
        self._publish_soon(instrument, mode)

    def status(self) -> dict[str, object]:
        wanted = sum(1 for t in self._tracks.values() if t.modes)
        return {
            "adapter_status": "connected",
            "instruments": wanted,
            "replay": self.state,
            # no tick will come any more: the proxy tells its clients (``feed_status``)
            "ended": self.state == "finished",
            "speed": self.speed,
            "loop": self.loop,
            "replayed": self.replayed,
            "passes": self.passes,
            "position": self.position_ns // 1_000_000 if self.position_ns is not None else None,
        }

    def _publish_soon(self, instrument: Instrument, mode: int) -> None:
        # After the current callback, so that the bus has registered the subscription first;
        # only the tick that was latest when asked: a newer one has gone out live meanwhile.
        key = (instrument, mode)
        track = self._tracks.get(instrument)
        if key in self._pending or track is None or track.latest is None:
            return
        latest = track.latest
        self._pending.add(key)
        try:
            asyncio.get_running_loop().call_soon(self._publish_latest, instrument, mode, latest)
        except RuntimeError:  # driven without a loop (tests)
            self._publish_latest(instrument, mode, latest)

    def _publish_latest(self, instrument: Instrument, mode: int, latest: tuple[int, dict[str, Any]]) -> None:
        self._pending.discard((instrument, mode))
        track = self._tracks[instrument]
        if track.latest is not latest or mode not in track.modes or self.publisher is None:
            return
        recorded, data = latest
        try:
            payload = orjson.dumps(at_mode(data, mode, recorded))
        except TypeError:  # cannot be written out again (the readers skip such lines already)
            self._warn("skipped a recorded tick that cannot be served again (nested too deep?)")
            return
        self.publisher.publish(instrument, mode, payload)

    # The timeline --------------------------------------------------------------------
    def _track(self, key: tuple[object, object]) -> _Track | None:
        """The track of a recorded (symbol, exchange) however it was spelt; learnt once."""
        try:
            track = self._tracks.get(make(*key))
        except InstrumentError:
            track = None
        self._by_name[key] = track
        return track

    def _replay(self, record: dict[str, Any]) -> None:
        data = record.get("data")
        key = (record.get("symbol"), record.get("exchange"))
        try:
            track = self._by_name[key]
        except KeyError:
            track = self._track(key)
        except TypeError:  # unhashable garbage
            return
        if track is None or not isinstance(data, dict):
            return
        strip_fseq(data)  # the bus's stamp, not the tick's: the bus stamps the replay afresh
        upgrade(data)  # recorded before oaws took OpenAlgo's names: served with them
        recorded = record.get("mode")
        if type(recorded) is not int or recorded not in MODES:
            recorded = data.get("mode") if data.get("mode") in MODES else DEPTH
        publisher = self.publisher
        if not track.modes or publisher is None:
            track.latest = (recorded, data)
            self.replayed += 1
            return
        raw = None
        try:
            payloads = []
            for mode in track.modes:
                if mode >= recorded:
                    raw = raw or orjson.dumps(data)
                    payloads.append((mode, raw))
                else:
                    payloads.append((mode, orjson.dumps(at_mode(data, mode, recorded))))
        except TypeError:  # cannot be written out again (the readers skip such lines already)
            self.unservable += 1
            self._warn("skipped a recorded tick that cannot be served again (nested too deep?)")
            return
        track.latest = (recorded, data)
        self.replayed += 1
        for mode, payload in payloads:
            publisher.publish(track.instrument, mode, payload)

    async def _play(self, origin: float) -> tuple[int, float]:
        """One pass over the recordings, tick ``i`` due at ``origin + offset_i / speed``.

        Returns the ticks replayed and the clock time the last one was due.
        """
        first: int | None = None
        count = 0
        unpaused = 0
        due = origin
        for ns, record in timeline(self.files, start_ms=self.start, end_ms=self.end, warn=self._warn):
            if first is None:
                first = ns
            if self.speed > 0:
                due = origin + (ns - first) / 1e9 / self.speed
                delay = due - self.clock()
                if delay > BATCH_WINDOW:
                    await self.sleep(delay)
                    unpaused = 0
            self.position_ns = ns
            self._replay(record)
            count += 1
            unpaused += 1
            if unpaused >= YIELD_EVERY:
                await asyncio.sleep(0)
                unpaused = 0
        return count, due

    async def run(self) -> None:
        log.info(
            "replay of %s at speed %g%s: waiting for the first subscription",
            ", ".join(self.files),
            self.speed,
            ", looping" if self.loop else "",
        )
        await self._first_want.wait()
        if self.settle > 0:
            await self.sleep(self.settle)
        self.state = "playing"
        origin = self.clock()
        while True:
            try:
                count, last_due = await self._play(origin)
            except RecordingError as exc:
                self._warn(str(exc))
                count, last_due = 0, origin
            self.passes += 1
            if not self.loop or count == 0:
                break
            origin = max(last_due, self.clock()) if self.speed > 0 else self.clock()
        self.state = "finished"
        log.info("replay finished after %d ticks; serving the last ticks until stopped", self.replayed)
