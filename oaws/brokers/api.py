"""What a broker plugin is: the ``Broker`` it declares, the ``Feed`` it runs.

A broker (Angel One, the simulated market, a recording played back, or a package of
someone else's) registers a ``Broker`` under the ``oaws.brokers`` entry-point group
(``oaws.brokers`` finds it); everything oaws does with a broker goes through that
object, so ``serve``, ``login``, ``instruments``, ``sim`` and the watch's completion know
no broker by name. See docs/adding-a-broker.md.

A feed knows the bus, never the proxy: the bus tells it which instruments are wanted
(``want`` / ``unwant``, already reference-counted across every proxy by ZeroMQ), and it
hands each tick to ``publisher.publish`` as ready-made JSON bytes, once per mode.

A plugin module is imported whenever oaws lists its brokers (``oaws --help`` does), so it
stays light: the ``Broker``'s callables import the heavy parts when they are called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from oaws.bars.aggregator import Bar, Interval
from oaws.instruments import DEFAULT_DEPTH, Instrument
from oaws.protocol.codes import Refused
from oaws.protocol.orders import OrderRequest, OrderRequestError


class Publisher(Protocol):
    def publish(self, instrument: Instrument, mode: int, payload: bytes, depth: int = DEFAULT_DEPTH) -> None:
        """Put one tick (the JSON of SPEC §2) on the bus; a Depth tick of other than five
        levels a side names its ``depth`` (its own topic, ``Instrument.topic``)."""

    def reject(self, instrument: Instrument, mode: int, code: str, message: str, depth: int = DEFAULT_DEPTH) -> None:
        """Tell the proxies that a wanted instrument (at ``depth``, for Depth) cannot be served
        (SYMBOL_NOT_FOUND, INVALID_DEPTH, LIMIT_EXCEEDED...)."""

    def publish_order(self, user_id: str, message: bytes) -> None:
        """Put one ``order_update`` message (``oaws.protocol.orders``) on the bus, under
        ``{BROKER}_{USER_ID}_orders``."""


class BrokerError(Exception):
    """A broker cannot do what was asked (log in, find its master, make its feed); the
    message is one sentence for the user, never a traceback."""


class FeedError(BrokerError):
    """A feed cannot be made from its settings (no credentials, no recording...)."""


class HistoryError(BrokerError):
    """The broker gives no candles for what was asked; one sentence for the user."""


#: An instrument a feed cannot serve: ``Rejection(code, message)`` with the client
#: protocol's error code. The same class as the protocol's, so a feed's ``check`` can be
#: handed to the protocol as it is.
Rejection = Refused


class Feed(ABC):
    """A source of ticks. Subclasses fill in ``run``, ``want`` and ``unwant``.

    A feed whose ``depths`` offer more than five levels a side is told the ``depth`` of a
    Depth stream as a third argument of ``want``, ``unwant`` and ``resend`` (and publishes
    it with ``depth=``); one that offers only five is called without it, as it declares."""

    name: str = "feed"
    #: the ``depth`` values a client may ask for with this feed
    depths: tuple[int, ...] = (5,)
    #: whether it publishes order updates (``publisher.publish_order``)
    orders: bool = False

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
    def want(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        """Some proxy now wants ``instrument`` at ``mode`` (and ``depth``); publish its latest tick soon."""

    @abstractmethod
    def unwant(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:
        """No proxy wants ``instrument`` at ``mode`` (and ``depth``) any longer."""

    def resend(self, instrument: Instrument, mode: int, depth: int = DEFAULT_DEPTH) -> None:  # noqa: B027 - optional hook
        """Another proxy joined an instrument already wanted: publish its latest tick again."""

    def order(self, request: OrderRequest) -> str:
        """Place or cancel an order (``oaws sim order``); the order's id. Raises
        OrderRequestError (one sentence) when it cannot; a feed with no orders of its own
        refuses every request."""
        raise OrderRequestError(f"the {self.name} feed takes no orders")

    def status(self) -> dict[str, object]:
        """Figures for ``get_broker_info`` and ``oaws status``."""
        return {"adapter_status": "connected"}

    #: whether ``history`` gives candles (``oaws history``, the watch's chart)
    history_intervals: tuple[str, ...] = ()

    def history(self, instrument: Instrument, interval: Interval, start_ms: int, end_ms: int) -> list[Bar]:
        """The broker's candles of ``instrument`` at ``interval`` whose bucket starts in
        [``start_ms``, ``end_ms``), oldest first, each ``final`` but the one still forming.

        Called in a worker thread (it may block on the broker's REST API, and should keep to
        its rate limits and per-request spans itself). Raises HistoryError (one sentence) when
        it cannot: no history for this broker, an interval it lacks, a refused request."""
        raise HistoryError(f"the {self.name} feed has no history")


#: The settings of ``oaws serve`` a feed may read (``seed``, ``rate``, ``replay``,
#: ``speed``, ``loop``, ``replay_from``, ``replay_to``, ``instruments``...), as data: the
#: broker's ``options`` say which. Its own settings (credentials, URLs) it loads itself.
FeedOptions = Mapping[str, Any]


@dataclass(frozen=True)
class BrokerLimits:
    """What the broker allows, as far as it is known; shown by ``oaws brokers``."""

    #: the ``depth`` values a client may ask for
    depths: tuple[int, ...] = (5,)
    #: (instrument, mode) subscriptions the broker serves at once (None: no known limit)
    subscriptions: int | None = None
    #: upstream connections it allows at once (None: no known limit)
    connections: int | None = None
    #: anything else worth knowing, one sentence
    note: str = ""


class Match(Protocol):
    """One result of ``oaws instruments search``."""

    #: ``SYMBOL:EXCHANGE``, as oaws commands accept it
    instrument: str

    def columns(self) -> dict[str, str]:
        """The table's columns for this result, in order (the first is the instrument)."""
        ...

    def as_dict(self) -> dict[str, Any]:
        """The result for ``--json``."""
        ...


class InstrumentMaster(Protocol):
    """A broker's list of instruments: downloaded, searched, mapped to ``SYMBOL:EXCHANGE``."""

    #: the exchanges ``search --exchange`` accepts
    exchanges: tuple[str, ...]

    def update(self, url: str | None, progress: Callable[[int, int | None], None] | None) -> tuple[Path, int]:
        """Download the master (from ``url``, else the broker's own address) into the cache;
        (where it is, how many instruments). Raises BrokerError with the reason."""
        ...

    def search(self, text: str, exchange: str | None, limit: int, source: str | None) -> list[Match]:
        """Instruments whose symbol or name holds ``text``; ``source`` is a local copy to read instead."""
        ...

    def instruments(self) -> list[str]:
        """Every instrument as ``SYMBOL:EXCHANGE``, for completion; [] (quietly) when there is no master."""
        ...

    # Optional (found with getattr, so a plugin written before it still works):
    #
    #   def options(self, underlying: str) -> list[oaws.options.OptionContract]:
    #       """Every option contract on ``underlying`` (``NIFTY``, ``RELIANCE``) the master lists,
    #       any expiry; [] (quietly) when there is none or no master. The option chain's source."""
    #
    #   def names(self) -> dict[str, str]:
    #       """``SYMBOL:EXCHANGE`` -> the company's or index's name ("RELIANCE INDUSTRIES") where the
    #       master has a name column; {} (quietly) when there is no master. The add dialog finds
    #       instruments by these names; a contract's own spelling comes from ``oaws.names.readable``."""


@dataclass(frozen=True)
class Broker:
    """A broker plugin: what oaws needs to serve it, log in to it, search it and simulate it.

    Only ``name``, ``title`` and ``make_feed`` are required. Every callable is called
    only when used, so that importing the plugin stays cheap.
    """

    #: ``--broker NAME``; lower case, no spaces
    name: str
    #: the broker's own name, for people ("Angel One")
    title: str
    #: makes the feed ``oaws serve --broker NAME`` runs; raises BrokerError (one sentence)
    make_feed: Callable[[FeedOptions], Feed]
    #: one line for ``oaws brokers``
    summary: str = ""
    #: the ``oaws serve`` options its feed reads (keys of FeedOptions)
    options: tuple[str, ...] = ()
    #: ``oaws serve`` options that choose this broker when no ``--broker`` is given (``--replay FILE``)
    selected_by: tuple[str, ...] = ()
    #: its own settings: environment variables and a ``[NAME]`` section of the config file
    settings: Any = None
    #: ``oaws login NAME``: logs in, keeps the session, returns one line for the user. A login that
    #: needs the user's answer (a request token from the broker's web page) takes a keyword
    #: ``ask``: ``ask(prompt) -> str`` shows the prompt and returns the line the user gave (on
    #: stdin; ``--request-token`` reads it without the prompt); ``oaws login`` passes ``ask``
    #: only to a login whose signature accepts it
    login: Callable[..., str] | None = None
    #: ``oaws instruments ... --broker NAME``: its instrument master (made when first used)
    master: Callable[[], InstrumentMaster] | None = None
    #: ``oaws sim NAME`` (and ``oaws NAME-sim``): a command function, its options typer-annotated,
    #: that runs a local simulator of the broker's wire format
    simulator: Callable[..., Any] | None = None
    #: more names for ``oaws sim`` to offer the same simulator under (a family's: ``oaws sim noren``)
    simulator_aliases: tuple[str, ...] = ()
    #: instruments it always knows, for the watch's completion (no I/O, fast)
    symbols: Callable[[], list[str]] | None = None
    limits: BrokerLimits = field(default_factory=BrokerLimits)
