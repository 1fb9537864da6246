"""What can go wrong with Angel One, each a one-sentence message for the user.

``AngelError`` is the base: the command line prints its message and exits non-zero, and
``oaws serve`` stops with it. ``AngelUnavailable`` alone is transient (the network or
Angel's servers): the feed retries it with backoff instead of stopping.
"""

from __future__ import annotations

from oaws.brokers.api import BrokerError
from oaws.brokers.masterkit import describe_request_error

__all__ = [
    "AngelAuthError",
    "AngelError",
    "AngelLoginError",
    "AngelUnavailable",
    "CredentialsMissing",
    "MasterMissing",
    "describe_request_error",
]


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
