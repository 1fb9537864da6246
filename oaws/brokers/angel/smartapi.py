"""smartapi-python's ``SmartConnect``, imported so that its side effects cannot hurt us.

docs/brokers/angel.md, defect 8: ``import SmartApi`` calls
``requests.get("https://api.ipify.org")`` with no timeout while the class body runs (a
hang on a network that drops packets), and constructing ``SmartConnect`` creates
``./logs/<date>/app.log`` in whatever directory the user happens to be in. Its logger
also writes request headers and bodies (the API key, and on errors the PIN and TOTP)
through logzero.

So the import happens once, lazily (only ``oaws login`` and the Angel feed pay for it),
with ``requests.get`` replaced by a stub that fails at once (SmartApi then falls back to
fixed addresses, as it does on any error), and the module's ``os``, ``logzero`` and
``logger`` names are replaced by ones that create no directory and log nothing. These
patches touch only the names inside ``SmartApi.smartConnect``; ``requests.get`` is put
back right after the import. ``getProfile`` sends the refresh token in its query string,
which urllib3 logs at DEBUG (``oaws -v``): a filter drops those lines.
"""

from __future__ import annotations

import logging
import os
import threading
import types
import warnings
from typing import Any

_lock = threading.Lock()
_smart_connect: type | None = None


def _no_public_ip_lookup(*args: Any, **kwargs: Any) -> Any:
    raise OSError("oaws does not look up the public IP address")


class _NoDirsOs(types.ModuleType):
    """``os`` as SmartConnect sees it: everything but ``makedirs``."""

    path = os.path

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def makedirs(*args: Any, **kwargs: Any) -> None:
        return None


class _NoTokens(logging.Filter):
    """Drop urllib3's debug lines that carry a token: ``getProfile`` sends the refresh token in its URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Token" not in record.getMessage()


def _silent_logger() -> logging.Logger:
    logger = logging.getLogger("oaws.smartapi.silenced")
    logger.disabled = True
    logger.propagate = False
    return logger


def smart_connect_class() -> type:
    """The ``SmartConnect`` class, imported and defused on first use."""
    global _smart_connect
    with _lock:
        if _smart_connect is None:
            import logzero
            import requests

            quiet = logzero.logger.disabled
            real_get = requests.get
            logzero.logger.disabled = True  # the failed IP lookup is logged while importing
            requests.get = _no_public_ip_lookup
            try:
                import SmartApi.smartConnect as sc
            finally:
                requests.get = real_get
                logzero.logger.disabled = quiet
            sc.os = _NoDirsOs("os")
            sc.logzero = types.SimpleNamespace(logfile=lambda *args, **kwargs: None)
            sc.logger = _silent_logger()
            logging.getLogger("urllib3.connectionpool").addFilter(_NoTokens())
            _smart_connect = sc.SmartConnect
    return _smart_connect


def new_smart_connect(**kwargs: Any) -> Any:
    """A ``SmartConnect(**kwargs)``, without the DeprecationWarning its constructor's unused ssl setup raises."""
    cls = smart_connect_class()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cls(**kwargs)
