"""What can go wrong with a Noren broker, each a one-sentence message for the user.

``NorenError`` is the base: the command line prints its message and exits non-zero, and
``oaws serve`` stops with it. ``NorenUnavailable`` alone is transient (the network, the
broker's servers): the feed retries it with backoff instead of stopping.
"""

from __future__ import annotations

from oaws.brokers.api import BrokerError


class NorenError(BrokerError):
    """A problem with a Noren broker; ``str()`` is one sentence for the user."""


class NorenCredentialsMissing(NorenError):
    """A setting the login needs is not configured."""


class NorenLoginError(NorenError):
    """The broker refused the login (wrong password, wrong TOTP, blocked account...): says which."""


class NorenSessionExpired(NorenError):
    """The broker refused the session even right after a fresh login."""


class NorenUnavailable(NorenError):
    """The broker could not be reached; worth retrying later."""


class NorenMasterMissing(NorenError):
    """No symbol master is available, or the one given cannot be read."""


def describe_request_error(exc: BaseException, url: str) -> str:
    """Why a ``requests`` call failed, in a few words ("connection refused", "timed out"), never the URL's query."""
    import socket
    from urllib.parse import urlsplit

    import requests

    if isinstance(exc, requests.exceptions.InvalidSchema | requests.exceptions.MissingSchema):
        return "not an http:// or https:// address"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.URLRequired):
        return "not a valid address"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return "the answer broke off"
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return f"cannot resolve the host name {urlsplit(url).hostname!r}"
        if isinstance(current, TimeoutError):
            return "timed out"
        if isinstance(current, OSError) and current.strerror:
            return current.strerror[:1].lower() + current.strerror[1:]
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args)
        todo.extend(e for e in linked if isinstance(e, BaseException))
    return exc.__class__.__name__
