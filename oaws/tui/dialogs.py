"""The watch's small dialogs: a name (new list, rename), a yes/no, and a row's alerts.

Each has a footer of its own keys. None touches the disk: the app does what was asked
(in a thread) and tells the alert dialog to show the alerts again when it is done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList, Select
from textual.widgets.option_list import Option

from oaws.alerts import KINDS, TRIGGERED, Alert, describe_value
from oaws.instruments import Instrument
from oaws.ticks import change_of
from oaws.tui.models.columns import price_text, signed_text


class NameField(Input):
    """A name: enter takes it (shown in the footer)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "OK")]


class NameDialog(ModalScreen[str | None]):
    """Asks for a name; returns it (stripped), or None when cancelled.

    ``check(name)`` returns why a name cannot be used (shown under the field), or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", check: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="name-box", classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield NameField(value=self.value, placeholder="a name", id="name-input")
            yield Label("", id="name-error", classes="dialog-error")
        yield Footer()

    @on(Input.Changed)
    def _typed(self) -> None:
        self.query_one("#name-error", Label).update("")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        name = self.query_one(Input).value.strip()
        why = "type a name" if not name else self.check(name) if self.check else None
        if why:
            self.query_one("#name-error", Label).update(why)
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A question answered with y (True) or n / esc (False)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            yield Label("y deletes · n or esc keeps it", classes="dialog-hint")
        yield Footer()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


#: alert kind -> the tick field its value is prefilled from
PREFILL = {kind: spec[0] for kind, spec in KINDS.items()}


def current_value(kind: str, data: Mapping[str, Any]) -> str:
    """The row's present value of what ``kind`` watches, as the value field starts (empty when unknown)."""
    field = PREFILL[kind]
    if field == "change_percent":
        value = change_of(data)[1]
    else:
        value = data.get(field)
    if not isinstance(value, (int, float)):
        return ""
    if field == "oi":
        return str(int(value))
    return f"{value:.2f}"


def alert_line(alert: Alert) -> str:
    """``#3  price above 1,500.00  armed`` / ``... triggered 10:15:03 at 1,502.40``."""
    text = f"#{alert.id}  {KINDS[alert.kind][2]} {describe_value(alert)}"
    if alert.state == TRIGGERED:
        text += "  triggered"
        if alert.triggered_at:
            text += " " + alert.triggered_at[11:19]
        if alert.triggered_value is not None:
            text += f" at {describe_value(alert, alert.triggered_value)}"
        return text
    return text + "  armed"


class ValueField(Input):
    """The value of a new alert: enter adds it (shown in the footer, which a plain Input's enter is not)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "Add alert")]


class AlertList(OptionList):
    """The instrument's alerts; its keys show in the footer while it has the focus."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "screen.rearm", "Re-arm"),
        Binding("x,delete", "screen.remove", "Remove", key_display="x"),
    ]


class AlertDialog(ModalScreen[None]):
    """The alerts of one instrument: add one, re-arm or remove those it has.

    ``alerts()`` gives the instrument's alerts as the app knows them; ``add(kind, value)``,
    ``rearm(id)`` and ``remove(id)`` ask the app to do it (saved in a thread, then the app
    calls ``show_alerts``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.focus_next", "Next field"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(
        self,
        instrument: Instrument,
        data: Mapping[str, Any],
        alerts: Callable[[], list[Alert]],
        add: Callable[[str, float], None],
        rearm: Callable[[int], None],
        remove: Callable[[int], None],
    ) -> None:
        super().__init__()
        self.instrument = instrument
        self.data = data
        self.alerts = alerts
        self._add, self._rearm, self._remove = add, rearm, remove

    def compose(self) -> ComposeResult:
        data = self.data
        change = change_of(data)[1]
        facts = [f"LTP {price_text(data.get('ltp'))}" if data.get("ltp") is not None else "no tick yet"]
        if change is not None:
            facts.append(f"change {signed_text(change, '%', 'none')}")
        if isinstance(data.get("oi"), (int, float)) and data["oi"]:  # a cash share's OI is 0: not worth saying
            facts.append(f"OI {int(data['oi']):,}")
        with Vertical(id="alert-box", classes="dialog"):
            yield Label(f"Alerts of {self.instrument}", classes="dialog-title")
            yield Label(" · ".join(facts), id="alert-facts", classes="dialog-hint")
            yield Label("tab moves between the list (r re-arms, x removes) and the new alert", classes="dialog-hint")
            yield AlertList(id="alert-list")
            yield Label("New alert", classes="dialog-section")
            with Horizontal(id="alert-form"):
                yield Select(
                    [(spec[2], kind) for kind, spec in KINDS.items()],
                    value="above",
                    allow_blank=False,
                    id="alert-kind",
                )
                yield ValueField(value=current_value("above", data), placeholder="value", id="alert-value")
            yield Label("", id="alert-error", classes="dialog-error")
        yield Footer()

    def on_mount(self) -> None:
        self.show_alerts()
        self.query_one("#alert-value", Input).focus()

    def show_alerts(self) -> None:
        """The list again, from the app's alerts (after an edit was saved, or the file changed)."""
        options = self.query_one("#alert-list", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        alerts = self.alerts()
        options.add_options(
            [Option(alert_line(a), id=str(a.id)) for a in alerts] or [Option("no alerts yet", disabled=True)]
        )
        if alerts:
            options.highlighted = min(highlighted or 0, len(alerts) - 1)

    def say(self, text: str) -> None:
        self.query_one("#alert-error", Label).update(text)

    @on(Select.Changed, "#alert-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#alert-value", Input).value = current_value(event.value, self.data)
        self.say("")

    @on(Input.Submitted, "#alert-value")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_add()

    def action_add(self) -> None:
        kind = self.query_one("#alert-kind", Select).value
        text = self.query_one("#alert-value", Input).value.strip().replace(",", "")
        try:
            value = float(text)
        except ValueError:
            self.say(f"{text!r} is not a number" if text else "type a value")
            return
        if value != value or value in (float("inf"), float("-inf")):
            self.say("type a finite number")
            return
        self.say("")
        self._add(str(kind), value)

    def _chosen(self) -> int | None:
        options = self.query_one("#alert-list", OptionList)
        if options.highlighted is None or not options.option_count:
            return None
        option = options.get_option_at_index(options.highlighted)
        return int(option.id) if option.id else None

    def action_rearm(self) -> None:
        chosen = self._chosen()
        if chosen is None:
            self.say("pick an alert in the list first (↑ ↓)")
            return
        self._rearm(chosen)

    def action_remove(self) -> None:
        chosen = self._chosen()
        if chosen is None:
            self.say("pick an alert in the list first (↑ ↓)")
            return
        self._remove(chosen)

    def action_close(self) -> None:
        self.dismiss(None)
