"""Price, change and open-interest alerts: what one is, when it fires, what firing does.

An alert watches one instrument for one condition (``KINDS``). It is *armed* until a tick
meets the condition, then *triggered*: it fires once, and stays triggered (shown so on
screen and by ``oaws alerts list``) until re-armed. Alerts are kept in the config file
beside the watchlists (``oaws.store``), so the watch, ``oaws alerts watch`` and the
command line share them.

When one fires (``AlertBook.check``): on the first tick of its instrument that meets the
condition, ``>=`` the value for the ``above`` kinds and ``<=`` for the ``below`` ones. It
is a level, not a crossing: an alert armed while the price is already beyond its value
fires on the next tick (the snapshot tick a subscription starts with included). The
fields read: ``ltp`` for price, ``change_percent`` for change % (computed from ``ltp``
and ``close`` when a tick has no ``change_percent``), ``oi`` for open interest. A tick
without the field, or with one that is not a finite number, fires nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from oaws.config import IST
from oaws.format import indian, price, signed
from oaws.instruments import DEPTH, QUOTE, Instrument, InstrumentError, parse
from oaws.ticks import change_of

log = logging.getLogger(__name__)

#: condition -> (the tick field it reads, which side fires, how a person says it)
KINDS: dict[str, tuple[str, str, str]] = {
    "above": ("ltp", "above", "price above"),
    "below": ("ltp", "below", "price below"),
    "change_above": ("change_percent", "above", "change % above"),
    "change_below": ("change_percent", "below", "change % below"),
    "oi_above": ("oi", "above", "OI above"),
    "oi_below": ("oi", "below", "OI below"),
}
ARMED = "armed"
TRIGGERED = "triggered"


@dataclass
class Alert:
    """One alert as it is saved (``[[alerts]]`` tables of the config file)."""

    id: int
    #: SYMBOL:EXCHANGE
    instrument: str
    #: a key of ``KINDS``
    kind: str
    value: float
    state: str = ARMED
    #: ISO 8601 in exchange time (+05:30)
    created: str = ""
    #: when it fired, and the value of the field that fired it
    triggered_at: str | None = None
    triggered_value: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The alert as saved and as ``--json`` prints it (no None values: TOML has no null)."""
        out = {k: v for k, v in asdict(self).items() if v is not None and k != "extra"}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Alert:
        """An alert read back; ValueError (one sentence) for a table that is not one."""
        known = {"id", "instrument", "kind", "value", "state", "created", "triggered_at", "triggered_value"}
        try:
            kind = str(raw["kind"])
            if kind not in KINDS:
                raise ValueError(f"unknown alert kind {kind!r}; use one of {', '.join(KINDS)}")
            return cls(
                id=int(raw["id"]),
                instrument=str(raw["instrument"]),
                kind=kind,
                value=float(raw["value"]),
                state=str(raw.get("state", ARMED)),
                created=str(raw.get("created", "")),
                triggered_at=raw.get("triggered_at"),
                triggered_value=raw.get("triggered_value"),
                extra={k: v for k, v in raw.items() if k not in known},
            )
        except KeyError as exc:
            raise ValueError(f"an alert without {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None

    @property
    def field(self) -> str:
        return KINDS[self.kind][0]

    def describe(self) -> str:
        """``RELIANCE:NSE price above 1,500.00``: how a notification names it."""
        return f"{self.instrument} {KINDS[self.kind][2]} {describe_value(self)}"


#: the mode a kind needs: change % needs the previous close (Quote), OI is in Depth ticks only
MODE_OF: dict[str, int] = {
    "above": QUOTE,
    "below": QUOTE,
    "change_above": QUOTE,
    "change_below": QUOTE,
    "oi_above": DEPTH,
    "oi_below": DEPTH,
}


# Conditions as people write them ---------------------------------------------------------
def parse_kind(kind: str) -> str:
    """``above``, ``change-above``, ``--change-above``, ``change_above`` (any case): a key of ``KINDS``."""
    key = str(kind).strip().lstrip("-").lower().replace("-", "_")
    if key not in KINDS:
        known = ", ".join(k.replace("_", "-") for k in KINDS)
        raise ValueError(f"unknown alert condition {kind!r}; use one of {known}")
    return key


def parse_condition(kind: str, value: str | float) -> tuple[str, float]:
    """(a key of ``KINDS``, the threshold) from what a person wrote; ValueError (one sentence).

    A price is above zero, an OI zero or more, a change % any number (``-2`` for a 2 % fall)."""
    key = parse_kind(kind)
    said = key.replace("_", "-")
    if isinstance(value, bool):
        raise ValueError(f"{said} needs a number, not {value!r}")
    try:
        number = float(str(value).replace(",", "").replace("_", "").rstrip("%").strip())
    except ValueError:
        raise ValueError(f"{said} needs a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{said} needs a finite number, not {value!r}")
    field_name = KINDS[key][0]
    if field_name == "ltp" and number <= 0:
        raise ValueError(f"{said} needs a price above zero, not {value!r}")
    if field_name == "oi" and number < 0:
        raise ValueError(f"{said} needs an open interest of zero or more, not {value!r}")
    return key, number


def describe_value(alert: Alert, value: float | None = None) -> str:
    """The alert's threshold (or ``value``, e.g. its triggered value) as the screens write its field:
    a price ``1,500.00``, a change ``-2.00%``, an open interest ``12,34,567``."""
    number = alert.value if value is None else value
    field_name = KINDS[alert.kind][0]
    if field_name == "ltp":
        return price(number)
    if field_name == "change_percent":
        return signed(number, "%")
    if float(number).is_integer():
        return indian(number)
    return f"{number:,.2f}"


def iso_time(ms: float) -> str:
    """Epoch milliseconds as ISO 8601 in exchange time: ``2026-12-02T09:15:32+05:30``."""
    return datetime.fromtimestamp(ms / 1000, IST).isoformat(timespec="seconds")


def now_iso() -> str:
    return datetime.now(IST).isoformat(timespec="seconds")


def _number(raw: object) -> float | None:
    """A tick field as a finite float, or None (missing, text, bool, nan)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        number = float(raw)
        return number if math.isfinite(number) else None
    return None


def reading(alert: Alert, tick: Mapping[str, Any]) -> float | None:
    """The value of the tick's field that the alert watches, or None when the tick has none."""
    field_name = KINDS[alert.kind][0]
    raw = tick.get(field_name)
    if raw is None and field_name == "change_percent":
        raw = change_of(tick)[1]
    return _number(raw)


def meets(alert: Alert, value: float) -> bool:
    """Whether ``value`` meets the alert's condition (the threshold itself does: ``>=``, ``<=``)."""
    if KINDS[alert.kind][1] == "above":
        return value >= alert.value
    return value <= alert.value


# The book the watch checks every tick against ------------------------------------------------
class AlertBook:
    """The alerts by instrument, for checking every tick cheaply.

    ``check`` is called for every tick the watch receives; an instrument without an armed
    alert costs one dict lookup. An alert whose instrument cannot be read is skipped (and
    logged once): it never matches a tick.
    """

    def __init__(self, alerts: Iterable[Alert] = ()) -> None:
        self._alerts: list[Alert] = []
        self._by_instrument: dict[Instrument, list[Alert]] = {}
        #: the armed alerts of each instrument that has one (``check``'s one lookup)
        self._armed: dict[Instrument, list[Alert]] = {}
        self.replace(alerts)

    def replace(self, alerts: Iterable[Alert]) -> None:
        """Hold ``alerts`` instead (e.g. the store's, after it changed)."""
        self._alerts = list(alerts)
        self._by_instrument = {}
        self._armed = {}
        for alert in self._alerts:
            instrument = _instrument(alert)
            if instrument is None:
                continue
            self._by_instrument.setdefault(instrument, []).append(alert)
            if alert.state == ARMED:
                self._armed.setdefault(instrument, []).append(alert)

    def alerts(self) -> list[Alert]:
        """Every alert held, armed and triggered, in the order given."""
        return list(self._alerts)

    def for_instrument(self, instrument: Instrument) -> list[Alert]:
        """The alerts of one instrument, armed and triggered."""
        return list(self._by_instrument.get(instrument, ()))

    def watched(self) -> dict[Instrument, int]:
        """The instruments of the armed alerts, each with the mode its alerts need
        (``QUOTE`` for price and change %, ``DEPTH`` for OI)."""
        return {instrument: max(MODE_OF[alert.kind] for alert in armed) for instrument, armed in self._armed.items()}

    def check(self, instrument: Instrument, tick: Mapping[str, Any]) -> list[Alert]:
        """The armed alerts of ``instrument`` that ``tick`` meets, now triggered (``triggered_at``
        the tick's exchange time ``ltt``, ``triggered_value`` the field's value); each fires once."""
        armed = self._armed.get(instrument)
        if not armed:
            return []
        fired: list[Alert] = []
        when: str | None = None
        for alert in armed:
            value = reading(alert, tick)
            if value is not None and meets(alert, value):
                if when is None:
                    when = _tick_time(tick)
                alert.state = TRIGGERED
                alert.triggered_at = when
                alert.triggered_value = value
                fired.append(alert)
        if not fired:
            return fired
        left = [alert for alert in armed if alert.state == ARMED]
        if left:
            self._armed[instrument] = left
        else:
            del self._armed[instrument]
        return fired


_unreadable: set[str] = set()


def _instrument(alert: Alert) -> Instrument | None:
    try:
        return parse(alert.instrument)
    except InstrumentError as exc:
        if alert.instrument not in _unreadable:
            _unreadable.add(alert.instrument)
            log.warning("alert %s is skipped: %s", alert.id, exc)
        return None


def _tick_time(tick: Mapping[str, Any]) -> str:
    """The tick's exchange time (``ltt``, else the feed's ``timestamp``, else now) as ISO 8601."""
    for key in ("ltt", "timestamp"):
        ms = _number(tick.get(key))
        if ms:
            try:
                return iso_time(ms)
            except (OverflowError, OSError, ValueError):
                continue
    return now_iso()
