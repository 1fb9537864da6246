"""``oaws status`` and ``oaws stop``: the background server's state file, its own figures
(``/health``), and stopping it."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import orjson
import typer

from oaws import background
from oaws.autostart import answering
from oaws.cli.common import JsonOpt, command
from oaws.config import serve_url
from oaws.format import plural

app = typer.Typer()

RUNNING, STALE, NOT_RUNNING = 0, 1, 3


def _uptime(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + (f"{h}h " if d or h else "") + f"{m}m {s:02d}s"


def collect() -> tuple[int, dict[str, Any]]:
    state = background.read_state()
    _, _, log_path = background.paths()
    if state is not None and state.corrupt:
        sentence = state.corrupt_sentence()
        if not state.alive:
            background.remove_stale()
        return STALE, {"running": state.alive, "corrupt": state.corrupt, "message": sentence, "log": str(log_path)}
    if state is None:
        # not ours, but maybe a server in the foreground (or under systemd) answers where
        # ours would: say so, with its figures, rather than "not running"
        url = serve_url()
        figures = background.health(url, timeout=2.0) if answering(url) else None
        if figures is None:
            return NOT_RUNNING, {"running": False, "log": str(log_path)}
        return RUNNING, {"running": True, "managed": False, "answering": True, **figures, "url": url}
    if not state.alive:
        background.remove_stale()
        return STALE, {"running": False, "stale": True, "pid": state.pid, "url": state.url, "log": str(log_path)}
    report: dict[str, Any] = {"running": True, **state.info}
    report["uptime"] = round(time.time() - float(state.info.get("started", time.time())), 1)
    figures = background.health(state.url, timeout=5.0) if state.url else None
    report["answering"] = figures is not None
    if figures is not None:
        # the state's pid is the server's (with --workers /health says it too, and lists the workers)
        report.update({k: v for k, v in figures.items() if k not in ("uptime", "url", "version", "pid")})
    return RUNNING, report


def _workers_row(r: dict[str, Any]) -> list[tuple[str, str]]:
    """With --workers, the processes that share the port (the figures below are their sum)."""
    workers = r.get("workers") or []
    if len(workers) < 2:
        return []
    each = ", ".join(f"{w.get('pid')} ({plural(w.get('clients', 0), 'client')})" for w in workers)
    return [("workers", f"{len(workers)} processes: {each}")]


def show_status(*, as_json: bool) -> int:
    code, r = collect()
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(r) + b"\n")
        sys.stdout.flush()
        return code
    if code == NOT_RUNNING:
        sys.stderr.write("oaws: no background server is running (start one with `oaws serve --detach`)\n")
        return code
    if r.get("corrupt"):
        sys.stderr.write(f"oaws: {r['message']}\n")
        return code
    if code == STALE:
        sys.stderr.write(
            f"oaws: stale state: the server with pid {r['pid']} is gone without cleaning up "
            f"(state removed; its log: {r['log']})\n"
        )
        return code
    from rich.table import Table

    shown: list[Any] = []
    feed = r.get("feed") or {}
    if r.get("managed") is False:
        shown.append(
            f"not started by `oaws serve --detach` (pid {r.get('pid')}): `oaws stop` leaves it alone; "
            "stop it where it runs"
        )
    rows = [
        (
            "status",
            "[yellow]starting[/]"
            if r.get("starting")
            else "[green]running[/]"
            if r.get("answering") or not r.get("url")
            else "[yellow]running, not answering[/]",
        ),
        ("pid", str(r.get("pid"))),
        *_workers_row(r),
        ("url", r.get("url", "")),
        ("bus", r.get("bus", "") + (f" (refused: {r['bus_refused']})" if r.get("bus_refused") else "")),
        ("broker", f"{r.get('broker', '')} ({feed.get('adapter_status', 'unknown')})"),
        ("version", r.get("version", "")),
        ("uptime", _uptime(r.get("uptime", 0))),
    ]
    if r.get("answering") and not r.get("auth_required"):
        rows += [
            ("clients", str(r.get("clients", 0))),
            ("instruments", f"{r.get('instruments', 0):,} ({plural(r.get('topics', 0), 'topic')})"),
            ("ticks/s", f"in {r.get('ticks_in_per_s', 0):,.0f}, out {r.get('ticks_out_per_s', 0):,.0f}"),
            ("ticks", f"in {r.get('ticks_in', 0):,}, out {r.get('ticks_out', 0):,}"),
            (
                "slow clients",
                f"{r.get('conflating', 0)} conflated now, {r.get('slow_closed', 0)} closed; "
                f"{plural(r.get('ticks_conflated', 0), 'tick')} conflated away",
            ),
            (
                "bus gaps",
                f"{r.get('bus_gaps', 0):,} ({plural(r.get('bus_missing', 0), 'tick')} lost between feed and proxy)",
            ),
        ]
        if r.get("bus_dropped"):
            rows.append(
                ("bus dropped", f"{plural(r['bus_dropped'], 'malformed message')} (not JSON objects in UTF-8) dropped")
            )
    if r.get("auth_required"):
        rows.append(("figures", "[yellow]the server wants its API key: set OAWS_API_KEY or api_key in the config[/]"))
    if r.get("log"):
        rows.append(("log", r["log"]))
    summary = Table.grid(padding=(0, 2))
    for key, value in rows:
        summary.add_row(f"[bold]{key}[/]", value)
    shown.append(summary)
    clients = r.get("per_client") or []
    if clients:
        table = Table(title="clients", title_justify="left", box=None, header_style="bold")
        for name in ("peer", "subscriptions", "sent", "send buffer", "conflated", "connected"):
            table.add_column(name, justify="left" if name == "peer" else "right")
        for c in clients:
            table.add_row(
                c["peer"] + (" (batch)" if c.get("batch") else ""),
                str(c["subscriptions"]),
                f"{c['sent']:,}",
                f"{c['send_buffer']:,} B" + (" *" if c.get("conflating") else ""),
                f"{c['conflated']:,}",
                _uptime(c.get("connected_for", 0)),
            )
        shown.append(table)
    _print(shown)
    return code


def _print(shown: list[Any]) -> None:
    """The sentence, the summary and the clients' table, one after the other (no blank line between)."""
    from rich.console import Group

    from oaws.cli.output import print_tables

    print_tables(Group(*shown), width=120)


@command(app)
def status(json: JsonOpt = False) -> None:
    """Is a background server running? Its figures. Exit 0 running, 3 not running, 1 stale state."""
    raise typer.Exit(show_status(as_json=json))


@command(app)
def stop(
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait before SIGKILL.")] = 5.0,
) -> None:
    """Stop the background server (SIGTERM; SIGKILL after --timeout)."""
    pid = background.stop(timeout)
    if pid is None:
        other = serve_url()
        also = (
            f"; the server answering at {other} was not started by oaws in the background" if answering(other) else ""
        )
        typer.echo(f"oaws: no background server is running{also}", err=True)
    else:
        typer.echo(f"oaws: stopped the background server (pid {pid})", err=True)
