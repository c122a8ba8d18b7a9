"""Dialogs of a question and a few answers, each a button and a key: ChoiceScreen, and the button dialog it and the
conflict dialog (sdtui.screens.conflict) share."""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

Answer = tuple[str, str, str] | tuple[str, str, str, str]
"""(answer id, button label, key[, button variant]); the first answer is the default, its button the primary one."""


class ButtonDialog(ModalScreen[str | None]):
    """A question over a row of buttons, one an answer, and a last one that cancels; dismissed with the answer's id,
    or None."""

    DEFAULT_CSS = """
    ButtonDialog { align: center middle; }
    ButtonDialog > Vertical { height: auto; max-height: 80%; border: thick $warning; background: $surface; padding: 1 2; }
    ButtonDialog .dialog--question { margin-bottom: 1; }
    ButtonDialog Horizontal { height: auto; align-horizontal: right; }
    ButtonDialog Button { margin-left: 1; min-width: 12; }
    """

    def __init__(self, question: str, answers: list[Answer], *, title: str, cancel_key: str) -> None:
        super().__init__()
        self.question = question
        self.answers = answers
        self.title_text = title
        self.cancel_key = cancel_key
        """The key shown on the Cancel button."""

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.question, classes="dialog--question", markup=False)
            with Horizontal():
                for n, (answer, label, key, *variant) in enumerate(self.answers):
                    style = variant[0] if variant else "primary" if n == 0 else "default"
                    yield Button(f"{label} ({key})", variant=style, id=f"choice-{answer}")  # type: ignore[arg-type]
                yield Button(f"Cancel ({self.cancel_key})", id="choice-cancel")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        answer = (event.button.id or "").removeprefix("choice-")
        self.dismiss(None if answer == "cancel" else answer)


class ChoiceScreen(ButtonDialog):
    """Dismissed with the chosen answer's id, or None (Escape, Cancel); each answer's key chooses it."""

    DEFAULT_CSS = """
    ChoiceScreen > Vertical { width: 76; }
    """

    def __init__(self, question: str, choices: list[Answer], *, title: str) -> None:
        """`choices`: (answer id, button label, key) each; the first is the default."""
        super().__init__(question, choices, title=title, cancel_key="esc")

    def on_key(self, event: events.Key) -> None:
        chosen = next((answer for answer, _, key, *_ in self.answers if key == event.key), None)
        if chosen is not None or event.key == "escape":
            event.stop()
            self.dismiss(chosen)
