"""The proxy processes of one ``oaws serve --workers N`` as one server in ``/health``.

The kernel hands each new connection, ``/health`` requests included, to any of the
processes sharing the port (SO_REUSEPORT). So that every answer describes the server as
a whole, each process writes its figures once a second into a directory of its own
server (``Board``, made by the first process, mode 0700, removed when it stops), and the
one that answers adds up its own and the others' (``combine``):

- ``pid`` is the server's (the first process, the one ``oaws status`` and ``oaws stop``
  know); ``answered_by`` is the process that answered, and ``workers`` lists every process
  with its clients and ticks sent;
- clients, ticks sent, conflation, slow and refused clients are summed;
- figures of the bus, which every process reads whole (ticks in, gaps), are the highest;
- topics and instruments count those any process serves (two clients of one instrument
  on two processes are one instrument).

A process that stopped writing (killed) drops out after ``FRESH_FOR`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

#: the environment variable that hands the board's directory to the workers
ENV = "OAWS_WORKER_BOARD"
#: seconds after which a process's figures no longer count (it writes them every second)
FRESH_FOR = 5.0
#: figures that add up over the processes
SUMMED = (
    "clients",
    "tasks",
    "ticks_out",
    "ticks_out_per_s",
    "conflating",
    "slow_closed",
    "over_budget_aborted",
    "ticks_conflated",
    "order_clients",
    "order_updates",
    "connections_refused",
)
#: figures of the bus: every process reads all of it, so the highest stands for the server
HIGHEST = ("ticks_in", "ticks_in_per_s", "bus_refused", "bus_gaps", "bus_missing", "bus_dropped")
#: the names behind ``topics`` and ``instruments``, written for the union, never shown
NAMES = {"topics": "topic_names", "instruments": "instrument_names"}
PER_CLIENT_SHOWN = 100


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Board:
    """The directory where the processes of one server leave their figures."""

    def __init__(self, directory: str | Path, server_pid: int) -> None:
        self.directory = Path(directory)
        self.server_pid = server_pid
        self.pid = os.getpid()
        self._mine = self.directory / f"{self.pid}.json"

    @classmethod
    def create(cls) -> Board:
        """A new board for this process's server (``mkdtemp``: private to its user)."""
        return cls(tempfile.mkdtemp(prefix="oaws-workers-"), os.getpid())

    @classmethod
    def inherited(cls) -> Board | None:
        """The board a worker's parent handed it (``ENV``), if any."""
        directory = os.environ.get(ENV)
        return cls(directory, os.getppid()) if directory else None

    def publish(self, stats: dict[str, Any], names: dict[str, list[str]]) -> None:
        """This process's figures (and the names of its topics and instruments), atomically."""
        body = {**stats, "pid": self.pid, **{NAMES[k]: v for k, v in names.items() if k in NAMES}}
        temporary = self._mine.with_suffix(".tmp")
        try:
            temporary.write_bytes(orjson.dumps(body))
            os.replace(temporary, self._mine)
        except OSError:
            pass  # the board is gone (the server is stopping): nothing to tell

    def others(self) -> list[dict[str, Any]]:
        """The fresh figures of the other processes."""
        found = []
        now = time.time()
        try:
            paths = [p for p in self.directory.glob("*.json") if p != self._mine]
        except OSError:
            return []
        for path in paths:
            try:
                if now - path.stat().st_mtime > FRESH_FOR:
                    continue
                figures = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(figures, dict) and isinstance(figures.get("pid"), int) and _alive(figures["pid"]):
                found.append(figures)
        return sorted(found, key=lambda f: f["pid"])

    def leave(self) -> None:
        with contextlib.suppress(OSError):
            self._mine.unlink()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def combine(own: dict[str, Any], names: dict[str, list[str]], others: list[dict[str, Any]], server_pid: int) -> dict:
    """``/health`` of the whole server: this process's figures with the others' added in."""
    whole = dict(own)
    processes = [{**own, **{NAMES[k]: v for k, v in names.items() if k in NAMES}}, *others]
    for key in SUMMED:
        values = [p.get(key) for p in processes if isinstance(p.get(key), int | float)]
        if values:
            total = sum(values)
            whole[key] = round(total, 1) if isinstance(total, float) else total
    for key in HIGHEST:
        values = [p.get(key) for p in processes if isinstance(p.get(key), int | float)]
        if values:
            whole[key] = max(values)
    for key, listed in NAMES.items():
        union: set[str] = set()
        for p in processes:
            union.update(p.get(listed) or ())
        whole[key] = len(union)
    if "uptime" in own:
        whole["uptime"] = max(float(p.get("uptime") or 0) for p in processes)
    shown: list[Any] = []
    for p in processes:
        shown.extend(p.get("per_client") or ())
    whole["per_client"] = shown[:PER_CLIENT_SHOWN]
    whole["pid"] = server_pid
    whole["answered_by"] = own.get("pid")
    whole["workers"] = sorted(
        ({"pid": p.get("pid"), "clients": p.get("clients", 0), "ticks_out": p.get("ticks_out", 0)} for p in processes),
        key=lambda w: (w["pid"] != server_pid, w["pid"] or 0),
    )
    return whole
