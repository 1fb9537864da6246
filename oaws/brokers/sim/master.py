"""The simulated market's instrument master: nothing to download, its listings are its own.

It exists so that ``oaws chain NIFTY`` works on the default broker: ``options`` lists the
contracts of ``oaws.brokers.sim.options`` for today. ``oaws instruments search`` finds the
market's stocks and indices; ``oaws instruments update`` refuses in one sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oaws.brokers.api import BrokerError
from oaws.names import today
from oaws.options import OptionContract


@dataclass(frozen=True, slots=True)
class SimMatch:
    instrument: str

    def columns(self) -> dict[str, str]:
        return {"instrument": self.instrument}

    def as_dict(self) -> dict[str, Any]:
        return {"instrument": self.instrument}


class SimMaster:
    """``oaws.brokers.api.InstrumentMaster`` of the simulated market."""

    exchanges = ("NSE", "BSE", "NSE_INDEX", "BSE_INDEX", "NFO", "BFO")

    def update(self, url: str | None, progress: Callable[[int, int | None], None] | None) -> tuple[Path, int]:
        raise BrokerError("the simulated market has no instrument master to download: it lists its own instruments")

    def search(self, text: str, exchange: str | None, limit: int, source: str | None) -> list[SimMatch]:
        from oaws.brokers.sim import universe

        needle = text.strip().upper()
        if not needle:
            return []
        found = [i for i in universe.symbols() if needle in i.rpartition(":")[0]]
        if exchange is not None:
            found = [i for i in found if i.rpartition(":")[2] == exchange.upper()]
        found.sort(key=lambda i: (i.rpartition(":")[0] != needle, not i.startswith(needle), i))
        return [SimMatch(i) for i in found[:limit]]

    def instruments(self) -> list[str]:
        """None: the market's instruments complete already, through the broker's ``symbols``
        (a master's are the extra completions a downloaded file brings)."""
        return []

    def options(self, underlying: str) -> list[OptionContract]:
        """The options the simulated market lists today on ``underlying`` ([] for one without)."""
        from oaws.brokers.sim import options

        return options.option_contracts(underlying, today())


def master() -> SimMaster:
    return SimMaster()
