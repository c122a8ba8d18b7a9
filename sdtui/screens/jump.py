"""JumpScreen (z: the folders visited, the most frecent first, filtered as one types) and LetterScreen (the letter
of a bookmark after m or ')."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.widgets.option_list import Option

from sdcore.sdpath import SdPath
from sdtui.screens.picker import PickerScreen, picker_bindings


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


class JumpScreen(PickerScreen[SdPath]):
    """Type words of a folder's path to narrow the list; Enter goes to the highlighted folder."""

    DEFAULT_CSS = """
    JumpScreen > Vertical { width: 80%; max-width: 100; height: 80%; }
    """

    BINDINGS = picker_bindings("jump")

    def __init__(self, folders: list[tuple[str, SdPath]]) -> None:
        super().__init__("Jump to a folder", "words of its path",
                         "Enter: go · Esc: cancel · the most visited, and lately, first", ids="jump")
        self.folders = folders
        """(label, folder), the most frecent first."""

    def options(self, typed: str) -> list[Option]:
        shown = matching([label for label, _ in self.folders], typed)
        return [Option(Content(self.folders[n][0]), id=str(n)) for n in shown]  # text, not markup

    def picked(self, option: Option) -> SdPath:
        return self.folders[int(option.id or 0)][1]


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
