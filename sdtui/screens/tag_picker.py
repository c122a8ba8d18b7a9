"""TagPickerScreen: choose a tag by fuzzy match, or create one by typing a new name."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from sdcore.sdpath import display


def rank(names: list[str], query: str) -> list[str]:
    """Tag names matching `query` fuzzily, best first (all of them, in order, for an empty query)."""
    if not query:
        return list(names)
    matcher = Matcher(query)
    scored = [(matcher.match(name), name) for name in names]
    return [name for score, name in sorted(scored, key=lambda p: -p[0]) if score > 0]


class TagPickerScreen(ModalScreen[str | None]):
    """Type to filter the tags; Enter picks the highlighted one, or creates the typed name when none matches."""

    DEFAULT_CSS = """
    TagPickerScreen { align: center middle; }
    TagPickerScreen > Vertical { width: 60; height: 24; border: thick $accent; background: $surface; padding: 0 1; }
    TagPickerScreen OptionList { height: 1fr; border: none; }
    TagPickerScreen .picker--hint { color: $text-muted; height: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker_cancel"),
        Binding("down", "down", "Next", show=False, id="picker_down"),
        Binding("up", "up", "Previous", show=False, id="picker_up"),
    ]

    def __init__(self, names: list[str], *, what: str = "the selection") -> None:
        super().__init__()
        self.names = names
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Content(f"Tag {self.what}")  # a file name: text, not markup
            yield Input(placeholder="tag name (a/b nests)", id="picker-input")
            yield OptionList(id="picker-options")
            yield Static("Enter: tag · type a new name to create it · Esc: cancel", classes="picker--hint")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, query: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        matches = rank(self.names, query)
        items = [Option(Content(display(name)), id=f"tag:{name}") for name in matches]  # text, not markup: "a[/b]"
        if query.strip() and query.strip().lower() not in (n.lower() for n in self.names):
            items.append(Option(Content(f"+ create “{display(query.strip())}”"), id=f"new:{query.strip()}"))
        options.add_options(items)
        if items:
            options.highlighted = 0

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            option = options.get_option_at_index(options.highlighted)
            self.dismiss((option.id or "").split(":", 1)[1])
        elif self.query_one(Input).value.strip():
            self.dismiss(self.query_one(Input).value.strip())

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss((event.option.id or "").split(":", 1)[1])

    def action_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
