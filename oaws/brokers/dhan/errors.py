"""What can go wrong with Dhan, each a one-sentence message for the user.

``DhanError`` is the base: the command line prints its message and exits non-zero, and
``oaws serve`` stops with it. ``DhanUnavailable`` alone is transient (the network, Dhan's
servers answering 429 or 5xx): the feed retries it with backoff instead of stopping.
"""

from __future__ import annotations

from oaws.brokers.api import BrokerError


class DhanError(BrokerError):
    """A problem with the Dhan adapter; ``str()`` is one sentence for the user."""


class DhanCredentialsMissing(DhanError):
    """The client id or the access token is not configured."""


class DhanTokenExpired(DhanError):
    """Dhan refused the access token (expired, revoked, or not this client's)."""


class DhanUnavailable(DhanError):
    """Dhan could not be reached or asked us to wait; worth retrying later."""


class DhanMasterMissing(DhanError):
    """No scrip master is available, or the one given cannot be read."""


class DhanClientMismatch(DhanError):
    """The access token belongs to another Dhan client than the configured client id."""
