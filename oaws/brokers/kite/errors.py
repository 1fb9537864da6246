"""What can go wrong with Zerodha Kite, each a one-sentence message for the user.

``KiteError`` is the base: the command line prints its message and exits non-zero, and
``oaws serve`` stops with it. ``KiteUnavailable`` alone is transient (the network, Kite's
servers answering 429 or 5xx): the feed retries it with backoff instead of stopping.
"""

from __future__ import annotations

from oaws.brokers.api import BrokerError

#: what every "log in again" sentence ends with
LOGIN_AGAIN = "log in again with `oaws login kite`"


class KiteError(BrokerError):
    """A problem with the Kite adapter; ``str()`` is one sentence for the user."""


class KiteCredentialsMissing(KiteError):
    """The API key, the API secret or an access token is not configured."""


class KiteLoginError(KiteError):
    """Kite refused the login (a used or wrong request token, a wrong API secret)."""


class KiteTokenExpired(KiteError):
    """Kite refused the access token (HTTP 403 TokenException): expired in the morning, or revoked."""


class KiteUnavailable(KiteError):
    """Kite could not be reached or asked us to wait (429, 5xx); worth retrying later."""


class KiteMasterMissing(KiteError):
    """No instrument dump is available, or the one given cannot be read."""
