"""`oaws login dhan` and `oaws instruments update|search --broker dhan` as processes against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from oaws.brokers.dhan.master import rows_from_csv
from oaws.brokers.dhan.settings import ENV_VARS
from oaws.brokers.dhan.simulator import DhanSimulator
from tests.helpers import oaws


@pytest.fixture
async def sim() -> AsyncIterator[DhanSimulator]:
    async with DhanSimulator(tick_interval=0.2, seed=3) as simulator:
        yield simulator


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    for var in (*ENV_VARS.values(), "OAWS_INSTRUMENTS", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        cli_env.pop(var, None)
    return {**cli_env, "NO_PROXY": "127.0.0.1,localhost"}


async def run(env: dict[str, str], *args: str):
    return await asyncio.to_thread(oaws, env, *args)


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text


async def test_login_says_until_when_the_token_is_valid(sim, env):
    result = await run({**env, **sim.env()}, "login", "dhan")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Dhan accepts the access token of client {sim.client_id}; ")
    assert lines[0].endswith(" IST.")
    assert sim.access_token not in result.stdout + result.stderr
    assert sim.rest_requests == ["GET /v2/profile"]


async def test_login_with_an_expired_token_is_one_sentence(sim, env):
    sim.expire_token()
    result = await run({**env, **sim.env()}, "login", "dhan")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "oaws: Dhan refused the access token (expired or revoked): generate a new one at web.dhan.co"
        " and set DHAN_ACCESS_TOKEN\n"
    )
    assert sim.access_token not in result.stderr
    assert_no_traceback(result.stderr)


async def test_login_with_another_clients_id_is_one_sentence(sim, env):
    result = await run({**env, **sim.env(), "DHAN_CLIENT_ID": "1000000099"}, "login", "dhan")
    assert result.returncode == 1
    assert result.stderr.startswith(f"oaws: the access token belongs to Dhan client {sim.client_id}, not to ")
    assert result.stderr.count("\n") == 1 and sim.access_token not in result.stderr


async def test_login_without_credentials_names_them(env):
    result = await run(env, "login", "dhan")
    assert result.returncode == 1
    assert "DHAN_CLIENT_ID" in result.stderr and "DHAN_ACCESS_TOKEN" in result.stderr
    assert result.stderr.startswith("oaws: ") and result.stderr.count("\n") == 1
    assert_no_traceback(result.stderr)


async def test_login_when_dhan_is_busy_is_one_sentence(sim, env):
    sim.rest_fault(503, 50)
    result = await run({**env, **sim.env()}, "login", "dhan")
    assert result.returncode == 1
    assert result.stderr.endswith("answered HTTP 503 to every try of the profile call; try again later\n")
    assert result.stderr.startswith("oaws: ") and result.stderr.count("\n") == 1


async def test_instruments_update_then_search(sim, env):
    env = {**env, **sim.env(), "COLUMNS": "200"}  # a wide table: no name cut short
    update = await run(env, "instruments", "update", "--broker", "dhan")
    assert update.returncode == 0, update.stderr
    count = len(rows_from_csv(sim.scrips_bytes()))
    assert update.stdout.startswith(f"Saved {count} instruments to ") and update.stdout.endswith("dhan-index.json.\n")
    assert sim.rest_requests == ["GET /api-data/api-scrip-master.csv"]

    table = await run(env, "instruments", "search", "nifty", "--broker", "dhan", "-e", "NFO")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[0] == "instrument" and "dhan symbol" in lines[0]
    assert len(lines) > 2 and all(":NFO" in line for line in lines[1:])

    found = await run(env, "instruments", "search", "nifty", "--broker", "dhan", "-e", "NFO", "--json", "-n", "500")
    matches = [orjson.loads(line) for line in found.stdout.splitlines()]
    assert matches and {m["segment"] for m in matches} == {"NSE_FNO"}
    futures = [m for m in matches if m["instrument_type"] == "FUT" and m["dhan_symbol"].startswith("NIFTY-")]
    assert futures and all(m["instrument"].startswith("NIFTY") and m["instrument"].endswith("FUT:NFO") for m in futures)

    index = await run(env, "instruments", "search", "Nifty 50", "--broker", "dhan", "-e", "NSE_INDEX", "--json")
    assert orjson.loads(index.stdout.splitlines()[0])["instrument"] == "NIFTY:NSE_INDEX"


async def test_search_without_a_master_says_how_to_get_one(env):
    result = await run(env, "instruments", "search", "nifty", "--broker", "dhan")
    assert result.returncode == 1
    assert result.stderr == (
        "oaws: no Dhan scrip master: run `oaws instruments update --broker dhan` or pass --instruments FILE\n"
    )
