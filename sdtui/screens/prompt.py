"""PromptScreen: ask for one line of text (a new name, a folder name, a note)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="prompt_cancel"),
        Binding("tab", "complete", "Complete", show=False, priority=True, id="prompt_complete"),
    ]

    def __init__(
        self,
        question: str,
        value: str = "",
        *,
        title: str = "",
        select_stem: bool = False,
        complete: Callable[[str], Awaitable[str]] | None = None,
    ) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.title_text = title
        self.select_stem = select_stem
        self.complete = complete
        """Tab: the text completed (a path, in the go-to prompt); None: Tab is not taken."""

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.complete is not None if action == "complete" else True

    async def action_complete(self) -> None:
        if self.complete is None:
            return
        field = self.query_one(Input)
        completed = await self.complete(field.value)
        if completed != field.value:
            field.value = completed
            field.cursor_position = len(completed)
