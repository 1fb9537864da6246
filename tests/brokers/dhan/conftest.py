"""Fixtures for the Dhan adapter: an isolated environment and a running simulator.

Every test runs in its own temporary cwd, state, cache and config, with no ``DHAN_*`` or
``OAWS_*`` variables (nor proxies) from the developer's shell, and checks afterwards that
nothing (dhanhq in particular) left files in the cwd or the repository.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from oaws.brokers.dhan.settings import ENV_VARS
from oaws.brokers.dhan.simulator import DhanSimulator

REPO = Path(__file__).resolve().parents[3]

#: oaws settings a developer's shell may hold, which would point tests at the wrong server
OAWS_VARS = (
    "OAWS_URL",
    "OAWS_API_KEY",
    "OAWS_BROKER",
    "OAWS_BUS",
    "OAWS_PORT",
    "OAWS_HOST",
    "OAWS_MODE",
    "OAWS_INSTRUMENTS",
)
PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cwd, state, cache and config; no DHAN_* or OAWS_* settings from the developer's shell."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in (*ENV_VARS.values(), *OAWS_VARS, *PROXIES):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path
    assert not (work / "logs").exists(), "something created logs/ in the current directory"
    assert not (REPO / "logs").exists(), "something created logs/ in the repository"
    assert not (work / "temp_form.html").exists(), "dhanhq wrote a form into the current directory"


@pytest.fixture
async def dhan_sim() -> AsyncIterator[DhanSimulator]:
    """A started simulator with quick ticks and a fixed seed."""
    async with DhanSimulator(tick_interval=0.05, seed=7) as simulator:
        yield simulator
