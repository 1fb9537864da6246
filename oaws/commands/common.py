"""What the client commands share: reaching a server, and running on the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from oaws.client import Client, ServerError
from oaws.config import ClientSettings
from oaws.instruments import Instrument
from oaws.protocol import AUTHENTICATION_ERROR, NOT_AUTHENTICATED
from oaws.server.service import run as run_loop

FATAL_CODES = frozenset({NOT_AUTHENTICATED, AUTHENTICATION_ERROR})


def fatal_message(event: ServerError, settings: ClientSettings) -> str:
    if event.code == NOT_AUTHENTICATED:
        return f"{settings.url} requires an API key: pass --api-key or set OAWS_API_KEY"
    return f"{settings.url} refused the API key: {event.message}"


async def open_client(settings: ClientSettings, instruments: list[Instrument], mode: int, *,
                      retry_first: bool = False) -> Client:
    """A client for ``settings.url`` that will subscribe ``instruments`` once connected."""
    return Client(settings.url, api_key=settings.api_key, instruments=instruments, mode=mode,
                  retry_first=retry_first)


def run(coro: Awaitable[Any] | Callable[[], Awaitable[Any]]) -> Any:
    return run_loop(coro if callable(coro) else (lambda: coro))
