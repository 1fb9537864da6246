"""Helpers for the Dhan feed's tests: a feed on the simulator, and the ticks SPEC §2 asks for.

The expected ticks are written out here from the values the simulator says it encoded
(``DhanSimulator.sent``), not from the feed's code: prices to two decimals, LTT from India
clock seconds to epoch milliseconds, the previous close from response 6, the levels of a
full packet split into the two sides.
"""

from __future__ import annotations

import random
from typing import Any

from oaws.brokers.dhan.feed import DhanFeed
from oaws.brokers.dhan.master import Master, rows_from_csv
from oaws.brokers.dhan.settings import DhanSettings
from oaws.brokers.dhan.simulator import DhanSimulator

PREV_CLOSE, TICKER, QUOTE, OI, FULL = 6, 2, 4, 5, 8


def settings_for(sim: DhanSimulator, **overrides: Any) -> DhanSettings:
    return DhanSettings(
        client_id=sim.client_id,
        access_token=sim.access_token,
        api_url=sim.api_url,
        feed_url=sim.feed_url,
        depth_url=sim.depth_url,
        order_url=sim.order_url,
        master_url=sim.master_url,
    ).with_overrides(**overrides)


def master_of(sim: DhanSimulator) -> Master:
    return Master(rows_from_csv(sim.scrips_bytes()), "simulator")


def make_feed(sim: DhanSimulator, master: Master | None = None, **options: Any) -> DhanFeed:
    """A DhanFeed on the simulator with test-sized timeouts (overridable)."""
    settings = settings_for(sim, **options.pop("settings", {}))
    defaults: dict[str, Any] = {
        "batch_window": 0.05,
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
        "stable_after": 5.0,
        "silence_timeout": 5.0,
        "heartbeat_interval": 5.0,
        "open_timeout": 2.0,
        "market_hours": lambda exchanges: True,
        "rng": random.Random(1),
    }
    return DhanFeed(settings, master or master_of(sim), **{**defaults, **options})


def _p(value: float) -> float:
    return round(value, 2)


def _ms(ltt: int) -> int:
    return (ltt - 19_800) * 1000


def expected(sent: Any, symbol: str, exchange: str, prev_close: float, mode: int) -> dict[str, Any]:
    """The tick at client ``mode`` of one packet the simulator sent (``Sent``), without ``timestamp``."""
    v = sent.values
    t: dict[str, Any] = {"symbol": symbol, "exchange": exchange, "mode": mode, "ltp": _p(v.ltp), "ltt": _ms(v.ltt)}
    if mode == 1:
        return t
    ltp, close = _p(v.ltp), _p(prev_close)
    t |= {
        "open": _p(v.open),
        "high": _p(v.high),
        "low": _p(v.low),
        "close": close,
        "volume": v.volume,
        "last_trade_quantity": v.ltq,
        "average_price": _p(v.atp),
        "total_buy_quantity": v.total_buy_quantity,
        "total_sell_quantity": v.total_sell_quantity,
        "change": round(ltp - close, 2),
        "change_percent": round((ltp - close) * 100 / close, 4),
    }
    if mode == 2:
        return t
    t |= {
        "last_quantity": v.ltq,
        "oi": v.oi,
        "upper_circuit": 0.0,
        "lower_circuit": 0.0,
        "depth": {
            "buy": [
                {"price": _p(lv.bid_price), "quantity": lv.bid_quantity, "orders": lv.bid_orders} for lv in v.depth
            ],
            "sell": [
                {"price": _p(lv.ask_price), "quantity": lv.ask_quantity, "orders": lv.ask_orders} for lv in v.depth
            ],
        },
    }
    return t


def feed_fields(tick: dict[str, Any]) -> dict[str, Any]:
    """A tick without its receive time and what the bus adds (``fseq``)."""
    return {k: v for k, v in tick.items() if k not in ("timestamp", "fseq")}


def sent_of(sim: DhanSimulator, segment: str, security_id: str, code: int, stream: str = "feed") -> list[Any]:
    return [
        s
        for s in list(sim.sent)
        if (s.stream, s.segment, s.security_id, s.code) == (stream, segment, str(security_id), code)
    ]


def matches(sim: DhanSimulator, tick: dict[str, Any], segment: str, security_id: str, code: int, **kw: Any) -> bool:
    """Whether ``tick`` is exactly the tick of one packet the simulator sent for this instrument."""
    observed = feed_fields(tick)
    return any(expected(s, **kw) == observed for s in sent_of(sim, segment, security_id, code))
