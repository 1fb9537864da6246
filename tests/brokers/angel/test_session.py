"""Login with the real SmartConnect against the simulator; stored sessions; settings; defect 8."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from oaws.brokers.angel.errors import AngelError, AngelLoginError, AngelUnavailable, CredentialsMissing
from oaws.brokers.angel.session import (
    Session,
    SessionNotSaved,
    jwt_expiry,
    key_id,
    load_session,
    login,
    save_session,
    session_path,
)
from oaws.brokers.angel.settings import AngelSettings, load_settings
from tests.brokers.angel.conftest import settings_for


async def test_login_with_smartconnect_returns_the_three_tokens(sim):
    settings = settings_for(sim)
    session = await asyncio.to_thread(login, settings)
    assert sim.logins == 1
    assert session.client_code == sim.client_code and session.name == "SIMULATED USER"
    assert not session.jwt.startswith("Bearer") and session.authorization == f"Bearer {session.jwt}"
    assert session.feed_token and session.refresh_token
    assert session.expires == jwt_expiry(session.jwt) and session.expires > time.time() + 27 * 3600
    assert "GET /rest/secure/angelbroking/user/v1/getProfile" in sim.rest_requests


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"pin": "9999"}, "Invalid PIN"),
        ({"client_code": "X0000"}, "Invalid clientcode"),
        ({"api_key": "wrong"}, "Invalid API Key"),
        ({"totp_secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}, "Invalid totp"),
    ],
)
async def test_a_refused_login_is_one_sentence_without_secrets(sim, change, reason):
    settings = settings_for(sim, **change)
    with pytest.raises(AngelLoginError) as caught:
        await asyncio.to_thread(login, settings)
    message = str(caught.value)
    assert reason in message and "\n" not in message
    for secret in (settings.pin, settings.totp_secret, settings.api_key):
        assert secret not in message
    assert sim.logins == 0 and sim.login_failures == [reason]


async def test_an_unreachable_server_is_unavailable_not_refused(sim):
    settings = settings_for(sim, api_url="http://127.0.0.1:9")
    expected = r"^cannot reach Angel One at http://127\.0\.0\.1:9: connection refused$"
    with pytest.raises(AngelUnavailable, match=expected):
        await asyncio.to_thread(login, settings, 2.0)


async def test_smartconnect_token_refresh_works_against_the_simulator(sim):
    from oaws.brokers.angel.smartapi import new_smart_connect

    session = await asyncio.to_thread(login, settings_for(sim))
    smart = new_smart_connect(api_key=sim.api_key, root=sim.api_url, access_token=session.jwt)
    reply = await asyncio.to_thread(smart.generateToken, session.refresh_token)
    assert reply["status"] is True and smart.getfeedToken() == reply["data"]["feedToken"] != session.feed_token
    with pytest.raises(TypeError):  # a refresh token works once; SmartConnect indexes the refusal's null data
        await asyncio.to_thread(smart.generateToken, session.refresh_token)


async def test_no_secret_reaches_the_logs_even_at_debug(sim, caplog):
    caplog.set_level(logging.DEBUG)
    settings = settings_for(sim)
    session = await asyncio.to_thread(login, settings)
    with pytest.raises(AngelLoginError):
        await asyncio.to_thread(login, replace(settings, pin="0000"))
    for secret in (
        settings.pin,
        settings.totp_secret,
        settings.api_key,
        session.jwt,
        session.feed_token,
        session.refresh_token,
        "0000",
    ):
        assert secret not in caplog.text
    assert "pin" not in repr(settings).lower() and settings.api_key not in repr(settings)


def _session(**change) -> Session:
    now = time.time()
    base = Session(
        client_code="S1",
        jwt="j",
        refresh_token="r",
        feed_token="f",
        created=now,
        expires=now + 3600,
        api_url="http://x",
        api_key_id=key_id("k"),
    )
    return replace(base, **change)


def test_a_stored_session_is_private_and_read_back():
    settings = AngelSettings(api_key="k", client_code="S1", pin="1", totp_secret="A", api_url="http://x")
    path = save_session(_session())
    assert path == session_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_session(settings)
    assert loaded == _session(created=loaded.created, expires=loaded.expires) and loaded.source == "store"
    os.chmod(path, 0o644)
    save_session(_session())  # rewriting tightens the mode again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_planted_as_the_session_files_temporary_file_is_never_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    victim.chmod(0o644)
    session_path().parent.mkdir(parents=True, exist_ok=True)
    planted = session_path().with_name(f".{session_path().name}.{os.getpid()}.tmp")
    planted.symlink_to(victim)
    path = save_session(_session())
    assert victim.read_text() == "keep me" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600 and not planted.exists()


@pytest.mark.parametrize(
    "settings_change, session_change",
    [
        ({"client_code": "OTHER"}, {}),
        ({"api_key": "other"}, {}),
        ({"api_url": "http://elsewhere"}, {}),
        ({}, {"expires": time.time() - 10}),
        ({}, {"expires": time.time() + 60}),  # within the margin: not worth starting with
    ],
)
def test_a_stored_session_is_ignored_when_it_does_not_fit(settings_change, session_change):
    settings = AngelSettings(api_key="k", client_code="S1", pin="1", totp_secret="A", api_url="http://x")
    save_session(_session(**session_change))
    assert load_session(replace(settings, **settings_change)) is None


def test_a_corrupt_session_file_is_ignored():
    session_path().parent.mkdir(parents=True)
    session_path().write_text("{not json")
    assert load_session(AngelSettings(api_key="k", client_code="S1")) is None


def test_settings_come_from_the_environment_before_the_config_file(monkeypatch, isolated):
    (isolated / "config.toml").write_text(
        '[angel]\napi_key = "file-key"\nclient_code = "FILE1"\npin = 1234\nfeed_url = "ws://127.0.0.1:1/smart-stream"\n'
    )
    monkeypatch.setenv("ANGEL_CLIENT_CODE", "ENV1")
    monkeypatch.setenv("OAWS_INSTRUMENTS", "/tmp/master.json")
    s = load_settings()
    assert (s.api_key, s.client_code, s.pin, s.feed_url, s.instruments) == (
        "file-key",
        "ENV1",
        "1234",
        "ws://127.0.0.1:1/smart-stream",
        "/tmp/master.json",
    )
    assert s.api_url == "https://apiconnect.angelone.in"
    with pytest.raises(CredentialsMissing) as caught:
        s.require_credentials()
    assert "ANGEL_TOTP_SECRET" in str(caught.value) and "ANGEL_PIN" not in str(caught.value)


def test_a_bad_totp_secret_is_explained():
    with pytest.raises(CredentialsMissing, match="base32"):
        AngelSettings(totp_secret="not base32 !!").totp()


def test_importing_smartapi_makes_no_network_call_and_no_logs_directory(tmp_path):
    """docs/brokers/angel.md, defect 8, checked in a fresh interpreter where SmartApi has not been imported yet."""
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise SystemExit('network call: %r' % (a,))\n"
        "socket.create_connection = refuse\n"
        "socket.socket.connect = refuse\n"
        "from oaws.brokers.angel.smartapi import smart_connect_class\n"
        "smart_connect_class()(api_key='k', root='http://127.0.0.1:9')\n"
        "import SmartApi.smartConnect as sc\n"
        "assert sc.SmartConnect.clientPublicIp == '106.193.147.98'\n"
        "print('clean')\n"
    )
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = subprocess.run([sys.executable, "-c", code], cwd=fresh, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "clean", result.stderr
    assert result.stderr == ""
    assert list(fresh.iterdir()) == []


def test_a_session_that_cannot_be_saved_is_one_sentence_and_still_an_os_error(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "a-file" / "state"))
    with pytest.raises(SessionNotSaved) as caught:
        save_session(_session())
    error = caught.value
    assert str(error) == f"cannot save the Angel session to {session_path()}: Not a directory"
    assert isinstance(error, AngelError)  # the command line prints it as one sentence
    assert isinstance(error, OSError) and error.strerror == "Not a directory"  # the feed logs it and goes on


def test_a_failed_save_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "private" / "angel-session.json"
    target.mkdir(parents=True)  # os.replace cannot put a file over a directory
    with pytest.raises(SessionNotSaved) as caught:
        save_session(_session(), target)
    assert str(caught.value).startswith(f"cannot save the Angel session to {target}: ")
    assert [p.name for p in target.parent.iterdir()] == ["angel-session.json"]
