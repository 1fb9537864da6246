"""Reaching a server from a client command: is anything there, and if not, start the
background server where one would answer (``oaws watch`` on a fresh install)."""

from __future__ import annotations

import asyncio
import socket
import sys
from urllib.parse import urlsplit

from oaws.client import AUTH_TIMEOUT, Client, ClientError, FrameHook
from oaws.config import ClientSettings
from oaws.instruments import DEFAULT_DEPTH, Instrument


def answering(url: str, timeout: float = 0.5) -> bool:
    """Whether anything accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def autostart(settings: ClientSettings) -> None:
    """Start a background server for ``settings.url`` when nothing answers there."""
    from oaws import background

    if not settings.may_autostart or answering(settings.url):
        return
    try:
        state = background.detach()
    except background.BackgroundError as exc:
        raise ClientError(f"nothing answers at {settings.url} and starting a background server failed: {exc}") from None
    if not state.info.get("already"):
        broker = state.info.get("broker", "sim")
        what = "the simulated market" if broker == "sim" else f"the {broker} feed"
        sys.stderr.write(
            f"oaws: started a background server with {what} on {state.url} (pid {state.pid}); `oaws stop` stops it\n"
        )
        sys.stderr.flush()


async def open_client(
    settings: ClientSettings,
    instruments: list[Instrument],
    mode: int,
    *,
    depth: int = DEFAULT_DEPTH,
    retry_first: bool = False,
    retry_auth: bool = False,
    auth_timeout: float = AUTH_TIMEOUT,
    on_frame: FrameHook | None = None,
) -> Client:
    """A client for ``settings.url`` that subscribes ``instruments`` once connected,
    after starting a background server if none answers there (and autostart allows).
    ``depth``, ``retry_first``, ``retry_auth`` and ``auth_timeout`` are ``Client``'s."""
    await asyncio.to_thread(autostart, settings)
    return Client(
        settings.url,
        api_key=settings.api_key,
        instruments=instruments,
        mode=mode,
        depth=depth,
        retry_first=retry_first,
        retry_auth=retry_auth,
        auth_timeout=auth_timeout,
        on_frame=on_frame,
    )
