"""Fixtures for the Zerodha Kite adapter: an isolated environment and the simulator.

Every test runs in its own temporary cwd, state, cache and config, with no ``KITE_*`` or
``OAWS_*`` variables from the developer's shell, and checks afterwards that nothing left a
``logs/`` directory in the cwd or the repository.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from oaws.brokers.kite.settings import ENV_VARS
from oaws.brokers.kite.simulator import KiteSimulator

REPO = Path(__file__).resolve().parents[3]

#: oaws settings a developer's shell may hold, which would point tests at the wrong server
OAWS_VARS = ("OAWS_URL", "OAWS_API_KEY", "OAWS_BROKER", "OAWS_BUS", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE")
PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cwd, state, cache and config; no KITE_* or OAWS_* settings from the developer's shell."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    for var in (*ENV_VARS.values(), *OAWS_VARS, *PROXIES):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path
    assert not (work / "logs").exists(), "something created logs/ in the current directory"
    assert not (REPO / "logs").exists(), "something created logs/ in the repository"


@pytest.fixture
async def kite_sim() -> AsyncIterator[KiteSimulator]:
    """A started simulator ticking every 50 ms, heartbeats every 200 ms."""
    async with KiteSimulator(tick_interval=0.05, heartbeat_interval=0.2, seed=7) as simulator:
        yield simulator


def ticker_url(sim: KiteSimulator, access_token: str | None = None, api_key: str | None = None) -> str:
    """The ticker's URL with credentials (a fresh valid access token unless one is given)."""
    token = access_token if access_token is not None else sim.issue_access_token()
    return f"{sim.feed_url}/?api_key={api_key or sim.api_key}&access_token={token}"


def open_ticker(sim: KiteSimulator, access_token: str | None = None, **options: Any) -> Any:
    """``async with open_ticker(sim) as ws``: a raw WebSocket to the simulator's ticker."""
    return connect(ticker_url(sim, access_token), open_timeout=5, close_timeout=1, **options)


async def send(ws: ClientConnection, action: str, value: Any) -> None:
    await ws.send(json.dumps({"a": action, "v": value}))
