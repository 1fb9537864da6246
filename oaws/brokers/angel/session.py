"""Logging in to Angel One and keeping the session tokens between runs.

``login`` uses smartapi-python's ``SmartConnect.generateSession`` (client code, PIN and
the current TOTP) and returns the three tokens Angel hands out. ``oaws login angel`` and
the feed store them in the state directory with mode 0600, so that ``oaws serve`` does not
log in (and burn a TOTP) on every start; the stored session is used only for the same
client code, API key and REST URL, and only until it expires.

Expiry comes from the JWT's own ``exp`` claim when it has one; Angel also invalidates
tokens at a nightly rollover, which the feed learns from a refused handshake (401) and
answers with one fresh login.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from oaws import config
from oaws.brokers.angel.errors import AngelError, AngelLoginError, AngelUnavailable, describe_request_error
from oaws.brokers.angel.settings import AngelSettings
from oaws.brokers.masterkit import write_private

log = logging.getLogger(__name__)

SESSION_FILE = "angel-session.json"
#: Lifetime assumed when a token carries no ``exp`` claim (Angel's are about a day; unverified).
DEFAULT_LIFETIME = 20 * 3600
#: A stored session this close to its expiry is not worth starting with.
EXPIRY_MARGIN = 300


class SessionNotSaved(AngelError, OSError):
    """The session file could not be written (state directory missing, read-only, full).

    An ``AngelError`` so that ``oaws login angel`` prints one sentence, and still an
    ``OSError`` (with the cause's errno and strerror) so that the feed, which can run
    without a stored session, logs it and carries on as it always has.
    """

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror, cause.filename)
        self.message = f"cannot save the Angel session to {path}: {cause.strerror or cause}"

    def __str__(self) -> str:
        return self.message


@dataclass
class Session:
    client_code: str
    jwt: str = field(repr=False)  # without the "Bearer " prefix
    refresh_token: str = field(repr=False)
    feed_token: str = field(repr=False)
    created: float
    expires: float
    api_url: str
    api_key_id: str  # a fingerprint of the API key, to tell sessions of different keys apart
    name: str = ""
    #: "login" right after generateSession, "store" when read back from the state directory
    source: str = field(default="login", compare=False)

    @property
    def authorization(self) -> str:
        return f"Bearer {self.jwt}"

    def expired(self, now: float | None = None, margin: float = 0.0) -> bool:
        return (time.time() if now is None else now) >= self.expires - margin

    def matches(self, settings: AngelSettings) -> bool:
        return (
            self.client_code == settings.client_code
            and self.api_url == settings.api_url
            and self.api_key_id == key_id(settings.api_key)
        )


def key_id(api_key: str | None) -> str:
    return hashlib.sha256((api_key or "").encode()).hexdigest()[:16]


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (unverified: only the server can check the signature)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def session_path() -> Path:
    return config.state_dir() / SESSION_FILE


def save_session(session: Session, path: Path | None = None) -> Path:
    """Write the session with mode 0600 (atomically: a reader never sees half a file).

    Raises SessionNotSaved (an AngelError and an OSError) when the file cannot be written.
    """
    path = path or session_path()
    data = {k: v for k, v in asdict(session).items() if k != "source"}
    try:
        write_private(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise SessionNotSaved(path, exc) from None
    return path


def load_session(settings: AngelSettings, path: Path | None = None) -> Session | None:
    """The stored session for these settings if it is still valid, else None."""
    path = path or session_path()
    try:
        data = orjson.loads(path.read_bytes())
        session = Session(**data, source="store")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring the stored Angel session %s: %s", path, exc.__class__.__name__)
        return None
    if not session.matches(settings):
        log.info("the stored Angel session belongs to other credentials; logging in again")
        return None
    if session.expired(margin=EXPIRY_MARGIN):
        log.info("the stored Angel session has expired; logging in again")
        return None
    return session


def _reply_message(reply: Any) -> str:
    if isinstance(reply, dict):
        message = str(reply.get("message") or "no reason given").rstrip(".")
        code = reply.get("errorcode") or reply.get("errorCode")
        return f"{message} ({code})" if code else message
    return "an unexpected reply"


def login(settings: AngelSettings, timeout: float = 15.0) -> Session:
    """Log in with ``SmartConnect`` (blocking; the feed runs it in a thread).

    Raises AngelLoginError when Angel refuses, AngelUnavailable when it cannot be reached;
    neither message contains a secret.
    """
    import requests

    from oaws.brokers.angel.smartapi import new_smart_connect

    settings.require_credentials()
    code = settings.totp()
    smart = new_smart_connect(api_key=settings.api_key, root=settings.api_url, timeout=timeout)
    from SmartApi.smartExceptions import DataException, NetworkException, SmartAPIException

    try:
        reply = smart.generateSession(settings.client_code, settings.pin, code)
    except (requests.RequestException, DataException, NetworkException) as exc:
        # no answer, or a gateway page instead of JSON: Angel is down or unreachable, try again later
        if isinstance(exc, requests.RequestException):
            reason = describe_request_error(exc, settings.api_url)  # "connection refused", not "ConnectionError"
        else:
            reason = exc.__class__.__name__
        raise AngelUnavailable(f"cannot reach Angel One at {settings.api_url}: {reason}") from None
    except (KeyError, TypeError, ValueError, AttributeError, SmartAPIException) as exc:
        # SmartConnect indexes replies it does not expect (no "status" key, a profile without data)
        raise AngelLoginError(
            f"Angel One answered the login at {settings.api_url} with an unexpected reply ({exc.__class__.__name__})"
        ) from None
    if not isinstance(reply, dict) or reply.get("status") is not True or not isinstance(reply.get("data"), dict):
        raise AngelLoginError(f"Angel One refused the login of {settings.client_code}: {_reply_message(reply)}")
    data = reply["data"]
    try:
        jwt = str(data["jwtToken"]).removeprefix("Bearer ").strip()
        refresh, feed = str(data["refreshToken"]), str(data["feedToken"])
    except KeyError:
        raise AngelLoginError("Angel One's login reply has no session tokens") from None
    now = time.time()
    return Session(
        client_code=str(settings.client_code),
        jwt=jwt,
        refresh_token=refresh,
        feed_token=feed,
        created=now,
        expires=jwt_expiry(jwt) or now + DEFAULT_LIFETIME,
        api_url=settings.api_url,
        api_key_id=key_id(settings.api_key),
        name=str(data.get("name") or ""),
    )


def login_and_save() -> str:
    """``oaws login angel``: log in with the configured credentials, keep the session; one line for the user."""
    from oaws.brokers.angel.settings import load_settings
    from oaws.config import time_zone
    from oaws.format import moment

    session = login(load_settings())
    path = save_session(session)
    until = f"{moment(session.expires, time_zone()):%Y-%m-%d %H:%M %Z}"
    who = f"{session.client_code} ({session.name})" if session.name else session.client_code
    return f"Logged in to Angel One as {who}; session saved to {path}, valid until about {until}."
