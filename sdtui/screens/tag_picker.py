"""TagPickerScreen: choose a tag by fuzzy match, or create one by typing a new name."""

from __future__ import annotations

from textual.content import Content
from textual.fuzzy import Matcher
from textual.widgets.option_list import Option

from sdcore.sdpath import display
from sdtui.screens.picker import PickerScreen, picker_bindings


def rank(names: list[str], query: str) -> list[str]:
    """Tag names matching `query` fuzzily, best first (all of them, in order, for an empty query)."""
    if not query:
        return list(names)
    matcher = Matcher(query)
    scored = [(matcher.match(name), name) for name in names]
    return [name for score, name in sorted(scored, key=lambda p: -p[0]) if score > 0]


class TagPickerScreen(PickerScreen[str]):
    """Type to filter the tags; Enter picks the highlighted one, or creates the typed name when none matches."""

    DEFAULT_CSS = """
    TagPickerScreen > Vertical { width: 60; height: 24; }
    """

    BINDINGS = picker_bindings("picker")

    def __init__(self, names: list[str], *, what: str = "the selection") -> None:
        super().__init__(Content(f"Tag {what}"), "tag name (a/b nests)",  # a file name: text, not markup
                         "Enter: tag · type a new name to create it · Esc: cancel", ids="picker")
        self.names = names
        self.what = what

    def options(self, typed: str) -> list[Option]:
        items = [Option(Content(display(name)), id=f"tag:{name}") for name in rank(self.names, typed)]  # text: "a[/b]"
        if typed.strip() and typed.strip().lower() not in (n.lower() for n in self.names):
            items.append(Option(Content(f"+ create “{display(typed.strip())}”"), id=f"new:{typed.strip()}"))
        return items

    def picked(self, option: Option) -> str:
        return (option.id or "").split(":", 1)[1]

    def typed(self, text: str) -> str | None:
        return text.strip() or None
