"""Angel One settings: the environment, then the ``[angel]`` section of the config file.

Secrets (API key, PIN, TOTP secret) come only from these two places, never from the
command line where ``ps`` would show them, and the settings object keeps them out of its
``repr`` so that no log line or traceback prints them.

The settings are declared in ``SPEC`` and read by ``oaws.brokers.settings``: the
``ANGEL_*`` variables rather than ``OAWS_*`` ones (``OAWS_API_KEY`` is the proxy's own key
for its clients, not Angel's).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field, replace
from typing import Any

from oaws.brokers.angel.errors import CredentialsMissing
from oaws.brokers.settings import Setting, SettingsError, SettingsSpec

DEFAULT_API_URL = "https://apiconnect.angelone.in"
DEFAULT_FEED_URL = "wss://smartapisocket.angelone.in/smart-stream"
DEFAULT_ORDER_URL = "wss://tns.angelone.in/smart-order-update"
DEFAULT_MASTER_URL = "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"

SPEC = SettingsSpec(
    "angel",
    (
        Setting("api_key", "ANGEL_API_KEY", secret=True, required=True, help="the SmartAPI app's API key"),
        Setting("client_code", "ANGEL_CLIENT_CODE", required=True, help="the Angel One client code (user id)"),
        Setting("pin", "ANGEL_PIN", secret=True, required=True, help="the four-digit login PIN"),
        Setting("totp_secret", "ANGEL_TOTP_SECRET", secret=True, required=True, help="the base32 TOTP secret"),
        Setting("api_url", "ANGEL_API_URL", default=DEFAULT_API_URL, help="SmartAPI's REST address"),
        Setting("feed_url", "ANGEL_FEED_URL", default=DEFAULT_FEED_URL, help="the WebSocket V2 feed"),
        Setting("order_url", "ANGEL_ORDER_URL", default=DEFAULT_ORDER_URL, help="the order-status WebSocket"),
        Setting("master_url", "ANGEL_MASTER_URL", default=DEFAULT_MASTER_URL, help="the instrument master"),
        Setting("instruments", "OAWS_INSTRUMENTS", help="a local instrument master instead of the cached one"),
    ),
)
#: setting -> environment variable; the config file uses the setting's name in [angel].
ENV_VARS = {s.name: s.env for s in SPEC}
CREDENTIALS = tuple(s.name for s in SPEC if s.required)


@dataclass(frozen=True)
class AngelSettings:
    api_key: str | None = field(default=None, repr=False)
    client_code: str | None = None
    pin: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    feed_url: str = DEFAULT_FEED_URL
    order_url: str = DEFAULT_ORDER_URL
    master_url: str = DEFAULT_MASTER_URL
    #: a local instrument master (raw JSON or oaws index) instead of the cached one
    instruments: str | None = None

    def require_credentials(self) -> None:
        """Raise CredentialsMissing naming what to set (never the values)."""
        try:
            SPEC.require({name: getattr(self, name) for name in CREDENTIALS}, "Angel One credentials")
        except SettingsError as exc:
            raise CredentialsMissing(str(exc)) from None

    def totp(self) -> str:
        """The current six-digit code of the TOTP secret."""
        import pyotp

        secret = (self.totp_secret or "").replace(" ", "")
        try:
            return pyotp.TOTP(secret).now()
        except (binascii.Error, ValueError, TypeError):
            raise CredentialsMissing(
                "ANGEL_TOTP_SECRET is not a valid TOTP secret: use the base32 text shown under the QR code "
                "when enabling TOTP at smartapi.angelbroking.com"
            ) from None

    def with_overrides(self, **values: Any) -> AngelSettings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def load_settings(**overrides: Any) -> AngelSettings:
    """Settings from ``ANGEL_*`` (and ``OAWS_INSTRUMENTS``), else ``[angel]`` of the config file.

    ``overrides`` that are not None win (tests, and ``--instruments FILE``).
    """
    return AngelSettings(**SPEC.load(**overrides))
