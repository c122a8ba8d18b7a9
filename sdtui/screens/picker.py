"""PickerScreen: a list narrowed as one types; Enter picks the highlighted item (the jump list z, the tag picker t)."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

T = TypeVar("T")


def picker_bindings(prefix: str) -> list[Binding]:
    """Esc, down and up of a picker, with ids of its own (`PREFIX_cancel`...) so that each can be rebound."""
    return [
        Binding("escape", "cancel", "Cancel", id=f"{prefix}_cancel"),
        Binding("down", "down", "Next", show=False, id=f"{prefix}_down"),
        Binding("up", "up", "Previous", show=False, id=f"{prefix}_up"),
    ]


class PickerScreen(ModalScreen[T | None], Generic[T]):
    """Type to narrow the options; Enter (or a click) picks the highlighted one, Esc none.

    A picker says which options fit what is typed (`options`), what picking one gives (`picked`) and what Enter gives
    when none is highlighted (`typed`).
    """

    DEFAULT_CSS = """
    PickerScreen { align: center middle; }
    PickerScreen > Vertical { border: thick $accent; background: $surface; padding: 0 1; }
    PickerScreen OptionList { height: 1fr; border: none; }
    PickerScreen .picker--hint { color: $text-muted; height: 1; }
    """

    def __init__(self, title: str | Content, placeholder: str, hint: str, *, ids: str) -> None:
        """`ids`: the start of the ids of its input and its list (`ids-input`, `ids-options`)."""
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.hint = hint
        self.ids = ids

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Input(placeholder=self.placeholder, id=f"{self.ids}-input")
            yield OptionList(id=f"{self.ids}-options")
            yield Static(self.hint, classes="picker--hint")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    def options(self, typed: str) -> list[Option]:
        """The options that fit `typed`, best first."""
        raise NotImplementedError

    def picked(self, option: Option) -> T:
        """What picking `option` gives."""
        raise NotImplementedError

    def typed(self, text: str) -> T | None:
        """What Enter gives when no option fits `text` (None: nothing, the picker stays)."""
        return None

    def _fill(self, typed: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        items = self.options(typed)
        options.add_options(items)
        if items:
            options.highlighted = 0

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(self.picked(options.get_option_at_index(options.highlighted)))
        elif (anew := self.typed(self.query_one(Input).value)) is not None:
            self.dismiss(anew)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.picked(event.option))

    def action_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
