"""What can go wrong with a Noren broker, each a one-sentence message for the user.

``NorenError`` is the base: the command line prints its message and exits non-zero, and
``oaws serve`` stops with it. ``NorenUnavailable`` alone is transient (the network, the
broker's servers): the feed retries it with backoff instead of stopping.
"""

from __future__ import annotations

from oaws.brokers import masterkit
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
    import requests

    return masterkit.describe_request_error(
        exc,
        url,
        invalid=(
            (
                (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema),
                "not an http:// or https:// address",
            ),
            ((requests.exceptions.InvalidURL, requests.exceptions.URLRequired), "not a valid address"),
        ),
        broke_off="the answer broke off",
    )
