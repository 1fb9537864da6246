"""Angel One settings: the environment, then the ``[angel]`` section of the config file.

Secrets (API key, PIN, TOTP secret) come only from these two places, never from the
command line where ``ps`` would show them, and the settings object keeps them out of its
``repr`` so that no log line or traceback prints them.

The ``ANGEL_*`` variables are read rather than ``oaws.config.get``'s ``OAWS_*`` ones:
``OAWS_API_KEY`` is the proxy's own key for its clients, not Angel's.
"""

from __future__ import annotations

import binascii
import os
from dataclasses import dataclass, field, replace
from typing import Any

from oaws import config
from oaws.brokers.angel.errors import CredentialsMissing

DEFAULT_API_URL = "https://apiconnect.angelone.in"
DEFAULT_FEED_URL = "wss://smartapisocket.angelone.in/smart-stream"
DEFAULT_MASTER_URL = "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"

#: setting -> environment variable; the config file uses the setting's name in [angel].
ENV_VARS = {
    "api_key": "ANGEL_API_KEY",
    "client_code": "ANGEL_CLIENT_CODE",
    "pin": "ANGEL_PIN",
    "totp_secret": "ANGEL_TOTP_SECRET",
    "api_url": "ANGEL_API_URL",
    "feed_url": "ANGEL_FEED_URL",
    "master_url": "ANGEL_MASTER_URL",
    "instruments": "OAWS_INSTRUMENTS",
}
CREDENTIALS = ("api_key", "client_code", "pin", "totp_secret")


@dataclass(frozen=True)
class AngelSettings:
    api_key: str | None = field(default=None, repr=False)
    client_code: str | None = None
    pin: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    feed_url: str = DEFAULT_FEED_URL
    master_url: str = DEFAULT_MASTER_URL
    #: a local instrument master (raw JSON or oaws index) instead of the cached one
    instruments: str | None = None

    def require_credentials(self) -> None:
        """Raise CredentialsMissing naming what to set (never the values)."""
        missing = [name for name in CREDENTIALS if not getattr(self, name)]
        if missing:
            env = " and ".join(ENV_VARS[n] for n in missing)
            keys = ", ".join(missing)
            raise CredentialsMissing(
                f"Angel One credentials missing: set {env} (or {keys} in the [angel] section of {config.config_path()})"
            )

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
    section = config.file_config().get("angel")
    section = section if isinstance(section, dict) else {}
    values: dict[str, Any] = {}
    for name, env in ENV_VARS.items():
        raw = os.environ.get(env)
        if raw is None or raw == "":
            raw = section.get(name)
        if raw is not None and raw != "":
            values[name] = str(raw).strip()
    return AngelSettings(**values).with_overrides(**overrides)
