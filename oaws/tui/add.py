"""The `a` dialog: type an instrument, with completion from the symbols the watch knows."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, OptionList

from oaws.instruments import Instrument, InstrumentError
from oaws.tui.model import complete, resolve_instrument


class AddScreen(ModalScreen[Instrument | None]):
    """Returns the instrument to add, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "focus_matches", "Matches", show=False),
    ]

    def __init__(self, candidates: Callable[[], list[str]]) -> None:
        super().__init__()
        self.candidates = candidates

    def compose(self) -> ComposeResult:
        known = self.candidates()
        with Vertical(id="add-box"):
            yield Label("Add an instrument: SYMBOL:EXCHANGE, or a symbol to complete", id="add-title")
            yield Label("tab completes · ↓ picks a match · enter adds · esc cancels", id="add-hint")
            yield Input(
                placeholder="RELIANCE:NSE", id="add-input", suggester=SuggestFromList(known, case_sensitive=False)
            )
            yield OptionList(id="add-matches")
            yield Label("", id="add-error")

    def on_mount(self) -> None:
        self.query_one(OptionList).display = False

    @on(Input.Changed)
    def show_matches(self, event: Input.Changed) -> None:
        matches = complete(event.value, self.candidates())
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(matches)
        options.display = bool(matches)
        self.query_one("#add-error", Label).update("")

    def on_key(self, event) -> None:
        if event.key == "tab" and self.focused is self.query_one(Input):
            event.stop()
            event.prevent_default()
            options = self.query_one(OptionList)
            if options.option_count:
                field = self.query_one(Input)
                field.value = str(options.get_option_at_index(0).prompt)
                field.cursor_position = len(field.value)

    @on(Input.Submitted)
    def submit_text(self, event: Input.Submitted) -> None:
        self._finish(event.value)

    @on(OptionList.OptionSelected)
    def submit_match(self, event: OptionList.OptionSelected) -> None:
        self._finish(str(event.option.prompt))

    def _finish(self, text: str) -> None:
        try:
            instrument = resolve_instrument(text, self.candidates())
        except InstrumentError as exc:
            self.query_one("#add-error", Label).update(str(exc))
            self.query_one(Input).focus()
            return
        self.dismiss(instrument)

    def action_focus_matches(self) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            options.focus()
            options.highlighted = 0

    def action_cancel(self) -> None:
        self.dismiss(None)
