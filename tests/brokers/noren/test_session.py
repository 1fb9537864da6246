"""Logging in to a Noren broker against the simulator: QuickAuth, refusals, OAuth, the stored session, expiry.

The simulator's QuickAuth is itself checked against NorenRestApiPy (its tests); here the
real ``NorenApi`` logs in too, and oaws's hashes must be what the simulator accepts.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from oaws.brokers.noren.errors import NorenCredentialsMissing, NorenLoginError, NorenSessionExpired, NorenUnavailable
from oaws.brokers.noren.session import (
    NorenSession,
    call,
    code_of,
    current,
    exchange_code,
    join,
    load_session,
    login_and_save,
    login_page,
    quickauth,
    save_session,
    session_path,
)
from oaws.brokers.noren.settings import NorenSettings, load_settings
from oaws.brokers.noren.simulator import NorenSimulator

DEBUG = logging.DEBUG


def use(sim: NorenSimulator, monkeypatch: pytest.MonkeyPatch, *, drop: tuple[str, ...] = (), **extra: str) -> None:
    for name, value in sim.env().items():
        if not name.endswith(drop):
            monkeypatch.setenv(name, value)
    for name, value in extra.items():
        monkeypatch.setenv(f"{sim.host.prefix}_{name.upper()}", value)


def settings_of(sim: NorenSimulator, **overrides: Any) -> NorenSettings:
    env = sim.env()
    p = sim.host.prefix
    base = load_settings(sim.host.name)
    values: dict[str, Any] = dict(
        user_id=env[f"{p}_USER_ID"],
        password=env[f"{p}_PASSWORD"],
        totp_secret=env[f"{p}_TOTP_SECRET"],
        vendor_code=env[f"{p}_VENDOR_CODE"],
        api_secret=env[f"{p}_API_SECRET"],
        api_key=env[f"{p}_API_KEY"],
        api_url=sim.api_url,
        feed_url=sim.feed_url,
        master_url=sim.master_url,
        auth_url=sim.auth_url,
        token_url=sim.token_url,
    )
    return replace(base, **{**values, **overrides})


def secrets_of(sim: NorenSimulator) -> list[str]:
    return [sim.password, sim.totp_secret, sim.api_secret, *sim.session_tokens]


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


# QuickAuth ------------------------------------------------------------------------------------
async def test_quickauth_gets_a_session_the_simulator_issued(noren_sim: NorenSimulator) -> None:
    session = await asyncio.to_thread(quickauth, settings_of(noren_sim))
    assert session.token in noren_sim.session_tokens
    assert (session.user_id, session.kind, session.host) == (noren_sim.user_id, "susertoken", "shoonya")
    assert session.expires_at is not None and session.token not in repr(session)


async def test_the_real_client_and_oaws_log_in_alike(noren_sim: NorenSimulator) -> None:
    """NorenApi's own login passes against the simulator, and so does oaws's: the same hashes."""
    import pyotp
    from NorenRestApiPy.NorenApi import NorenApi

    class Api(NorenApi):
        def __init__(self) -> None:
            super().__init__(host=noren_sim.api_url + "/", websocket=noren_sim.feed_url)

    def both() -> tuple[Any, NorenSession]:
        reply = Api().login(
            userid=noren_sim.user_id,
            password=noren_sim.password,
            twoFA=pyotp.TOTP(noren_sim.totp_secret).now(),
            vendor_code=noren_sim.vendor_code,
            api_secret=noren_sim.api_secret,
            imei="abc1234",
        )
        return reply, quickauth(settings_of(noren_sim))

    reply, session = await asyncio.to_thread(both)
    assert reply is not None and reply["stat"] == "Ok"
    assert noren_sim.logins == 2 and session.token in noren_sim.session_tokens


def test_urls_are_joined_as_strings_keeping_the_api_path() -> None:
    assert (
        join("https://api.shoonya.com/NorenWClientTP", "QuickAuth")
        == "https://api.shoonya.com/NorenWClientTP/QuickAuth"
    )
    assert join("https://api.shoonya.com/NorenWClientTP/", "/QuickAuth").endswith("/NorenWClientTP/QuickAuth")


@pytest.mark.parametrize(
    ("override", "words", "hint"),
    [
        ({"password": "not-the-password"}, "Wrong Password", "SHOONYA_PASSWORD"),
        ({"totp_secret": "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"}, "Invalid OTP", "SHOONYA_TOTP_SECRET"),
        ({"api_secret": "not-the-secret"}, "Invalid App Key", "SHOONYA_API_SECRET"),
        ({"vendor_code": "XX999_U"}, "Invalid Vendor Code", "SHOONYA_VENDOR_CODE"),
        ({"user_id": "ZZ0000"}, "Invalid User Id", "SHOONYA_USER_ID"),
    ],
)
async def test_each_refusal_is_one_sentence_naming_what_noren_said(
    noren_sim: NorenSimulator, caplog: pytest.LogCaptureFixture, override: dict[str, str], words: str, hint: str
) -> None:
    caplog.set_level(DEBUG)
    settings = settings_of(noren_sim, **override)
    with pytest.raises(NorenLoginError) as refused:
        await asyncio.to_thread(quickauth, settings)
    message = str(refused.value)
    assert words in message and hint in message and "\n" not in message
    secret_overrides = [v for k, v in override.items() if k not in ("user_id", "vendor_code")]
    assert_clean(message + caplog.text, [*secrets_of(noren_sim), *secret_overrides])


async def test_a_blocked_user_is_told_so(noren_sim: NorenSimulator) -> None:
    noren_sim.block_user()
    with pytest.raises(NorenLoginError, match=r"User Blocked.*blocked"):
        await asyncio.to_thread(quickauth, settings_of(noren_sim))


async def test_a_5xx_is_retried_then_unavailable(noren_sim: NorenSimulator) -> None:
    noren_sim.rest_fault(503, count=1)
    session = await asyncio.to_thread(quickauth, settings_of(noren_sim), 5.0, 0.01)
    assert session.token in noren_sim.session_tokens  # the second attempt got through
    noren_sim.rest_fault(503, count=10)
    with pytest.raises(NorenUnavailable, match="HTTP 503") as down:
        await asyncio.to_thread(quickauth, settings_of(noren_sim), 5.0, 0.01)
    assert "\n" not in str(down.value)


def test_an_unreachable_host_is_unavailable_in_words(tmp_path: Path) -> None:
    settings = replace(
        load_settings("shoonya"),
        user_id="FA1",
        password="p",
        totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        vendor_code="v",
        api_secret="s",
        api_url="http://127.0.0.1:9/NorenWClientTP",
    )
    from oaws.brokers.noren import session as module

    with pytest.raises(NorenUnavailable, match="connection refused"):
        module.quickauth(settings, 2.0, 0.01)


def test_quickauth_names_the_missing_settings_not_their_values() -> None:
    settings = replace(load_settings("shoonya"), user_id="FA1", password="p-secret")
    with pytest.raises(NorenCredentialsMissing) as missing:
        quickauth(settings)
    assert "SHOONYA_TOTP_SECRET" in str(missing.value) and "p-secret" not in str(missing.value)


# Expiry ------------------------------------------------------------------------------------------
async def test_an_expired_session_costs_one_fresh_login(noren_sim: NorenSimulator) -> None:
    settings = settings_of(noren_sim)
    session = await asyncio.to_thread(quickauth, settings)
    noren_sim.expire_sessions(drop=False)
    reply, used = await asyncio.to_thread(
        call, settings, "UserDetails", {}, session, relogin=lambda: quickauth(settings)
    )
    assert reply["stat"] == "Ok" and used.token != session.token and noren_sim.logins == 2


async def test_a_session_refused_right_after_a_fresh_login_stands_down(noren_sim: NorenSimulator) -> None:
    settings = settings_of(noren_sim)
    session = await asyncio.to_thread(quickauth, settings)
    noren_sim.expire_sessions(drop=False)
    logins: list[int] = []

    def stale() -> NorenSession:
        logins.append(1)
        return session  # a "fresh" session that is just as expired

    with pytest.raises(NorenSessionExpired, match="even after a fresh login"):
        await asyncio.to_thread(call, settings, "UserDetails", {}, session, relogin=stale)
    assert logins == [1]  # once, not a storm


# OAuth ----------------------------------------------------------------------------------------------
def test_the_code_is_read_from_the_redirect_or_bare() -> None:
    assert code_of("https://example.invalid/cb?code=abc123XYZ&client=FA1\n") == "abc123XYZ"
    assert code_of("  abc123XYZ ") == "abc123XYZ"
    with pytest.raises(NorenLoginError, match="no code"):
        code_of("https://example.invalid/cb?state=1")
    with pytest.raises(NorenLoginError, match="neither"):
        code_of("two words")


async def _follow(page: str) -> str:
    """The browser's part: open the login page, and read where it redirects."""
    response = await asyncio.to_thread(requests.get, page, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    return response.headers["Location"]


async def test_shoonya_oauth_from_the_redirect_address(
    noren_sim: NorenSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(noren_sim, monkeypatch, drop=("_PASSWORD", "_TOTP_SECRET", "_VENDOR_CODE"))
    prompts: list[str] = []
    redirect: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return redirect[0]

    settings = load_settings("shoonya")
    redirect.append(await _follow(login_page(settings)))
    line = await asyncio.to_thread(login_and_save, "shoonya", ask=ask)
    stored = load_session(settings)
    assert stored is not None and stored.kind == "access_token" and stored.token in noren_sim.access_tokens
    assert "client_id=" in prompts[0] and noren_sim.logins == 0  # no QuickAuth
    assert_clean(line + prompts[0], [*secrets_of(noren_sim), redirect[0].split("code=")[1]])


async def test_flattrade_oauth_from_the_bare_code(
    flattrade_sim: NorenSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(flattrade_sim, monkeypatch)
    settings = load_settings("flattrade")
    location = await _follow(login_page(settings))
    assert "app_key=" in login_page(settings)
    code = location.split("code=")[1].split("&")[0]
    line = await asyncio.to_thread(login_and_save, "flattrade", ask=lambda prompt: code)
    stored = load_session(settings)
    assert stored is not None and stored.kind == "susertoken" and stored.token in flattrade_sim.session_tokens
    assert_clean(line, [*secrets_of(flattrade_sim), code])
    assert stat.S_IMODE(session_path("flattrade").stat().st_mode) == 0o600


async def test_a_code_used_twice_is_refused_in_nerens_words(flattrade_sim: NorenSimulator) -> None:
    settings = settings_of(flattrade_sim)
    code = flattrade_sim.issue_oauth_code()
    await asyncio.to_thread(exchange_code, settings, code)
    with pytest.raises(NorenLoginError, match="Invalid Code"):
        await asyncio.to_thread(exchange_code, settings, code)


async def test_a_wrong_secret_fails_the_checksum(noren_sim: NorenSimulator) -> None:
    settings = settings_of(noren_sim, api_secret="wrong-secret")
    with pytest.raises(NorenLoginError, match=r"Invalid Checksum.*SHOONYA_API_SECRET") as refused:
        await asyncio.to_thread(exchange_code, settings, noren_sim.issue_oauth_code())
    assert "wrong-secret" not in str(refused.value)


# The stored session, the access token ---------------------------------------------------------------
async def test_login_and_save_stores_the_session_0600_and_current_uses_it(
    noren_sim: NorenSimulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(DEBUG)
    use(noren_sim, monkeypatch)
    line = await asyncio.to_thread(login_and_save, "shoonya")
    path = session_path("shoonya")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "QuickAuth" in line
    settings = load_settings("shoonya")
    again = await asyncio.to_thread(current, settings)
    assert again.source == "store" and noren_sim.logins == 1
    assert_clean(line + caplog.text, secrets_of(noren_sim))
    # another user, or another address, does not get it
    assert load_session(replace(settings, user_id="OTHER")) is None
    assert load_session(replace(settings, api_url="http://127.0.0.1:1/NorenWClientTP")) is None


def test_a_planted_link_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("theirs")
    path = tmp_path / "state" / "noren-shoonya-session.json"
    path.parent.mkdir(parents=True)
    import os

    (path.parent / f".{path.name}.{os.getpid()}.tmp").symlink_to(target)
    save_session(NorenSession("FA1", "tok-secret", "susertoken", None, "shoonya"), path)
    assert target.read_text() == "theirs" and stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_an_access_token_setting_is_used_as_it_is(
    flattrade_sim: NorenSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = flattrade_sim.issue_access_token()
    use(flattrade_sim, monkeypatch, access_token=token)
    session = current(load_settings("flattrade"))
    assert (session.token, session.source, session.kind) == (token, "env", "susertoken")
    line = await asyncio.to_thread(login_and_save, "flattrade")
    assert "FLATTRADE_ACCESS_TOKEN" in line and token not in line and flattrade_sim.logins == 0


async def test_oauth_without_a_terminal_says_how_to_log_in(
    flattrade_sim: NorenSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(flattrade_sim, monkeypatch)
    with pytest.raises(NorenSessionExpired, match="oaws login flattrade"):
        current(load_settings("flattrade"))
