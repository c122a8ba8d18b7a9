"""ConflictScreen: what to do with names a copy or move would land on (asked before the job starts)."""

from __future__ import annotations

from textual.binding import Binding

from sdtui.screens.choice import ButtonDialog

POLICIES = ("rename", "skip", "overwrite")
"""The core's conflict policies a user can choose here (the ids of the answers)."""


class ConflictScreen(ButtonDialog):
    """Dismissed with a conflict policy ("rename", "skip", "overwrite"), or None to do nothing; its keys are
    bindings (they can be rebound)."""

    DEFAULT_CSS = """
    ConflictScreen > Vertical { width: 72; }
    """

    BINDINGS = [
        Binding("k", "answer('rename')", "Keep both", id="conflict_keep_both"),
        Binding("s", "answer('skip')", "Skip", id="conflict_skip"),
        Binding("o", "answer('overwrite')", "Overwrite", id="conflict_overwrite"),
        Binding("c,escape", "answer(None)", "Cancel", id="conflict_cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__(question, [("rename", "Keep both", "k"), ("skip", "Skip", "s"),
                                    ("overwrite", "Overwrite", "o", "error")], title="Already there", cancel_key="c")

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
