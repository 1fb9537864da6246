"""The access token's check (the profile call) against the simulator, with dhanhq as the oracle of
what Dhan's own client sends and reads; refusals, retries, and the token kept out of every output."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from dhanhq import DhanContext, dhanhq
from dhanhq.auth import DhanLogin

from oaws.brokers.dhan import session
from oaws.brokers.dhan.errors import (
    DhanClientMismatch,
    DhanCredentialsMissing,
    DhanError,
    DhanTokenExpired,
    DhanUnavailable,
)
from oaws.brokers.dhan.session import Profile, check_and_describe, token_client, validate
from oaws.brokers.dhan.settings import DhanSettings
from tests.helpers import free_port

INDIA = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(session, "FIRST_DELAY", 0.01)


def settings_for(sim: Any, **overrides: Any) -> DhanSettings:
    return DhanSettings(
        client_id=sim.client_id, access_token=sim.access_token, api_url=sim.api_url, master_url=sim.master_url
    ).with_overrides(**overrides)


def record_headers(sim: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, str]]]:
    """Every REST request's path and headers (lower-cased names), as the simulator received them."""
    seen: list[tuple[str, dict[str, str]]] = []
    answer = sim.rest

    def rest(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        seen.append((path, dict(headers)))
        return answer(method, path, headers, body)

    monkeypatch.setattr(sim, "rest", rest)
    return seen


def dhanhq_profile(sim: Any) -> dict[str, Any]:
    """The profile as dhanhq's own DhanLogin.user_profile fetches it (its base URL pointed at the simulator)."""
    login = DhanLogin(sim.client_id)
    login.API_BASE_URL = f"{sim.api_url}/v2"
    return login.user_profile(sim.access_token)


async def test_a_valid_token_gives_the_profile_dhanhq_reads(dhan_sim):
    profile = await asyncio.to_thread(validate, settings_for(dhan_sim))
    oracle = await asyncio.to_thread(dhanhq_profile, dhan_sim)
    assert profile.client_id == oracle["dhanClientId"] == dhan_sim.client_id
    assert profile.token_validity == oracle["tokenValidity"]
    # Dhan writes the validity in India time, to the minute
    expected = datetime.strptime(oracle["tokenValidity"], "%d/%m/%Y %H:%M").replace(tzinfo=INDIA).timestamp()
    assert profile.expires_at == expected
    assert abs(profile.expires_at - (datetime.now().timestamp() + dhan_sim.token_ttl)) < 120
    assert profile.active_segments == [s.strip() for s in oracle["activeSegment"].split(",")]
    assert profile.data_plan == oracle["dataPlan"] == "Active" and profile.data_active is True
    assert dhan_sim.rest_requests.count("GET /v2/profile") == 2


async def test_login_describes_the_token_in_one_line(dhan_sim, monkeypatch):
    for name, value in dhan_sim.env().items():
        monkeypatch.setenv(name, value)
    line = await asyncio.to_thread(check_and_describe)
    oracle = await asyncio.to_thread(dhanhq_profile, dhan_sim)
    until = datetime.strptime(oracle["tokenValidity"], "%d/%m/%Y %H:%M").strftime("%Y-%m-%d %H:%M")
    assert line == f"Dhan accepts the access token of client {dhan_sim.client_id}; it is valid until {until} IST."
    assert dhan_sim.access_token not in line


async def test_no_data_plan_is_a_warning_not_a_refusal(dhan_sim, caplog):
    dhan_sim.data_plan = False
    with caplog.at_level(logging.WARNING, logger="oaws"):
        profile = await asyncio.to_thread(validate, settings_for(dhan_sim))
    assert profile.data_active is False
    assert "no active Data API plan" in caplog.text
    assert "which the market feed needs" in session.describe(profile)


async def test_the_headers_are_those_dhanhqs_own_client_sends(dhan_sim, monkeypatch):
    seen = record_headers(dhan_sim, monkeypatch)
    await asyncio.to_thread(validate, settings_for(dhan_sim))
    client = dhanhq(DhanContext(dhan_sim.client_id, dhan_sim.access_token))
    client.dhan_http.base_url = f"{dhan_sim.api_url}/v2"  # DhanHTTP's base URL is an attribute of the instance
    await asyncio.to_thread(client.get_fund_limits)
    (ours_path, ours), (theirs_path, theirs) = seen
    assert (ours_path, theirs_path) == ("/v2/profile", "/v2/fundlimit")
    dhanhq_names = {"access-token", "client-id", "content-type", "accept"}
    assert dhanhq_names <= set(theirs)
    for name in dhanhq_names:
        assert ours[name] == theirs[name], name


async def test_an_expired_token_is_one_sentence_without_the_token(dhan_sim, caplog):
    dhan_sim.expire_token()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DhanTokenExpired) as caught:
        await asyncio.to_thread(validate, settings_for(dhan_sim))
    message = str(caught.value)
    assert message.startswith("Dhan refused the access token (expired or revoked)")
    assert message.endswith("generate a new one at web.dhan.co and set DHAN_ACCESS_TOKEN")
    assert "\n" not in message and dhan_sim.access_token not in message
    assert dhan_sim.access_token not in caplog.text
    assert dhan_sim.rest_requests.count("GET /v2/profile") == 1  # a refusal is not retried


async def test_an_unknown_token_is_refused_the_same_way(dhan_sim):
    with pytest.raises(DhanTokenExpired):
        await asyncio.to_thread(validate, settings_for(dhan_sim, access_token="not-a-token-dhan-issued"))


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_a_busy_dhan_is_tried_again(dhan_sim, status):
    dhan_sim.rest_fault(status, 2)
    profile = await asyncio.to_thread(validate, settings_for(dhan_sim))
    assert profile.client_id == dhan_sim.client_id
    assert dhan_sim.rest_requests.count("GET /v2/profile") == 3


@pytest.mark.parametrize("status", [429, 503])
async def test_a_dhan_busy_for_good_is_dhan_unavailable(dhan_sim, status):
    dhan_sim.rest_fault(status, 50)
    with pytest.raises(DhanUnavailable) as caught:
        await asyncio.to_thread(validate, settings_for(dhan_sim))
    assert str(caught.value) == (
        f"Dhan at {dhan_sim.api_url} answered HTTP {status} to every try of the profile call; try again later"
    )
    assert dhan_sim.rest_requests.count("GET /v2/profile") == session.ATTEMPTS


@pytest.mark.parametrize(
    "budget, waits",
    [
        (10.0, [3.0, 3.0]),  # as Dhan asks
        (4.0, [3.0, 1.0]),  # asked to wait beyond the budget: one last try when it runs out
    ],
)
async def test_retry_after_is_honoured_within_the_budget(dhan_sim, monkeypatch, budget, waits):
    import requests

    slept: list[float] = []
    monkeypatch.setattr(session.time, "sleep", slept.append)
    monkeypatch.setattr(session, "RETRY_BUDGET", budget)
    real, busy = requests.request, [2]

    def request(*args: Any, **kwargs: Any) -> requests.Response:
        response = real(*args, **kwargs)
        if busy[0]:  # Dhan's 429 with the wait it asks for
            busy[0] -= 1
            response.status_code, response.headers["Retry-After"] = 429, "3"
        return response

    monkeypatch.setattr(requests, "request", request)
    profile = await asyncio.to_thread(validate, settings_for(dhan_sim))
    assert profile.client_id == dhan_sim.client_id and slept == waits


def test_an_unreachable_dhan_is_one_sentence():
    url = f"http://127.0.0.1:{free_port()}"
    settings = DhanSettings(client_id="1000000001", access_token="secret-token-value", api_url=url)
    with pytest.raises(DhanUnavailable) as caught:
        validate(settings)
    assert str(caught.value) == f"cannot reach Dhan at {url}: connection refused"


async def test_a_token_of_another_client_is_named_without_asking_dhan(dhan_sim):
    with pytest.raises(DhanClientMismatch) as caught:
        await asyncio.to_thread(validate, settings_for(dhan_sim, client_id="1000000099"))
    assert str(caught.value) == (
        f"the access token belongs to Dhan client {dhan_sim.client_id}, not to DHAN_CLIENT_ID 1000000099:"
        " set the client id and the token of one account"
    )
    assert "GET /v2/profile" not in dhan_sim.rest_requests
    assert token_client(dhan_sim.access_token) == dhan_sim.client_id


async def test_a_profile_of_another_client_is_refused(dhan_sim, monkeypatch):
    answer = dhan_sim.rest

    def rest(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        status, reply = answer(method, path, {**headers, "client-id": dhan_sim.client_id}, body)
        return status, {**reply, "dhanClientId": "1000000077"}

    monkeypatch.setattr(dhan_sim, "rest", rest)
    with pytest.raises(DhanClientMismatch) as caught:
        await asyncio.to_thread(validate, settings_for(dhan_sim))
    assert "belongs to Dhan client 1000000077, not to DHAN_CLIENT_ID" in str(caught.value)


async def test_an_answer_that_is_no_profile_is_one_sentence(dhan_sim, monkeypatch):
    monkeypatch.setattr(dhan_sim, "rest", lambda *args: (200, {"status": "success"}))
    with pytest.raises(DhanError) as caught:
        await asyncio.to_thread(validate, settings_for(dhan_sim))
    assert str(caught.value) == f"Dhan at {dhan_sim.api_url} did not answer the profile call with a profile (HTTP 200)"


def test_missing_credentials_name_the_variables():
    with pytest.raises(DhanCredentialsMissing) as caught:
        check_and_describe()
    message = str(caught.value)
    assert "DHAN_CLIENT_ID" in message and "DHAN_ACCESS_TOKEN" in message and "\n" not in message


async def test_the_token_is_in_no_repr_str_or_log(dhan_sim, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    settings = settings_for(dhan_sim)
    profile = await asyncio.to_thread(validate, settings)
    dhan_sim.rest_fault(503, 1)
    await asyncio.to_thread(validate, settings)  # one retry, logged
    dhan_sim.expire_token()
    with pytest.raises(DhanTokenExpired) as caught:
        await asyncio.to_thread(validate, settings)
    token = dhan_sim.access_token
    assert "trying again" in caplog.text  # the retry's line was logged, and with it no secret
    for text in (repr(profile), str(profile), repr(settings), str(caught.value), repr(caught.value), caplog.text):
        assert token not in text
    assert isinstance(profile, Profile)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "api.dhan.co"])
def test_an_unusable_api_url_is_an_error_not_a_retry(url):
    settings = DhanSettings(client_id="1000000001", access_token="secret-token-value", api_url=url)
    with pytest.raises(DhanError) as caught:
        validate(settings)
    assert not isinstance(caught.value, DhanUnavailable)
    assert str(caught.value).startswith(f"DHAN_API_URL {url.rstrip('/')} cannot be used: ")
