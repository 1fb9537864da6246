"""Logging what a client can cause at will (a bad request, a reply it does not read) at a
bounded rate: a hostile client must not be able to rotate the server's log away."""

from __future__ import annotations

import logging
import time
from typing import Any

#: lines logged per period, then one summary line at the end of the period
BURST = 10
PERIOD = 60.0


class Throttled:
    """A logger's ``warning`` / ``info``, at most ``burst`` lines a ``period``; the lines
    left out are counted and said in one line when the next period begins."""

    def __init__(self, logger: logging.Logger, burst: int = BURST, period: float = PERIOD) -> None:
        self.logger = logger
        self.burst = burst
        self.period = period
        self.started = time.monotonic()
        self.logged = 0
        self.suppressed = 0

    def _admit(self) -> bool:
        now = time.monotonic()
        if now - self.started >= self.period:
            if self.suppressed:
                self.logger.warning(
                    "%d more such lines left out in the last %.0f s", self.suppressed, now - self.started
                )
            self.started, self.logged, self.suppressed = now, 0, 0
        if self.logged < self.burst:
            self.logged += 1
            return True
        self.suppressed += 1
        return False

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if self._admit():
            self.logger.warning(msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if self._admit():
            self.logger.info(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any) -> None:
        if self._admit():
            self.logger.exception(msg, *args)
