"""`oaws login kite` and `oaws instruments update|search --broker kite` as processes against the Kite simulator.

The request token (or the redirect URL) goes in on stdin, never in argv; the access token
never comes out on stdout or stderr; the session file is 0600; mistakes are one sentence.
"""

from __future__ import annotations

import asyncio
import stat
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import requests

from oaws.brokers.kite.session import SESSION_FILE
from oaws.brokers.kite.simulator import KiteSimulator
from tests.helpers import OAWS


@pytest.fixture
async def sim():
    async with KiteSimulator(tick_interval=0.2) as simulator:
        yield simulator


@pytest.fixture
def env(cli_env, sim):
    environment = {k: v for k, v in cli_env.items() if not k.startswith("KITE_")}
    environment.update(sim.env())
    return environment


async def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*OAWS, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    return await asyncio.to_thread(call)


def session_file(env: dict[str, str]) -> Path:
    return Path(env["OAWS_STATE_DIR"]) / SESSION_FILE


def assert_no_secret(sim: KiteSimulator, result: subprocess.CompletedProcess[str], *more: str) -> None:
    for secret in (sim.api_secret, *sim.access_tokens, *more):
        assert secret not in result.stdout and secret not in result.stderr
        assert all(secret not in arg for arg in result.args)


def one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("oaws: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


async def test_login_with_request_token_on_stdin(sim, env):
    request_token = sim.issue_request_token()
    result = await run(env, "login", "kite", "--request-token", stdin=f"{request_token}\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Logged in to Kite as {sim.user_id}; the access token is kept until 06:00 IST")
    assert result.stderr == ""  # no prompt with --request-token
    assert sim.sessions == 1 and len(sim.access_tokens) == 1
    assert stat.S_IMODE(session_file(env).stat().st_mode) == 0o600
    (access,) = sim.access_tokens
    assert access in session_file(env).read_text()
    assert_no_secret(sim, result, request_token)


async def test_interactive_login_with_the_redirect_url(sim, env):
    first = await run(env, "login", "kite", stdin="")  # to read the login URL it prints
    assert first.returncode == 2
    printed = [line.strip() for line in first.stderr.splitlines() if "://" in line]
    assert printed == [f"{sim.login_url}?api_key={sim.api_key}&v=3"]
    # the browser: the login page redirects to the app with a request token
    landing = await asyncio.to_thread(requests.get, printed[0], allow_redirects=False, timeout=5)
    assert landing.status_code == 302
    redirect = landing.headers["Location"]
    request_token = parse_qs(urlsplit(redirect).query)["request_token"][0]
    result = await run(env, "login", "kite", stdin=redirect + "\n")
    assert result.returncode == 0, result.stderr
    assert "the URL Kite redirected you to, or its request_token" in result.stderr
    assert result.stdout.startswith(f"Logged in to Kite as {sim.user_id};")
    assert stat.S_IMODE(session_file(env).stat().st_mode) == 0o600
    assert_no_secret(sim, result, request_token)


async def test_a_used_request_token_is_one_sentence_and_exit_1(sim, env):
    request_token = sim.issue_request_token()
    assert (await run(env, "login", "kite", "--request-token", stdin=request_token)).returncode == 0
    again = await run(env, "login", "kite", "--request-token", stdin=request_token)
    assert again.returncode == 1
    assert one_sentence(again) == (
        "oaws: Kite refused the request token (it works once and for a few minutes): "
        f"log in again at {sim.login_url}?api_key={sim.api_key}&v=3"
    )
    assert_no_secret(sim, again, request_token)


@pytest.mark.parametrize("stdin", ["", "\n", "   \n"])
async def test_nothing_on_stdin_is_one_sentence_and_exit_2(sim, env, stdin):
    result = await run(env, "login", "kite", "--request-token", stdin=stdin)
    assert result.returncode == 2
    assert one_sentence(result).startswith("oaws: nothing was read from stdin")
    assert sim.sessions == 0 and not session_file(env).exists()


@pytest.mark.parametrize(
    ("pasted", "sentence"),
    [
        (
            "http://127.0.0.1/redirect?status=error&action=login",
            "oaws: Kite's redirect says the login did not succeed (status=error): log in again",
        ),
        (
            "http://127.0.0.1/redirect?status=success&action=login",
            "oaws: the URL has no request_token: paste the whole URL Kite redirected you to",
        ),
    ],
)
async def test_a_redirect_without_a_good_login_is_one_sentence(sim, env, pasted, sentence):
    result = await run(env, "login", "kite", "--request-token", stdin=pasted + "\n")
    assert result.returncode == 1
    assert one_sentence(result) == sentence
    assert sim.sessions == 0


async def test_request_token_for_a_broker_without_one_is_exit_2(env):
    result = await run(env, "login", "angel", "--request-token", stdin="x\n")
    assert result.returncode == 2
    assert one_sentence(result) == ("oaws: the angel broker logs in without a request token; run `oaws login angel`")


async def test_a_request_token_in_argv_is_not_accepted(sim, env):
    request_token = sim.issue_request_token()
    result = await run(env, "login", "kite", "--request-token", request_token)
    assert result.returncode == 2 and sim.sessions == 0
    assert request_token not in result.stdout


async def test_login_without_a_secret_names_the_variable(sim, env):
    env = {k: v for k, v in env.items() if k != "KITE_API_SECRET"}
    result = await run(env, "login", "kite", "--request-token", stdin=sim.issue_request_token())
    assert result.returncode == 1
    line = one_sentence(result)
    assert "KITE_API_SECRET" in line and sim.api_key not in line


async def test_kite_down_is_one_sentence(sim, env):
    sim.rest_fault(503, count=10)
    result = await run(env, "login", "kite", "--request-token", stdin=sim.issue_request_token())
    assert result.returncode == 1
    assert one_sentence(result) == (
        f"oaws: cannot reach Kite for the login at {sim.api_url}/session/token: HTTP 503 Service Unavailable"
    )


async def test_instruments_update_then_search(sim, env):
    update = await run(env, "instruments", "update", "--broker", "kite")
    assert update.returncode == 0, update.stderr
    assert update.stdout.startswith("Saved ") and "kite-index.json" in update.stdout
    search = await run(env, "instruments", "search", "nifty", "--broker", "kite", "-e", "NFO")
    assert search.returncode == 0, search.stderr
    assert search.stdout.splitlines()[0].split()[0] == "instrument" and "kite symbol" in search.stdout
    rows = await run(env, "instruments", "search", "nifty", "--broker", "kite", "-e", "NFO", "--json")
    found = [orjson.loads(line) for line in rows.stdout.splitlines()]
    assert len(found) == 20 and all(m["instrument"].endswith(":NFO") and m["name"] == "NIFTY" for m in found)
    index = await run(env, "instruments", "search", "NIFTY 50", "--broker", "kite", "--json")
    assert '"instrument":"NIFTY:NSE_INDEX"' in index.stdout.splitlines()[0]


async def test_instruments_search_without_a_master_is_one_sentence(env):
    result = await run(env, "instruments", "search", "nifty", "--broker", "kite")
    assert result.returncode == 1
    assert one_sentence(result) == (
        "oaws: no Kite instrument master: run `oaws instruments update --broker kite` or pass --instruments FILE"
    )
