"""ConflictScreen: what to do with names a copy or move would land on (asked before the job starts)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

POLICIES = ("rename", "skip", "overwrite")
"""The core's conflict policies a user can choose here (the ids of the buttons)."""


class ConflictScreen(ModalScreen[str | None]):
    """Dismissed with a conflict policy ("rename", "skip", "overwrite"), or None to do nothing."""

    DEFAULT_CSS = """
    ConflictScreen { align: center middle; }
    ConflictScreen > Vertical { width: 72; height: auto; max-height: 80%; border: thick $warning; background: $surface; padding: 1 2; }
    ConflictScreen .conflict--question { margin-bottom: 1; }
    ConflictScreen Horizontal { height: auto; align-horizontal: right; }
    ConflictScreen Button { margin-left: 1; min-width: 12; }
    """

    BINDINGS = [
        Binding("k", "answer('rename')", "Keep both", id="conflict_keep_both"),
        Binding("s", "answer('skip')", "Skip", id="conflict_skip"),
        Binding("o", "answer('overwrite')", "Overwrite", id="conflict_overwrite"),
        Binding("c,escape", "answer(None)", "Cancel", id="conflict_cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Already there"
            yield Static(self.question, classes="conflict--question", markup=False)
            with Horizontal():
                yield Button("Keep both (k)", variant="primary", id="rename")
                yield Button("Skip (s)", id="skip")
                yield Button("Overwrite (o)", variant="error", id="overwrite")
                yield Button("Cancel (c)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#rename", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id if event.button.id in POLICIES else None)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
