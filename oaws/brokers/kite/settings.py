"""Zerodha Kite settings: the ``KITE_*`` environment variables, then ``[kite]`` of the config file.

Secrets (API key, API secret, access token) come only from these two places, never from
the command line where ``ps`` would show them, and ``KiteSettings`` keeps them out of its
``repr`` so that no log line or traceback prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from oaws.brokers.kite.errors import KiteCredentialsMissing
from oaws.brokers.settings import Setting, SettingsError, SettingsSpec

DEFAULT_API_URL = "https://api.kite.trade"
DEFAULT_FEED_URL = "wss://ws.kite.trade"
DEFAULT_LOGIN_URL = "https://kite.zerodha.com/connect/login"

SPEC = SettingsSpec(
    "kite",
    (
        Setting("api_key", "KITE_API_KEY", secret=True, required=True, help="the Kite Connect app's API key"),
        Setting("api_secret", "KITE_API_SECRET", secret=True, help="the app's API secret (for `oaws login kite`)"),
        Setting("access_token", "KITE_ACCESS_TOKEN", secret=True, help="today's access token, used as it is"),
        Setting("api_url", "KITE_API_URL", default=DEFAULT_API_URL, help="Kite Connect's REST address"),
        Setting("feed_url", "KITE_FEED_URL", default=DEFAULT_FEED_URL, help="the ticker's WebSocket address"),
        Setting("login_url", "KITE_LOGIN_URL", default=DEFAULT_LOGIN_URL, help="Kite's login page for the app"),
        Setting("instruments", "OAWS_INSTRUMENTS", help="a local instrument dump instead of the cached one"),
    ),
)
#: setting -> environment variable; the config file uses the setting's name in [kite].
ENV_VARS = {s.name: s.env for s in SPEC}


@dataclass(frozen=True)
class KiteSettings:
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    feed_url: str = DEFAULT_FEED_URL
    login_url: str = DEFAULT_LOGIN_URL
    #: a local instrument dump (Kite's CSV or oaws's index of it) instead of the cached one
    instruments: str | None = None

    def require(self, *names: str, what: str = "Kite credentials") -> None:
        """Raise KiteCredentialsMissing naming the variables (never the values) of unset ``names``."""
        spec = SettingsSpec(SPEC.section, tuple(replace(s, required=True) for s in SPEC if s.name in names))
        try:
            spec.require({name: getattr(self, name) for name in names}, what)
        except SettingsError as exc:
            raise KiteCredentialsMissing(str(exc)) from None

    def with_overrides(self, **values: Any) -> KiteSettings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def load_settings(**overrides: Any) -> KiteSettings:
    """Settings from ``KITE_*`` (and ``OAWS_INSTRUMENTS``), else ``[kite]`` of the config file.

    ``overrides`` that are not None win (tests, and ``--instruments FILE``).
    """
    return KiteSettings(**SPEC.load(**overrides))
