"""Commands that draw on a terminal, and ``-v`` for them: the watch refuses a standard
output that is not a terminal; its debug log goes to a file named when it exits."""

from __future__ import annotations

import logging

from typer.testing import CliRunner

from oaws.cli import app


def test_the_watch_refuses_an_output_that_is_no_terminal(tmp_path, monkeypatch):
    """Issue 19 #17: ``oaws watch > file`` wrote escape codes without a word."""
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "none.toml"))
    result = CliRunner().invoke(app, ["watch", "--no-autostart"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "oaws: the watch draws on a terminal, and standard output is not one: `oaws tail` writes lines to pipes\n"
    )


def test_verbose_watch_logs_to_a_file_and_says_where(tmp_path, monkeypatch):
    """Issue 19 #10: under ``-v`` the watch's stderr is its screen: the log goes to
    watch.log in the state directory, named on stderr once the watch is gone."""
    state = tmp_path / "state"
    monkeypatch.setenv("OAWS_STATE_DIR", str(state))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "none.toml"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = CliRunner().invoke(app, ["-v", "watch", "--no-autostart"])
        logging.getLogger("oaws.test").debug("a debug line")
        for handler in root.handlers:
            handler.flush()
        log = state / "watch.log"
        assert result.stderr.endswith(f"oaws: the watch's debug log is in {log}\n")
        assert "DEBUG oaws.test: a debug line" in log.read_text()
        assert log.stat().st_mode & 0o077 == 0  # the user's alone, as every file of the state directory
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
