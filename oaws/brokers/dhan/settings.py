"""Dhan settings: the ``DHAN_*`` environment variables, then ``[dhan]`` of the config file.

Secrets (the access token) come only from these two places, never from the command line
where ``ps`` would show them, and ``DhanSettings`` keeps them out of its ``repr`` so that
no log line or traceback prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from oaws.brokers.dhan.errors import DhanCredentialsMissing
from oaws.brokers.settings import Setting, SettingsError, SettingsSpec

DEFAULT_API_URL = "https://api.dhan.co"
DEFAULT_FEED_URL = "wss://api-feed.dhan.co"
DEFAULT_DEPTH_URL = "wss://depth-api-feed.dhan.co/twentydepth"
DEFAULT_ORDER_URL = "wss://api-order-update.dhan.co"
#: the scrip master is served from another host than the API
DEFAULT_MASTER_URL = "https://images.dhan.co/api-data/api-scrip-master.csv"

SPEC = SettingsSpec(
    "dhan",
    (
        Setting("client_id", "DHAN_CLIENT_ID", required=True, help="the Dhan client id"),
        Setting("access_token", "DHAN_ACCESS_TOKEN", secret=True, required=True, help="the token from web.dhan.co"),
        Setting("api_url", "DHAN_API_URL", default=DEFAULT_API_URL, help="Dhan's REST address"),
        Setting("feed_url", "DHAN_FEED_URL", default=DEFAULT_FEED_URL, help="the market feed"),
        Setting("depth_url", "DHAN_DEPTH_URL", default=DEFAULT_DEPTH_URL, help="the 20-level depth feed"),
        Setting("order_url", "DHAN_ORDER_URL", default=DEFAULT_ORDER_URL, help="the order-update stream"),
        Setting("master_url", "DHAN_MASTER_URL", default=DEFAULT_MASTER_URL, help="the scrip master CSV"),
        Setting("instruments", "OAWS_INSTRUMENTS", help="a local scrip master instead of the cached one"),
    ),
)
#: setting -> environment variable; the config file uses the setting's name in [dhan].
ENV_VARS = {s.name: s.env for s in SPEC}
CREDENTIALS = tuple(s.name for s in SPEC if s.required)


@dataclass(frozen=True)
class DhanSettings:
    client_id: str | None = None
    access_token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    feed_url: str = DEFAULT_FEED_URL
    depth_url: str = DEFAULT_DEPTH_URL
    order_url: str = DEFAULT_ORDER_URL
    master_url: str = DEFAULT_MASTER_URL
    #: a local scrip master (Dhan's CSV or oaws's index of it) instead of the cached one
    instruments: str | None = None

    def require_credentials(self) -> None:
        """Raise DhanCredentialsMissing naming what to set (never the values)."""
        try:
            SPEC.require({name: getattr(self, name) for name in CREDENTIALS}, "Dhan credentials")
        except SettingsError as exc:
            raise DhanCredentialsMissing(str(exc)) from None

    def with_overrides(self, **values: Any) -> DhanSettings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def load_settings(**overrides: Any) -> DhanSettings:
    """Settings from ``DHAN_*`` (and ``OAWS_INSTRUMENTS``), else ``[dhan]`` of the config file.

    ``overrides`` that are not None win (tests, and ``--instruments FILE``).
    """
    return DhanSettings(**SPEC.load(**overrides))
