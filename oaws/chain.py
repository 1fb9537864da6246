"""The option chain of one underlying: its expiries, the strikes around the money, and per
strike and side the prices, open interest, implied volatility and greeks (docs/chain.md).

Pure computation, no I/O: a broker's instrument master lists the contracts
(``InstrumentMaster.options``), the caller feeds ticks in (``Chain.update``) and subscribes
what ``Chain.wanted`` / ``Chain.moved`` say, and ``Chain.view`` is what a screen or
``oaws chain --json`` shows.

Implied volatility and greeks come from vollib (Jäckel's "Let's Be Rational" solver and the
analytical Black-Scholes-Merton greeks), never from a solver of our own. Units are
vollib's: delta and gamma per rupee of the underlying, theta in rupees per calendar day,
vega in rupees per 1 % (one volatility point) of volatility; IV as a fraction (0.14 is 14 %).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from oaws.config import IST
from oaws.instruments import Instrument
from oaws.options import CALL, PUT, OptionContract

#: the risk-free rate (continuously compounded, a year) when the config gives none: about
#: the rupee's 91-day treasury bill yield of recent years, and what the simulated market
#: prices its options with, so that the sim's IV comes back as the smile that priced it
DEFAULT_RATE = 0.07
#: the dividend yield when the config gives none: index options here are mostly weeklies,
#: over which an index's yield (about 1 % a year) moves a price by less than a tick
DEFAULT_DIVIDEND = 0.0
#: strikes each side of the ATM strike
DEFAULT_STRIKES = 10

#: the hour an expiry's contracts stop trading (IST): time to expiry runs to it
EXPIRY_CLOSE = (15, 30)
_YEAR_SECONDS = 365 * 86400

#: the window moves to a new ATM strike only when the underlying is this fraction of the
#: gap between strikes past the midpoint, so that it does not flap there
HYSTERESIS = 0.1

#: the indices with options and where their prices come from (NSE_INDEX, BSE_INDEX)
INDEX_SPOTS: Mapping[str, str] = {
    "NIFTY": "NSE_INDEX",
    "BANKNIFTY": "NSE_INDEX",
    "FINNIFTY": "NSE_INDEX",
    "MIDCPNIFTY": "NSE_INDEX",
    "NIFTYNXT50": "NSE_INDEX",
    "SENSEX": "BSE_INDEX",
    "BANKEX": "BSE_INDEX",
    "SENSEX50": "BSE_INDEX",
}

_CACHE_SIZE = 4096


class ChainError(ValueError):
    """The chain cannot be shown as asked (an expiry not listed, a quota exceeded): one sentence."""


def preload() -> None:
    """Import vollib now (its greeks pull in scipy: most of a second), so that the first
    ``Chain.view`` does not pay for it; a screen calls this in a thread when it starts."""
    import vollib.black_scholes_merton.greeks.analytical
    import vollib.black_scholes_merton.implied_volatility  # noqa: F401


def spot_of(underlying: str) -> Instrument:
    """The instrument whose price an option on ``underlying`` follows: an index on
    NSE_INDEX / BSE_INDEX, a stock on NSE."""
    name = underlying.upper()
    return Instrument(name, INDEX_SPOTS.get(name, "NSE"))


def expiry_close(expiry: date) -> datetime:
    """When the contracts of ``expiry`` stop trading: 15:30 IST that day."""
    return datetime(expiry.year, expiry.month, expiry.day, *EXPIRY_CLOSE, tzinfo=IST)


def window_size(strikes: int) -> int:
    """Subscriptions the chain needs at ``strikes`` a side: 2 × (2N + 1) contracts and the underlying."""
    return 2 * (2 * strikes + 1) + 1


def check_quota(needed: int, limit: int | None, in_use: int, *, who: str = "the broker") -> None:
    """Raise ChainError when ``needed`` more subscriptions would not fit in ``limit`` (None:
    no known limit) of which ``in_use`` are taken; ``who`` names the one that limits
    ("Angel One", "the proxy"). The sentence says how many strikes would fit."""
    if limit is None or needed + in_use <= limit:
        return
    free = max(limit - in_use, 0)
    fits = ((free - 1) // 2 - 1) // 2  # the largest N with 2(2N+1) + 1 <= free
    remedy = (
        f"use --strikes {fits} or remove instruments from the watch"
        if fits >= 1
        else "remove instruments from the watch"
    )
    taken = f" of which {in_use} are in use" if in_use else ""
    raise ChainError(f"the chain needs {needed} subscriptions and {who} allows {limit}{taken}; {remedy}")


@dataclass(frozen=True, slots=True)
class Side:
    """One contract of a strike (a call or a put) as the chain shows it; None where unknown."""

    contract: OptionContract
    ltp: float | None = None
    change: float | None = None
    change_percent: float | None = None
    bid: float | None = None
    ask: float | None = None
    volume: int | None = None
    oi: int | None = None
    oi_change: int | None = None
    #: implied volatility, a fraction a year (0.14 is 14 %); None when it cannot be solved
    iv: float | None = None
    #: per rupee of the underlying
    delta: float | None = None
    gamma: float | None = None
    #: rupees per calendar day
    theta: float | None = None
    #: rupees per 1 % (one point) of volatility
    vega: float | None = None
    #: in the money at the underlying's price
    itm: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    """One strike: its call and its put (None where the master lists no such contract)."""

    strike: float
    call: Side | None
    put: Side | None
    #: the strike nearest the underlying's price
    atm: bool = False


@dataclass(frozen=True, slots=True)
class ChainView:
    """The chain of one expiry as it is now: what ``oaws chain`` prints and the chain screen draws."""

    underlying: str
    spot: Instrument
    expiry: date
    #: every expiry listed and not yet expired, nearest first
    expiries: tuple[date, ...]
    #: the underlying's last price (None before its first tick)
    spot_price: float | None
    #: the listed strike nearest the underlying's price (None before its first tick)
    atm: float | None
    #: calendar days to the expiry's close (15:30 IST), with the fraction of the day
    days: float
    #: the same, in years of 365 days: the T of the pricing model
    years: float
    #: put-call ratio by open interest over the strikes shown (None without call OI)
    pcr: float | None
    #: the strike at which the option holders' total payout, by OI, is least (None without OI)
    max_pain: float | None
    rows: tuple[Row, ...]
    rate: float
    dividend: float
    #: the strikes each side of the ATM the window holds
    strikes: int = DEFAULT_STRIKES

    def as_dict(self) -> dict[str, Any]:
        """The view for JSON: dates as ISO text, instruments as ``SYMBOL:EXCHANGE``."""
        body = asdict(self)
        body["spot"] = str(self.spot)
        body["expiry"] = self.expiry.isoformat()
        body["expiries"] = [d.isoformat() for d in self.expiries]
        for row, raw in zip(self.rows, body["rows"], strict=True):
            for name in ("call", "put"):
                side: Side | None = getattr(row, name)
                if side is not None:
                    raw[name]["contract"] = side.contract.instrument
        return body


@dataclass(slots=True)
class _Quote:
    """What the ticks of one contract (or the underlying) have said so far."""

    ltp: float | None = None
    change: float | None = None
    change_percent: float | None = None
    bid: float | None = None
    ask: float | None = None
    volume: int | None = None
    oi: int | None = None
    oi_change: int | None = None
    seen: dict[str, Any] = field(default_factory=dict)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _top(book: Any, side: str) -> float | None:
    """The best price of one side of a depth book; None for an empty level (price 0)."""
    if not isinstance(book, Mapping):
        return None
    levels = book.get(side)
    if not levels:
        return None
    price = _number(levels[0].get("price")) if isinstance(levels[0], Mapping) else None
    return price if price else None


def _absorb(quote: _Quote, tick: Mapping[str, Any]) -> bool:
    """Take what ``tick`` says into ``quote`` (a tick of a lower mode leaves the rest); whether anything changed."""
    before = (quote.ltp, quote.change, quote.bid, quote.ask, quote.volume, quote.oi, quote.oi_change)
    ltp = _number(tick.get("ltp"))
    if ltp is not None:
        quote.ltp = ltp
        close = _number(tick.get("close"))
        moved, pct = _number(tick.get("change")), _number(tick.get("change_percent"))
        if moved is None and close:
            moved, pct = ltp - close, (ltp - close) * 100 / close
        if moved is not None:
            quote.change, quote.change_percent = moved, pct
    if "volume" in tick and _number(tick["volume"]) is not None:
        quote.volume = int(tick["volume"])
    if "depth" in tick:
        quote.bid, quote.ask = _top(tick["depth"], "buy"), _top(tick["depth"], "sell")
    oi = _number(tick.get("oi"))
    if oi is not None:
        quote.oi = int(oi)
        given = _number(tick.get("oi_change"))
        prev = _number(tick.get("prev_oi"))
        pct = _number(tick.get("oi_change_percent"))
        if given is not None:
            quote.oi_change = int(given)
        elif prev is not None:
            quote.oi_change = int(oi - prev)
        elif pct is not None and pct > -100:
            quote.oi_change = round(oi - oi / (1 + pct / 100))
    after = (quote.ltp, quote.change, quote.bid, quote.ask, quote.volume, quote.oi, quote.oi_change)
    return before != after


def price_for_iv(ltp: float | None, bid: float | None, ask: float | None) -> float | None:
    """The price the IV is solved from: the last trade, unless it lies outside the quoted
    spread (a stale trade the market has moved away from) or there is none, when it is the
    bid/ask midpoint. None when there is neither."""
    if bid and ask and ask >= bid and (not ltp or not bid <= ltp <= ask):
        return (bid + ask) / 2
    return ltp if ltp else None


def implied_volatility(
    price: float, spot: float, strike: float, years: float, rate: float, dividend: float, right: str
) -> float | None:
    """Black-Scholes-Merton implied volatility by vollib (Jäckel's "Let's Be Rational"); None
    when there is none: no time left, a price at or below intrinsic value, or above the
    most an option can be worth."""
    if years <= 0 or price <= 0 or spot <= 0 or strike <= 0:
        return None
    from vollib.black_scholes_merton.implied_volatility import implied_volatility as solve

    # the solver's own exceptions (vollib.helpers.exceptions has classes of the same names it never raises)
    from vollib.lets_be_rational import PriceIsAboveMaximum, PriceIsBelowIntrinsic

    try:
        sigma = float(solve(price, spot, strike, years, rate, dividend, "c" if right == CALL else "p"))
    except (PriceIsBelowIntrinsic, PriceIsAboveMaximum, ZeroDivisionError, OverflowError, ValueError):
        return None
    if not math.isfinite(sigma) or sigma <= 0 or sigma > 50:
        return None
    return sigma


def greeks(
    spot: float, strike: float, years: float, rate: float, dividend: float, sigma: float, right: str
) -> tuple[float, float, float, float]:
    """(delta, gamma, theta, vega) by vollib's analytical Black-Scholes-Merton greeks: theta
    in rupees per calendar day, vega in rupees per 1 % of volatility."""
    from vollib.black_scholes_merton.greeks import analytical

    flag = "c" if right == CALL else "p"
    args = (flag, spot, strike, years, rate, sigma, dividend)
    return (
        float(analytical.delta(*args)),
        float(analytical.gamma(*args)),
        float(analytical.theta(*args)),
        float(analytical.vega(*args)),
    )


def max_pain(strikes: Iterable[float], oi: Iterable[tuple[float, str, int]]) -> float | None:
    """The settlement price among ``strikes`` at which the option holders' total payout is
    least: for each candidate X, Σ call OI × max(X − K, 0) + put OI × max(K − X, 0) over
    ``oi`` as (strike K, CE/PE, open interest). None without any OI. Ties go to the lower strike.

    One pass over the sorted strikes with running sums (the payout is piecewise linear in X),
    so a few hundred listed strikes cost no more than a redraw should."""
    calls = sorted((k, n) for k, right, n in oi if n > 0 and right == CALL)
    puts = sorted((k, n) for k, right, n in oi if n > 0 and right == PUT)
    if not calls and not puts:
        return None
    # calls struck at or below X pay X - K: X * (their OI) - (their OI * K), summed as X rises
    call_oi = call_value = 0.0
    # puts struck above X pay K - X: (their OI * K) - X * (their OI), less as X rises
    put_oi = float(sum(n for _, n in puts))
    put_value = float(sum(n * k for k, n in puts))
    i = j = 0
    best: tuple[float, float] | None = None
    for x in sorted(set(strikes)):
        while i < len(calls) and calls[i][0] <= x:
            call_oi += calls[i][1]
            call_value += calls[i][1] * calls[i][0]
            i += 1
        while j < len(puts) and puts[j][0] <= x:
            put_oi -= puts[j][1]
            put_value -= puts[j][1] * puts[j][0]
            j += 1
        pay = (x * call_oi - call_value) + (put_value - x * put_oi)
        if best is None or pay < best[0] - 1e-9 * max(abs(pay), 1.0):
            best = (pay, x)
    return best[1] if best else None


def nearest(strikes: list[float], price: float) -> float:
    """The strike nearest ``price`` (the lower one of two as near); ``strikes`` sorted, not empty."""
    return min(strikes, key=lambda k: (abs(k - price), k))


class Chain:
    """The chain of one underlying, fed by ticks; see the module's docstring.

    ``wanted()`` is the whole set to subscribe (the window's contracts and the underlying)
    and becomes the baseline; ``moved()`` is what to subscribe and unsubscribe since then
    (the window follows the ATM strike, a new expiry or width), and becomes the baseline.
    """

    def __init__(
        self,
        underlying: str,
        spot: Instrument,
        contracts: list[OptionContract],
        *,
        strikes: int = DEFAULT_STRIKES,
        expiry: date | None = None,
        rate: float = DEFAULT_RATE,
        dividend: float = DEFAULT_DIVIDEND,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.underlying = underlying.upper()
        self.spot = spot
        self.rate = rate
        self.dividend = dividend
        self.clock = clock
        self._by_expiry: dict[date, dict[float, dict[str, OptionContract]]] = {}
        self._contract_of: dict[Instrument, OptionContract] = {}
        for c in contracts:
            self._by_expiry.setdefault(c.expiry, {}).setdefault(float(c.strike), {})[c.right] = c
            self._contract_of[Instrument(c.symbol, c.exchange)] = c
        self._grids: dict[date, list[float]] = {}  # each expiry's strikes, sorted
        self._quotes: dict[Instrument, _Quote] = {}
        self._spot_quote = _Quote()
        self._strikes = max(int(strikes), 0)
        self._centre: float | None = None
        self._baseline: set[Instrument] = set()
        self._cache: dict[tuple[Any, ...], tuple[float | None, tuple[float, float, float, float] | None]] = {}
        listed = self.expiries()
        if not listed:
            raise ChainError(f"{self.underlying} has no option contracts that have not expired")
        self._expiry = listed[0]
        if expiry is not None:
            self.set_expiry(expiry)
        self._recentre()
        self._baseline = self._window()

    # -- expiries and the window --------------------------------------------------------

    def expiries(self) -> list[date]:
        """Every listed expiry whose close (15:30 IST) is still ahead, nearest first."""
        now = self.clock()
        return sorted(d for d in self._by_expiry if expiry_close(d).timestamp() > now)

    @property
    def expiry(self) -> date:
        return self._expiry

    @property
    def strikes(self) -> int:
        return self._strikes

    def set_expiry(self, expiry: date) -> None:
        """Show ``expiry``; ChainError (listing the valid ones) when it is not listed or has expired."""
        listed = self.expiries()
        if expiry not in listed:
            valid = ", ".join(d.isoformat() for d in listed)
            raise ChainError(f"{self.underlying} has no expiry on {expiry.isoformat()}; the expiries are {valid}")
        self._expiry = expiry
        self._centre = None
        self._recentre()

    def set_strikes(self, n: int) -> None:
        """Show ``n`` strikes each side of the ATM strike."""
        if n < 0:
            raise ChainError(f"the chain shows 0 or more strikes each side of the money, not {n}")
        self._strikes = n

    def _grid(self) -> list[float]:
        grid = self._grids.get(self._expiry)
        if grid is None:
            grid = self._grids[self._expiry] = sorted(self._by_expiry[self._expiry])
        return grid

    def _recentre(self) -> bool:
        """Move the window's centre to the ATM strike, with hysteresis; whether it moved."""
        grid = self._grid()
        price = self._spot_quote.ltp
        if price is None:
            centre = self._centre if self._centre in grid else grid[len(grid) // 2]
        elif self._centre not in grid:
            centre = nearest(grid, price)
        else:
            centre = self._centre
            target = nearest(grid, price)
            if target != centre:
                # move only when the price is nearer the new strike by a margin of the gap
                gap = abs(target - centre) / max(abs(grid.index(target) - grid.index(centre)), 1)
                if abs(price - centre) - abs(price - target) > 2 * HYSTERESIS * gap:
                    centre = target
        moved = centre != self._centre
        self._centre = centre
        return moved

    def _window_strikes(self) -> list[float]:
        grid = self._grid()
        i = grid.index(self._centre) if self._centre in grid else len(grid) // 2
        return grid[max(i - self._strikes, 0) : i + self._strikes + 1]

    def _window(self) -> set[Instrument]:
        chain = self._by_expiry[self._expiry]
        out = {self.spot}
        for k in self._window_strikes():
            for c in chain[k].values():
                out.add(Instrument(c.symbol, c.exchange))
        return out

    def wanted(self) -> set[Instrument]:
        """Everything to subscribe now: the window's contracts (2 × (2N + 1) where the grid
        has them) and the underlying. It becomes the baseline of ``moved()``."""
        self._recentre()
        self._baseline = self._window()
        return set(self._baseline)

    def moved(self) -> tuple[set[Instrument], set[Instrument]]:
        """(to subscribe, to unsubscribe) since the last ``wanted()`` or ``moved()``."""
        self._recentre()
        now = self._window()
        added, removed = now - self._baseline, self._baseline - now
        self._baseline = now
        return added, removed

    # -- ticks ------------------------------------------------------------------------------

    def update(self, tick: Mapping[str, Any]) -> bool:
        """Take a tick of the underlying or of a contract; whether the view changed."""
        symbol, exchange = tick.get("symbol"), tick.get("exchange")
        if not isinstance(symbol, str) or not isinstance(exchange, str):
            return False
        key = Instrument(symbol, exchange)
        if key == self.spot:
            changed = _absorb(self._spot_quote, tick)
            self._recentre()
            return changed
        contract = self._contract_of.get(key)
        if contract is None:
            return False
        quote = self._quotes.get(key)
        if quote is None:
            quote = self._quotes[key] = _Quote()
        changed = _absorb(quote, tick)
        return changed and contract.expiry == self._expiry and float(contract.strike) in self._window_strikes()

    # -- the view ---------------------------------------------------------------------------

    def _years(self, now: float) -> float:
        return max(expiry_close(self._expiry).timestamp() - now, 0.0) / _YEAR_SECONDS

    def _solve(
        self, contract: OptionContract, price: float | None, spot: float | None, now: float
    ) -> tuple[float | None, tuple[float, float, float, float] | None]:
        """(IV, greeks) of ``contract``, cached per (contract, price, spot to the tick, minute)."""
        if price is None or spot is None:
            return None, None
        spot = round(spot * 20) / 20  # the exchange's tick, 0.05
        minute = int(now // 60)
        key = (contract.symbol, contract.exchange, price, spot, minute, self.rate, self.dividend)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        years = self._years(minute * 60.0)
        strike = float(contract.strike)
        sigma = implied_volatility(price, spot, strike, years, self.rate, self.dividend, contract.right)
        found = (sigma, greeks(spot, strike, years, self.rate, self.dividend, sigma, contract.right) if sigma else None)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = found
        return found

    def _side(self, contract: OptionContract | None, spot: float | None, now: float) -> Side | None:
        if contract is None:
            return None
        q = self._quotes.get(Instrument(contract.symbol, contract.exchange)) or _Quote()
        sigma, g = self._solve(contract, price_for_iv(q.ltp, q.bid, q.ask), spot, now)
        strike = float(contract.strike)
        itm = spot is not None and (spot > strike if contract.right == CALL else spot < strike)
        return Side(
            contract=contract,
            ltp=q.ltp,
            change=q.change,
            change_percent=q.change_percent,
            bid=q.bid,
            ask=q.ask,
            volume=q.volume,
            oi=q.oi,
            oi_change=q.oi_change,
            iv=sigma,
            delta=g[0] if g else None,
            gamma=g[1] if g else None,
            theta=g[2] if g else None,
            vega=g[3] if g else None,
            itm=itm,
        )

    def view(self) -> ChainView:
        """The chain as it is now (IV and greeks solved where not cached)."""
        now = self.clock()
        spot = self._spot_quote.ltp
        chain = self._by_expiry[self._expiry]
        grid = self._grid()
        atm = nearest(grid, spot) if spot is not None else None
        rows = []
        for k in self._window_strikes():
            pair = chain[k]
            rows.append(Row(k, self._side(pair.get(CALL), spot, now), self._side(pair.get(PUT), spot, now), k == atm))
        calls = sum(r.call.oi or 0 for r in rows if r.call)
        puts = sum(r.put.oi or 0 for r in rows if r.put)
        known = [
            (float(c.strike), c.right, q.oi)
            for i, q in self._quotes.items()
            if q.oi and (c := self._contract_of[i]).expiry == self._expiry
        ]
        years = self._years(now)
        return ChainView(
            underlying=self.underlying,
            spot=self.spot,
            expiry=self._expiry,
            expiries=tuple(self.expiries()),
            spot_price=spot,
            atm=atm,
            days=years * 365,
            years=years,
            pcr=puts / calls if calls else None,
            max_pain=max_pain(grid, known),  # type: ignore[arg-type]
            rows=tuple(rows),
            rate=self.rate,
            dividend=self.dividend,
            strikes=self._strikes,
        )


__all__ = [
    "CALL",
    "PUT",
    "Chain",
    "ChainError",
    "ChainView",
    "Row",
    "Side",
    "check_quota",
    "expiry_close",
    "preload",
    "spot_of",
    "window_size",
]
