"""``run``: the ``oaws`` command in this process (its ``main``, so its exit codes), with private
state, cache and config directories."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from oaws import cli


@pytest.fixture
def run(tmp_path, monkeypatch, capsys) -> Callable[..., tuple[int, str, str]]:
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    for key in ("OAWS_URL", "OAWS_API_KEY", "OAWS_BROKER", "OAWS_BUS", "OAWS_PORT", "OAWS_HOST", "OAWS_MODE"):
        monkeypatch.delenv(key, raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        """``oaws ARGS``: (exit code, stdout, stderr)."""
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["oaws", *args])
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        else:
            code = 0
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
