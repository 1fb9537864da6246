"""Installing oaws as a user of command-line tools does (issue 19 #25): the repository builds
an sdist and a wheel without a warning, the wheel installs into a fresh virtual environment
(and with pipx, where pipx is installed) and its ``oaws`` runs, completion included.

Slow: the wheel's dependencies are installed for real (pip reaches the package index or
its local mirror as it always does).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from oaws import __version__

ROOT = Path(__file__).resolve().parents[2]
#: what a source tree holds that a build must not see (nor write into)
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*cache")
WARNING = re.compile(r"warning|deprecat", re.IGNORECASE)


def quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OAWS_", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``python -m build`` of a copy of the repository: its output, and the directory of the sdist and wheel."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("the `build` package is not installed (pip install -e '.[test]')")
    where = tmp_path_factory.mktemp("build")
    source = where / "oaws"
    shutil.copytree(ROOT, source, ignore=LEFT_OUT)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(where / "dist"), str(source)],
        # with it, setuptools warns "byte-compiling is disabled": a fact of this machine, not of the package
        env={k: v for k, v in quiet_env().items() if k != "PYTHONDONTWRITEBYTECODE"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, where / "dist"


def wheel_of(dist: Path) -> Path:
    (wheel,) = dist.glob("oaws-*.whl")
    return wheel


def test_the_sdist_and_the_wheel_build_without_a_warning(built):
    done, dist = built
    said = [line for line in (done.stdout + done.stderr).splitlines() if WARNING.search(line)]
    assert not said, "\n".join(said)
    assert [p.name for p in dist.glob("oaws-*.tar.gz")] == [f"oaws-{__version__}.tar.gz"]
    names = zipfile.ZipFile(wheel_of(dist)).namelist()
    assert "oaws/tui/app.tcss" in names and "oaws/brokers/angel/sim_master.json" in names  # package data
    entry_points = zipfile.ZipFile(wheel_of(dist)).read(f"oaws-{__version__}.dist-info/entry_points.txt").decode()
    assert "oaws = oaws.cli:main" in entry_points and "[oaws.brokers]" in entry_points


def runs(bin_dir: Path, tmp_path: Path) -> None:
    """The installed ``oaws``: its version, the watch's help, and bash completion of a command."""
    env = quiet_env() | {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "OAWS_CONFIG": str(tmp_path / "config.toml"),
        "OAWS_STATE_DIR": str(tmp_path / "state"),
        "OAWS_CACHE_DIR": str(tmp_path / "cache"),
    }
    oaws = str(bin_dir / "oaws")
    version = subprocess.run([oaws, "--version"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert version.returncode == 0 and version.stdout == f"oaws {__version__}\n", version.stderr
    shown = subprocess.run([oaws, "watch", "--help"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and "Live market watch" in shown.stdout, shown.stderr
    bash = shutil.which("bash")
    if bash is not None:
        script = (
            "source <(oaws completion bash); COMP_WORDS=(oaws wat); COMP_CWORD=1; _oaws_completion oaws; "
            'printf "%s\\n" "${COMPREPLY[@]}"'
        )
        completed = subprocess.run(
            [bash, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert completed.stdout.split() == ["watch", "watchlist"], completed.stderr


def test_the_wheel_installs_into_a_fresh_venv_and_runs(built, tmp_path):
    _, dist = built
    target = tmp_path / "venv"
    try:
        venv.create(target, with_pip=True)
    except (OSError, subprocess.CalledProcessError) as exc:  # no ensurepip (Debian without python3-venv)
        pytest.skip(f"no venv with pip here: {exc}")
    bin_dir = target / ("Scripts" if os.name == "nt" else "bin")
    installed = subprocess.run(
        # --no-compile: byte-compiling pandas and the rest takes longer than installing them
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel_of(dist))],
        env=quiet_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    runs(bin_dir, tmp_path)


def test_the_wheel_installs_with_pipx_and_runs(built, tmp_path):
    pipx = shutil.which("pipx")
    if pipx is None:
        pytest.skip("pipx is not installed")
    _, dist = built
    env = quiet_env() | {"PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin")}
    env |= {"PIPX_MAN_DIR": str(tmp_path / "man")}
    installed = subprocess.run(
        [pipx, "install", "--pip-args=--no-compile", str(wheel_of(dist))],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    runs(tmp_path / "bin", tmp_path)
