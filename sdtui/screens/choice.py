"""ChoiceScreen: a question with a few answers, each a button and a key (Escape: none of them)."""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ChoiceScreen(ModalScreen[str | None]):
    """Dismissed with the chosen answer's id, or None (Escape, Cancel)."""

    DEFAULT_CSS = """
    ChoiceScreen { align: center middle; }
    ChoiceScreen > Vertical { width: 76; height: auto; max-height: 80%; border: thick $warning; background: $surface; padding: 1 2; }
    ChoiceScreen .choice--question { margin-bottom: 1; }
    ChoiceScreen Horizontal { height: auto; align-horizontal: right; }
    ChoiceScreen Button { margin-left: 1; min-width: 12; }
    """

    def __init__(self, question: str, choices: list[tuple[str, str, str]], *, title: str) -> None:
        """`choices`: (answer id, button label, key) each; the first is the default."""
        super().__init__()
        self.question = question
        self.choices = choices
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.question, classes="choice--question", markup=False)
            with Horizontal():
                for n, (answer, label, key) in enumerate(self.choices):
                    yield Button(f"{label} ({key})", variant="primary" if n == 0 else "default", id=f"choice-{answer}")
                yield Button("Cancel (esc)", id="choice-cancel")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_key(self, event: events.Key) -> None:
        chosen = next((answer for answer, _, key in self.choices if key == event.key), None)
        if chosen is not None or event.key == "escape":
            event.stop()
            self.dismiss(chosen)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        answer = (event.button.id or "").removeprefix("choice-")
        self.dismiss(None if answer == "cancel" else answer)
