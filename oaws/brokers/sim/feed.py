"""The simulated market: a feed that needs no broker account and no network.

It exists so that ``oaws watch`` shows a living market on a fresh install, and so that
tests and screenshots can drive a deterministic one. Prices start near real levels for
the NIFTY 50 stocks and the main indices; any other symbol opens at a price derived from
its name with hashlib, so it is the same in every run and every process.

Each instrument walks on the NSE tick grid (0.05) with its own ``random.Random``, seeded
from the feed's seed and the instrument, so its path depends only on how many ticks it
has made, never on what else is subscribed. Trades arrive with exponential gaps, like a
real market; one scheduler (a heap of next-tick times) serves every wanted instrument,
so hundreds of instruments cost one timer, not one task each. An instrument no longer
wanted keeps its book only among the ``KEEP_IDLE`` most recent: wanted again soon, it goes
on where it was; later, it opens its day afresh (the same opening: it comes from the seed).

``SimFeed.tick`` and ``payload`` are pure and synchronous: they advance the market and
build the JSON without an event loop. ``run`` only decides when to call them.

Hours: with ``hours="exchange"`` (what ``oaws serve`` runs by default) the market follows
each exchange's session (``oaws.sessions``): while an instrument's exchange is closed, in
pre-open or on a holiday, a subscriber gets the snapshot of its last session (its ``ltt``
at that session's close, so a client sees the earlier date) and no further ticks; when the
session opens the instrument opens a new day (the previous close is the last close) and
ticks again. ``hours="always"`` (this class's default: tests, scripts, ``--always-open``)
trades around the clock. The wall clock is injectable (``clock``) for tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import date, datetime

import orjson

from oaws import sessions
from oaws.bars.aggregator import Bar, Interval
from oaws.brokers.api import Feed, HistoryError, Rejection
from oaws.brokers.sim import options, universe
from oaws.brokers.sim.history import INTERVALS as HISTORY_INTERVALS
from oaws.brokers.sim.history import History
from oaws.brokers.sim.orders import USER_ID, Order, OrderBook
from oaws.brokers.sim.universe import NIFTY50
from oaws.config import IST
from oaws.instruments import DEPTH, Instrument
from oaws.names import contract
from oaws.protocol.orders import OrderRequest
from oaws.ticks import DEPTH_LEVELS, DERIVATIVE_EXCHANGES, INDEX_EXCHANGES, at_mode, depth_book, empty_level

log = logging.getLogger(__name__)

#: prices move on a grid of 0.05 rupees; internally a price is an int count of ticks
TICKS_PER_RUPEE = 20
TICK_SIZE = 1 / TICKS_PER_RUPEE

#: the listed stocks above trade on BSE too, at the same level
CASH_EXCHANGES = frozenset({"NSE", "BSE"})

# The walk. Per-trade volatility (a fraction of the price) gives a realistic minute at
# ~3 ticks/s; a slow pull towards the previous close keeps a long run inside its circuits.
STOCK_SIGMA = 8e-5
INDEX_SIGMA = 4e-5
JUMP_CHANCE = 0.01
JUMP_SCALE = 4.0
REVERSION = 5e-5
#: a typical trade, one depth level and a day's turnover, in rupees
TRADE_VALUE = 60_000.0
LEVEL_VALUE = 1_000_000.0
DAY_VALUE = {True: 5e9, False: 5e8}  # keyed by "is a NIFTY 50 stock"


#: ticks due this close together fire in one wake-up of the scheduler (seconds)
BATCH_WINDOW = 0.002
#: a scheduler that fell behind skips ticks older than this instead of bursting them out
MAX_LAG = 1.0
#: books kept of instruments no longer wanted, the most recent first: one wanted again soon
#: (a watchlist switched back) goes on where it was, and churning symbols costs no memory
KEEP_IDLE = 256
#: the hours the simulated market keeps: its exchanges' sessions, or around the clock
HOURS = ("exchange", "always")
#: while instruments wait for their session to open, the scheduler looks at the wall clock
#: at least this often (seconds), whatever the clock did meanwhile (a laptop's suspend)
SESSION_POLL = 60.0


def known_symbols() -> list[str]:
    """The listed instruments but the derivatives, as ``SYMBOL:EXCHANGE``, indices first (for completion)."""
    return universe.symbols()


def _digest(text: str) -> int:
    """A 64-bit number fixed by ``text`` in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _is_listed(instrument: Instrument) -> bool:
    return instrument.exchange in CASH_EXCHANGES and instrument.symbol in NIFTY50


def reference_price(instrument: Instrument, on: date | None = None) -> float:
    """The previous close an instrument opens its day at, on the tick grid.

    A listed instrument (``universe``) opens at its level; any other symbol (served only
    with ``any_symbol``) gets a log-uniform price from its name alone (50 to 5000, indices
    1000 to 50000), the same on every exchange.
    """
    known = universe.reference(instrument, on)
    if known is None:
        known = universe.unlisted_option(instrument, on)
    if known is None:
        low, high = (1000.0, 50000.0) if instrument.exchange in INDEX_EXCHANGES else (50.0, 5000.0)
        known = low * (high / low) ** (_digest(instrument.symbol) / 2**64)
    return max(1, round(known * TICKS_PER_RUPEE)) / TICKS_PER_RUPEE


def _price(ticks: int) -> float:
    # n / 20 is the double nearest to the 2-decimal value, so JSON shows at most 2 decimals
    return ticks / TICKS_PER_RUPEE


class _Book:
    """One instrument's trading day: price walk, totals and order book, in ticks."""

    __slots__ = (
        "buy_total", "close", "closed_ms", "has_oi", "high", "instrument", "is_index", "last", "last_qty",
        "level_mu", "lot", "low", "lower", "ltp", "oi", "option", "open", "order_qty", "prev_oi", "rng", "sell_total",
        "sigma", "trade_mu", "turnover", "unit", "until", "upper", "volume", "week_high", "week_low",
    )  # fmt: skip

    def __init__(self, instrument: Instrument, seed: int, on: date | None = None) -> None:
        self.instrument = instrument
        # An integer seed (not a str or tuple) keeps random.Random independent of PYTHONHASHSEED.
        self.rng = rng = random.Random(_digest(f"{seed}|{instrument.exchange}|{instrument.symbol}"))
        self.is_index = instrument.exchange in INDEX_EXCHANGES
        self.has_oi = instrument.exchange in DERIVATIVE_EXCHANGES
        self.last: dict[str, object] = {}
        #: the wall clock (s) at which its session closes (``follow``: inf, around the clock)
        self.until = math.inf
        #: the close (ms) of the session its state is of, while its exchange is closed
        self.closed_ms: int | None = None
        reference = reference_price(instrument, on)
        close = self.close = round(reference * TICKS_PER_RUPEE)
        #: an option of the calendar (``options``): (its underlying, strike, right, expiry), priced from it
        self.option = _option_of(instrument, on or datetime.now(IST).date()) if self.has_oi else None
        self.lot = options.UNDERLYINGS[_base(instrument)].lot_size if self.option is not None else 1
        self._circuits()
        self.sigma = INDEX_SIGMA if self.is_index else STOCK_SIGMA
        # Deeper levels of a high-priced stock sit several ticks apart, as on the exchange.
        self.unit = max(1, round(close * 2e-5))
        self.trade_mu = math.log(max(1.0, TRADE_VALUE / reference))
        self.level_mu = math.log(max(1.0, LEVEL_VALUE / reference))
        # a resting order is a few trades' worth
        self.order_qty = 2 * math.exp(self.trade_mu)

        # The day is already under way when the feed first sees an instrument.
        self.open = self._clamp(round(close * math.exp(rng.gauss(0.0, 0.004))))
        self.ltp = self._clamp(round(self.open * math.exp(rng.gauss(0.0, 0.005))))
        self.high = self._clamp(round(max(self.open, self.ltp) * (1 + abs(rng.gauss(0.0, 0.003)))))
        self.low = self._clamp(round(min(self.open, self.ltp) * (1 - abs(rng.gauss(0.0, 0.003)))))
        # The 52-week range and the previous session's OI come from a generator of their own,
        # so that the price path is the one it was before they existed.
        side = random.Random(_digest(f"{seed}|year|{instrument.exchange}|{instrument.symbol}"))
        self.week_high = max(self.high, round(self.close * (1 + side.uniform(0.03, 0.6))))
        self.week_low = min(self.low, max(1, round(self.close * (1 - side.uniform(0.03, 0.4)))))
        if self.is_index:
            self.volume = self.last_qty = self.buy_total = self.sell_total = self.oi = self.prev_oi = 0
            self.turnover = 0.0
            return
        self.volume = max(1, int(rng.uniform(0.2, 0.8) * DAY_VALUE[_is_listed(instrument)] / reference))
        self.turnover = self.volume * rng.uniform(self.low, self.high)
        self.last_qty = self._trade_qty()
        level = math.exp(self.level_mu)
        self.buy_total = int(level * rng.uniform(150, 400))
        self.sell_total = int(level * rng.uniform(150, 400))
        if self.option is not None:  # traded in lots, most near the money
            self.level_mu = math.log(self.lot * 10)
            self.order_qty = 2 * self.lot
            self.volume = self.lot * max(1, int(rng.uniform(200, 5000) * _near_money(self.option)))
            self.buy_total = self.volume // 10 + self.lot
            self.sell_total = self.volume // 10 + self.lot
        self.oi = int(self.volume * rng.uniform(0.8, 2.5)) if self.has_oi else 0
        self.prev_oi = max(1, round(self.oi * side.uniform(0.85, 1.15))) if self.has_oi else 0

    def _circuits(self) -> None:
        close = self.close
        if self.option is not None:  # an option follows its underlying wherever it goes
            self.upper, self.lower = 10**9, 1
        elif self.is_index:
            self.upper = self.lower = 0
        else:
            band = 0.10 if _is_listed(self.instrument) else 0.20
            self.upper = math.floor(close * (1 + band))
            self.lower = max(1, math.ceil(close * (1 - band)))

    def new_day(self, until: float) -> None:
        """The session opens: yesterday's last price is the previous close, and a new day
        starts from an opening price near it (the opening auction's volume already traded)."""
        rng = self.rng
        self.close = self.ltp
        self._circuits()
        self.open = self.ltp = self.high = self.low = self._clamp(round(self.close * math.exp(rng.gauss(0.0, 0.004))))
        self.week_high = max(self.week_high, self.open)
        self.week_low = min(self.week_low, self.open)
        self.until, self.closed_ms = until, None
        if self.is_index:
            return
        reference = _price(self.close)
        self.volume = max(1, int(rng.uniform(0.005, 0.02) * DAY_VALUE[_is_listed(self.instrument)] / reference))
        self.turnover = self.volume * self.open
        self.last_qty = self._trade_qty()
        if self.has_oi:
            self.prev_oi = self.oi

    def _clamp(self, ticks: int) -> int:
        if self.is_index:
            return max(1, ticks)
        return min(self.upper, max(self.lower, ticks))

    def _trade_qty(self) -> int:
        if self.lot > 1:
            return self.lot * (1 + int(self.rng.lognormvariate(0.5, 0.9)))
        return 1 + int(self.rng.lognormvariate(self.trade_mu, 1.1))

    def step(self) -> None:
        """One trade: a move of the price (often none), then the day's totals."""
        rng = self.rng
        sigma = self.sigma * self.ltp
        if rng.random() < JUMP_CHANCE:
            sigma *= JUMP_SCALE
        drift = REVERSION * (self.close - self.ltp)
        self.ltp = ltp = self._clamp(self.ltp + round(rng.gauss(drift, sigma)))
        if ltp > self.high:
            self.high = ltp
            if ltp > self.week_high:
                self.week_high = ltp
        elif ltp < self.low:
            self.low = ltp
            if ltp < self.week_low:
                self.week_low = ltp
        if self.is_index:
            return
        qty = self.last_qty = self._trade_qty()
        self.volume += qty
        self.turnover += qty * ltp
        self.buy_total = max(1, round(self.buy_total * (1 + rng.gauss(0.0, 0.004))))
        self.sell_total = max(1, round(self.sell_total * (1 + rng.gauss(0.0, 0.004))))
        if self.has_oi:
            self.oi = max(1, self.oi + round(rng.gauss(0.0, qty)))

    def _level(self, ticks: int) -> dict[str, object]:
        rng = self.rng
        quantity = 1 + int(rng.lognormvariate(self.level_mu, 0.9))
        orders = max(1, min(quantity, round(quantity / self.order_qty * rng.uniform(0.5, 1.5))))
        return {"price": _price(ticks), "quantity": quantity, "orders": orders}

    def _depth(self) -> dict[str, list[dict[str, object]]]:
        if self.is_index:
            return depth_book((), ())
        rng, unit = self.rng, self.unit
        # best bid < ltp <= best ask: the last trade took the ask, or emptied it
        bid = self.ltp - unit * (2 if rng.random() < 0.15 else 1)
        ask = self.ltp + (unit if rng.random() < 0.5 else 0)
        buy: list[dict[str, object]] = []
        sell: list[dict[str, object]] = []
        for _ in range(DEPTH_LEVELS):
            # beyond a circuit nobody can quote: the exchange shows an empty level
            buy.append(self._level(bid) if bid >= self.lower else empty_level())
            sell.append(self._level(ask) if ask <= self.upper else empty_level())
            bid -= unit * (2 if rng.random() < 0.3 else 1)
            ask += unit * (2 if rng.random() < 0.3 else 1)
        return {"buy": buy, "sell": sell}

    def snapshot(self, seq: int, now_ns: int) -> dict[str, object]:
        """The full (depth mode) tick of the current state."""
        timestamp = now_ns // 1_000_000
        ltp, close = _price(self.ltp), _price(self.close)
        change = round(ltp - close, 2)
        volume = self.volume
        lag = self.rng.randrange(2, 40)
        tick = {
            "symbol": self.instrument.symbol,
            "exchange": self.instrument.exchange,
            "mode": DEPTH,
            "seq": seq,
            "ltp": ltp,
            "ltt": timestamp - lag if self.closed_ms is None else self.closed_ms,
            "timestamp": timestamp,
            "ts_ns": now_ns,
            "open": _price(self.open),
            "high": _price(self.high),
            "low": _price(self.low),
            "close": close,
            "volume": volume,
            "last_trade_quantity": self.last_qty,
            "average_price": round(self.turnover / volume / TICKS_PER_RUPEE, 2) if volume else 0.0,
            "total_buy_quantity": self.buy_total,
            "total_sell_quantity": self.sell_total,
            "change": change,
            "change_percent": round(change / close * 100, 2),
            "last_quantity": self.last_qty,
            "oi": self.oi,
            "upper_circuit": _price(self.upper),
            "lower_circuit": _price(self.lower),
            "depth": self._depth(),
        }
        if not self.is_index:
            tick["week_52_high"] = _price(self.week_high)
            tick["week_52_low"] = _price(self.week_low)
            if self.has_oi:
                tick["prev_oi"] = self.prev_oi
                tick["oi_change_percent"] = round((self.oi - self.prev_oi) / self.prev_oi * 100, 2)
        self.last = tick
        return tick


def _base(instrument: Instrument) -> str:
    parts = contract(instrument.symbol)
    return parts.base if parts is not None else ""


def underlying_name(book: _Book) -> str:
    return _base(book.instrument)


def _option_of(instrument: Instrument, on: date) -> tuple[Instrument, float, str, date] | None:
    """(underlying, strike, right, expiry) of a calendar option (``options``); None for anything else."""
    parts = contract(instrument.symbol)
    if parts is None or parts.kind == "FUT" or not options.has_options(parts.base) or float(parts.strike) <= 0:
        return None
    if options.UNDERLYINGS[parts.base].exchange != instrument.exchange:
        return None
    if parts.expiry < on:  # expired (served with --any-symbol): a walk of its own
        return None
    return options.underlying_of(parts.base), float(parts.strike), parts.kind, parts.expiry


def _near_money(option: tuple[Instrument, float, str, date]) -> float:
    """A weight that peaks at the money (volume and OI gather there)."""
    underlying, strike, _, _ = option
    spot = universe.reference(underlying) or strike
    return 0.03 + math.exp(-((math.log(strike / spot) / 0.04) ** 2))


def payload(state: dict[str, object], mode: int) -> bytes:
    """The JSON of ``state`` (a full tick) at ``mode``: only that mode's fields (SPEC §2)."""
    return orjson.dumps(at_mode(state, mode))


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class SimFeed(Feed):
    """A simulated market for every symbol on every exchange (see the module docstring)."""

    name = "sim"
    orders = True

    def __init__(
        self,
        *,
        seed: int | None = None,
        rate: float = 3.0,
        hours: str = "always",
        clock: Callable[[], float] | None = None,
        any_symbol: bool = True,
    ) -> None:
        super().__init__()
        if not (isinstance(rate, int | float) and rate > 0 and math.isfinite(rate)):
            raise ValueError(f"the simulated tick rate must be a positive number of ticks per second, not {rate!r}")
        if hours not in HOURS:
            raise ValueError(f"the simulated market's hours are {' or '.join(HOURS)}, not {hours!r}")
        #: "exchange": each exchange's session; "always": around the clock
        self.hours = hours
        #: trade any symbol (priced from its name), not only the listed ones (``universe``)
        self.any_symbol = any_symbol
        #: index aliases wanted (``NIFTY 50:NSE_INDEX``), by the index they mirror, with their modes
        self._aliases: dict[Instrument, dict[Instrument, set[int]]] = {}
        #: the modes wanted of each instrument by its own name (``wanted`` adds its aliases')
        self._direct: dict[Instrument, set[int]] = {}
        self._follow = hours == "exchange"
        #: the wall clock (seconds since the epoch) the sessions and the ticks' times are of
        self._clock = clock or time.time
        self._clock_ns = time.time_ns if clock is None else (lambda: int(clock() * 1e9))
        #: instruments waiting for their session to open: (wall-clock time, token, instrument)
        self._wakes: list[tuple[float, int, Instrument]] = []
        #: the seed in use; log it to replay a session without one
        self.seed = time.time_ns() if seed is None else seed
        self.rate = float(rate)
        self.seq = 0
        #: instruments some proxy wants, with the modes wanted
        self.wanted: dict[Instrument, set[int]] = {}
        self._books: dict[Instrument, _Book] = {}
        #: instruments with a book but no mode wanted, oldest first (at most ``KEEP_IDLE``)
        self._idle: dict[Instrument, None] = {}
        # Tick times come from their own generator so that they never shift a price path.
        self._schedule_rng = random.Random(self.seed)
        self._heap: list[tuple[float, int, Instrument]] = []
        self._tokens: dict[Instrument, int] = {}
        self._counter = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._pending: set[tuple[Instrument, int]] = set()
        #: the underlyings of options that walk without a subscriber, with when they last moved
        self._driven: dict[Instrument, float] = {}
        #: the orders users placed (``oaws sim order``)
        self.order_book = OrderBook()
        #: the histories asked for, by instrument (a past day is drawn once)
        self._histories: dict[Instrument, History] = {}

    # The market, without I/O ----------------------------------------------------------
    def tick(self, instrument: Instrument, now_ns: int | None = None) -> dict[str, object]:
        """Advance ``instrument`` by one trade and return its full depth-mode tick.

        The first call opens the instrument's day instead of trading. ``now_ns`` fixes the
        clock (``timestamp``, ``ts_ns``, ``ltt``) for reproducible output.
        """
        book = self._books.get(instrument)
        if book is None:
            book = self._books[instrument] = _Book(instrument, self.seed, self._today(now_ns))
            if self._follow:
                self._settle(book)
            if instrument not in self.wanted:  # ticked for an order, or driven without the bus
                self._rest(instrument)
        else:
            book.step()
        if book.option is not None:
            self._reprice(book, self._clock() if now_ns is None else now_ns / 1e9)
        self.seq += 1
        return book.snapshot(self.seq, self._clock_ns() if now_ns is None else now_ns)

    def _today(self, now_ns: int | None) -> date:
        """The day at the exchange by the feed's clock (or ``now_ns``)."""
        return datetime.fromtimestamp(self._clock() if now_ns is None else now_ns / 1e9, IST).date()

    def _reprice(self, book: _Book, now: float) -> None:
        """An option's price: Black-Scholes on the smile (``options``) from its underlying's
        last price at ``now`` (Unix time). An underlying nobody subscribed to walks along, at
        the feed's rate."""
        assert book.option is not None
        underlying, strike, right, expiry = book.option
        spot_book = self._books.get(underlying)
        if spot_book is None:
            spot_book = self._books[underlying] = _Book(underlying, self.seed, self._today(int(now * 1e9)))
            if self._follow:
                self._settle(spot_book)
            if underlying not in self.wanted:
                self._rest(underlying)
            self._driven[underlying] = now
        elif underlying not in self.wanted and now - self._driven.setdefault(underlying, now) >= 1 / self.rate:
            spot_book.step()
            self._driven[underlying] = now
        worth = options.price(underlying_name(book), right, _price(spot_book.ltp), strike, expiry, now, universe.RATE)
        book.ltp = ltp = max(1, round(worth * TICKS_PER_RUPEE))
        book.high = max(book.high, ltp)
        book.low = min(book.low, ltp)
        book.week_high = max(book.week_high, ltp)
        book.week_low = min(book.week_low, ltp)

    # The sessions --------------------------------------------------------------------
    def _settle(self, book: _Book) -> None:
        """A new book: its exchange's session now says whether its day is today's (open) or
        the last session's (closed: its ticks say that session's close)."""
        now = datetime.fromtimestamp(self._clock(), IST)
        exchange = book.instrument.exchange
        state = sessions.state(exchange, now)
        if state.state == sessions.OPEN:
            book.until = state.closes_at.timestamp() if state.closes_at is not None else math.inf
        else:
            book.until = 0.0
            closed = sessions.previous_close(exchange, now)
            book.closed_ms = int(closed.timestamp() * 1000) if closed is not None else None

    def _close(self, instrument: Instrument, book: _Book, wall: float) -> None:
        """``instrument``'s session has closed: no more ticks until it opens again."""
        if book.closed_ms is None:
            book.closed_ms = int(book.until * 1000)
        book.until = 0.0
        state = sessions.state(instrument.exchange, datetime.fromtimestamp(wall, IST))
        opens = state.opens_at.timestamp() if state.opens_at is not None else wall + SESSION_POLL
        if state.state == sessions.OPEN:  # a clock that jumped back into a session
            opens = wall
        token = next(self._counter)
        self._tokens[instrument] = token
        heapq.heappush(self._wakes, (opens, token, instrument))

    def follow_session(self, wall: float | None = None) -> int:
        """Open the day of every waiting instrument whose session has opened by ``wall``
        (default: the clock), publish its first tick and schedule its trades; returns how
        many opened. ``run`` calls it; a test with a clock of its own may too."""
        wall = self._clock() if wall is None else wall
        wakes, tokens, opened = self._wakes, self._tokens, 0
        while wakes and wakes[0][0] <= wall:
            _, token, instrument = heapq.heappop(wakes)
            if tokens.get(instrument) != token:
                continue
            book = self._books.get(instrument)
            if book is None:
                continue
            state = sessions.state(instrument.exchange, datetime.fromtimestamp(wall, IST))
            if state.state != sessions.OPEN:  # woken early (pre-open, a clock that moved): later
                self._close(instrument, book, wall)
                continue
            book.new_day(state.closes_at.timestamp() if state.closes_at is not None else math.inf)
            opened += 1
            self.seq += 1
            self._publish(instrument, book.snapshot(self.seq, self._clock_ns()))
            self._schedule(instrument, self._now())
        return opened

    def latest(self, instrument: Instrument) -> dict[str, object] | None:
        """The last tick made for ``instrument``, or None if it never traded."""
        book = self._books.get(universe.canonical(instrument))
        if book is None or book.last is None:
            return None
        return book.last if book.instrument == instrument else {**book.last, "symbol": instrument.symbol}

    payload = staticmethod(payload)

    # The past ------------------------------------------------------------------------
    history_intervals = HISTORY_INTERVALS

    def history(self, instrument: Instrument, interval: Interval, start_ms: int, end_ms: int) -> list[Bar]:
        """Candles consistent with the live book (``oaws.brokers.sim.history``): the last
        session before the current one closes at the tick's ``close``, the current one opens
        at its ``open``. Reads the book without trading it."""
        if interval.name not in HISTORY_INTERVALS:
            raise HistoryError(f"the simulated market has no {interval} candles")
        try:
            self.check(instrument)
        except Rejection as exc:
            raise HistoryError(exc.message) from None
        index = universe.canonical(instrument)
        book = self._books.get(index)
        if book is None:  # not ticked yet: the book it would open with
            book = _Book(index, self.seed)
            if self._follow:
                self._settle(book)
        scale = 0.0 if book.is_index else DAY_VALUE[_is_listed(index)] / _price(book.close) / 375 * 0.4
        now_ms = int(self._clock() * 1000)
        past = self._histories.get(index)
        if past is None or not past.reusable(book.close, book.open, now_ms):
            past = self._histories[index] = History(
                index.symbol, index.exchange, self.seed, book.close, book.open, now_ms, scale
            )
        bars = past.candles(interval, start_ms, end_ms)
        if index != instrument:
            for bar in bars:
                bar.symbol, bar.exchange = instrument.symbol, instrument.exchange
        return bars

    # The bus -------------------------------------------------------------------------
    def check(self, instrument: Instrument) -> None:
        if not self.any_symbol and not universe.listed(instrument):
            raise Rejection(
                "SYMBOL_NOT_FOUND",
                f"the simulated market does not list {instrument} (it lists about 140 NSE and BSE stocks, "
                "the main indices, their futures and options, MCX and currency futures; "
                "`oaws serve --any-symbol` trades any symbol)",
            )

    def want(self, instrument: Instrument, mode: int) -> None:
        index = universe.canonical(instrument)
        if index != instrument:  # an alias: it mirrors the index's ticks under its own name
            self._aliases.setdefault(index, {}).setdefault(instrument, set()).add(mode)
            self._want(index, mode)
            self._publish_soon(instrument, mode)
            return
        self._direct.setdefault(instrument, set()).add(mode)
        self._want(instrument, mode)

    def unwant(self, instrument: Instrument, mode: int) -> None:
        index = universe.canonical(instrument)
        if index != instrument:
            mirrors = self._aliases.get(index, {})
            mirrors.get(instrument, set()).discard(mode)
            if not mirrors.get(instrument, True):
                del mirrors[instrument]
            if not mirrors:
                self._aliases.pop(index, None)
        else:
            direct = self._direct.get(instrument, set())
            direct.discard(mode)
            if not direct:
                self._direct.pop(instrument, None)
        still = mode in self._direct.get(index, ()) or any(mode in m for m in self._aliases.get(index, {}).values())
        if not still:
            self._unwant(index, mode)

    def _want(self, instrument: Instrument, mode: int) -> None:
        modes = self.wanted.setdefault(instrument, set())
        first = not modes
        modes.add(mode)
        self._idle.pop(instrument, None)
        if first and instrument not in self._books:
            self.tick(instrument)
        self._publish_soon(instrument, mode)  # queued before the scheduler wakes: the held tick goes first
        if first:
            self._schedule(instrument, self._now())
            if self._waiter is not None:
                _wake(self._waiter)

    def _unwant(self, instrument: Instrument, mode: int) -> None:
        modes = self.wanted.get(instrument)
        if modes is None:
            return
        modes.discard(mode)
        if not modes:
            del self.wanted[instrument]
            self._rest(instrument)
            self._tokens.pop(instrument, None)  # its heap entry is now stale
            if len(self._heap) > 2 * len(self._tokens) + 64:  # subscription churn: drop stale entries
                self._heap = [entry for entry in self._heap if self._tokens.get(entry[2]) == entry[1]]
                heapq.heapify(self._heap)

    def _rest(self, instrument: Instrument) -> None:
        """``instrument`` is wanted no more: its book is kept among the ``KEEP_IDLE`` latest."""
        idle = self._idle
        idle[instrument] = None
        while len(idle) > KEEP_IDLE:
            oldest = next(iter(idle))
            del idle[oldest]
            self._books.pop(oldest, None)

    def resend(self, instrument: Instrument, mode: int) -> None:
        self._publish_soon(instrument, mode)

    def status(self) -> dict[str, object]:
        return {"adapter_status": "connected", "instruments": len(self.wanted), "rate": self.rate}

    def _publish_soon(self, instrument: Instrument, mode: int) -> None:
        # After the current callback, so the bus has registered the subscription first.
        # One pending publish serves every subscriber that asked in the meantime.
        key = (instrument, mode)
        if key in self._pending:
            return
        self._pending.add(key)
        try:
            asyncio.get_running_loop().call_soon(self._publish_latest, instrument, mode)
        except RuntimeError:  # driven without a loop (scripts, tests): nothing to wait for
            self._publish_latest(instrument, mode)

    def _publish_latest(self, instrument: Instrument, mode: int) -> None:
        self._pending.discard((instrument, mode))
        index = universe.canonical(instrument)
        wanted = self.wanted.get(index, ()) if index == instrument else self._aliases.get(index, {}).get(instrument, ())
        if self.publisher is None or mode not in wanted:
            return
        state = self.latest(instrument)
        if state is not None:
            self.publisher.publish(instrument, mode, payload(state, mode))

    def _publish(self, instrument: Instrument, state: dict[str, object]) -> None:
        """One new tick of ``instrument`` to every mode wanted of it, and of the aliases that mirror it."""
        publisher = self.publisher
        if publisher is None:
            return
        for mode in sorted(self.wanted.get(instrument, ())):
            publisher.publish(instrument, mode, payload(state, mode))
        mirrors = self._aliases.get(instrument)
        if mirrors:
            for alias, modes in mirrors.items():
                named = {**state, "symbol": alias.symbol}
                for mode in sorted(modes):
                    publisher.publish(alias, mode, payload(named, mode))

    # Orders ------------------------------------------------------------------------
    def order(self, request: OrderRequest) -> str:
        """Place or cancel an order at the market's current price; its updates go on the bus."""
        if request.action == "CANCEL":
            changed = self.order_book.cancel(request.orderid)
        else:
            assert request.instrument is not None
            state = self.latest(request.instrument) or self.tick(request.instrument)
            ltp, lower, upper = (float(state[k]) for k in ("ltp", "lower_circuit", "upper_circuit"))  # type: ignore[arg-type]
            changed = self.order_book.place(request, ltp, lower, upper)
        self._publish_orders(changed)
        return changed[0].orderid

    def _publish_orders(self, changed: list[Order]) -> None:
        if self.publisher is None:
            return
        for order in changed:
            self.publisher.publish_order(USER_ID, orjson.dumps(order.message(self.name)))

    # The scheduler -------------------------------------------------------------------
    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _schedule(self, instrument: Instrument, after: float) -> None:
        token = next(self._counter)
        self._tokens[instrument] = token
        heapq.heappush(self._heap, (after + self._schedule_rng.expovariate(self.rate), token, instrument))

    def _fire_due(self, now: float) -> None:
        heap, tokens = self._heap, self._tokens
        horizon = now + BATCH_WINDOW
        follow, books = self._follow, self._books
        wall = self._clock() if follow else 0.0
        while heap and heap[0][0] <= horizon:
            due, token, instrument = heapq.heappop(heap)
            if tokens.get(instrument) != token:
                continue
            if follow and books[instrument].until <= wall:
                self._close(instrument, books[instrument], wall)
                continue
            state = self.tick(instrument)
            self._publish(instrument, state)
            if instrument in self.order_book.resting:
                self._publish_orders(self.order_book.trade(instrument, state["ltp"]))  # type: ignore[arg-type]
            self._schedule(instrument, max(due, now - MAX_LAG))

    async def _sleep(self, delay: float | None) -> None:
        """Sleep ``delay`` seconds (None: forever), or until ``want`` adds an instrument."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(delay, _wake, waiter) if delay is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        log.info(
            "simulated market: seed %d, %.3g ticks/s per instrument, %s",
            self.seed,
            self.rate,
            "following the exchanges' sessions" if self._follow else "around the clock",
        )
        # Instruments wanted before the loop ran were scheduled on another clock.
        self._heap.clear()
        now = loop.time()
        for instrument in self.wanted:
            self._schedule(instrument, now)
        if not sessions.loaded():  # the sessions, and the options' expiry calendar
            await asyncio.to_thread(sessions.load)  # most of a second, once: not on the loop
        try:
            while True:
                self._fire_due(loop.time())
                if self._wakes:
                    self.follow_session()
                delay = self._heap[0][0] - loop.time() if self._heap else None
                if self._wakes:
                    waking = min(SESSION_POLL, max(0.0, self._wakes[0][0] - self._clock()))
                    delay = waking if delay is None else min(delay, waking)
                await self._sleep(delay)
        finally:
            self._loop = None
