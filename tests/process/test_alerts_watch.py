"""``oaws alerts watch`` end to end: a real ``oaws serve`` (the simulated market), alerts set
by ``oaws alerts add``, the firing as a JSON line, the triggered state saved in the config
file, the ``[notify]`` command run; alerts added and re-armed while it runs; a quiet exit."""

from __future__ import annotations

import shlex
import signal
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.helpers import OAWS, oaws, start_serve, wait_until


@pytest.fixture
def server(cli_env):
    # the simulated market around the clock (where it follows the exchanges' sessions)
    cli_env["OAWS_SIM_HOURS"] = "always"
    proc, url = start_serve(cli_env, "--port", "0", "--bus", "tcp://127.0.0.1:*", "--rate", "20")
    yield url
    proc.terminate()
    proc.wait(10)


def configure(env: dict[str, str], notified: Path) -> None:
    """A config file whose [notify] command writes the alert's environment to ``notified``."""
    command = f"env | grep ^OAWS_ALERT_ | sort > {shlex.quote(str(notified))}"
    Path(env["OAWS_CONFIG"]).write_text(
        f"# my settings\n[notify]\ncommand = {orjson.dumps(command).decode()}\ndesktop = false\n"
    )


def listed(env: dict[str, str]) -> list[dict]:
    out = oaws(env, "alerts", "list", "--json")
    assert out.returncode == 0, out.stderr
    return [orjson.loads(line) for line in out.stdout.splitlines()]


def start_watch(env: dict[str, str], url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*OAWS, "alerts", "watch", "--url", url, "--no-autostart", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_alert_set_by_the_command_line_fires_once_saves_and_notifies(server, cli_env, tmp_path) -> None:
    notified = tmp_path / "notified.txt"
    configure(cli_env, notified)
    # RELIANCE is near 1,480 in the simulated market: above 1 fires at once, below 1 never
    assert oaws(cli_env, "alerts", "add", "RELIANCE:NSE", "--above", "1").returncode == 0
    assert oaws(cli_env, "alerts", "add", "RELIANCE:NSE", "--below", "1").returncode == 0

    out = oaws(cli_env, "alerts", "watch", "--count", "1", "--url", server, "--no-autostart", timeout=60)

    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    firing = orjson.loads(line)
    assert (firing["id"], firing["instrument"], firing["kind"], firing["state"]) == (
        1,
        "RELIANCE:NSE",
        "above",
        "triggered",
    )
    assert firing["ltp"] > 1 and firing["triggered_value"] == firing["ltp"]
    assert firing["triggered_at"].endswith("+05:30")
    assert firing["text"].startswith("RELIANCE:NSE price above 1.00: now ")

    saved = {a["id"]: a for a in listed(cli_env)}
    assert saved[1]["state"] == "triggered"
    assert saved[1]["triggered_at"] == firing["triggered_at"]
    assert saved[1]["triggered_value"] == firing["triggered_value"]
    assert saved[2]["state"] == "armed"
    assert Path(cli_env["OAWS_CONFIG"]).read_text().startswith("# my settings\n")

    env = dict(line.split("=", 1) for line in notified.read_text().splitlines())
    assert env["OAWS_ALERT_ID"] == "1"
    assert env["OAWS_ALERT_INSTRUMENT"] == "RELIANCE:NSE"
    assert env["OAWS_ALERT_KIND"] == "above"
    assert env["OAWS_ALERT_VALUE"] == "1"
    assert float(env["OAWS_ALERT_TRIGGERED_VALUE"]) == firing["triggered_value"]
    assert env["OAWS_ALERT_TIME"] == firing["triggered_at"]


def test_alerts_added_and_rearmed_while_watching_are_picked_up(server, cli_env, tmp_path) -> None:
    configure(cli_env, tmp_path / "notified.txt")
    watch = start_watch(cli_env, server, "--count", "2")
    try:
        assert watch.stderr is not None and watch.stdout is not None
        said = watch.stderr.readline()
        assert "no armed alerts" in said

        assert oaws(cli_env, "alerts", "add", "INFY:NSE", "--above", "1").returncode == 0
        first = orjson.loads(watch.stdout.readline())
        assert (first["id"], first["instrument"]) == (1, "INFY:NSE")
        wait_until(lambda: listed(cli_env)[0]["state"] == "triggered", what="alert 1 saved as triggered")

        assert oaws(cli_env, "alerts", "rearm", "1").returncode == 0
        again = orjson.loads(watch.stdout.readline())
        assert (again["id"], again["state"]) == (1, "triggered")

        assert watch.wait(30) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_stop_exit_0_quietly(server, cli_env, sig) -> None:
    watch = start_watch(cli_env, server)
    try:
        assert watch.stderr is not None
        assert "no armed alerts" in watch.stderr.readline()
        watch.send_signal(sig)
        assert watch.wait(30) == 0
        assert watch.stderr.read() == ""
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait(10)
