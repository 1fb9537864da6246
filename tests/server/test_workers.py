"""``oaws.server.workers``: the figures of every process of one server, added up for ``/health``."""

from __future__ import annotations

import os
import time

import orjson

from oaws.server.workers import FRESH_FOR, Board, combine


def figures(pid: int, clients: int, ticks_in: int, ticks_out: int) -> dict:
    return {
        "pid": pid,
        "uptime": 10.0 + pid % 7,
        "clients": clients,
        "ticks_in": ticks_in,
        "ticks_in_per_s": 3.5,
        "ticks_out": ticks_out,
        "ticks_out_per_s": 1.5,
        "bus_gaps": 1,
        "per_client": [{"peer": f"{pid}-{n}"} for n in range(clients)],
        "feed": {"adapter_status": "connected"},
    }


def test_combine_sums_the_clients_and_keeps_the_bus_figures_of_one():
    own = figures(200, clients=2, ticks_in=100, ticks_out=40)
    other = {**figures(300, clients=3, ticks_in=98, ticks_out=60), "instrument_names": ["INFY:NSE", "TCS:NSE"]}
    other["topic_names"] = ["NSE_INFY_LTP", "NSE_TCS_LTP"]
    mine = {"instruments": ["INFY:NSE", "RELIANCE:NSE"], "topics": ["NSE_INFY_LTP", "NSE_RELIANCE_LTP"]}
    whole = combine(own, mine, [other], server_pid=100)
    assert whole["pid"] == 100 and whole["answered_by"] == 200
    assert whole["clients"] == 5 and whole["ticks_out"] == 100 and whole["ticks_out_per_s"] == 3.0
    assert whole["ticks_in"] == 100 and whole["ticks_in_per_s"] == 3.5 and whole["bus_gaps"] == 1  # not doubled
    assert whole["instruments"] == 3 and whole["topics"] == 3  # INFY on both is one
    assert len(whole["per_client"]) == 5
    assert [w["pid"] for w in whole["workers"]] == [200, 300]
    assert whole["feed"] == own["feed"]
    assert "instrument_names" not in whole


def test_the_server_is_listed_first():
    whole = combine(figures(300, 1, 1, 1), {}, [figures(100, 1, 1, 1)], server_pid=100)
    assert [w["pid"] for w in whole["workers"]] == [100, 300]


def test_a_board_reads_the_others_fresh_figures_only(tmp_path):
    board = Board(tmp_path, server_pid=os.getpid())
    board.publish(figures(os.getpid(), 1, 1, 1), {"instruments": ["INFY:NSE"], "topics": []})
    assert board.others() == []  # its own are not the others'
    parent = os.getppid()
    (tmp_path / f"{parent}.json").write_bytes(orjson.dumps(figures(parent, 4, 1, 1)))
    assert [f["clients"] for f in board.others()] == [4]
    old = time.time() - FRESH_FOR - 1
    os.utime(tmp_path / f"{parent}.json", (old, old))
    assert board.others() == []  # a process that stopped writing (killed)
    gone = 2**22 + 12345  # beyond Linux's default pid_max: no such process
    (tmp_path / f"{gone}.json").write_bytes(orjson.dumps(figures(gone, 4, 1, 1)))
    (tmp_path / "junk.json").write_bytes(b"{not json")
    assert board.others() == []
    board.leave()
    assert not (tmp_path / f"{os.getpid()}.json").exists()
