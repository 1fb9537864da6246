"""Price, change and open-interest alerts: what one is, when it fires, what firing does.

An alert watches one instrument for one condition (``KINDS``). It is *armed* until a tick
meets the condition, then *triggered*: it fires once, and stays triggered (shown so on
screen and by ``oaws alerts list``) until re-armed. Alerts are kept in the config file
beside the watchlists (``oaws.store``), so the watch, ``oaws alerts watch`` and the
command line share them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
        return f"{self.instrument} {KINDS[self.kind][2]} {self.value:g}"
