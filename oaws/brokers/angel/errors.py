"""What can go wrong with Angel One, each a one-sentence message for the user.

``AngelError`` is the base: the command line prints its message and exits non-zero, and
``oaws serve`` stops with it. ``AngelUnavailable`` alone is transient (the network or
Angel's servers): the feed retries it with backoff instead of stopping.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from oaws.brokers.api import BrokerError


class AngelError(BrokerError):
    """A problem with the Angel One adapter; ``str()`` is one sentence for the user."""


class CredentialsMissing(AngelError):
    """API key, client code, PIN or TOTP secret is not configured."""


class AngelLoginError(AngelError):
    """Angel One refused the login (wrong PIN, TOTP, client code or API key)."""


class AngelAuthError(AngelError):
    """Angel One refused the feed tokens even right after a fresh login."""


class AngelUnavailable(AngelError):
    """Angel One could not be reached; worth retrying later."""


class MasterMissing(AngelError):
    """No instrument master is available, or the one given cannot be read."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests -> urllib3 (``reason``, ``args``) -> the socket error."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args)
        todo.extend(e for e in linked if isinstance(e, BaseException))


def describe_request_error(exc: BaseException, url: str) -> str:
    """Why a ``requests`` call failed in a few words ("connection refused"), not the exception's class name."""
    import requests

    if isinstance(exc, requests.exceptions.InvalidSchema):
        return f"unsupported URL scheme {urlsplit(url).scheme!r} (use http:// or https://)"
    if isinstance(exc, requests.exceptions.MissingSchema):
        return "not a URL (it needs http:// or https://)"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.URLRequired):
        return "not a valid URL"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return "the download broke off"
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name {urlsplit(url).hostname!r}"
        if isinstance(cause, TimeoutError):
            return "timed out"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]  # "connection refused"
    text = str(causes[-1]).strip().splitlines()
    return text[0][:200] if text else exc.__class__.__name__
