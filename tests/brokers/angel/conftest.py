"""Fixtures for the Angel One adapter: the simulator, an isolated environment, a real bus.

Every test runs in its own temporary cwd, state, cache and config, with no ``ANGEL_*``
variables from the developer's shell, and checks afterwards that nothing (SmartApi in
particular) left a ``logs/`` directory in the cwd or the repository.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from oaws.brokers.angel.feed import AngelFeed
from oaws.brokers.angel.master import Master, rows_from_raw
from oaws.brokers.angel.settings import ENV_VARS, AngelSettings
from oaws.brokers.angel.simulator import AngelSimulator, fixture_master_bytes

REPO = Path(__file__).resolve().parents[2]


#: oaws settings a developer's shell may hold, which would point tests at the wrong server
OAWS_VARS = ("OAWS_URL", "OAWS_API_KEY", "OAWS_BROKER", "OAWS_BUS", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cwd, state, cache and config; no ANGEL_* or OAWS_* settings from the developer's shell."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    proxies = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")
    for var in (*ENV_VARS.values(), *OAWS_VARS, *proxies):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path
    assert not (work / "logs").exists(), "something created logs/ in the current directory"
    assert not (REPO / "logs").exists(), "something created logs/ in the repository"


@pytest.fixture
async def sim() -> AsyncIterator[AngelSimulator]:
    async with AngelSimulator(tick_interval=0.05, seed=7) as simulator:
        yield simulator


@pytest.fixture
def master() -> Master:
    return Master(rows_from_raw(fixture_master_bytes()), "fixture")


def settings_for(sim: AngelSimulator, **overrides: Any) -> AngelSettings:
    settings = AngelSettings(
        api_key=sim.api_key,
        client_code=sim.client_code,
        pin=sim.pin,
        totp_secret=sim.totp_secret,
        api_url=sim.api_url,
        feed_url=sim.feed_url,
        order_url=sim.order_url,
        master_url=sim.master_url,
    )
    return settings.with_overrides(**overrides)


def make_feed(sim: AngelSimulator, master: Master, tmp_path: Path, **options: Any) -> AngelFeed:
    """An AngelFeed on the simulator with test-sized timeouts (overridable)."""
    settings = settings_for(sim, **options.pop("settings", {}))
    defaults: dict[str, Any] = {
        "batch_window": 0.05,
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
        "stable_after": 5.0,
        "silence_timeout": 5.0,
        "heartbeat_interval": 5.0,
        "open_timeout": 2.0,
        "login_timeout": 3.0,
        "market_hours": lambda exchange_types: True,
        "session_file": tmp_path / "state" / "angel-session.json",
        "rng": random.Random(1),
    }
    return AngelFeed(settings, master, **{**defaults, **options})
