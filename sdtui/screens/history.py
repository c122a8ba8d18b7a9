"""HistoryScreen: what a file's note and tags were, on any device of the library; Enter puts one back."""

from __future__ import annotations

import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from sdcore.api import NoteVersion, TagChange
from sdcore.sdpath import display


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


class HistoryScreen(ModalScreen[tuple[str, str | int] | None]):
    """The note's texts (newest first) and the tags put on and taken off; Enter on an old text or a tag taken off
    dismisses with ("note", number) or ("tag", name): what to put back."""

    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical { width: 90; height: 24; border: thick $accent; background: $surface; padding: 0 1; }
    HistoryScreen OptionList { height: 1fr; border: none; }
    HistoryScreen .history--hint { color: $text-muted; height: 1; }
    """

    BINDINGS = [Binding("escape", "cancel", "Close", id="history_cancel")]

    def __init__(self, name: str, notes: list[NoteVersion], changes: list[TagChange], tags_now: set[str]) -> None:
        super().__init__()
        self.file_name = name
        self.notes = notes
        self.changes = changes
        self.tags_now = tags_now

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Content(f"History of {display(self.file_name)}")  # a file name: text, not markup
            yield OptionList(*self._options(), id="history-options")
            yield Static("Enter: put back the note or the tag · Esc: close", classes="history--hint")

    def _options(self) -> list[Option]:
        options = []
        for v in reversed(self.notes):
            text = "(cleared)" if v.text is None else display(v.text.replace("\n", " "))[:60]
            mark = "now" if v.current else "   "
            line = Content(f"{mark} note  {_when(v.when)}  {display(v.device)[:12]:12}  {text}")
            options.append(Option(line, id=f"note:{v.number}", disabled=v.current))
        for i, c in enumerate(reversed(self.changes)):
            sign = "+" if c.added else "-"
            on = " (content)" if c.content else ""
            line = Content(f"    tag   {_when(c.when)}  {display(c.device)[:12]:12}  {sign}{display(c.tag)}{on}")
            options.append(Option(line, id=f"tag{i}:{c.tag}", disabled=c.added or c.tag in self.tags_now or c.content))
        if not options:
            options.append(Option("no note or tag was ever put on it", disabled=True))
        return options

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        enabled = [i for i in range(options.option_count) if not options.get_option_at_index(i).disabled]
        options.highlighted = enabled[0] if enabled else None  # Enter at once puts back the text before

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        kind, _, value = (event.option.id or "").partition(":")
        if kind == "note":
            self.dismiss(("note", int(value)))
        elif kind.startswith("tag"):
            self.dismiss(("tag", value))

    def action_cancel(self) -> None:
        self.dismiss(None)
