"""Dhan's access token: checked with one profile call, never stored by oaws.

Dhan has no login step an API can do for its users: the access token generated on
web.dhan.co (valid for a day or more, as the user chooses there) is the credential itself,
sent as the ``access-token`` header of every REST call and in the feed's URL. So
``oaws login dhan`` only asks Dhan whether it accepts the token (``GET /v2/profile``, the
call dhanhq's ``DhanLogin.user_profile`` makes), and says until when; nothing is written
to disk. The feed makes the same check before it connects, so that a dead token is one
sentence at start instead of a storm of refused connections.

The headers are those of dhanhq's ``DhanHTTP``: ``access-token``, ``client-id``,
``Content-type`` and ``Accept`` (both ``application/json``). Every request has a timeout;
429 and 5xx answers and network errors are retried a few times (``Retry-After`` honoured,
about 10 seconds in all), then DhanUnavailable.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from oaws.brokers.dhan.errors import DhanClientMismatch, DhanError, DhanTokenExpired, DhanUnavailable
from oaws.brokers.masterkit import describe_request_error

if TYPE_CHECKING:
    import requests

    from oaws.brokers.dhan.settings import DhanSettings

__all__ = ["Profile", "check_and_describe", "describe_request_error", "send", "validate"]

log = logging.getLogger(__name__)

IST = timezone(timedelta(hours=5, minutes=30), "IST")
PROFILE_PATH = "/v2/profile"
#: seconds a REST call may take
TIMEOUT = 10.0
#: tries of one request when Dhan answers 429 / 5xx or cannot be reached, the seconds spent waiting in all,
#: and the first wait (doubled after each try, at most 4 s) when Dhan sends no Retry-After
ATTEMPTS, RETRY_BUDGET, FIRST_DELAY = 4, 10.0, 0.5
#: Dhan's error codes (errorCode of a refused call) that mean the token is not accepted
TOKEN_REFUSED = frozenset(("DH-901", "807", "808", "809"))
EXPIRED = (
    "Dhan refused the access token (expired or revoked): generate a new one at web.dhan.co and set DHAN_ACCESS_TOKEN"
)
_RETRIED = frozenset((429, 500, 502, 503, 504))


@dataclass
class Profile:
    """What Dhan's profile call says about the client the token belongs to (no secret in it)."""

    client_id: str
    #: the token's expiry as Dhan writes it ("03/12/2026 09:15", India time)
    token_validity: str | None
    #: the same as epoch seconds, None when Dhan gave none or it cannot be read
    expires_at: float | None
    #: "Active" when the Data APIs (the market feed) are subscribed
    data_plan: str | None
    active_segments: list[str] = field(default_factory=list)
    data_validity: str | None = None

    @property
    def data_active(self) -> bool | None:
        """Whether Dhan reports an active Data API plan (None when the profile does not say)."""
        if self.data_plan is None:
            return None
        return self.data_plan.strip().lower() == "active"


def _parse_time(text: object) -> float | None:
    """Dhan's India-time "DD/MM/YYYY HH:MM" (or "YYYY-MM-DD HH:MM:SS[.f]") as epoch seconds."""
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    for pattern in ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=IST).timestamp()
        except ValueError:
            continue
    return None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def send(
    method: str,
    url: str,
    *,
    what: str,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
    stream: bool = False,
    attempts: int | None = None,
    budget: float | None = None,
) -> requests.Response:
    """One request, tried again on 429 / 5xx / network errors with backoff (Retry-After honoured).

    Returns the last response, whatever its status (the caller reads it); raises the last
    ``requests.RequestException`` when Dhan could not be reached at all. ``what`` ("check
    the access token") names the request in the log line of each retry; the headers and
    the URL's query are never logged.
    """
    import requests

    attempts = ATTEMPTS if attempts is None else attempts
    budget = RETRY_BUDGET if budget is None else budget
    waited, delay = 0.0, FIRST_DELAY
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        try:
            response = requests.request(method, url, headers=headers, timeout=timeout, stream=stream)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if last or waited + delay > budget:
                raise
            reason = describe_request_error(exc, url)
            pause = delay
        else:
            if response.status_code not in _RETRIED or last:
                return response
            hinted = _retry_after(response)
            pause = delay if hinted is None else hinted
            if waited + pause > budget:
                if hinted is None or waited >= budget:
                    return response
                pause = budget - waited  # Retry-After beyond the budget: one last try when it runs out
            reason = f"HTTP {response.status_code}"
            response.close()
        log.info("Dhan: cannot %s (%s); trying again in %.1f s", what, reason, pause)
        time.sleep(pause)
        waited += pause
        delay = min(delay * 2, 4.0)
    raise AssertionError("unreachable")  # pragma: no cover


def headers(settings: DhanSettings) -> dict[str, str]:
    """The headers of every REST call, as dhanhq's DhanHTTP sends them."""
    return {
        "access-token": settings.access_token or "",
        "client-id": settings.client_id or "",
        "Content-type": "application/json",
        "Accept": "application/json",
    }


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_code(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("errorCode", "error_code", "code"):
            value = body.get(key)
            if value not in (None, ""):
                return str(value)
        data = body.get("data")
        if isinstance(data, dict) and data:  # the Data APIs' {"data": {"807": "Access token is expired"}}
            return str(next(iter(data)))
    return ""


def token_client(token: str) -> str | None:
    """The ``dhanClientId`` claim of Dhan's JWT access token (unverified: only Dhan can check it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    client = claims.get("dhanClientId") if isinstance(claims, dict) else None
    return str(client).strip() if isinstance(client, str | int) and str(client).strip() else None


def _mismatch(token_client: str, configured: str | None) -> DhanClientMismatch:
    return DhanClientMismatch(
        f"the access token belongs to Dhan client {token_client}, not to DHAN_CLIENT_ID {configured}:"
        " set the client id and the token of one account"
    )


def validate(settings: DhanSettings) -> Profile:
    """Ask Dhan whether it accepts the access token; the profile of its client.

    Raises DhanCredentialsMissing (nothing configured), DhanTokenExpired (refused, or past
    its validity), DhanClientMismatch (the token is another client's than DHAN_CLIENT_ID, by
    the JWT's own ``dhanClientId`` claim before asking, or by the profile),
    DhanUnavailable (Dhan unreachable or busy after a few tries) or DhanError (an answer
    that is not a profile). A profile without an active Data API plan is logged as a
    warning and returned: the feed's own connection is the final word on that.
    """
    import requests
    from requests.exceptions import InvalidURL

    settings.require_credentials()
    configured = str(settings.client_id).strip()
    claimed = token_client(settings.access_token or "")
    if claimed is not None and claimed != configured:  # Dhan would only say "invalid or expired"
        raise _mismatch(claimed, settings.client_id)
    base = settings.api_url.rstrip("/")
    url = base + PROFILE_PATH
    try:
        response = send("GET", url, what="check the access token", headers=headers(settings))
    except requests.RequestException as exc:
        reason = describe_request_error(exc, url)
        if isinstance(exc, requests.exceptions.InvalidSchema | requests.exceptions.MissingSchema | InvalidURL):
            raise DhanError(f"DHAN_API_URL {base} cannot be used: {reason}") from None  # no retrying a typo
        raise DhanUnavailable(f"cannot reach Dhan at {base}: {reason}") from None
    body = _json(response)
    code = _error_code(body)
    if response.status_code in (401, 403) or code in TOKEN_REFUSED:
        raise DhanTokenExpired(EXPIRED)
    if response.status_code in _RETRIED:
        raise DhanUnavailable(
            f"Dhan at {base} answered HTTP {response.status_code} to every try of the profile call; try again later"
        )
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("dhanClientId"):
        detail = f"HTTP {response.status_code}" + (f", error {code}" if code else "")
        raise DhanError(f"Dhan at {base} did not answer the profile call with a profile ({detail})")
    profile = _profile(body)
    if profile.client_id != configured:
        raise _mismatch(profile.client_id, settings.client_id)
    if profile.expires_at is not None and profile.expires_at <= time.time():
        raise DhanTokenExpired(EXPIRED)
    if profile.data_active is False:
        log.warning(
            "Dhan reports no active Data API plan for client %s (dataPlan %r): the market feed needs one",
            profile.client_id,
            profile.data_plan,
        )
    return profile


def _profile(body: dict[str, Any]) -> Profile:
    validity = body.get("tokenValidity")
    segments = body.get("activeSegment") or ""
    if isinstance(segments, str):
        active = [s.strip() for s in segments.split(",") if s.strip()]
    elif isinstance(segments, list):
        active = [str(s).strip() for s in segments if str(s).strip()]
    else:
        active = []
    plan = body.get("dataPlan")
    data_validity = body.get("dataValidity")
    return Profile(
        client_id=str(body["dhanClientId"]).strip(),
        token_validity=str(validity) if validity not in (None, "") else None,
        expires_at=_parse_time(validity),
        data_plan=str(plan) if plan not in (None, "") else None,
        active_segments=active,
        data_validity=str(data_validity) if data_validity not in (None, "") else None,
    )


def describe(profile: Profile) -> str:
    """One line for ``oaws login dhan``."""
    line = f"Dhan accepts the access token of client {profile.client_id}"
    if profile.expires_at is not None:
        until = datetime.fromtimestamp(profile.expires_at, IST).strftime("%Y-%m-%d %H:%M")
        line += f"; it is valid until {until} IST"
    elif profile.token_validity:
        line += f"; it is valid until {profile.token_validity} (as Dhan writes it)"
    line += "."
    if profile.data_active is False:
        line += f" Dhan reports no active Data API plan (dataPlan {profile.data_plan}), which the market feed needs."
    return line


def check_and_describe() -> str:
    """``oaws login dhan``: the settings, the profile call, one line (nothing stored: the token is the credential)."""
    from oaws.brokers.dhan.settings import load_settings

    settings = load_settings()
    settings.require_credentials()
    return describe(validate(settings))
