"""`oaws serve --broker shoonya|flattrade` as processes against `oaws sim` processes, read with `oaws tail`.

Everything is a real process: the simulator (`oaws sim shoonya`, `oaws sim flattrade`, ports
chosen by the system, its `export` lines read from stdout), the server, and the client.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests

from tests.helpers import OAWS, oaws, start_serve


@pytest.fixture
def noren_env(cli_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in cli_env.items() if not k.startswith(("SHOONYA_", "FLATTRADE_"))}
    env.pop("OAWS_INSTRUMENTS", None)
    return env


def _simulator(env: dict[str, str], name: str) -> Iterator[tuple[dict[str, str], str]]:
    proc = subprocess.Popen(
        [*OAWS, "sim", name, "--rest-port", "0", "--feed-port", "0", "--tick-interval", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    exports: dict[str, str] = {}
    try:
        while not exports.get(f"{name.upper()}_TOKEN_URL"):
            line = proc.stdout.readline()
            assert line, "the simulator exited: " + (proc.stderr.read() if proc.stderr else "")
            found = re.match(r"export (\w+)=(.*)$", line.strip())
            if found:
                exports[found.group(1)] = found.group(2)
        yield exports, name
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def shoonya_process(noren_env: dict[str, str]) -> Iterator[tuple[dict[str, str], str]]:
    yield from _simulator(noren_env, "shoonya")


@pytest.fixture
def flattrade_process(noren_env: dict[str, str]) -> Iterator[tuple[dict[str, str], str]]:
    yield from _simulator(noren_env, "flattrade")


def _master_file(exports: dict[str, str], prefix: str, tmp_path: Path) -> Path:
    """Noren's own NSE master, downloaded from the simulator as a user would."""
    response = requests.get(f"{exports[f'{prefix}_MASTER_URL']}/NSE_symbols.txt.zip", timeout=10)
    assert response.status_code == 200
    path = tmp_path / "NSE_symbols.txt.zip"
    path.write_bytes(response.content)
    return path


def _tail(env: dict[str, str], url: str, count: int = 3) -> list[dict]:
    out = oaws(
        env, "tail", "--json", "--count", str(count), "--url", url, "--mode", "quote", "RELIANCE:NSE", "--no-autostart"
    )
    assert out.returncode == 0, out.stderr
    return [orjson.loads(line) for line in out.stdout.splitlines()]


def _secrets(exports: dict[str, str], prefix: str) -> list[str]:
    return [exports[f"{prefix}_{n}"] for n in ("PASSWORD", "TOTP_SECRET", "API_SECRET")]


def test_serve_shoonya_with_quickauth_streams_ticks_to_tail(shoonya_process, noren_env, tmp_path, ipc_bus):
    exports, _ = shoonya_process
    master = _master_file(exports, "SHOONYA", tmp_path)
    env = {**noren_env, **exports}
    server, url = start_serve(
        env, "--broker", "shoonya", "--instruments", str(master), "--port", "0", "--bus", ipc_bus,
        announce=r"on (ws://\S+): shoonya",
    )  # fmt: skip
    try:
        ticks = _tail(env, url)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert len(ticks) == 3 and {t["symbol"] for t in ticks} == {"RELIANCE"}
    assert all(t["data"]["ltp"] > 0 and t["data"]["close"] > 0 and "change_percent" in t["data"] for t in ticks)
    stored = Path(noren_env["OAWS_STATE_DIR"]) / "noren-shoonya-session.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    token = orjson.loads(stored.read_bytes())["token"]
    for secret in (*_secrets(exports, "SHOONYA"), token):
        assert secret not in stderr


def test_serve_flattrade_with_its_access_token(flattrade_process, noren_env, tmp_path, ipc_bus):
    exports, _ = flattrade_process
    key, secret = exports["FLATTRADE_API_KEY"], exports["FLATTRADE_API_SECRET"]
    # the browser's part and the exchange, by hand: what a user with FLATTRADE_ACCESS_TOKEN did elsewhere
    page = requests.get(f"{exports['FLATTRADE_AUTH_URL']}?app_key={key}", allow_redirects=False, timeout=10)
    code = re.search(r"code=([^&]+)", page.headers["Location"]).group(1)  # type: ignore[union-attr]
    body = {
        "api_key": key,
        "request_code": code,
        "api_secret": hashlib.sha256(f"{key}{code}{secret}".encode()).hexdigest(),
    }
    token = requests.post(exports["FLATTRADE_TOKEN_URL"], json=body, timeout=10).json()["token"]
    master = _master_file(exports, "FLATTRADE", tmp_path)
    env = {**noren_env, "FLATTRADE_USER_ID": exports["FLATTRADE_USER_ID"], "FLATTRADE_ACCESS_TOKEN": token}
    env |= {k: v for k, v in exports.items() if k.endswith("_URL")}
    server, url = start_serve(
        env, "--broker", "flattrade", "--instruments", str(master), "--port", "0", "--bus", ipc_bus,
        announce=r"on (ws://\S+): flattrade",
    )  # fmt: skip
    try:
        ticks = _tail(env, url)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert len(ticks) == 3 and {t["broker"] for t in ticks} == {"flattrade"}
    assert token not in stderr and secret not in stderr


def test_a_refused_login_is_one_sentence_and_a_failure(shoonya_process, noren_env, tmp_path, ipc_bus):
    exports, _ = shoonya_process
    master = _master_file(exports, "SHOONYA", tmp_path)
    env = {**noren_env, **exports, "SHOONYA_PASSWORD": "not-the-password"}
    out = oaws(env, "serve", "--broker", "shoonya", "--instruments", str(master), "--port", "0", "--bus", ipc_bus)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    final = lines[-1]  # the sentence the user reads last (the log line before it says the same)
    assert final.startswith("oaws: the shoonya feed stopped: Shoonya (Finvasia) refused the login"), out.stderr
    assert "Wrong Password" in final and "SHOONYA_PASSWORD" in final and final.count(".") <= 1
    assert "Traceback" not in out.stderr
    for secret in (*_secrets(exports, "SHOONYA"), "not-the-password"):
        assert secret not in out.stderr + out.stdout


def test_login_flattrade_reads_the_code_from_stdin(flattrade_process, noren_env):
    exports, _ = flattrade_process
    key = exports["FLATTRADE_API_KEY"]
    page = requests.get(f"{exports['FLATTRADE_AUTH_URL']}?app_key={key}", allow_redirects=False, timeout=10)
    env = {**noren_env, **{k: v for k, v in exports.items() if not k.endswith(("_PASSWORD", "_TOTP_SECRET"))}}
    out = subprocess.run(
        [*OAWS, "login", "flattrade"],
        input=page.headers["Location"] + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "Logged in to Flattrade" in out.stdout and "app_key=" in out.stderr  # the page's address was shown
    stored = Path(noren_env["OAWS_STATE_DIR"]) / "noren-flattrade-session.json"
    token = orjson.loads(stored.read_bytes())["token"]
    code = re.search(r"code=([^&]+)", page.headers["Location"]).group(1)  # type: ignore[union-attr]
    for secret in (token, code, exports["FLATTRADE_API_SECRET"]):
        assert secret not in out.stdout + out.stderr
