"""Kite's login: the request-token exchange (against the simulator and kiteconnect as the oracle), the
expiry at 06:00 IST, the session stored 0600, the redirect URL, retries, and no secret anywhere."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from datetime import datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import requests
from kiteconnect import KiteConnect

from oaws.brokers.kite import session as kite_session
from oaws.brokers.kite.errors import KiteCredentialsMissing, KiteLoginError, KiteUnavailable
from oaws.brokers.kite.session import (
    SESSION_FILE,
    KiteSession,
    SessionNotSaved,
    auth_headers,
    checksum,
    current_session,
    exchange,
    expired,
    expiry_of,
    login_and_save,
    login_url,
    request_token_of,
    save,
    stored,
)
from oaws.brokers.kite.settings import KiteSettings, load_settings

IST = ZoneInfo("Asia/Kolkata")
TOKEN = "a" * 32


def ist(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=IST).timestamp()


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("OAWS_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("KITE_API_KEY", "KITE_API_SECRET", "KITE_ACCESS_TOKEN", "KITE_API_URL", "KITE_LOGIN_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(kite_session, "FIRST_DELAY", 0.01)
    return tmp_path / "state"


@pytest.fixture
def sim_env(kite_sim, state, monkeypatch):
    for name, value in kite_sim.env().items():
        monkeypatch.setenv(name, value)
    return kite_sim


def secrets_of(sim, *more: str) -> list[str]:
    return [sim.api_secret, *sim.access_tokens, *more]


# Expiry --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("login_time", "ends"),
    [
        ("2024-12-02 09:15:04", "2024-12-03 06:00:00"),
        ("2024-12-02 23:59:59", "2024-12-03 06:00:00"),
        ("2024-12-02 05:59:59", "2024-12-02 06:00:00"),  # a login before the flush ends at that morning's
        ("2024-12-02 06:00:00", "2024-12-03 06:00:00"),
        ("2024-12-31 18:30:00", "2025-01-01 06:00:00"),
        ("2024-02-29 12:00:00", "2024-03-01 06:00:00"),
    ],
)
def test_a_token_ends_at_the_next_six_in_the_morning_india_time(login_time, ends):
    assert expiry_of(login_time) == ist(ends)


def test_an_unreadable_login_time_counts_from_now():
    now = ist("2024-12-02 04:00:00")
    assert expiry_of("yesterday-ish", now) == expiry_of(None, now) == ist("2024-12-02 06:00:00")


def test_expired_is_the_moment_of_the_flush():
    session = KiteSession("k", "t", "AB1234", None, expires_at=1000.0)
    assert not expired(session, now=999.9)
    assert expired(session, now=1000.0)


# The redirect URL --------------------------------------------------------------------
@pytest.mark.parametrize(
    "pasted",
    [
        f"http://127.0.0.1/redirect?request_token={TOKEN}&action=login&type=login&status=success",
        f"  https://example.com/cb?action=login&status=success&request_token={TOKEN}\n",
        f"{TOKEN}\n",
        f"   {TOKEN}   ",
        f"request_token={TOKEN}&status=success",
    ],
)
def test_the_request_token_from_the_redirect_url_or_bare(pasted):
    assert request_token_of(pasted) == TOKEN


@pytest.mark.parametrize(
    ("pasted", "sentence"),
    [
        (f"http://127.0.0.1/redirect?request_token={TOKEN}&status=cancelled", "the login did not succeed"),
        ("http://127.0.0.1/redirect?action=login&status=success", "the URL has no request_token"),
        ("http://127.0.0.1/redirect?request_token=&status=success", "the URL has no request_token"),
        ("", "no request token given"),
        ("\n", "no request token given"),
        ("this is not a token", "that is not a Kite request token"),
        ("abc", "that is not a Kite request token"),
        ("x" * 500, "that is not a Kite request token"),
        ("tok;rm -rf", "that is not a Kite request token"),
    ],
)
def test_what_holds_no_request_token_is_one_sentence_that_does_not_echo_it(pasted, sentence):
    with pytest.raises(KiteLoginError) as caught:
        request_token_of(pasted)
    message = str(caught.value)
    assert sentence in message and "\n" not in message
    if pasted.strip():
        assert pasted.strip() not in message and TOKEN not in message


# The stored session ------------------------------------------------------------------
def settings(**values) -> KiteSettings:
    return KiteSettings(api_key="key1", api_secret="secret1", api_url="http://127.0.0.1:1", **values)


def test_the_session_is_stored_0600_and_no_secret_is_in_its_repr(state):
    session = KiteSession("key1", "ACCESS-SECRET-1", "AB1234", "2024-12-02 09:15:04", 2e9, "http://127.0.0.1:1")
    path = save(session)
    assert path == state / SESSION_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "ACCESS-SECRET-1" not in repr(session) and "key1" not in repr(session) and "key1" not in str(session)
    assert b"key1" not in path.read_bytes()  # only a fingerprint of the API key is kept
    back = stored(settings())
    assert back is not None and back.access_token == "ACCESS-SECRET-1" and back.user_id == "AB1234"
    assert back.source == "store" and back.expires_at == 2e9
    assert current_session(settings()) == back


def test_a_stored_session_is_only_for_its_api_key_and_rest_url_and_until_it_ends(state):
    save(KiteSession("key1", "tok", "AB1234", None, 2e9, "http://127.0.0.1:1"))
    assert stored(KiteSettings(api_key="key2", api_url="http://127.0.0.1:1")) is None
    assert stored(KiteSettings(api_key="key1", api_url="http://127.0.0.1:2")) is None
    save(KiteSession("key1", "tok", "AB1234", None, 1000.0, "http://127.0.0.1:1"))
    assert stored(settings()) is not None
    assert current_session(settings()) is None  # ended


def test_a_corrupt_session_file_is_ignored_with_a_warning_that_names_no_secret(state, caplog):
    state.mkdir(parents=True)
    (state / SESSION_FILE).write_text('{"access_token": "SECRETTOKEN", "api_key_id"')
    with caplog.at_level(logging.DEBUG):
        assert stored(settings()) is None
    assert "ignoring the stored Kite session" in caplog.text and "SECRETTOKEN" not in caplog.text


def test_kite_access_token_is_used_as_it_is_until_the_next_flush(state):
    save(KiteSession("key1", "stored-token", "AB1234", None, 2e9, "http://127.0.0.1:1"))
    session = current_session(settings(access_token="GIVEN-TOKEN"))
    assert session is not None and session.access_token == "GIVEN-TOKEN" and session.source == "setting"
    assert session.user_id == "" and session.login_time is None
    assert session.expires_at == expiry_of(None)
    assert auth_headers(settings(access_token="GIVEN-TOKEN"))["Authorization"] == "token key1:GIVEN-TOKEN"


def test_a_link_planted_as_the_temporary_file_is_not_written_through(state, tmp_path):
    state.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (state / f".{SESSION_FILE}.{os.getpid()}.tmp").symlink_to(victim)
    save(KiteSession("key1", "tok", "AB1234", None, 2e9, ""))
    assert victim.read_text() == "keep"
    assert stat.S_IMODE((state / SESSION_FILE).stat().st_mode) == 0o600


def test_an_unwritable_state_dir_is_one_sentence(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("OAWS_STATE_DIR", str(blocker / "state"))
    with pytest.raises(SessionNotSaved) as caught:
        save(KiteSession("key1", "tok", "AB1234", None, 2e9, ""))
    assert str(caught.value).startswith(f"cannot save the Kite session to {blocker / 'state' / SESSION_FILE}: ")


def test_login_without_the_secret_names_the_variables(state, monkeypatch):
    monkeypatch.setenv("KITE_API_KEY", "key1")
    with pytest.raises(KiteCredentialsMissing) as caught:
        login_and_save(ask=lambda prompt: pytest.fail("asked without credentials"))
    assert "KITE_API_SECRET" in str(caught.value) and "key1" not in str(caught.value)


def test_login_url_carries_the_api_key_and_version_only():
    url = login_url(
        KiteSettings(api_key="key1", api_secret="secret1", login_url="https://kite.zerodha.com/connect/login")
    )
    assert url == "https://kite.zerodha.com/connect/login?api_key=key1&v=3"


# Against the simulator ---------------------------------------------------------------
def test_the_exchange_gets_an_access_token_the_simulator_accepts(sim_env):
    request_token = sim_env.issue_request_token()
    session = exchange(load_settings(), request_token)
    assert session.user_id == sim_env.user_id and session.access_token in sim_env.access_tokens
    assert session.expires_at == expiry_of(session.login_time)
    assert session.login_time is not None and expired(session) is False
    headers = {"X-Kite-Version": "3", "Authorization": session.authorization}
    reply = requests.get(f"{sim_env.api_url}/user/profile", headers=headers, timeout=5)
    assert reply.status_code == 200


def _recording(sim, monkeypatch) -> list[tuple[str, str, dict[str, str], bytes]]:
    seen: list[tuple[str, str, dict[str, str], bytes]] = []
    original = sim.rest

    def rest(method, path, query, headers, body):
        seen.append((method, path, dict(headers), body))
        return original(method, path, query, headers, body)

    monkeypatch.setattr(sim, "rest", rest)
    return seen


def test_our_form_and_checksum_are_kiteconnects(sim_env, monkeypatch):
    """kiteconnect's generate_session (the oracle) and ours send the same fields, the same checksum rule."""
    seen = _recording(sim_env, monkeypatch)
    theirs_token, ours_token = sim_env.issue_request_token(), sim_env.issue_request_token()
    kite = KiteConnect(api_key=sim_env.api_key, root=sim_env.api_url, timeout=5)
    theirs = kite.generate_session(theirs_token, api_secret=sim_env.api_secret)
    ours = exchange(load_settings(), ours_token)
    assert sim_env.sessions == 2
    (m1, p1, h1, body1), (m2, p2, h2, body2) = [s for s in seen if s[1] == "/session/token"]
    assert (m1, p1) == (m2, p2) == ("POST", "/session/token")
    form1 = {k: v[0] for k, v in parse_qs(body1.decode()).items()}
    form2 = {k: v[0] for k, v in parse_qs(body2.decode()).items()}
    assert sorted(form1) == sorted(form2) == ["api_key", "checksum", "request_token"]
    assert form1["checksum"] == checksum(sim_env.api_key, theirs_token, sim_env.api_secret)
    assert (
        form2["checksum"] == hashlib.sha256(f"{sim_env.api_key}{ours_token}{sim_env.api_secret}".encode()).hexdigest()
    )
    assert h1.get("x-kite-version") == h2.get("x-kite-version") == "3"
    assert "form-urlencoded" in h1.get("content-type", "") and "form-urlencoded" in h2.get("content-type", "")
    assert ours.user_id == theirs["user_id"]


def test_a_used_request_token_is_one_sentence_without_the_token(sim_env):
    request_token = sim_env.issue_request_token()
    first = exchange(load_settings(), request_token)
    with pytest.raises(KiteLoginError) as caught:
        exchange(load_settings(), request_token)
    message = str(caught.value)
    assert message == (
        "Kite refused the request token (it works once and for a few minutes): "
        f"log in again at {sim_env.login_url}?api_key={sim_env.api_key}&v=3"
    )
    assert request_token not in message and first.access_token not in message


def test_a_wrong_secret_is_one_sentence_naming_the_variable(sim_env, monkeypatch):
    monkeypatch.setenv("KITE_API_SECRET", "not-the-secret")
    with pytest.raises(KiteLoginError) as caught:
        exchange(load_settings(), sim_env.issue_request_token())
    assert "KITE_API_SECRET" in str(caught.value) and "not-the-secret" not in str(caught.value)


def test_a_wrong_api_key_is_one_sentence(sim_env, monkeypatch):
    monkeypatch.setenv("KITE_API_KEY", "other_key")
    with pytest.raises(KiteLoginError, match=r"^Kite refused the API key: check KITE_API_KEY"):
        exchange(load_settings(), sim_env.issue_request_token())


@pytest.mark.parametrize(("status", "retry_after"), [(429, 0.05), (503, None), (502, None)])
def test_429_and_5xx_are_retried_then_the_login_succeeds(sim_env, status, retry_after):
    sim_env.rest_fault(status, count=2, retry_after=retry_after)
    session = exchange(load_settings(), sim_env.issue_request_token())
    assert session.access_token in sim_env.access_tokens
    assert [p for _, p in sim_env.rest_requests].count("/session/token") == 3


def test_kite_down_for_good_is_kite_unavailable_in_one_sentence(sim_env):
    sim_env.rest_fault(503, count=10, html=True)
    with pytest.raises(KiteUnavailable) as caught:
        exchange(load_settings(), sim_env.issue_request_token())
    assert (
        str(caught.value)
        == f"cannot reach Kite for the login at {sim_env.api_url}/session/token: HTTP 503 Service Unavailable"
    )
    assert [p for _, p in sim_env.rest_requests].count("/session/token") == kite_session.ATTEMPTS


def test_a_long_retry_after_is_not_waited_for(sim_env, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(kite_session.time, "sleep", waits.append)
    sim_env.rest_fault(429, count=5, retry_after=30)
    with pytest.raises(KiteUnavailable, match="HTTP 429"):
        exchange(load_settings(), sim_env.issue_request_token())
    assert waits == []  # 30 s is beyond the cap: given up at once rather than hanging the login


def test_a_missing_field_is_kites_input_exception_named(sim_env, monkeypatch):
    def post_without_token(method, url, **kwargs):
        kwargs["data"] = {k: v for k, v in kwargs["data"].items() if k != "request_token"}
        return original(method, url, **kwargs)

    original = requests.request
    monkeypatch.setattr(requests, "request", post_without_token)
    with pytest.raises(KiteLoginError, match=r"^Kite refused the login: Missing `request_token`$"):
        exchange(load_settings(), sim_env.issue_request_token())


def test_login_and_save_through_the_redirect_url(sim_env, caplog):
    landing = requests.get(login_url(load_settings()), allow_redirects=False, timeout=5)
    assert landing.status_code == 302
    redirect = landing.headers["Location"]
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return redirect + "\n"

    with caplog.at_level(logging.DEBUG):
        line = login_and_save(ask=ask)
    assert len(prompts) == 1 and login_url(load_settings()) in prompts[0]
    assert "the URL Kite redirected you to, or its request_token" in prompts[0]
    assert line.startswith(f"Logged in to Kite as {sim_env.user_id}; the access token is kept until 06:00 IST ")
    assert line.endswith("(oaws serve --broker kite uses it).")
    path = sim_env_state_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = current_session(load_settings())
    assert kept is not None and kept.access_token in sim_env.access_tokens
    request_token = parse_qs(redirect.partition("?")[2])["request_token"][0]
    for secret in secrets_of(sim_env, request_token):
        assert secret not in line and secret not in prompts[0] and secret not in caplog.text


def sim_env_state_file():
    from oaws import config

    return config.state_dir() / SESSION_FILE
