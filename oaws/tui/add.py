"""The `a` dialog: type an instrument, with completion from the symbols the watch knows.

The app owns the candidates (an instrument master may arrive while the dialog is open):
the dialog asks it on every key through ``complete`` and ``resolve``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from oaws.instruments import Instrument, InstrumentError

#: (text, at most how many) -> completions, prefixes first
Complete = Callable[[str, int], list[str]]
#: (text, at most how many) -> (completion, how the list shows it: with its company or contract name)
Matches = Callable[[str, int], list[tuple[str, str]]]


class CompletionSuggester(Suggester):
    """The inline suggestion: the first completion that starts with what is typed (what tab takes)."""

    def __init__(self, complete: Complete) -> None:
        super().__init__(use_cache=False, case_sensitive=False)  # no cache: the candidates can grow
        self.complete = complete

    async def get_suggestion(self, value: str) -> str | None:
        best = self.complete(value, 1)
        return best[0] if best and best[0].casefold().startswith(value) else None


class Added(NamedTuple):
    instrument: Instrument
    #: a bare symbol was typed: the exchange was assumed (the notification says so)
    assumed: bool = False


class AddField(Input):
    """The field: its keys are its own bindings, so that the footer shows them and they act in
    order with the characters typed before them (a screen's priority binding would overtake them)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "screen.focus_matches", "Matches", key_display="↓"),
        Binding("enter", "screen.submit", "Add"),
        Binding("tab", "screen.complete", "Complete"),
    ]


class AddScreen(ModalScreen[Added | None]):
    """Returns the instrument to add, or None when cancelled; its footer shows its own keys."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, complete: Complete, resolve: Callable[[str], Instrument], matches: Matches | None = None
    ) -> None:
        super().__init__()
        self.complete = complete
        self.resolve = resolve
        self.matches = matches or (lambda text, limit: [(c, c) for c in complete(text, limit)])

    def compose(self) -> ComposeResult:
        with Vertical(id="add-box"):
            yield Label("Add an instrument: SYMBOL:EXCHANGE, or a symbol to complete", id="add-title")
            yield AddField(placeholder="RELIANCE:NSE", id="add-input", suggester=CompletionSuggester(self.complete))
            yield OptionList(id="add-matches")
            yield Label("", id="add-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).display = False

    @on(Input.Changed)
    def show_matches(self, event: Input.Changed) -> None:
        self.refresh_matches()
        self.query_one("#add-error", Label).update("")

    def refresh_matches(self) -> None:
        """The matches of what is typed, again (also when more candidates arrived)."""
        try:
            field, options = self.query_one(Input), self.query_one(OptionList)
        except NoMatches:  # more candidates arrived before the dialog was composed: it asks when it is
            return
        matches = self.matches(field.value, 8)
        options.clear_options()
        options.add_options([Option(shown, id=candidate) for candidate, shown in matches])
        options.display = bool(matches)

    def action_complete(self) -> None:
        """Tab: the field takes the first match (the one the inline suggestion shows)."""
        field = self.query_one(Input)
        best = self.complete(field.value, 1)  # from the text itself: the list may not have caught up yet
        if best:
            field.value = best[0]
            field.cursor_position = len(field.value)
            field.focus()

    def action_submit(self) -> None:
        options = self.query_one(OptionList)
        if self.focused is options and options.highlighted is not None:
            self._finish(str(options.get_option_at_index(options.highlighted).id))
        else:
            self._finish(self.query_one(Input).value)

    @on(Input.Submitted)
    def submit_text(self, event: Input.Submitted) -> None:
        event.stop()
        self._finish(event.value)

    @on(OptionList.OptionSelected)
    def submit_match(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._finish(str(event.option.id))

    def _finish(self, text: str) -> None:
        try:
            instrument = self.resolve(text)
        except InstrumentError as exc:
            self.query_one("#add-error", Label).update(str(exc))
            self.query_one(Input).focus()
            return
        self.dismiss(Added(instrument, assumed=":" not in text))

    def action_focus_matches(self) -> None:
        options = self.query_one(OptionList)
        if self.focused is options:
            options.action_cursor_down()
        elif options.option_count:
            options.focus()
            options.highlighted = 0

    def action_cancel(self) -> None:
        self.dismiss(None)
