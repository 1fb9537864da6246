"""What the local broker simulators share: the mechanism, not any broker's facts.

Each simulator (``oaws.brokers.<name>.simulator``) keeps its own wire format, routes,
refusals and instruments; this module holds what all of them repeat:

- the REST server: a ``ThreadingHTTPServer`` in a daemon thread (``rest_server``,
  ``serve_in_thread``, ``stop_rest``) and its handler class (``handler_class``), which reads
  the body, sends ``/sim/...`` requests to the simulator's control and everything else to its
  REST answer, and logs only the method and path (queries can carry tokens);
- the WebSocket server's common options (``serve_ws``) and the OS wording of a bind error;
- the ``/sim/...`` control dispatch (``dispatch_control``) that checks the request in the
  HTTP thread and runs the action on the event loop, and the ``seconds`` argument parser;
- the background tasks a simulator spawns (``spawn``);
- ``run_until_signal`` (``oaws sim NAME`` serves until SIGINT or SIGTERM), and for the
  commands ``announce`` (the export lines on stdout) and ``run_command`` (a port in use).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar
from urllib.parse import SplitResult, parse_qs, urlsplit

from websockets.asyncio.server import Server, serve

S = TypeVar("S")

CONTROL_PREFIX = "/sim/"

#: what a broker's REST answer gives the handler: (HTTP status, body, headers incl. Content-Type)
Answer = tuple[int, bytes, dict[str, str]]
#: a simulator's control: (method, path, query, body) -> (HTTP status, JSON object)
Control = Callable[[str, str, str, bytes], tuple[int, dict[str, Any]]]


# REST ------------------------------------------------------------------------------------
def json_bytes(reply: Any) -> bytes:
    """``reply`` as the body of a response: bytes as they are, anything else as JSON."""
    return reply if isinstance(reply, bytes) else json.dumps(reply).encode()


def handler_class(
    name: str,
    log: logging.Logger,
    control: Control,
    answer: Callable[[str, SplitResult, dict[str, str], bytes], Answer],
    methods: tuple[str, ...] = ("GET", "POST"),
) -> type[BaseHTTPRequestHandler]:
    """A request handler that answers ``/sim/...`` with ``control`` and everything else with ``answer``.

    ``answer(method, url, headers, body)`` gets the headers with lower-case names. Control
    replies are one line of JSON (also for curl on a terminal). Only the method and path are
    logged (at DEBUG, as ``NAME REST: ...``): a query string may carry a token or a code.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            url = urlsplit(self.path)
            if url.path.startswith(CONTROL_PREFIX) or url.path == CONTROL_PREFIX.rstrip("/"):
                status, reply = control(self.command, url.path, url.query, body)
                data, extra = json.dumps(reply).encode() + b"\n", {"Content-Type": "application/json"}
            else:
                status, data, extra = answer(self.command, url, headers, body)
            self.send_response(status)
            for header, value in extra.items():
                self.send_header(header, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s REST: %s %s", name, self.command, urlsplit(self.path).path)

    for method in methods:
        setattr(Handler, f"do_{method}", Handler._answer)
    return Handler


def rest_server(host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """The REST server bound (not yet serving); its request threads do not keep the process alive."""
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    return httpd


def serve_in_thread(httpd: ThreadingHTTPServer, name: str) -> threading.Thread:
    """Serve ``httpd`` in a daemon thread called ``name`` (a blocking client in the same process works)."""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    return thread


async def stop_rest(httpd: ThreadingHTTPServer | None) -> None:
    """Stop serving (without blocking the event loop) and close the socket."""
    if httpd is not None:
        await asyncio.to_thread(httpd.shutdown)
        httpd.server_close()


def rest_port_of(httpd: ThreadingHTTPServer | None) -> int:
    assert httpd is not None, "start the simulator first"
    return httpd.server_address[1]


# WebSocket -------------------------------------------------------------------------------
async def serve_ws(handler: Callable[..., Awaitable[None]], host: str, port: int, **options: Any) -> Server:
    """A ``websockets`` server as the simulators run it: no pings of its own, no compression, no Server header."""
    return await serve(handler, host, port, ping_interval=None, compression=None, server_header=None, **options)


def ws_port_of(server: Server | None) -> int:
    assert server is not None, "start the simulator first"
    return server.sockets[0].getsockname()[1]


def os_error(exc: OSError) -> OSError:
    """A bind error as the OS words it (asyncio says "error while attempting to bind on address (...)")."""
    return OSError(exc.errno, os.strerror(exc.errno)) if exc.errno else exc


def spawn(tasks: set[asyncio.Task[Any]], coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Run ``coro`` on the running loop, kept in ``tasks`` until done (so that ``stop`` can cancel it)."""
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


# Control over HTTP ---------------------------------------------------------------------------
def dispatch_control(
    loop: asyncio.AbstractEventLoop | None,
    method: str,
    path: str,
    query: str,
    body: bytes,
    *,
    controls: Any,
    help: str,
    parse: Callable[[str, dict[str, str], bytes], Any],
    act: Callable[[str, Any], Coroutine[Any, Any, dict[str, Any]]],
    record: Callable[[str], None],
    method_for: Callable[[str], str] = lambda action: "POST",
) -> tuple[int, dict[str, Any]]:
    """One ``/sim/...`` request -> (HTTP status, JSON). Called from the HTTP thread.

    ``parse(action, params, body)`` checks the arguments here (a ValueError is a 400 with its
    sentence); the failures touch the WebSocket connections, which belong to the event loop, so
    ``act(action, args)`` runs there and this thread waits for its reply (a 503 when stopping).
    """
    action = path.removeprefix(CONTROL_PREFIX)
    if action not in controls:
        return 404, {"error": f"no such simulator control {path}; use {help}"}
    wanted = method_for(action)
    if method != wanted:
        return 405, {"error": f"use {wanted} for {path}"}
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    try:
        args = parse(action, params, body)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    assert loop is not None, "start the simulator first"
    try:
        future = asyncio.run_coroutine_threadsafe(act(action, args), loop)
        reply = future.result(timeout=5)
    except (RuntimeError, TimeoutError, concurrent.futures.CancelledError):
        return 503, {"error": "the simulator is stopping"}
    record(action)
    return 200, reply


def number(given: str | None, default: float, low: float, high: float, name: str = "seconds") -> float:
    """A ``?seconds=`` (or other) argument above ``low`` and at most ``high``; ``default`` when not given."""
    if not given:
        return default
    try:
        value = float(given)
    except ValueError:
        value = float("nan")
    if not low < value <= high:  # also refuses nan and inf
        raise ValueError(f"{name} must be a number above {low:g} and at most {high:g}, not {given!r}")
    return value


class Simulator:
    """What every simulator object does alike: ``async with``, its ports, and ``/sim/...`` control.

    A simulator sets ``_httpd`` (the REST server), ``_server`` (the feed's) and ``_loop`` in
    ``start``, keeps the control actions answered in ``controls``, and names its actions in
    ``control_actions`` / ``control_help``; ``_control_args`` checks a request's arguments in
    the HTTP thread, ``_control`` acts on the event loop.
    """

    control_actions: tuple[str, ...] = ()
    control_help = ""
    _httpd: ThreadingHTTPServer | None = None
    _server: Server | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    controls: list[str]

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def rest_port(self) -> int:
        return rest_port_of(self._httpd)

    @property
    def feed_port(self) -> int:
        return ws_port_of(self._server)

    def control(self, method: str, path: str, query: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
        """One ``/sim/...`` request -> (HTTP status, JSON). Called from the HTTP thread."""
        return dispatch_control(
            self._loop,
            method,
            path,
            query,
            body,
            controls=self.control_actions,
            help=self.control_help,
            parse=self._control_args,
            act=self._control,
            record=self._record_control,
            method_for=self._control_method,
        )

    def _control_args(self, action: str, params: dict[str, str], body: bytes) -> Any:
        return None

    async def _control(self, action: str, args: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _record_control(self, action: str) -> None:
        self.controls.append(action)

    def _control_method(self, action: str) -> str:
        return "POST"


# Running -------------------------------------------------------------------------------------
async def run_until_signal(sim: AbstractAsyncContextManager[S], on_ready: Callable[[S], None] | None) -> None:
    """Serve ``sim`` until SIGINT or SIGTERM, or until cancelled (``oaws sim NAME``).

    The handlers are installed explicitly, as ``oaws serve`` does, so that a simulator
    started in the background of a script (where the shell ignores SIGINT) still stops
    cleanly on either signal.
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        async with sim as started:
            if on_ready is not None:
                on_ready(started)
            await stopping.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def announce(title: str, env: dict[str, str], then: str) -> None:
    """``title`` on stderr, the export lines of ``env`` on stdout (flushed now), then ``then`` on stderr."""
    import typer

    typer.echo(f"{title}; point oaws at it with (on stdout):", err=True)
    # stdout carries only the exports, flushed now: the simulator runs on, so nothing else would flush them
    sys.stdout.write("".join(f"export {name}={value}\n" for name, value in env.items()))
    sys.stdout.flush()
    typer.echo(then, err=True)


def run_command(host: str, main: Coroutine[Any, Any, None]) -> None:
    """Run a simulator's ``run(...)``; a port in use (or another OSError) is one line and exit status 1."""
    import typer

    try:
        asyncio.run(main)
    except OSError as exc:
        typer.echo(f"oaws: cannot start the simulator on {host}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
