"""Fixtures for the Noren family (Shoonya, Flattrade...): an isolated environment and the simulator.

Every test runs in its own temporary cwd, state, cache and config, with no ``SHOONYA_*``,
``FLATTRADE_*`` (any ``family.HOSTS`` prefix) or ``OAWS_*`` variables from the developer's
shell, and checks afterwards that nothing left a ``logs/`` directory behind.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from oaws.brokers.noren.family import HOSTS
from oaws.brokers.noren.simulator import NorenSimulator

REPO = Path(__file__).resolve().parents[3]

#: oaws settings a developer's shell may hold, which would point tests at the wrong server
OAWS_VARS = ("OAWS_URL", "OAWS_API_KEY", "OAWS_BROKER", "OAWS_BUS", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE")
PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cwd, state, cache and config; no Noren brokers' or oaws settings from the shell."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    prefixes = tuple(f"{host.prefix}_" for host in HOSTS.values())
    for var in list(os.environ):
        if var.startswith(prefixes) or var in OAWS_VARS or var in PROXIES or var == "OAWS_INSTRUMENTS":
            monkeypatch.delenv(var, raising=False)
    yield tmp_path
    assert not (work / "logs").exists(), "something created logs/ in the current directory"
    assert not (REPO / "logs").exists(), "something created logs/ in the repository"


@pytest.fixture
async def noren_sim() -> AsyncIterator[NorenSimulator]:
    """The simulator answering as Shoonya, ticking every 50 ms."""
    async with NorenSimulator(HOSTS["shoonya"], tick_interval=0.05, seed=7) as simulator:
        yield simulator


@pytest.fixture
async def flattrade_sim() -> AsyncIterator[NorenSimulator]:
    """The simulator answering as Flattrade, ticking every 50 ms."""
    async with NorenSimulator(HOSTS["flattrade"], tick_interval=0.05, seed=11) as simulator:
        yield simulator
