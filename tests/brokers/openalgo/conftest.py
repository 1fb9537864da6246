"""Fixtures for the OpenAlgo feed: an isolated environment, and an "OpenAlgo" upstream that
is a second oaws server (the simulated market behind an API key) on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from oaws.server.service import Service
from oaws.server.settings import ServeSettings

UPSTREAM_KEY = "upstream-secret"
OAWS_VARS = ("OAWS_URL", "OAWS_API_KEY", "OAWS_BROKER", "OAWS_BUS", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state, cache and config; the upstream's key in OPENALGO_API_KEY, nothing else from the shell."""
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    for var in (*OAWS_VARS, "OPENALGO_WS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENALGO_API_KEY", UPSTREAM_KEY)
    yield tmp_path


def upstream_settings(port: int = 0) -> ServeSettings:
    return ServeSettings(port=port, bus="tcp://127.0.0.1:*", api_key=UPSTREAM_KEY, feed={"rate": 20, "seed": 3})


@pytest.fixture
async def upstream() -> AsyncIterator[Service]:
    service = Service(upstream_settings())
    await service.start()
    yield service
    await service.stop()


def front_settings(url: str) -> ServeSettings:
    return ServeSettings(broker="openalgo", port=0, bus="tcp://127.0.0.1:*", feed={"upstream": url})
