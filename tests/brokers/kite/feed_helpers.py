"""Helpers for KiteFeed's tests: a feed on the simulator, a real bus to read it, the ticks the simulator meant."""

from __future__ import annotations

import random
from typing import Any

import orjson

from oaws.brokers.kite.feed import KiteFeed
from oaws.brokers.kite.master import Master, rows_from_csv
from oaws.brokers.kite.settings import KiteSettings
from oaws.brokers.kite.simulator import KiteSimulator, Tick


def settings_for(sim: KiteSimulator, access_token: str | None = None, **overrides: Any) -> KiteSettings:
    return KiteSettings(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        access_token=access_token if access_token is not None else sim.issue_access_token(),
        api_url=sim.api_url,
        feed_url=sim.feed_url,
    ).with_overrides(**overrides)


def master_of(sim: KiteSimulator) -> Master:
    return Master(rows_from_csv(sim.dump_bytes()), "simulator")


def make_feed(sim: KiteSimulator, **options: Any) -> KiteFeed:
    """A KiteFeed on the simulator with test-sized timeouts (overridable); it records every binary frame."""
    settings = options.pop("settings", None) or settings_for(sim)
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
    feed = KiteFeed(settings, master_of(sim), **{**defaults, **options})
    feed.frames = []  # type: ignore[attr-defined]
    decode = feed._on_binary

    def recording(frame: bytes, index: int) -> int | None:
        feed.frames.append(bytes(frame))  # type: ignore[attr-defined]
        return decode(frame, index)

    feed._on_binary = recording  # type: ignore[method-assign]
    return feed


def sent_ticks(sim: KiteSimulator, feed: KiteFeed, token: int) -> list[Tick]:
    """Every tick of ``token`` the simulator sent in a frame the feed received."""
    out = []
    for frame in feed.frames:  # type: ignore[attr-defined]
        try:
            out.extend(t for t in sim.ticks_of(frame) if t.instrument_token == token)
        except KeyError:
            continue  # a garbage frame, not one of the ticker's
    return out


def expected(t: Tick, symbol: str, exchange: str, mode: int) -> dict[str, Any]:
    """The tick SPEC §2 asks for at client ``mode``, written out from the simulator's tick (no receive time)."""
    d = t.divisor
    out: dict[str, Any] = {"symbol": symbol, "exchange": exchange, "mode": mode, "ltp": t.last_price / d}
    if t.mode == "full":
        out["ltt"] = (t.exchange_timestamp if t.is_index else t.last_trade_time) * 1000
    if mode >= 2:
        out |= {"open": t.open / d, "high": t.high / d, "low": t.low / d, "close": t.close / d}
        if not t.is_index:
            out |= {
                "volume": t.volume,
                "last_trade_quantity": t.last_quantity,
                "average_price": t.average_price / d,
                "total_buy_quantity": t.buy_quantity,
                "total_sell_quantity": t.sell_quantity,
            }
        out["change"] = (t.last_price - t.close) / d
        out["change_percent"] = round((t.last_price - t.close) * 100 / t.close, 4)
    if mode == 3 and not t.is_index:
        levels = [{"price": e.price / d, "quantity": e.quantity, "orders": e.orders} for e in t.depth]
        out |= {
            "last_quantity": t.last_quantity,
            "oi": t.oi,
            "oi_day_high": t.oi_day_high,
            "oi_day_low": t.oi_day_low,
            "exchange_timestamp": t.exchange_timestamp * 1000,
            "depth": {"buy": levels[:5], "sell": levels[5:]},
        }
    return out


def feed_fields(tick: dict[str, Any]) -> dict[str, Any]:
    """The tick as the feed made it: without its receive time and what the bus adds (``fseq``)."""
    return {k: v for k, v in tick.items() if k not in ("timestamp", "fseq")}


class Recorder:
    """A publisher without a bus, for tests that run the feed on its own."""

    def __init__(self) -> None:
        self.ticks: list[tuple[str, bytes]] = []
        self.rejects: list[tuple[str, str, str]] = []
        self.orders: list[tuple[str, dict[str, Any]]] = []

    def publish(self, instrument, mode, payload, depth=5) -> None:
        self.ticks.append((instrument.topic(mode, depth), payload))

    def reject(self, instrument, mode, code, message, depth=5) -> None:
        self.rejects.append((instrument.topic(mode, depth), code, message))

    def publish_order(self, user_id, message) -> None:
        self.orders.append((user_id, orjson.loads(message)))

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(payload) for t, payload in self.ticks if t == topic]
