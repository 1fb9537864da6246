"""The Angel One adapter: SmartAPI login, instrument master, the WebSocket V2 feed, a simulator.

Modules, from the wire up: ``wire`` (binary layouts, no I/O), ``ticks`` (packets to oaws
ticks), ``master`` (instrument master and symbol resolution), ``settings`` and
``session`` (credentials, login, stored tokens), ``smartapi`` (smartapi-python imported
without its side effects), ``feed`` (``AngelFeed``), ``simulator`` (a local Angel).
"""

from oaws.brokers.angel.errors import (
    AngelAuthError,
    AngelError,
    AngelLoginError,
    AngelUnavailable,
    CredentialsMissing,
    MasterMissing,
)
from oaws.brokers.angel.feed import AngelFeed

__all__ = [
    "AngelAuthError",
    "AngelError",
    "AngelFeed",
    "AngelLoginError",
    "AngelUnavailable",
    "CredentialsMissing",
    "MasterMissing",
]
