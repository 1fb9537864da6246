"""The background server's state directory and files (``oaws.background``), without processes:
the directory is the user's alone, and nothing planted in it is ever followed."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from oaws import background


@pytest.fixture
def state(tmp_path, monkeypatch):
    d = tmp_path / "state"
    monkeypatch.setenv("OAWS_STATE_DIR", str(d))
    return d


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_an_open_state_directory_is_made_0700_and_one_of_another_user_is_refused(state):
    state.mkdir()
    os.chmod(state, 0o1777)  # as /tmp: anyone may plant files in it
    lock = background.ServerLock()
    assert lock.acquire()
    lock.release()
    assert mode(state) == 0o700
    if os.geteuid() != 0:
        pytest.skip("only root can give the directory to another user")
    os.chown(state, 65534, 65534)
    try:
        with pytest.raises(background.BackgroundError, match="belongs to another user"):
            background.ServerLock().acquire()
    finally:
        os.chown(state, 0, 0)


def test_symlinks_planted_as_state_files_are_never_followed(state, tmp_path):
    state.mkdir(mode=0o700)
    targets = {}
    for name in ("server.tmp", "server.log", "server.lock"):
        target = tmp_path / f"precious-{name}"
        target.write_text("precious\n")
        os.chmod(target, 0o644)
        (state / name).symlink_to(target)
        targets[name] = target
    lock = background.ServerLock()
    assert lock.acquire()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        lock.publish({"pid": os.getpid(), "url": ""})
        log_path = background.log_to_file()
        logging.getLogger("oaws.test").warning("a line for the log")
        for h in root.handlers:
            h.flush()
            h.close()
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
        lock.release()
    for target in targets.values():
        assert target.read_text() == "precious\n" and mode(target) == 0o644
    for name in ("server.log", "server.lock"):
        assert stat.S_ISREG(os.lstat(state / name).st_mode) and mode(state / name) == 0o600
    assert "a line for the log" in log_path.read_text()


def test_a_symlink_planted_as_the_state_file_is_a_corrupt_state_not_followed(state, tmp_path):
    state.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"pid": 1234, "url": "ws://evil.example"}')
    (state / "server.json").symlink_to(elsewhere)
    found = background.read_state()
    assert found is not None and found.corrupt == "it is a symbolic link" and found.info == {}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"pid": "abc"}', "pid is 'abc'"),
        ('{"pid": [1]}', "pid is [1]"),
        ('{"pid": 100000000000000000000000000000}', "not a process id"),
        ('{"pid": 0}', "not a process id"),
        ('{"pid": true}', "pid is True"),
        ('{"pid": 12, "started": "yesterday"}', "started is 'yesterday'"),
        ('{"pid": 12, "bus": 5}', "bus is 5"),
        ('{"pid": 12, "url": null}', "url is None"),
        ("[1, 2]", "not a JSON object"),
        ("{not json", "not JSON"),
        ('{"url": ""}', "names no server process"),
    ],
)
def test_every_field_of_the_state_file_is_checked(state, content, why):
    state.mkdir(mode=0o700)
    (state / "server.json").write_text(content)
    found = background.read_state()
    assert found is not None and found.corrupt is not None and why in found.corrupt, found
    assert found.info == {} and found.pid == 0


def test_log_lines_are_stamped_in_exchange_time_with_the_offset(monkeypatch, tmp_path):
    """Issue 19 #12: server.log's times were UTC where everything else shows exchange time."""
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("OAWS_TIME_ZONE", raising=False)
    record = logging.LogRecord("oaws.x", logging.INFO, __file__, 1, "ready", None, None)
    record.created, record.msecs = 1_767_000_000.25, 250.0  # 2025-12-29 09:20:00.250 UTC
    assert background.ExchangeTimeFormatter().format(record) == "2025-12-29 14:50:00.250+05:30 INFO oaws.x: ready"
    monkeypatch.setenv("OAWS_TIME_ZONE", "UTC")
    assert background.ExchangeTimeFormatter().format(record).startswith("2025-12-29 09:20:00.250+00:00 INFO")


def test_the_background_servers_log_uses_exchange_time(state, monkeypatch):
    monkeypatch.setenv("OAWS_CONFIG", str(state / "none.toml"))
    monkeypatch.delenv("OAWS_TIME_ZONE", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        path = background.log_to_file()
        logging.getLogger("oaws.test").info("hello")
        for handler in root.handlers:
            handler.flush()
        assert path.read_text().rstrip().endswith("+05:30 INFO oaws.test: hello")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
