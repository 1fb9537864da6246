"""An option contract as the option chain sees it, whichever broker's master it came from.

A broker's instrument master lists its contracts (``InstrumentMaster.options``, optional);
the chain (``oaws.chain``) groups them by expiry and strike. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

#: the two sides of a strike
CALL, PUT = "CE", "PE"


@dataclass(frozen=True, slots=True, order=True)
class OptionContract:
    #: the underlying's name as OpenAlgo spells it: ``NIFTY``, ``BANKNIFTY``, ``RELIANCE``
    underlying: str
    expiry: date
    strike: float
    #: CE or PE
    right: str
    #: the contract as oaws subscribes to it: OpenAlgo's symbol (``NIFTY29DEC2626000CE``) and exchange (NFO, BFO)
    symbol: str
    exchange: str
    #: shares (or units) a lot
    lot_size: int = 1

    @property
    def instrument(self) -> str:
        return f"{self.symbol}:{self.exchange}"
