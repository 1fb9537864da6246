"""A broker's own settings: each from its environment variable, else from the broker's
``[NAME]`` section of the config file, checked, with one-sentence errors.

Why not ``oaws.config.get``: a broker's variables are its own (``ANGEL_API_KEY`` is Angel's
key; ``OAWS_API_KEY`` is the proxy's key for its clients), and a secret must never reach
a command line (``ps`` shows it), a log line or a ``repr``. Why not a settings library:
a broker declares a handful of strings and numbers; the few lines here give the exact
sentences users see (which variable, which file) and keep plugins free of a framework.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oaws import config
from oaws.brokers.api import BrokerError


class SettingsError(BrokerError):
    """A setting has a value of the wrong kind; the sentence says which and where."""


@dataclass(frozen=True)
class Setting:
    """One setting of a broker."""

    #: its key in the ``[NAME]`` section, and its attribute
    name: str
    #: its environment variable
    env: str
    #: ``str``, ``int``, ``float`` or ``bool``
    kind: type = str
    #: never printed, never in a repr (values are masked in ``oaws brokers``)
    secret: bool = False
    #: needed to log in or to serve
    required: bool = False
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class SettingsSpec:
    """The settings a broker declares, and where they are read from."""

    #: the config file's section (the broker's name)
    section: str
    settings: tuple[Setting, ...]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.settings)

    def load(self, **overrides: Any) -> dict[str, Any]:
        """Every setting's value: an override that is not None, else the environment, else the
        config file's section, else the default. Raises SettingsError for a value of the wrong kind."""
        section = config.file_config().get(self.section)
        section = section if isinstance(section, Mapping) else {}
        values: dict[str, Any] = {}
        for s in self.settings:
            if overrides.get(s.name) is not None:
                values[s.name] = overrides[s.name]
                continue
            raw = os.environ.get(s.env)
            where = s.env
            if raw is None or raw.strip() == "":
                raw = section.get(s.name)
                where = f"{s.name} in the [{self.section}] section of {config.config_path()}"
            values[s.name] = s.default if raw is None or raw == "" else _cast(s, raw, where)
        return values

    def missing(self, values: Mapping[str, Any]) -> list[Setting]:
        """The required settings without a value."""
        return [s for s in self.settings if s.required and not values.get(s.name)]

    def require(self, values: Mapping[str, Any], what: str) -> None:
        """Raise SettingsError naming the variables (never the values) of missing required settings."""
        missing = self.missing(values)
        if missing:
            env = " and ".join(s.env for s in missing)
            keys = ", ".join(s.name for s in missing)
            raise SettingsError(
                f"{what} missing: set {env} (or {keys} in the [{self.section}] section of {config.config_path()})"
            )


def _cast(s: Setting, raw: Any, where: str) -> Any:
    shown = "(hidden)" if s.secret else repr(raw)
    if s.kind is bool:
        try:
            return config.truth(raw)
        except ValueError:
            raise SettingsError(f"{where} = {shown} is not true or false") from None
    if s.kind in (int, float):
        try:
            number = s.kind(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or (s.kind is float and not math.isfinite(number)):
            kind = "a whole number" if s.kind is int else "a number"
            raise SettingsError(f"{where} = {shown} is not {kind}")
        return number
    if isinstance(raw, (dict, list)):
        raise SettingsError(f"{where} must be text, not a {'table' if isinstance(raw, dict) else 'list'}")
    return str(raw).strip()
