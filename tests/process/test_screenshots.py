"""``scripts/screenshots.py`` (issue 19 #22): without rsvg-convert it stops with one sentence
before writing anything, so the SVGs never run ahead of the PNGs beside them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


def screenshots(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "bin"  # a PATH with no rsvg-convert (and no fc-list) on it
    empty.mkdir(exist_ok=True)
    env = {"PATH": str(empty), "HOME": str(tmp_path), "OAWS_CONFIG": str(tmp_path / "config.toml")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_rsvg_convert_nothing_is_written(tmp_path):
    done = screenshots(tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "rsvg-convert" in done.stderr and "nothing was written" in done.stderr
    assert not (tmp_path / "out").exists()


def test_svg_only_writes_the_svgs(tmp_path):
    done = screenshots(tmp_path, "--svg-only", "--seconds", "0.5", "--size", "100x24")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["chart.svg", "depth.svg", "watch-fno.svg", "watch.svg"]
