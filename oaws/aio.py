"""The event loop every oaws command runs on: uvloop where it is installed, else asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``coro_fn()`` to completion on a fresh loop (uvloop's when it is installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_wrap(coro_fn))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_wrap(coro_fn))


async def _wrap(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return await coro_fn()
