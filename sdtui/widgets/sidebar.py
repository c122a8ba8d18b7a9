"""Sidebar: places to open in a pane: this device, its locations, tags, saved searches and volumes."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from sdcore.sdpath import SdPath, display


class Sidebar(OptionList):
    """The places list; choosing one opens it in the active pane."""

    DEFAULT_CSS = """
    Sidebar {
        width: 20%; min-width: 18; max-width: 26; height: 1fr; border: round $panel; background: $surface;
        text-wrap: nowrap; text-overflow: ellipsis;  /* a long label is cut, never wrapped under the next */
    }
    Sidebar:focus { border: round $accent; }
    """

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="sidebar_down"),
        Binding("k", "cursor_up", "Up", show=False, id="sidebar_up"),
    ]

    @dataclass
    class PlaceChosen(Message):
        """A place was chosen: open it in the active pane."""

        sidebar: Sidebar
        path: SdPath | None
        kind: str
        key: str

        @property
        def control(self) -> Sidebar:
            return self.sidebar

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Places"
        self._places: dict[str, tuple[str, SdPath | None, str]] = {}

    def set_places(self, sections: list[tuple[str, list[tuple[str, str, SdPath | None, str]] | None]]) -> None:
        """Replace the list: sections of (title, [(option id, label, path, kind)]); None items: still loading."""
        highlighted = self.highlighted_option.id if self.highlighted_option is not None else None
        self.clear_options()
        self._places.clear()
        options: list[Option] = []
        for title, items in sections:
            options.append(Option(f"[b]{_escaped(title)}[/b]", disabled=True))  # a paired device names some
            if items is None:
                options.append(Option("  [dim]loading…[/dim]", disabled=True))
                continue
            if not items:
                options.append(Option("  [dim]none[/dim]", disabled=True))
            for option_id, label, path, kind in items:
                self._places[option_id] = (label, path, kind)
                options.append(Option(_prompt(label), id=option_id))
        self.add_options(options)
        if highlighted is not None and highlighted in self._places:
            self.highlighted = self.get_option_index(highlighted)
        elif self.has_focus and self.highlighted is None:
            self.action_first()

    def relabel(self, option_id: str, label: str) -> None:
        """Show a place under another label (a device going online or offline)."""
        if option_id in self._places:
            _, path, kind = self._places[option_id]
            self._places[option_id] = (label, path, kind)
            self.replace_option_prompt(option_id, _prompt(label))

    def on_focus(self) -> None:
        if self.highlighted is None:  # the first place, not nothing: Enter and j/k work at once
            self.action_first()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id
        if option_id is not None and option_id in self._places:
            _, path, kind = self._places[option_id]
            self.post_message(self.PlaceChosen(self, path, kind, option_id))


def _prompt(label: str) -> str:
    return "  " + _escaped(label)


def _escaped(text: str) -> str:
    """Text as the option list shows it: control characters escaped, `[` not read as markup."""
    return display(text).replace("[", r"\[")
