"""``oaws status``'s table, from the figures it collects."""

from __future__ import annotations

from oaws.cli import status


def test_status_shows_the_malformed_bus_messages_the_proxy_dropped(monkeypatch, capsys):
    """Issue 14 #9: a proxy counts the bus messages it drops (``bus_dropped`` in /health);
    `oaws status` says so beside the bus gaps, and keeps quiet when there are none."""
    figures = {"running": True, "answering": True, "pid": 12, "url": "ws://127.0.0.1:1", "bus": "ipc://x"}
    monkeypatch.setattr(status, "collect", lambda: (status.RUNNING, {**figures, "bus_dropped": 1234}))
    assert status.show_status(as_json=False) == status.RUNNING
    out = capsys.readouterr().out
    assert "bus dropped" in out and "1,234 malformed messages" in out
    monkeypatch.setattr(status, "collect", lambda: (status.RUNNING, {**figures, "bus_dropped": 0}))
    status.show_status(as_json=False)
    assert "bus dropped" not in capsys.readouterr().out


def test_status_lists_the_workers_of_the_server(monkeypatch, capsys):
    """Issue 19 #14: with --workers, the figures are the server's; the processes are listed."""
    figures = {"running": True, "answering": True, "pid": 12, "url": "ws://127.0.0.1:1", "bus": "ipc://x"}
    workers = [{"pid": 12, "clients": 1, "ticks_out": 5}, {"pid": 13, "clients": 2, "ticks_out": 7}]
    monkeypatch.setattr(status, "collect", lambda: (status.RUNNING, {**figures, "clients": 3, "workers": workers}))
    status.show_status(as_json=False)
    out = capsys.readouterr().out
    assert "2 processes: 12 (1 client), 13 (2 clients)" in out
    monkeypatch.setattr(status, "collect", lambda: (status.RUNNING, {**figures, "workers": workers[:1]}))
    status.show_status(as_json=False)
    assert "processes" not in capsys.readouterr().out
