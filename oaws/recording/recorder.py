"""One ``oaws record`` run: a client's ticks into a ``Writer`` until stopped.

The connection is ``oaws.client.Client``'s: it authenticates, subscribes, reconnects with
jittered backoff, resubscribes and classifies the server's errors. The command line's
client waits out a server that answers but cannot authenticate yet (OpenAlgo setting up
the broker), so that a recorder started before the broker is ready records once it is. The recorder adds what
a recording needs: a gap marker for the time the connection was down, no repeat of a tick
the server sends again on resubscribing, a header that names only what the server
accepted, and a status line.

At tens of thousands of ticks a second, parsing each message only to write it out again
costs more than the rest of the recorder, so it takes the client's frames first
(``on_frame``): frames of the proxy's shape go to the file as bytes (``market_lines``),
and every other frame goes through the protocol and comes back as events.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from oaws.client import AuthError, Client, FeedStatus, FrameHook, ServerError, Status, Tick, refusal
from oaws.format import plural
from oaws.instruments import Instrument
from oaws.recording.units import human_size
from oaws.recording.writer import Writer, market_lines

#: how often buffered lines go to the OS (the promise is at least once a second)
FLUSH_EVERY = 0.5
#: after a reconnect, how long (ns) every tick is checked against the last one before the drop
RECHECK_NS = 1_000_000_000


def say(line: str) -> None:
    """One line on stderr, clearing a live status line first so that the two do not run together."""
    prefix = "\r\x1b[2K" if sys.stderr.isatty() else ""
    sys.stderr.write(f"{prefix}oaws: {line}\n")
    sys.stderr.flush()


class Recorder:
    """``connect(on_frame)`` returns the client to record from, built with that frame hook
    (the command line's starts a background server when none answers)."""

    def __init__(
        self,
        writer: Writer,
        instruments: list[Instrument],
        connect: Callable[[FrameHook], Awaitable[Client]],
        *,
        count: int | None = None,
        duration: float | None = None,
        live: bool = False,
    ) -> None:
        self.writer = writer
        self.instruments = instruments
        self.connect = connect
        self.url = ""
        self.count = count
        self.duration = duration
        self.live = live
        self.started = time.monotonic()
        self.connected = False
        self.connected_once = False
        #: connected, the answer to authenticate slow in coming
        self.waiting = False
        #: receive time of the last frame, for a gap's start
        self.last_ns = 0
        #: the last ticks written: a frame as bytes (fast path) or a tick's data (parsed)
        self.last: bytes | dict[str, Any] | None = None
        self.down_since: int | None = None
        self.down_reason = ""
        #: after a reconnect: (timestamp, seq) of the last tick received before the drop, and
        #: until when (ns) the server's snapshots of older ticks are dropped as repeats
        self.resume_after: tuple[int, int] | None = None
        self.recheck_until = 0
        self.failed: set[Instrument] = set()
        self._rate_mark = (self.started, 0)
        self.rate = 0.0

    async def run(self) -> int:
        """Record until a signal, ``count`` ticks or ``duration``; the exit code."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks: list[asyncio.Task[Any]] = []
        try:
            client = await self.connect(self._frame)
            self.url = client.url
            receiver = asyncio.create_task(self._receive(client))
            tasks = [receiver, asyncio.create_task(stop.wait()), asyncio.create_task(self._tend())]
            if self.duration is not None:
                tasks.append(asyncio.create_task(asyncio.sleep(self.duration)))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not receiver and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            code = receiver.result() if receiver in done else 0
        except BaseException:
            self.writer.abort()
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if code != 0 and self.writer.ticks == 0:
            self.writer.abort()  # nothing recorded (refused key...): leave no header-only file behind
            return code
        self.writer.close()
        if self.live:
            self._show(final=True)
        if self.writer.unwritable > 1:
            say(f"skipped {plural(self.writer.unwritable, 'tick')} that cannot be written as JSON (nested too deep?)")
        return code

    # The client's events ----------------------------------------------------------------
    async def _receive(self, client: Client) -> int:
        """The client's events into the recording; the exit code once there is no more to record.

        A refused key ends it with 1, keeping what was recorded before (a server restarted
        with a new key closes with 4401).
        """
        async with client:
            try:
                async for event in client:
                    if type(event) is Tick:
                        if self._tick(event):
                            return 0
                    elif isinstance(event, Status):
                        self._status(event)
                    elif isinstance(event, ServerError):
                        if event.fatal:
                            say(refusal(self.url, event))
                            return 1
                        if self._refused(event):
                            return 0 if self.writer.ticks else 1
                    elif isinstance(event, FeedStatus):
                        say(event.message)  # no feed on the bus: said, and waited for
                        if event.state == FeedStatus.ENDED:  # a replay past its end: nothing more to record
                            return 0 if self.writer.ticks else 1
            except AuthError as exc:
                say(str(exc))
                return 1
        return 0 if self.writer.ticks else 1

    def _frame(self, frame: bytes, received_ns: int) -> bool:
        """The fast path: a frame of the proxy's shape to the file as bytes; False leaves it to the protocol.

        Parsed instead: frames right after a reconnect (checked for repeats), before the
        broker is known (the header names it), and the one that reaches ``count``.
        """
        self.last_ns = received_ns
        writer = self.writer
        if received_ns <= self.recheck_until or writer.header["broker"] is None:
            return False
        fast = market_lines(frame, received_ns)
        if fast is None or (self.count is not None and writer.ticks + fast[1] >= self.count):
            return False
        writer.write_lines(*fast)
        self.last = frame
        return True

    def _tick(self, tick: Tick) -> bool:
        """A parsed tick into the file unless it repeats one from before a drop; True once ``count`` is reached."""
        if tick.received_ns <= self.recheck_until and self._seen(tick.data):
            return False
        writer = self.writer
        if writer.header["broker"] is None:
            writer.header["broker"] = tick.message.get("broker") or "unknown"
        writer.write_tick(tick.message, tick.received_ns)
        self.last = tick.data
        return self.count is not None and writer.ticks >= self.count

    def _status(self, event: Status) -> None:
        self.waiting = event.state == "authenticating"
        if event.state == "connected":
            self._came_up()
        elif self.waiting:
            say(event.detail)  # a server setting up its broker: the first ticks come once it has
        elif event.state == "reconnecting":
            self._went_down(event.detail)
            wait = max(0.0, (event.retry_at or time.time()) - time.time())
            say(f"{event.detail}; reconnecting in {wait:.1f} s")

    def _came_up(self) -> None:
        now = time.time_ns()
        if self.down_since is not None:
            self.writer.write_gap(self.down_since, now, self.down_reason)
            say(f"reconnected to {self.url}; marked a gap of {(now - self.down_since) / 1e9:.1f} s")
            self.down_since = None
            self.recheck_until = now + RECHECK_NS
        self.connected = self.connected_once = True
        self.last_ns = now

    def _went_down(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
        self.down_since = self.last_ns or time.time_ns()
        self.down_reason = reason
        self.resume_after = _last_tick_key(self.last)

    def _seen(self, data: dict[str, Any]) -> bool:
        """Whether a tick sent right after a reconnect repeats one received before the drop.

        On subscribe the server sends the latest tick it holds; if that tick came before
        the last one received (by the feed's timestamp, then sequence), it is not new.
        """
        if self.resume_after is None:
            return False
        key = _tick_key(data)
        return key is not None and key <= self.resume_after

    def _refused(self, error: ServerError) -> bool:
        """Report an error; True when every instrument was refused and nothing is left to record."""
        say(str(error))
        instrument = error.instrument
        if instrument is None:
            return False
        self.failed.add(instrument)
        listed = self.writer.header["instruments"]
        if str(instrument) in listed and self.writer.ticks == 0:
            listed.remove(str(instrument))  # the header claims only what the server accepted
        return self.failed >= set(self.instruments)

    # Housekeeping --------------------------------------------------------------------
    async def _tend(self) -> None:
        """Hand lines to the OS (and rotate) every FLUSH_EVERY seconds; refresh the live line."""
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self.writer.tick()
            if self.live:
                self._show()

    def _show(self, final: bool = False) -> None:
        now = time.monotonic()
        ticks = self.writer.ticks
        mark, marked = self._rate_mark
        if final or now - self.started < 1.0:
            self.rate = ticks / max(now - self.started, 1e-3)  # the average, until a full second is measured
        elif now - mark >= 1.0:
            self.rate = (ticks - marked) / (now - mark)
            self._rate_mark = (now, ticks)
        elapsed = int(now - self.started)
        where = self.writer.current if self.writer.current != "-" else "stdout"
        if self.connected or final:
            state = ""
        elif self.waiting:
            state = "  (waiting for authentication)"
        else:
            state = "  (reconnecting)" if self.connected_once else "  (connecting)"
        line = (
            f"oaws: {'recorded' if final else 'recording'} {where}: {plural(ticks, 'tick')}  "
            f"{self.rate:,.0f}/s{' average' if final else ''}  {human_size(self.writer.total_bytes)}  "
            f"{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}{state}"
        )
        sys.stderr.write("\r\x1b[2K" + line + ("\n" if final else ""))
        sys.stderr.flush()


def _tick_key(data: dict[str, Any]) -> tuple[int, int] | None:
    ts, seq = data.get("timestamp"), data.get("seq")
    if not isinstance(ts, (int, float)):
        return None
    return int(ts), seq if isinstance(seq, int) else -1


def _last_tick_key(last: bytes | dict[str, Any] | None) -> tuple[int, int] | None:
    """(timestamp, seq) of the last tick received before a drop: of a tick's data, or of the
    last message of a frame written as bytes (parsed once, at the drop)."""
    if isinstance(last, dict):
        return _tick_key(last)
    if not last:
        return None
    try:
        body = orjson.loads(last)
    except orjson.JSONDecodeError:
        return None
    for message in reversed(body if isinstance(body, list) else [body]):
        if isinstance(message, dict) and isinstance(message.get("data"), dict):
            return _tick_key(message["data"])
    return None
