"""Logging in to Zerodha Kite and keeping the access token until Kite ends it.

Kite Connect's login is a browser round trip: the user opens
``https://kite.zerodha.com/connect/login?api_key=KEY&v=3``, logs in, and Kite redirects
the browser to the app's redirect URL with ``?request_token=...&status=success``. The
request token works once, for a few minutes: ``exchange`` trades it at
``POST /session/token`` (form-encoded ``api_key``, ``request_token`` and ``checksum =
sha256(api_key + request_token + api_secret)``) for the access token, which ``save``
keeps in the state directory, mode 0600, so that ``oaws serve --broker kite`` needs no
login until Kite ends it.

Kite ends every access token at 06:00 IST the next morning (its documented daily
flush; a token from a login before 06:00 ends at 06:00 the same day). oaws computes
that moment from the reply's ``login_time`` (India time) and stops using the stored
token then; a token Kite revokes earlier is learnt from a refused call (HTTP 403
TokenException). ``KITE_ACCESS_TOKEN`` (or ``access_token`` in ``[kite]``) is used as it
is, assumed to end at the next 06:00 IST.

No secret is ever in a message, a log line or a repr: not the API key or secret, not the
request token, not the access token.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import orjson

from oaws import config
from oaws.brokers import masterkit
from oaws.brokers.kite.errors import LOGIN_AGAIN, KiteError, KiteLoginError, KiteUnavailable
from oaws.brokers.kite.settings import KiteSettings
from oaws.brokers.masterkit import write_private

log = logging.getLogger(__name__)

IST = ZoneInfo("Asia/Kolkata")
#: Kite flushes every access token at this hour (India time) each morning
FLUSH_HOUR = 6
SESSION_FILE = "kite-session.json"
KITE_VERSION = "3"
#: attempts of a call Kite answers 429 or 5xx (or that finds no answer), and the most waited between them
ATTEMPTS, MAX_WAIT = 4, 10.0
#: the first wait between attempts (doubled each time)
FIRST_DELAY = 0.5
#: a request token as Kite hands them out (32 letters and digits); a little slack either way
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{6,128}$")


class SessionNotSaved(KiteError, OSError):
    """The session file could not be written (state directory missing, read-only, full).

    A ``KiteError`` so that ``oaws login kite`` prints one sentence, and an ``OSError``
    (with the cause's errno and strerror) for callers that carry on without one.
    """

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror, cause.filename)
        self.message = f"cannot save the Kite session to {path}: {cause.strerror or cause}"

    def __str__(self) -> str:
        return self.message


@dataclass
class KiteSession:
    api_key: str = field(repr=False)
    access_token: str = field(repr=False)
    user_id: str
    #: Kite's ``login_time`` as it sent it (India time, ``YYYY-MM-DD HH:MM:SS``); None when unknown
    login_time: str | None
    #: epoch seconds: 06:00 IST after the login
    expires_at: float
    api_url: str = ""
    #: "login" (just exchanged), "store" (read back), "setting" (KITE_ACCESS_TOKEN)
    source: str = field(default="login", compare=False)

    @property
    def authorization(self) -> str:
        return f"token {self.api_key}:{self.access_token}"


def expired(session: KiteSession, now: float | None = None) -> bool:
    return (time.time() if now is None else now) >= session.expires_at


def key_id(api_key: str | None) -> str:
    """A fingerprint of the API key, to tell sessions of different apps apart without storing the key."""
    return hashlib.sha256((api_key or "").encode()).hexdigest()[:16]


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    return hashlib.sha256(f"{api_key}{request_token}{api_secret}".encode()).hexdigest()


# Expiry ----------------------------------------------------------------------------
def parse_login_time(login_time: str | None) -> datetime | None:
    """Kite's ``login_time`` (``2024-12-02 09:15:04``, India time) as an aware datetime; None when unreadable."""
    if not login_time:
        return None
    try:
        moment = datetime.fromisoformat(str(login_time).strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=IST) if moment.tzinfo is None else moment


def next_flush(moment: datetime | float | None = None) -> float:
    """The first 06:00 IST strictly after ``moment`` (an aware datetime or epoch seconds; default now)."""
    if moment is None or isinstance(moment, int | float):
        moment = datetime.fromtimestamp(time.time() if moment is None else moment, IST)
    local = moment.astimezone(IST)
    flush = local.replace(hour=FLUSH_HOUR, minute=0, second=0, microsecond=0)
    if flush <= local:
        flush += timedelta(days=1)
    return flush.timestamp()


def expiry_of(login_time: str | None, now: float | None = None) -> float:
    """When Kite ends a token logged in at ``login_time`` (now when unreadable)."""
    return next_flush(parse_login_time(login_time) or now)


def until_text(expires_at: float, now: float | None = None) -> str:
    """``06:00 IST tomorrow`` / ``06:00 IST today`` / ``06:00 IST on 2024-12-05``."""
    end = datetime.fromtimestamp(expires_at, IST)
    today = datetime.fromtimestamp(time.time() if now is None else now, IST).date()
    if end.date() == today:
        day = "today"
    elif end.date() == today + timedelta(days=1):
        day = "tomorrow"
    else:
        day = f"on {end.date().isoformat()}"
    return f"{end:%H:%M} IST {day}"


# HTTP ------------------------------------------------------------------------------
def public(url: str) -> str:
    """``url`` without its query string or fragment (where tokens travel), for messages and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path


def describe_request_error(exc: BaseException, url: str) -> str:
    """Why a ``requests`` call failed, in a few words ("connection refused"), never with the URL's query."""
    import requests

    return masterkit.describe_request_error(
        exc,
        url,
        invalid=(
            (requests.exceptions.InvalidSchema, "unsupported URL scheme {scheme} (use http:// or https://)"),
            (
                (requests.exceptions.MissingSchema, requests.exceptions.InvalidURL),
                "not a valid URL (it needs http:// or https://)",
            ),
        ),
        broke_off="the download broke off",
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def request(
    method: str,
    url: str,
    *,
    what: str,
    timeout: float = 15.0,
    attempts: int = ATTEMPTS,
    max_wait: float = MAX_WAIT,
    sleep: Callable[[float], None] | None = None,
    **kwargs: Any,
) -> Any:
    """A ``requests`` call that retries 429, 5xx and no answer with backoff (Retry-After honoured).

    Waits 0.5, 1, 2 s ... between attempts, never more than ``max_wait`` in all; then
    raises KiteUnavailable naming ``what`` and the reason. Any other answer is returned
    as it is (the caller reads its status). The timeout bounds every attempt.
    """
    import requests

    waited, delay, reason = 0.0, FIRST_DELAY, ""
    for attempt in range(attempts):
        try:
            response = requests.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            reason, pause = describe_request_error(exc, url), None
        else:
            if response.status_code != 429 and response.status_code < 500:
                return response
            reason = f"HTTP {response.status_code} {response.reason or ''}".strip()
            pause = _retry_after(response.headers.get("Retry-After"))
            response.close()
        if attempt == attempts - 1:
            break
        pause = delay if pause is None else pause
        if waited + pause > max_wait:
            break
        log.info("%s: %s from %s; trying again in %.1f s", what, reason, public(url), pause)
        (sleep or time.sleep)(pause)
        waited += pause
        delay *= 2
    raise KiteUnavailable(f"cannot reach Kite for {what} at {public(url)}: {reason}")


def auth_headers(settings: KiteSettings) -> dict[str, str]:
    """Kite's version header, and the Authorization of the current session if there is one."""
    headers = {"X-Kite-Version": KITE_VERSION}
    session = current_session(settings) if settings.api_key else None
    if session is not None and session.api_key:
        headers["Authorization"] = session.authorization
    return headers


# Login -----------------------------------------------------------------------------
def login_url(settings: KiteSettings) -> str:
    """Kite's login page for the app (the API key is public to that page; nothing else is in it)."""
    return f"{settings.login_url}?api_key={settings.api_key}&v={KITE_VERSION}"


def _scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _kite_message(response: Any) -> tuple[str, str]:
    """(error_type, message) of a Kite error reply; ("", "") when it is not one."""
    try:
        reply = orjson.loads(response.content)
    except ValueError:
        return "", ""
    if not isinstance(reply, dict):
        return "", ""
    message = " ".join(str(reply.get("message") or "").split())[:200].rstrip(".")
    return str(reply.get("error_type") or ""), message


def exchange(settings: KiteSettings, request_token: str, timeout: float = 15.0) -> KiteSession:
    """Trade ``request_token`` for an access token at ``POST {api_url}/session/token``.

    Raises KiteLoginError when Kite refuses (a used or stale request token, a wrong API
    secret, a bad field), KiteUnavailable when Kite cannot be reached after a few tries;
    no message holds a secret.
    """
    settings.require("api_key", "api_secret", what="Kite's login")
    api_key, secret = str(settings.api_key), str(settings.api_secret)
    url = f"{settings.api_url.rstrip('/')}/session/token"
    form = {"api_key": api_key, "request_token": request_token, "checksum": checksum(api_key, request_token, secret)}
    response = request(
        "POST", url, what="the login", timeout=timeout, data=form, headers={"X-Kite-Version": KITE_VERSION}
    )
    error_type, message = _kite_message(response)
    message = _scrub(message, api_key, secret, request_token)
    if response.status_code != 200:
        if error_type == "TokenException" or response.status_code == 403:
            if "api_key" in message.lower():
                raise KiteLoginError("Kite refused the API key: check KITE_API_KEY (the key of your Kite Connect app)")
            if "checksum" in message.lower():
                raise KiteLoginError(
                    "Kite refused the login's checksum: check KITE_API_SECRET (it must be the secret of this API key)"
                )
            raise KiteLoginError(
                "Kite refused the request token (it works once and for a few minutes): "
                f"log in again at {login_url(settings)}"
            )
        if error_type == "InputException":
            raise KiteLoginError(f"Kite refused the login: {message or 'a field of the request is wrong'}")
        reason = message or f"HTTP {response.status_code} {response.reason or ''}".strip()
        raise KiteLoginError(f"Kite refused the login at {public(url)}: {reason}")
    try:
        data = orjson.loads(response.content)["data"]
        access_token = str(data["access_token"])
        user_id = str(data.get("user_id") or "")
        login_time = data.get("login_time")
    except (ValueError, KeyError, TypeError):
        raise KiteLoginError(f"Kite answered the login at {public(url)} with an unexpected reply") from None
    if not access_token:
        raise KiteLoginError(f"Kite's login reply at {public(url)} has no access token")
    login_time = str(login_time) if login_time else None
    return KiteSession(
        api_key=api_key,
        access_token=access_token,
        user_id=user_id,
        login_time=login_time,
        expires_at=expiry_of(login_time),
        api_url=settings.api_url,
    )


def request_token_of(text: str) -> str:
    """The request token in what the user pasted: the redirect URL, or the bare token.

    Raises KiteLoginError (one sentence, never echoing the text) when there is none.
    """
    text = text.strip()
    if not text:
        raise KiteLoginError("no request token given: paste the URL Kite redirected you to, or its request_token")
    if "://" in text or "?" in text or "request_token=" in text:
        query = parse_qs(urlsplit(text).query or text.partition("?")[2] or text)
        status = (query.get("status") or [""])[0]
        tokens = query.get("request_token") or []
        if status and status.lower() != "success":
            raise KiteLoginError(f"Kite's redirect says the login did not succeed (status={status[:20]}): log in again")
        if not tokens or not tokens[0].strip():
            raise KiteLoginError("the URL has no request_token: paste the whole URL Kite redirected you to")
        text = tokens[0].strip()
    if not _TOKEN_RE.match(text):
        raise KiteLoginError(
            "that is not a Kite request token (letters and digits) nor a redirect URL holding one: paste it again"
        )
    return text


def session_path() -> Path:
    return config.state_dir() / SESSION_FILE


def save(session: KiteSession, path: Path | None = None) -> Path:
    """Write the session with mode 0600 (atomically; a link in the temporary file's place is never followed).

    Raises SessionNotSaved (a KiteError and an OSError) when the file cannot be written.
    """
    path = path or session_path()
    data = {
        "api_key_id": key_id(session.api_key),
        "api_url": session.api_url,
        "access_token": session.access_token,
        "user_id": session.user_id,
        "login_time": session.login_time,
        "expires_at": session.expires_at,
    }
    try:
        write_private(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise SessionNotSaved(path, exc) from None
    return path


def stored(settings: KiteSettings, path: Path | None = None) -> KiteSession | None:
    """The stored session of this API key and REST URL (expired or not), else None."""
    path = path or session_path()
    try:
        data = orjson.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise TypeError("not an object")
        if data.get("api_key_id") != key_id(settings.api_key) or data.get("api_url") != settings.api_url:
            log.info("the stored Kite session belongs to another API key or REST URL; not using it")
            return None
        return KiteSession(
            api_key=str(settings.api_key or ""),
            access_token=str(data["access_token"]),
            user_id=str(data.get("user_id") or ""),
            login_time=data.get("login_time"),
            expires_at=float(data["expires_at"]),
            api_url=settings.api_url,
            source="store",
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("ignoring the stored Kite session %s: %s", path, exc.__class__.__name__)
        return None


def current_session(settings: KiteSettings) -> KiteSession | None:
    """The access token to use: KITE_ACCESS_TOKEN as it is, else the stored one while it lasts, else None."""
    if settings.access_token:
        return KiteSession(
            api_key=str(settings.api_key or ""),
            access_token=settings.access_token,
            user_id="",
            login_time=None,
            expires_at=next_flush(),
            api_url=settings.api_url,
            source="setting",
        )
    session = stored(settings)
    if session is None:
        return None
    if expired(session):
        log.info("the stored Kite session ended at 06:00 IST; %s", LOGIN_AGAIN)
        return None
    return session


def _ask_terminal(prompt: str) -> str:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline()


def login_and_save(*, ask: Callable[[str], str] | None = None) -> str:
    """``oaws login kite``: the login URL to the user, the request token back, exchanged and stored.

    ``ask(prompt)`` shows the prompt and returns what the user pasted (the redirect URL
    or the bare request token); without it, the prompt goes to stderr and a line is read
    from stdin. Returns one line for the user, without any secret.
    """
    from oaws.brokers.kite.settings import load_settings

    settings = load_settings()
    settings.require("api_key", "api_secret", what="Kite's login")
    prompt = (
        f"Open this URL, log in to Kite, and paste the URL Kite redirected you to, or its request_token:\n"
        f"  {login_url(settings)}\n> "
    )
    answer = (ask or _ask_terminal)(prompt)
    session = exchange(settings, request_token_of(answer or ""))
    save(session)
    who = session.user_id or "your Kite user"
    line = (
        f"Logged in to Kite as {who}; the access token is kept until {until_text(session.expires_at)} "
        "(oaws serve --broker kite uses it)."
    )
    if settings.access_token:
        line += " KITE_ACCESS_TOKEN is set and is used instead while it is."
    return line
