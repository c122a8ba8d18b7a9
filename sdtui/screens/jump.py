"""JumpScreen (z: the folders visited, the most frecent first, filtered as one types) and LetterScreen (the letter
of a bookmark after m or ')."""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from sdcore.sdpath import SdPath


def matching(labels: list[str], typed: str) -> list[int]:
    """The indexes of the labels that hold every word typed, in order of the words (as zoxide matches), case aside;
    the list's own order (frecency) is kept."""
    words = typed.lower().split()
    found = []
    for n, label in enumerate(labels):
        text, at = label.lower(), 0
        for word in words:
            at = text.find(word, at)
            if at < 0:
                break
            at += len(word)
        else:
            found.append(n)
    return found


class JumpScreen(ModalScreen[SdPath | None]):
    """Type words of a folder's path to narrow the list; Enter goes to the highlighted folder."""

    DEFAULT_CSS = """
    JumpScreen { align: center middle; }
    JumpScreen > Vertical { width: 80%; max-width: 100; height: 80%; border: thick $accent; background: $surface; padding: 0 1; }
    JumpScreen OptionList { height: 1fr; border: none; }
    JumpScreen .jump--hint { color: $text-muted; height: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="jump_cancel"),
        Binding("down", "down", "Next", show=False, id="jump_down"),
        Binding("up", "up", "Previous", show=False, id="jump_up"),
    ]

    def __init__(self, folders: list[tuple[str, SdPath]]) -> None:
        super().__init__()
        self.folders = folders
        """(label, folder), the most frecent first."""

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Jump to a folder"
            yield Input(placeholder="words of its path", id="jump-input")
            yield OptionList(id="jump-options")
            yield Static("Enter: go · Esc: cancel · the most visited, and lately, first", classes="jump--hint")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, typed: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        shown = matching([label for label, _ in self.folders], typed)
        options.add_options([Option(Content(self.folders[n][0]), id=str(n)) for n in shown])  # text, not markup
        if shown:
            options.highlighted = 0

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self._go(options.get_option_at_index(options.highlighted))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._go(event.option)

    def _go(self, option: Option) -> None:
        self.dismiss(self.folders[int(option.id or 0)][1])

    def action_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)


class LetterScreen(ModalScreen[str | None]):
    """Wait for one letter (a bookmark's), showing the bookmarks set; Esc (or any other key) cancels."""

    DEFAULT_CSS = """
    LetterScreen { align: center middle; }
    LetterScreen > Vertical { width: 64; height: auto; max-height: 80%; border: thick $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, title: str, marks: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.marks = marks
        """(letter, label of its folder), in letter order."""

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            lines = [f"{letter}  {label}" for letter, label in self.marks] or ["no bookmarks yet: m then a letter sets one"]
            yield Static(Content("\n".join(lines)))
            yield Static(Content("a letter: a-z, A-Z · Esc: cancel"), classes="jump--hint")

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        letter = event.character
        self.dismiss(letter if letter is not None and len(letter) == 1 and letter.isascii() and letter.isalpha() else None)
