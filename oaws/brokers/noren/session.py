"""Logging in to a Noren broker and keeping the session between runs.

Three ways to a session, the first that the settings allow:

1. ``{PREFIX}_ACCESS_TOKEN`` set: used as it is (Flattrade's day token, Shoonya's OAuth access token).
2. QuickAuth (``POST {api_url}/QuickAuth``), for a broker whose users have it (Shoonya) when its
   settings are all there: the body is the raw string ``jData=`` + JSON (not a JSON body),
   ``pwd`` the SHA-256 of the password, ``appkey`` the SHA-256 of ``uid|api_secret``,
   ``factor2`` the current TOTP; the answer's ``susertoken`` is the session (``jKey``).
3. OAuth, for a broker whose users log in through its web page: ``oaws login NAME`` prints the
   page's address, the user logs in and pastes the address the page sent them to (or its
   ``code``), and the code is exchanged:
   - Shoonya (``GenAcsTok``): ``jData={"code", "checksum": sha256(api_key + api_secret + code)}``
     → ``{"stat": "Ok", "access_token": ...}``; the feed's connect is then ``{"t": "a", ...}``.
   - Flattrade: JSON ``{api_key, request_code, api_secret: sha256(api_key + code + api_secret)}``
     → ``{"stat": "Ok", "token": ...}``, a ``jKey`` like QuickAuth's.

The session is stored 0600 in the state directory, one file per broker, and used again only
for the same host, user and REST address until it expires. Noren says nothing of a session's
lifetime; the sessions end overnight, so a stored one is taken to last until the next 06:00
IST (an assumption), and a refusal before that (``Session Expired :  Invalid Session Key``)
costs one fresh login.

Every HTTP call has a timeout; the network or a 5xx is retried a few times and then is
``NorenUnavailable``. A refusal is one sentence naming what Noren said (wrong password,
invalid OTP, blocked user, invalid app key, vendor code), never a secret.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson

from oaws import config
from oaws.brokers.masterkit import write_private
from oaws.brokers.noren.errors import (
    NorenCredentialsMissing,
    NorenError,
    NorenLoginError,
    NorenSessionExpired,
    NorenUnavailable,
    describe_request_error,
)
from oaws.brokers.noren.settings import NorenSettings, load_settings

log = logging.getLogger(__name__)

Kind = Literal["susertoken", "access_token"]
QUICKAUTH_SETTINGS = ("user_id", "password", "totp_secret", "vendor_code", "api_secret")
#: Noren's words for a session it no longer knows
EXPIRED = re.compile(r"session\s+expired|invalid\s+session\s+key", re.IGNORECASE)
#: attempts of one HTTP call when the network fails or the server answers 5xx
ATTEMPTS = 3
#: the hour (IST) by which a Noren session is taken to have ended
SESSION_ENDS_AT = 6


@dataclass
class NorenSession:
    user_id: str
    token: str = field(repr=False)
    kind: Kind
    expires_at: float | None
    host: str
    #: the REST address it was made for (a session is used again only there)
    api_url: str = ""
    #: "login", "oauth", "env" (the ACCESS_TOKEN setting) or "store" (read back from the file)
    source: str = field(default="login", compare=False)

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at

    def matches(self, settings: NorenSettings) -> bool:
        return self.host == settings.host.name and self.user_id == settings.user_id and self.api_url == settings.api_url


@dataclass(frozen=True)
class OAuthFlow:
    """How a Noren broker's OAuth login goes: its page, its exchange, what its token is."""

    #: the page the user opens: ``{auth_url}?{param}={api_key}``
    param: str
    #: "genacstok" (Shoonya's jData body) or "apitoken" (Flattrade's JSON body)
    exchange: str
    #: the feed's connect with this token: "access_token" (``{"t": "a"}``) or "susertoken" (``{"t": "c"}``)
    kind: Kind
    #: the page when the host names none
    default_page: str = ""


OAUTH: dict[str, OAuthFlow] = {
    "shoonya": OAuthFlow(
        "client_id", "genacstok", "access_token", "https://api.shoonya.com/OAuthlogin/authorize/oauth"
    ),
    "flattrade": OAuthFlow("app_key", "apitoken", "susertoken"),
}
#: another Noren broker with OAuth is taken to work as Shoonya's (Zebu, TradeSmart do, per OpenAlgo)
DEFAULT_OAUTH = OAUTH["shoonya"]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def join(base: str, route: str) -> str:
    """``base`` + ``/route`` by string: urljoin would drop a path such as ``/NorenWClientTP``."""
    return f"{base.rstrip('/')}/{route.lstrip('/')}"


def ends_at(now: float | None = None) -> float:
    """When a session made at ``now`` is taken to end: the next SESSION_ENDS_AT o'clock IST."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, config.IST)
    end = moment.replace(hour=SESSION_ENDS_AT, minute=0, second=0, microsecond=0)
    if end <= moment:
        end += timedelta(days=1)
    return end.timestamp()


def _secrets(settings: NorenSettings) -> list[str]:
    values = (settings.password, settings.totp_secret, settings.api_secret, settings.api_key, settings.access_token)
    return [v for v in values if v and len(v) >= 4]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret in it replaced by ``***`` (Noren's messages should hold none; to be sure)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


# HTTP -------------------------------------------------------------------------------------
def _post(
    settings: NorenSettings,
    url: str,
    *,
    data: str | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
    what: str = "the login",
    retry_delay: float = 0.5,
) -> dict[str, Any]:
    """POST and the JSON object answered; NorenUnavailable after ATTEMPTS for the network or a 5xx."""
    import requests

    title = settings.host.title
    public = urlsplit(url)._replace(query="", fragment="").geturl()
    reason = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(retry_delay * attempt)
        try:
            response = requests.post(url, data=data, json=json, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            reason = describe_request_error(exc, url)
            continue
        if response.status_code >= 500:
            reason = f"HTTP {response.status_code}"
            continue
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        raise NorenError(
            f"{title} answered {what} at {public} with HTTP {response.status_code} and no Noren reply; "
            f"check {settings.env('api_url')} and {settings.env('token_url')}"
        )
    raise NorenUnavailable(f"cannot reach {title} at {public} for {what}: {reason}")


def _emsg(reply: dict[str, Any]) -> str:
    text = reply.get("emsg") or reply.get("message") or "no reason given"
    return " ".join(str(text).split())[:200].rstrip(".")


#: what Noren's refusals mean, and what the user should check (matched in its emsg, in this order)
REFUSALS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"block", re.I), "the user is blocked; unblock it on the broker's web site"),
    (re.compile(r"password|pwd", re.I), "wrong password; check {PREFIX}_PASSWORD"),
    (re.compile(r"otp|factor|2fa", re.I), "invalid OTP; check {PREFIX}_TOTP_SECRET and the clock"),
    (re.compile(r"app\s*key|appkey|api\s*key|secret|checksum", re.I), "invalid app key; check {PREFIX}_API_SECRET"),
    (re.compile(r"vendor|\bvc\b", re.I), "wrong vendor code; check {PREFIX}_VENDOR_CODE"),
    (re.compile(r"user|uid", re.I), "unknown user; check {PREFIX}_USER_ID"),
    (re.compile(r"code|token", re.I), "the login code was refused; log in on the page again"),
)


def refusal(settings: NorenSettings, what: str, reply: dict[str, Any]) -> NorenLoginError:
    """One sentence: the broker refused ``what``, in Noren's words, with what to check."""
    said = scrub(_emsg(reply), _secrets(settings))
    hint = next((h for pattern, h in REFUSALS if pattern.search(said)), "")
    hint = hint.replace("{PREFIX}", settings.host.prefix)
    title = settings.host.title
    return NorenLoginError(f"{title} refused {what}: Noren said {said!r}" + (f" ({hint})" if hint else ""))


# QuickAuth ---------------------------------------------------------------------------------
def quickauth_body(settings: NorenSettings, otp: str) -> str:
    """QuickAuth's body: the raw string ``jData=`` + JSON."""
    uid = str(settings.user_id)
    values = {
        "source": "API",
        "apkversion": "1.0.0",
        "uid": uid,
        "pwd": sha256(str(settings.password)),
        "factor2": otp,
        "vc": settings.vendor_code,
        "appkey": sha256(f"{uid}|{settings.api_secret}"),
        "imei": settings.imei,
    }
    return "jData=" + orjson.dumps(values).decode()


def has_quickauth(settings: NorenSettings) -> bool:
    return "quickauth" in settings.host.logins and all(getattr(settings, n) for n in QUICKAUTH_SETTINGS)


def quickauth(settings: NorenSettings, timeout: float = 15.0, retry_delay: float = 0.5) -> NorenSession:
    """Log in with QuickAuth (blocking); NorenLoginError in Noren's words when refused."""
    import pyotp

    settings.require(*QUICKAUTH_SETTINGS, what=f"{settings.host.title}'s QuickAuth login")
    try:
        otp = pyotp.TOTP(str(settings.totp_secret).replace(" ", "")).now()
    except (ValueError, TypeError):
        raise NorenCredentialsMissing(f"{settings.env('totp_secret')} is not a base32 TOTP secret") from None
    reply = _post(
        settings,
        join(settings.api_url, "QuickAuth"),
        data=quickauth_body(settings, otp),
        timeout=timeout,
        what="the login",
        retry_delay=retry_delay,
    )
    token = reply.get("susertoken")
    if reply.get("stat") != "Ok" or not isinstance(token, str) or not token:
        raise refusal(settings, f"the login of {settings.user_id}", reply)
    return NorenSession(
        user_id=str(reply.get("actid") or settings.user_id),
        token=token,
        kind="susertoken",
        expires_at=ends_at(),
        host=settings.host.name,
        api_url=settings.api_url,
        source="login",
    )


# OAuth ------------------------------------------------------------------------------------
def oauth_flow(settings: NorenSettings) -> OAuthFlow:
    return OAUTH.get(settings.host.name, DEFAULT_OAUTH)


def login_page(settings: NorenSettings) -> str:
    """The address the user opens to log in (it carries the app's key, as every OAuth page's does)."""
    flow = oauth_flow(settings)
    page = settings.auth_url or flow.default_page
    if not page:
        raise NorenCredentialsMissing(
            f"{settings.host.title}'s login page is not known: set {settings.env('auth_url')}"
        )
    separator = "&" if "?" in page else "?"
    return f"{page}{separator}{flow.param}={settings.api_key}"


_CODE = re.compile(r"^[A-Za-z0-9._~+/=-]{4,512}$")


def code_of(answer: str) -> str:
    """The code in what the user pasted: the redirect address (``...?code=...``) or the bare code."""
    text = answer.strip()
    if "code=" in text or text.lower().startswith(("http://", "https://")):
        query = parse_qs(urlsplit(text).query) if "://" in text else parse_qs(text.lstrip("?"))
        values = query.get("code") or query.get("request_code") or query.get("request_token")
        if not values or not values[0].strip():
            raise NorenLoginError(
                "the address pasted carries no code; paste the whole address the login page sent you to"
            )
        text = values[0].strip()
    if not _CODE.match(text):
        raise NorenLoginError("what was pasted is neither the login page's redirect address nor its code")
    return text


def exchange_code(settings: NorenSettings, code: str, timeout: float = 15.0, retry_delay: float = 0.5) -> NorenSession:
    """Exchange an OAuth ``code`` for the session token (blocking)."""
    flow = oauth_flow(settings)
    settings.require("user_id", "api_key", "api_secret", what=f"{settings.host.title}'s OAuth login")
    if not settings.token_url:
        raise NorenCredentialsMissing(
            f"{settings.host.title}'s token exchange is not known: set {settings.env('token_url')}"
        )
    key, secret = str(settings.api_key), str(settings.api_secret)
    if flow.exchange == "apitoken":
        body = {"api_key": key, "request_code": code, "api_secret": sha256(key + code + secret)}
        reply = _post(
            settings, settings.token_url, json=body, timeout=timeout, what="the login code", retry_delay=retry_delay
        )
        token = reply.get("token")
    else:
        data = "jData=" + orjson.dumps({"code": code, "checksum": sha256(key + secret + code)}).decode()
        reply = _post(
            settings,
            settings.token_url,
            data=data,
            headers={"Content-Type": "text/plain"},
            timeout=timeout,
            what="the login code",
            retry_delay=retry_delay,
        )
        token = reply.get("access_token")
    if reply.get("stat") != "Ok" or not isinstance(token, str) or not token:
        raise refusal(settings, "the login code", reply)
    return NorenSession(
        user_id=str(reply.get("client") or reply.get("uid") or settings.user_id),
        token=token,
        kind=flow.kind,
        expires_at=ends_at(),
        host=settings.host.name,
        api_url=settings.api_url,
        source="oauth",
    )


def from_access_token(settings: NorenSettings) -> NorenSession | None:
    """The session of ``{PREFIX}_ACCESS_TOKEN``, used as it is; None when it is not set."""
    if not settings.access_token:
        return None
    settings.require("user_id", what=f"{settings.env('access_token')}'s session")
    return NorenSession(
        user_id=str(settings.user_id),
        token=settings.access_token,
        kind=oauth_flow(settings).kind,
        expires_at=None,
        host=settings.host.name,
        api_url=settings.api_url,
        source="env",
    )


# The stored session ------------------------------------------------------------------------
class SessionNotSaved(NorenError, OSError):
    """The session file could not be written: a NorenError for ``oaws login``, an OSError for the feed."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror, cause.filename)
        self.message = f"cannot save the Noren session to {path}: {cause.strerror or cause}"

    def __str__(self) -> str:
        return self.message


def session_path(name: str) -> Path:
    return config.state_dir() / f"noren-{name}-session.json"


def save_session(session: NorenSession, path: Path | None = None) -> Path:
    """Write the session with mode 0600, atomically, never through a planted link."""
    path = path or session_path(session.host)
    data = {k: v for k, v in asdict(session).items() if k != "source"}
    try:
        write_private(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise SessionNotSaved(path, exc) from None
    return path


def load_session(settings: NorenSettings, path: Path | None = None) -> NorenSession | None:
    """The stored session for these settings if it is still valid, else None."""
    path = path or session_path(settings.host.name)
    try:
        data = orjson.loads(path.read_bytes())
        session = NorenSession(**data, source="store")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring the stored %s session %s: %s", settings.host.title, path, exc.__class__.__name__)
        return None
    if not session.matches(settings):
        log.info("the stored %s session belongs to another user or address; not using it", settings.host.title)
        return None
    if session.expired():
        log.info("the stored %s session has expired", settings.host.title)
        return None
    return session


def login(settings: NorenSettings, *, ask: Callable[[str], str] | None = None, timeout: float = 15.0) -> NorenSession:
    """A fresh session: QuickAuth when its settings are there, else OAuth through ``ask`` (blocking)."""
    if has_quickauth(settings):
        return quickauth(settings, timeout)
    if "oauth" not in settings.host.logins:
        settings.require(*QUICKAUTH_SETTINGS, what=f"{settings.host.title}'s QuickAuth login")
    settings.require("user_id", "api_key", "api_secret", what=f"{settings.host.title}'s OAuth login")
    if ask is None:
        raise NorenSessionExpired(
            f"{settings.host.title} needs a browser login: run `oaws login {settings.host.name}` "
            f"(or set {settings.env('access_token')})"
        )
    prompt = (
        f"Open this address, log in to {settings.host.title}, and paste the address it sends you to (or its code):\n"
        f"  {login_page(settings)}\n> "
    )
    return exchange_code(settings, code_of(ask(prompt) or ""), timeout)


def current(settings: NorenSettings, path: Path | None = None) -> NorenSession:
    """The session to use: ``ACCESS_TOKEN``, else the stored one, else a fresh QuickAuth login (saved)."""
    session = from_access_token(settings) or load_session(settings, path)
    if session is not None:
        return session
    session = login(settings)
    save_session(session, path)
    return session


# REST calls with a session ---------------------------------------------------------------------
def call(
    settings: NorenSettings,
    route: str,
    values: dict[str, Any],
    session: NorenSession,
    *,
    relogin: Callable[[], NorenSession] | None = None,
    timeout: float = 15.0,
) -> tuple[dict[str, Any], NorenSession]:
    """One REST call (``jData=...&jKey=...``); an expired session is replaced by one fresh login, once.

    Returns (Noren's reply, the session that worked). Raises NorenSessionExpired when the
    fresh session is refused too, or when there is no way to log in again.
    """
    for attempt in range(2):
        body = {"uid": session.user_id, **values}
        headers = None
        data = "jData=" + orjson.dumps(body).decode()
        if session.kind == "access_token":
            headers = {"Authorization": f"Bearer {session.token}"}
        else:
            data += f"&jKey={session.token}"
        reply = _post(settings, join(settings.api_url, route), data=data, headers=headers, timeout=timeout, what=route)
        if reply.get("stat") == "Ok" or not EXPIRED.search(str(reply.get("emsg", ""))):
            return reply, session
        if attempt or relogin is None:
            break
        log.warning("%s says the session has expired; logging in again", settings.host.title)
        session = relogin()
    raise NorenSessionExpired(
        f"{settings.host.title} refused the session even after a fresh login; run `oaws login {settings.host.name}`"
        if relogin is not None
        else f"{settings.host.title} says the session has expired; run `oaws login {settings.host.name}`"
    )


# oaws login ------------------------------------------------------------------------------------
def _ask_terminal(prompt: str) -> str:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline()


def login_and_save(name: str, *, ask: Callable[[str], str] | None = None) -> str:
    """``oaws login NAME``: log in as the settings allow, keep the session; one line for the user."""
    settings = load_settings(name)
    title = settings.host.title
    env = from_access_token(settings)
    if env is not None:
        path = save_session(env)
        return f"{settings.env('access_token')} is set: oaws uses it as it is for {env.user_id} (saved to {path})."
    if has_quickauth(settings):
        session = quickauth(settings)
    else:
        session = login(settings, ask=ask or _ask_terminal)
    path = save_session(session)
    until = datetime.fromtimestamp(session.expires_at or time.time(), config.time_zone())
    how = "QuickAuth" if session.source == "login" else "its login page"
    return (
        f"Logged in to {title} as {session.user_id} through {how}; session saved to {path}, "
        f"taken to be valid until about {until:%Y-%m-%d %H:%M %Z}."
    )
