"""`serve --detach`, `status`, `stop`, and autostart: real background processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.helpers import OAWS, free_port, oaws


@pytest.fixture
def env(cli_env, tmp_path, ipc_bus):
    cli_env.update(OAWS_PORT=str(free_port()), OAWS_BUS=ipc_bus, OAWS_RATE="20")
    yield cli_env
    # whatever a test started, stop it
    state = tmp_path / "state" / "server.json"
    subprocess.run([*OAWS, "stop", "--timeout", "2"], env=cli_env, capture_output=True, timeout=30)
    if state.exists():
        pid = json.loads(state.read_text()).get("pid")
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def env_state(env) -> Path:
    return Path(env["OAWS_STATE_DIR"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive for our purposes
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_detach_status_stop(env):
    out = oaws(env, "serve", "--detach")
    assert out.returncode == 0, out.stderr
    # issue 19 #17: the success on the same stream as "already running" (and every other word of oaws's own)
    assert f"ws://127.0.0.1:{env['OAWS_PORT']}" in out.stderr and "log " in out.stderr and out.stdout == ""
    st = oaws(env, "status", "--json")
    assert st.returncode == 0
    report = orjson.loads(st.stdout)
    assert report["running"] and report["answering"] and report["broker"] == "sim"
    pid = report["pid"]
    assert alive(pid)
    human = oaws(env, "status")
    assert human.returncode == 0 and "running" in human.stdout and str(pid) in human.stdout

    again = oaws(env, "serve", "--detach")
    assert again.returncode == 0 and "already running" in again.stderr and str(pid) in again.stderr

    stopped = oaws(env, "stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stderr
    assert not alive(pid)
    assert oaws(env, "status").returncode == 3
    nothing = oaws(env, "stop")
    assert nothing.returncode == 0 and "no background server" in nothing.stderr


def test_a_detached_server_with_workers_keeps_its_settings_and_its_pid(env, tmp_path):
    keys = tmp_path / "keys"
    assert oaws(env, "keys", "generate", str(keys)).returncode == 0
    out = oaws(env, "serve", "--detach", "--workers", "2", "--curve", str(keys), "--slow-timeout", "7")
    assert out.returncode == 0, out.stderr
    state = orjson.loads((env_state(env) / "server.json").read_text())
    # whichever process answers /health, status names the server that holds the state
    pids = {orjson.loads(oaws(env, "status", "--json").stdout)["pid"] for _ in range(6)}
    assert pids == {state["pid"]}
    # every setting reached the server as data: CURVE on its bus, so its clients get ticks
    ticks = oaws(env, "tail", "RELIANCE:NSE", "--json", "--count", "2", "--no-autostart")
    assert ticks.returncode == 0 and len(ticks.stdout.splitlines()) == 2, ticks.stderr


def test_stale_state_after_sigkill(env):
    assert oaws(env, "serve", "--detach").returncode == 0
    pid = orjson.loads(oaws(env, "status", "--json").stdout)["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    st = oaws(env, "status")
    assert st.returncode == 1 and "stale" in st.stderr
    assert oaws(env, "status").returncode == 3  # the stale file was cleared


def test_two_concurrent_detach_calls_start_one_server(env):
    procs = [
        subprocess.Popen(
            [*OAWS, "serve", "--detach"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    pid = orjson.loads(oaws(env, "status", "--json").stdout)["pid"]
    text = " ".join(o + e for o, e in outs)
    assert text.count(f"pid {pid}") == 2  # both name the same server
    servers = subprocess.run(["pgrep", "-f", "oaws serve.*--background"], capture_output=True, text=True).stdout.split()
    mine = [
        p
        for p in servers
        if f"OAWS_STATE_DIR={env['OAWS_STATE_DIR']}"
        in open(f"/proc/{p}/environ", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    ]
    assert mine == [str(pid)]


def test_autostart_from_tail_on_a_fresh_state_directory(env):
    out = oaws(env, "tail", "--json", "--count", "3", "RELIANCE:NSE")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 3
    assert out.stderr.count("\n") == 1 and "started a background server" in out.stderr and "oaws stop" in out.stderr
    assert oaws(env, "status").returncode == 0
    # the next command finds it running and says nothing
    out = oaws(env, "subscribe", "--json", "INFY:NSE")
    assert out.returncode == 0 and out.stderr == ""


def test_no_autostart_with_nothing_running_is_one_sentence(env):
    out = oaws(env, "tail", "--no-autostart", "--count", "1")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "nothing is listening" in out.stderr
    assert oaws(env, "status").returncode == 3


def test_autostart_off_in_config(env, tmp_path):
    (tmp_path / "config.toml").write_text("autostart = false\n")
    out = oaws(env, "subscribe", "RELIANCE:NSE")
    assert out.returncode == 1 and "nothing is listening" in out.stderr


def test_non_default_url_never_autostarts(env):
    out = oaws(env, "tail", "--url", f"ws://127.0.0.1:{free_port()}", "--count", "1")
    assert out.returncode == 1 and "nothing is listening" in out.stderr
    assert oaws(env, "status").returncode == 3


def test_port_taken_by_another_program(env):
    taken = socket.socket()
    taken.bind(("127.0.0.1", int(env["OAWS_PORT"])))
    taken.listen()
    try:
        out = oaws(env, "serve", "--detach")
    finally:
        taken.close()
    assert out.returncode == 1
    assert f"port {env['OAWS_PORT']} on 127.0.0.1 is in use" in out.stderr
    assert "Traceback" not in out.stderr


def test_stop_closes_clients_with_1001(env):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    assert oaws(env, "serve", "--detach").returncode == 0
    with connect(f"ws://127.0.0.1:{env['OAWS_PORT']}") as ws:
        ws.send('{"action":"subscribe","symbol":"RELIANCE","exchange":"NSE"}')
        ws.recv(timeout=5)
        assert oaws(env, "stop").returncode == 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1001


def test_api_key_stays_out_of_ps_and_log(env, tmp_path):
    secret = "s3cret-key-that-must-not-leak"
    out = oaws(env, "serve", "--detach", "--api-key", secret)
    assert out.returncode == 0, out.stderr
    pid = orjson.loads(oaws(env, "status", "--json").stdout)["pid"]
    assert secret not in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{env['OAWS_PORT']}") as ws:
        ws.send('{"action":"authenticate","api_key":"wrong-' + secret + '"}')
        assert json.loads(ws.recv(timeout=5))["code"] == "AUTHENTICATION_ERROR"
        ws.send('{"action":"authenticate","api_key":"' + secret + '"}')
        assert json.loads(ws.recv(timeout=5))["status"] == "success"
    assert oaws(env, "stop").returncode == 0
    log = (tmp_path / "state" / "server.log").read_text()
    assert "background server ready" in log and secret not in log


def test_detached_feed_alone_is_running_without_a_proxy(env):
    out = oaws(env, "serve", "--detach", "--role", "feed")
    assert out.returncode == 0, out.stderr
    report = orjson.loads(oaws(env, "status", "--json").stdout)
    assert report["running"] and report["role"] == "feed" and report["url"] == ""
    human = oaws(env, "status")
    assert human.returncode == 0 and "running" in human.stdout and "not answering" not in human.stdout


def test_port_out_of_range_is_refused(env):
    out = oaws(env, "serve", "--port", "99999")
    assert out.returncode == 2 and "65535" in out.stderr and out.stderr.count("\n") == 1


def test_status_finds_a_foreground_server_and_stop_leaves_it_alone(env):
    proc = subprocess.Popen([*OAWS, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if "serving on" in line:
                break
        st = oaws(env, "status", "--json")
        report = orjson.loads(st.stdout)
        assert st.returncode == 0 and report["running"] and report["managed"] is False
        assert report["pid"] == proc.pid and report["url"] == f"ws://127.0.0.1:{env['OAWS_PORT']}"
        stopped = oaws(env, "stop")
        assert stopped.returncode == 0 and "not started by oaws in the background" in stopped.stderr
        assert proc.poll() is None  # still running
        again = oaws(env, "serve", "--detach")  # says so and starts nothing
        assert again.returncode == 0 and again.stderr.count("\n") == 1, again.stderr
        assert f"already running at ws://127.0.0.1:{env['OAWS_PORT']} (pid {proc.pid})" in again.stderr
        assert oaws(env, "status", "--json").returncode == 0 and not (env_state(env) / "server.json").exists()
    finally:
        proc.terminate()
        proc.wait(5)


def test_exited_counts_an_unreaped_zombie_and_not_a_live_process():
    from oaws.background import _exited

    live = subprocess.Popen(["sleep", "30"])
    dead = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while not _exited(dead.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _exited(dead.pid)  # exited, not yet reaped: a zombie
        assert not _exited(live.pid)
    finally:
        live.kill()
        live.wait()
        dead.wait()
    assert _exited(dead.pid)  # reaped: gone


def test_stop_refuses_a_state_file_without_a_pid(env, monkeypatch, tmp_path):
    from oaws.background import ServerLock

    monkeypatch.setenv("OAWS_STATE_DIR", env["OAWS_STATE_DIR"])
    lock = ServerLock()
    assert lock.acquire()
    try:
        lock.publish({"url": ""})
        out = oaws(env, "stop")
    finally:
        lock.release()
    assert out.returncode == 1 and "names no server process" in out.stderr and "Traceback" not in out.stderr


def test_a_failed_start_shows_its_own_log_lines_not_earlier_ones(env):
    for _ in range(2):
        out = oaws(env, "serve", "--detach", "--broker", "replay")
        assert out.returncode == 1 and "exited while starting" in out.stderr
    # the log holds both failures; the second report quotes only its own
    assert out.stderr.count("needs a recording") == 1, out.stderr
    assert (env_state(env) / "server.log").read_text().count("needs a recording") == 2


@pytest.fixture
def held_lock(env, monkeypatch):
    """The server lock held by the test itself, so that whatever it writes as server.json counts as live."""
    from oaws.background import ServerLock

    monkeypatch.setenv("OAWS_STATE_DIR", env["OAWS_STATE_DIR"])
    lock = ServerLock()
    assert lock.acquire()
    yield lock
    lock.release()


def one_sentence(out: subprocess.CompletedProcess[str], code: int) -> str:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("oaws: ") and "Traceback" not in out.stderr
    return out.stderr


def test_stop_refuses_to_signal_a_pid_that_is_not_an_oaws_server(env, held_lock):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        held_lock.publish({"pid": sleeper.pid, "url": ""})
        said = one_sentence(oaws(env, "stop"), 1)
        assert f"pid {sleeper.pid}, which is not an oaws server (it is sleep)" in said
        held_lock.publish({"pid": 1, "url": ""})  # init: never
        assert "pid 1, which is no server's" in one_sentence(oaws(env, "stop"), 1)
        assert sleeper.poll() is None  # never signalled
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(
    "content",
    ['{"pid": "abc"}', '{"pid": [1, 2]}', '{"pid": 1e400}', '{"pid": 99999999999999999999}',
     '{"pid": 12, "started": "yesterday", "url": ""}', '{"pid": 12, "bus": 5, "url": ""}'],
)  # fmt: skip
def test_a_corrupt_state_file_is_one_sentence_and_serve_replaces_it(env, held_lock, content):
    state = env_state(env) / "server.json"
    state.write_text(content)
    for command in (("status",), ("stop",)):
        assert "is corrupt" in one_sentence(oaws(env, *command), 1)
    report = oaws(env, "status", "--json")
    assert report.returncode == 1 and orjson.loads(report.stdout)["corrupt"], report.stderr
    held_lock.release()  # nobody holds it: no server running, the file only corrupt
    state.write_text(content)
    said = one_sentence(oaws(env, "status"), 1)
    assert said.startswith("oaws: no server running? the state file") and "corrupt" in said
    state.write_text(content)
    out = oaws(env, "serve", "--detach")  # replaces it
    assert out.returncode == 0, out.stderr
    assert orjson.loads(oaws(env, "status", "--json").stdout)["answering"]


def test_stop_right_after_serve_detach_starts_stops_the_starting_server(env, monkeypatch):
    """`stop` while a detached server is starting (its lock taken, its state not yet
    "ready") waits for it and stops it: afterwards no server runs, and stop did not say
    "nothing is running"."""
    from oaws import background

    monkeypatch.setenv("OAWS_STATE_DIR", env["OAWS_STATE_DIR"])
    detach = subprocess.Popen(
        [*OAWS, "serve", "--detach"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not background.lock_held() and time.monotonic() < deadline and detach.poll() is None:
            time.sleep(0.005)
        assert background.lock_held(), detach.communicate()
        pid = background.stop()  # at once: the server is still on its way up
        assert pid is not None
        _, err = detach.communicate(timeout=30)
    finally:
        if detach.poll() is None:
            detach.kill()
    assert not alive(pid)
    assert oaws(env, "status").returncode == 3
    assert not background.lock_held()
    assert "Traceback" not in err


def test_health_needs_the_api_key_and_status_sends_it(env):
    """/health handed anyone the pid, the bus and every client's address; with a key it
    wants the key, and `oaws status` sends the one it finds as `serve` does."""
    keyed = {**env, "OAWS_API_KEY": "status-key"}
    out = oaws(keyed, "serve", "--detach")
    assert out.returncode == 0, out.stderr
    report = orjson.loads(oaws(keyed, "status", "--json").stdout)
    assert report["answering"] and "clients" in report and "per_client" in report
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{env['OAWS_PORT']}/health", timeout=5)
    assert refused.value.code == 401
    body = orjson.loads(refused.value.read())
    assert body["status"] == "ok" and not {"pid", "bus", "per_client"} & body.keys()
    without = oaws(env, "status", "--json")  # no key here: the figures are withheld, it still answers
    report = orjson.loads(without.stdout)
    assert report["answering"] and report["auth_required"] and "per_client" not in report
    assert "API key" in oaws(env, "status").stdout
