"""The event loop every oaws command runs on: uvloop where it is installed, else asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T] | Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` (a coroutine, or a function that makes one) to completion on a fresh loop."""

    async def body() -> T:
        return await (main if asyncio.iscoroutine(main) else main())  # type: ignore[operator]

    try:
        import uvloop
    except ImportError:
        return asyncio.run(body())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(body())
