"""The status line's model: the connection, tick rates and the feed-to-screen latency."""

from __future__ import annotations

import time
from collections.abc import Callable

from oaws.tui.models.columns import Piece

#: Ticks stamped longer ago than this (ms) are no latency sample. A live tick reaches the
#: screen in milliseconds, and one that falls behind cannot get seconds late: the proxy
#: conflates a slow client (latest tick per instrument only) and closes it after 3 s of
#: that. So a stamp more than 5 s old means the tick was not just made: a tick replayed by
#: ``oaws replay`` (it keeps its recorded ``ts_ns``, minutes or days old), a last known tick
#: sent by a server that does not mark its snapshots, or a server whose clock is far off
#: ours. Shown as latency, any of them says the feed is slow when it is not. (Snapshots the
#: server marks are left out whatever their age.)
LIVE_LATENCY_MS = 5_000.0


class Health:
    """Connection state, ticks per second and latency, rolled over once a second."""

    def __init__(self, url: str, *, stale_after: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.stale_after = stale_after
        self.clock = clock
        self.state = "connecting"
        self.detail = ""
        self.retry_at: float | None = None
        self.count = 0
        self.latencies: list[float] = []
        self.tps = 0
        self.latency: tuple[float, float] | None = None
        self.last_tick: float | None = None
        self.notice = ""
        #: when the connection's current state began (``clock`` seconds)
        self.since = clock()

    def connection(self, state: str, detail: str = "", retry_at: float | None = None) -> None:
        if state != self.state:
            self.since = self.clock()
        self.state, self.detail, self.retry_at = state, detail, retry_at

    def tick(self, latency_ms: float | None, *, snapshot: bool = False) -> None:
        """A tick arrived. A snapshot (``Tick.snapshot``: the last tick the server held when a
        subscription began, possibly minutes old) counts as a tick but is no latency sample:
        it says how old the market's last trade is, not how fast the feed is."""
        self.count += 1
        if not snapshot and latency_ms is not None and latency_ms <= LIVE_LATENCY_MS:
            self.latencies.append(latency_ms)

    def roll(self) -> None:
        """Close the current second: ticks per second and latency p50 / max of its live samples (none: no figure)."""
        now = self.clock()
        if self.count:
            self.last_tick = now
        self.tps = self.count
        if self.latencies:
            v = sorted(self.latencies)
            self.latency = (v[len(v) // 2], v[-1])
        else:
            self.latency = None
        self.count = 0
        self.latencies = []

    @property
    def stale(self) -> bool:
        """Connected, ticks came before, and none for ``stale_after`` seconds."""
        return (
            self.state == "connected"
            and self.last_tick is not None
            and self.count == 0
            and self.clock() - self.last_tick >= self.stale_after
        )

    def pieces(self) -> list[Piece]:
        """The status line: where, how the connection is, how busy, how fast."""
        now = self.clock()
        if self.state == "connected" and self.stale:
            state = (f"stale: no tick for {now - (self.last_tick or now):.0f} s", "status-stale")
        elif self.state == "connected":
            state = ("● connected", "status-ok")
        elif self.state == "reconnecting":
            wait = f", retry in {max(0.0, (self.retry_at or now) - now):.0f} s" if self.retry_at else ""
            state = (f"○ reconnecting{wait}: {self.detail}" if self.detail else f"○ reconnecting{wait}", "status-bad")
        elif self.state == "authenticating":
            # OpenAlgo answers authenticate once it has set up the broker: seconds, not a fault
            state = (f"… waiting {now - self.since:.0f} s for the server to authenticate", "status-wait")
        elif self.state == "refused":
            state = (f"✕ {self.detail}", "status-bad")
        else:
            state = ("… connecting", "status-wait")
        pieces: list[Piece] = [(self.url, "status-url"), ("  ", "status"), state, (f"  {self.tps} ticks/s", "status")]
        if self.latency is not None:
            pieces.append((f"  latency {self.latency[0]:.1f} ms (max {self.latency[1]:.1f})", "status"))
        if self.notice:
            pieces.append((f"  {self.notice}", "status-notice"))
        return pieces
