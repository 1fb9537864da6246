"""The one interface every feed (sim, replay, angel) implements.

A feed knows the bus, never the proxy: the bus tells it which instruments are wanted
(``want`` / ``unwant``, already reference-counted across every proxy by ZeroMQ), and it
hands each tick to ``publisher.publish`` as ready-made JSON bytes, once per mode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from oaws.instruments import Instrument
from oaws.protocol.codes import Refused


class Publisher(Protocol):
    def publish(self, instrument: Instrument, mode: int, payload: bytes) -> None:
        """Put one tick (the JSON of SPEC §2) on the bus."""

    def reject(self, instrument: Instrument, mode: int, code: str, message: str) -> None:
        """Tell the proxies that a wanted instrument cannot be served (SYMBOL_NOT_FOUND...)."""


class FeedError(Exception):
    """A feed cannot be made from its settings (no credentials, no recording...); one sentence."""


#: An instrument a feed cannot serve: ``Rejection(code, message)`` with the client
#: protocol's error code. The same class as the protocol's, so a feed's ``check`` can be
#: handed to the protocol as it is.
Rejection = Refused


class Feed(ABC):
    """A source of ticks. Subclasses fill in ``run``, ``want`` and ``unwant``."""

    name: str = "feed"
    #: the ``depth`` values a client may ask for with this feed
    depths: tuple[int, ...] = (5,)

    def __init__(self) -> None:
        self.publisher: Publisher | None = None

    def attach(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def check(self, instrument: Instrument) -> None:  # noqa: B027 - optional hook, accepts by default
        """Raise Rejection if this feed can never serve ``instrument`` (no I/O)."""

    @abstractmethod
    async def run(self) -> None:
        """Produce ticks until cancelled."""

    @abstractmethod
    def want(self, instrument: Instrument, mode: int) -> None:
        """Some proxy now wants ``instrument`` at ``mode``; publish its latest tick soon."""

    @abstractmethod
    def unwant(self, instrument: Instrument, mode: int) -> None:
        """No proxy wants ``instrument`` at ``mode`` any longer."""

    def resend(self, instrument: Instrument, mode: int) -> None:  # noqa: B027 - optional hook
        """Another proxy joined an instrument already wanted: publish its latest tick again."""

    def status(self) -> dict[str, object]:
        """Figures for ``get_broker_info`` and ``oaws status``."""
        return {"adapter_status": "connected"}
