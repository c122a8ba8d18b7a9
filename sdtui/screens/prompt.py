"""PromptScreen: ask for one line of text (a new name, a folder name, a note)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class PromptScreen(ModalScreen[str | None]):
    """One text field; Enter dismisses with its text, Escape with None."""

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { width: 64; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    PromptScreen Input { margin-top: 1; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt_cancel")]

    def __init__(self, question: str, value: str = "", *, title: str = "", select_stem: bool = False) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.title_text = title
        self.select_stem = select_stem

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.question, markup=False)
            yield Input(self.value, id="prompt-input")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.focus()
        if self.select_stem and "." in self.value.lstrip("."):
            stem = self.value.rfind(".")
            field.selection = (0, stem)  # type: ignore[assignment]

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
