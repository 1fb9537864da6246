"""Shared fixtures: a fake feed on a real ZeroMQ bus, a real proxy on port 0, a private
environment for oaws processes, a bus address of a test's own. The pieces they are built
of are in tests/helpers.py."""

from __future__ import annotations

import os

import pytest

from oaws.server.proxy import Proxy, ProxyOptions
from tests.helpers import FakeBus

# The simulated market keeps the exchanges' hours by default (docs/sessions.md); the suite
# runs at any hour and expects a market that ticks: in-process feeds (make_feed reads this)
# and every `oaws serve` a test starts (their environment is a copy of this one) trade
# around the clock. A test of the hours sets its own.
os.environ["OAWS_SIM_HOURS"] = "always"


@pytest.fixture(autouse=True)
def _exchange_calendar(request):
    """The watch's status line shows the sessions once the exchange calendar is built (in a
    thread, at the first look): built before a screen test, every picture of it is the same."""
    if "tui" in request.path.parts:
        from oaws import sessions

        sessions.load()


@pytest.fixture
async def bus():
    b = FakeBus()
    yield b
    b.close()


@pytest.fixture
def proxy_options() -> ProxyOptions:
    return ProxyOptions(port=0)


@pytest.fixture
async def proxy(bus, proxy_options):
    p = Proxy(bus.endpoint, proxy_options)
    await p.start()
    await bus.control_ready()
    yield p
    await p.close()


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """An environment for oaws subprocesses: private state/config dirs, no user config."""
    env = dict(os.environ)
    env.update(
        OAWS_STATE_DIR=str(tmp_path / "state"),
        OAWS_CONFIG=str(tmp_path / "config.toml"),
        OAWS_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONUNBUFFERED="1",
        OAWS_SIM_HOURS="always",
    )
    for key in ("OAWS_URL", "OAWS_API_KEY", "OAWS_BROKER", "OAWS_BUS", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE"):
        env.pop(key, None)
    return env


@pytest.fixture
def ipc_bus():
    """A bus address of this test's own: an ipc socket in a short private directory.

    A tcp address from a port that was free a moment ago can be taken by another test
    (or another run) before the server binds it; a path cannot.
    """
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="oaws-bus-")  # short: ipc paths are limited to ~100 bytes
    yield f"ipc://{directory}/bus"
    shutil.rmtree(directory, ignore_errors=True)
