"""A Noren broker's settings: ``{PREFIX}_*`` variables, then its ``[NAME]`` section of the config file.

Every Noren broker has the same settings under its own prefix (``SHOONYA_USER_ID``,
``FLATTRADE_USER_ID``...) and its own defaults (``family.HOSTS``). Secrets (password, TOTP
secret, API secret, app key, access token) come only from these two places, never from the
command line, and ``NorenSettings`` keeps them out of its ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from oaws.brokers.noren.errors import NorenCredentialsMissing
from oaws.brokers.noren.family import HOSTS, NorenHost
from oaws.brokers.settings import Setting, SettingsError, SettingsSpec

#: Noren's own default when the broker asks for no particular IMEI (the official client's examples use it)
DEFAULT_IMEI = "abc1234"


@cache
def spec(name: str) -> SettingsSpec:
    """The settings of the Noren broker called ``name``."""
    host = HOSTS[name]
    p = host.prefix
    return SettingsSpec(
        host.name,
        (
            Setting("user_id", f"{p}_USER_ID", required=True, help=f"the {host.title} user id"),
            Setting("password", f"{p}_PASSWORD", secret=True, help="the login password (QuickAuth)"),
            Setting("totp_secret", f"{p}_TOTP_SECRET", secret=True, help="the base32 TOTP secret (QuickAuth)"),
            Setting("vendor_code", f"{p}_VENDOR_CODE", help="the API vendor code (QuickAuth)"),
            Setting("api_secret", f"{p}_API_SECRET", secret=True, help="the API secret (app key)"),
            Setting("api_key", f"{p}_API_KEY", secret=True, help="the OAuth app's key or client id"),
            Setting("imei", f"{p}_IMEI", default=DEFAULT_IMEI, help="the IMEI sent at login"),
            Setting("access_token", f"{p}_ACCESS_TOKEN", secret=True, help="an OAuth access token, used as it is"),
            Setting("api_url", f"{p}_API_URL", default=host.api_url, help="the Noren REST address"),
            Setting("feed_url", f"{p}_FEED_URL", default=host.feed_url, help="the Noren WebSocket feed"),
            Setting("master_url", f"{p}_MASTER_URL", default=host.master_url, help="where the symbol masters are"),
            Setting("auth_url", f"{p}_AUTH_URL", default=host.auth_url, help="the OAuth login page"),
            Setting("token_url", f"{p}_TOKEN_URL", default=host.token_url, help="the OAuth token exchange"),
            Setting("instruments", "OAWS_INSTRUMENTS", help="a local symbol master instead of the cached one"),
        ),
    )


@dataclass(frozen=True)
class NorenSettings:
    host: NorenHost
    user_id: str | None = None
    password: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    vendor_code: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    imei: str = DEFAULT_IMEI
    access_token: str | None = field(default=None, repr=False)
    api_url: str = ""
    feed_url: str = ""
    master_url: str = ""
    auth_url: str = ""
    token_url: str = ""
    instruments: str | None = None

    def env(self, name: str) -> str:
        """The environment variable of the setting ``name``."""
        return f"{self.host.prefix}_{name.upper()}"

    def require(self, *names: str, what: str | None = None) -> None:
        """Raise NorenCredentialsMissing naming the variables (never the values) of unset ``names``."""
        base = spec(self.host.name)
        needed = SettingsSpec(base.section, tuple(replace(s, required=True) for s in base if s.name in names))
        try:
            needed.require({n: getattr(self, n) for n in names}, what or f"{self.host.title} credentials")
        except SettingsError as exc:
            raise NorenCredentialsMissing(str(exc)) from None

    def with_overrides(self, **values: Any) -> NorenSettings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def load_settings(name: str, **overrides: Any) -> NorenSettings:
    """The settings of the Noren broker ``name``; ``overrides`` that are not None win."""
    return NorenSettings(host=HOSTS[name], **spec(name).load(**overrides))
