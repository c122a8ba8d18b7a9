"""OpenWithScreen: choose the program that opens a file (O)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from sdtui.open_with import Program


class OpenWithScreen(ModalScreen[Program | None]):
    """The programs that open the file, the desktop's first; Enter opens it with the highlighted one."""

    DEFAULT_CSS = """
    OpenWithScreen { align: center middle; }
    OpenWithScreen > Vertical { width: 64; height: auto; max-height: 80%; border: thick $accent; background: $surface; padding: 0 1; }
    OpenWithScreen OptionList { height: auto; max-height: 20; border: none; }
    OpenWithScreen .open-with--hint { color: $text-muted; height: 1; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="open_with_cancel")]

    def __init__(self, name: str, kind: str, choices: list[Program]) -> None:
        super().__init__()
        self.file_name = name
        self.kind = kind
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Content(f"Open {self.file_name} ({self.kind}) with")  # a file name: text, not markup
            yield OptionList(*[Option(Content(p.name + (" (in the terminal)" if p.terminal else "")), id=str(n))
                               for n, p in enumerate(self.choices)])  # fmt: skip
            yield Static("Enter: open · Esc: cancel", classes="open-with--hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        options.highlighted = 0

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)
