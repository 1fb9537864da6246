"""``oaws serve --broker openalgo --upstream URL`` as a user runs it: in front of another
``oaws serve`` (which speaks OpenAlgo's protocol), the key from OPENALGO_API_KEY, never argv."""

from __future__ import annotations

import subprocess

from tests.helpers import first_tick, start_serve

KEY = "upstream-secret"


def serve_upstream(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    return start_serve({**env, "OAWS_API_KEY": KEY}, "--port", "0", "--bus", "tcp://127.0.0.1:*", "--rate", "20")


async def test_serve_openalgo_serves_the_upstreams_ticks(cli_env):
    upstream, upstream_url = serve_upstream(cli_env)
    try:
        front, url = start_serve(
            {**cli_env, "OPENALGO_API_KEY": KEY},
            *("--broker", "openalgo", "--upstream", upstream_url, "--port", "0", "--bus", "tcp://127.0.0.1:*"),
        )
        try:
            tick = await first_tick(url, "RELIANCE", mode=2)
            assert tick["broker"] == "openalgo" and tick["data"]["symbol"] == "RELIANCE" and tick["data"]["ltp"] > 0
        finally:
            front.terminate()
            front.wait(10)
    finally:
        upstream.terminate()
        upstream.wait(10)


def test_serve_openalgo_with_a_refused_key_ends_with_one_sentence(cli_env):
    upstream, upstream_url = serve_upstream(cli_env)
    try:
        front, _ = start_serve(
            {**cli_env, "OPENALGO_API_KEY": "not-the-key-7f3a"},
            *("--broker", "openalgo", "--upstream", upstream_url, "--port", "0", "--bus", "tcp://127.0.0.1:*"),
        )
        try:
            _, stderr = front.communicate(timeout=30)
        finally:
            front.kill()
        assert front.returncode == 1
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("oaws: the openalgo feed stopped: OpenAlgo at ") and "refused the API key twice" in last
        assert "Traceback" not in stderr and "not-the-key-7f3a" not in stderr
    finally:
        upstream.terminate()
        upstream.wait(10)


def test_upstream_implies_the_openalgo_broker_and_goes_with_no_other(cli_env):
    from tests.helpers import oaws

    out = oaws(cli_env, "serve", "--broker", "sim", "--upstream", "ws://127.0.0.1:1", "--port", "0")
    assert out.returncode == 1 and out.stderr == "oaws: --upstream goes with --broker openalgo, not --broker sim\n"
    out = oaws({**cli_env, "OPENALGO_API_KEY": ""}, "serve", "--upstream", "ws://127.0.0.1:1", "--port", "0")
    assert out.returncode == 1 and out.stderr.startswith("oaws: the OpenAlgo API key is missing: set OPENALGO_API_KEY")
