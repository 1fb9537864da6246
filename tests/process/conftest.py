"""Process-level tests: each starts real ``oaws`` processes (or waits on real timeouts),
so they are the slow part of the suite. Everything under this folder is marked
``process``: ``pytest -m 'not process'`` runs the rest in a fraction of the time."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.process)
