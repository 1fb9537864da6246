"""OpenAlgo's tick fields per mode, written out as OpenAlgo's Angel adapter publishes them.

From ``_normalize_market_data`` of its ``broker/angel/streaming/angel_adapter.py``, plus
``symbol``, ``exchange``, ``mode`` and ``timestamp`` that its ``_on_data`` adds. Written
here on purpose rather than imported from ``oaws.ticks``: these tests are the authority
oaws's names are checked against.
"""

from __future__ import annotations

from typing import Any

_EVERY = {"symbol": str, "exchange": str, "mode": int, "timestamp": int, "ltp": float, "ltt": int}
_DAY = {"volume": int, "open": float, "high": float, "low": float, "close": float}

#: field -> type, per mode (1 LTP, 2 Quote, 3 Depth)
OPENALGO: dict[int, dict[str, type]] = {
    1: _EVERY,
    2: _EVERY
    | _DAY
    | {"last_trade_quantity": int, "average_price": float, "total_buy_quantity": int, "total_sell_quantity": int},
    3: _EVERY | _DAY | {"last_quantity": int, "oi": int, "upper_circuit": float, "lower_circuit": float, "depth": dict},
}
#: names oaws used before it took OpenAlgo's
OLD_NAMES = {"avg_trade_price"}


def assert_openalgo_tick(data: dict[str, Any], mode: int, levels: int = 5) -> None:
    """``data`` has every field OpenAlgo's ``mode`` has, of its type, and none of oaws's old names."""
    missing = set(OPENALGO[mode]) - set(data)
    assert not missing, f"mode {mode} tick lacks {sorted(missing)}: {data}"
    for name, kind in OPENALGO[mode].items():
        value = data[name]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else type(value) is kind
        assert ok, f"{name} = {value!r} is not {kind.__name__}"
    assert not OLD_NAMES & set(data)
    if mode < 3:
        assert "depth" not in data and "last_quantity" not in data
        return
    assert set(data["depth"]) == {"buy", "sell"}
    for side in ("buy", "sell"):
        assert len(data["depth"][side]) == levels
        for level in data["depth"][side]:
            assert set(level) == {"price", "quantity", "orders"}
            assert isinstance(level["price"], (int, float)) and type(level["quantity"]) is type(level["orders"]) is int
