"""HelpScreen: every key of the explorer, as bound now (after the config's rebindings)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from sdtui.screens.explorer_tabs import ALT_DIGITS_AS_READ

_READ_AS = set(ALT_DIGITS_AS_READ.values())


def key_label(keys: str) -> str:
    """`down,j` as people read it: `↓ j`."""
    names = {
        "down": "↓",
        "up": "↑",
        "left": "←",
        "right": "→",
        "enter": "Enter",
        "backspace": "Backspace",
        "space": "Space",
        "escape": "Esc",
        "tab": "Tab",
        "slash": "/",
        "full_stop": ".",
        "question_mark": "?",
        "asterisk": "*",
        "left_square_bracket": "[",
        "right_square_bracket": "]",
        "pagedown": "PgDn",
        "pageup": "PgUp",
        "home": "Home",
        "end": "End",
        "delete": "Del",
    }
    out = []
    for key in keys.split(","):
        key = key.strip()
        if key in _READ_AS:  # alt+N as Textual reads it under tmux: shown as the alt+N beside it
            continue
        if key.startswith("f") and key[1:].isdigit():
            out.append(key.upper())
        elif "+" in key:
            *mods, last = key.split("+")
            out.append("+".join([*mods, names.get(last, last)]))
        else:
            out.append(names.get(key, key))
    return " ".join(out)


def help_table(sections: list[tuple[str, list[Binding]]], keymap: dict[str, str]) -> Table:
    """One row per binding: keys (as the keymap rebinds them), description, id (what the config names)."""
    table = Table(box=None, padding=(0, 2), expand=True, show_header=True, header_style="bold")
    table.add_column("Key", no_wrap=True, style="bold")
    table.add_column("Action")
    table.add_column("Config id", style="dim", no_wrap=True)
    for title, bindings in sections:
        table.add_row(Text(title, style="bold underline"), "", "")
        for binding in bindings:
            keys = keymap.get(binding.id or "", binding.key)
            table.add_row(key_label(keys), binding.description or binding.action, binding.id or "")
        table.add_row("", "", "")
    return table


class KeysBox(VerticalScroll):
    """The help's scrolling box, moved by the keys that move the file list (ids shared: the keymap rebinds both)."""

    BINDINGS = [
        Binding("down,j", "scroll_down", show=False, id="cursor_down"),
        Binding("up,k", "scroll_up", show=False, id="cursor_up"),
        Binding("pagedown,ctrl+d", "page_down", show=False, id="page_down"),
        Binding("pageup,ctrl+u", "page_up", show=False, id="page_up"),
        Binding("home", "scroll_home", show=False, id="first"),
        Binding("G,end", "scroll_end", show=False, id="last"),
        Binding("g", "scroll_home", show=False, id="g_prefix"),
    ]


class HelpScreen(ModalScreen[None]):
    """The keys, in sections; any of Escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > KeysBox { width: 84; max-width: 95%; height: 90%; border: thick $accent; background: $surface; padding: 0 1; }
    """

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help_close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]], keymap: dict[str, str]) -> None:
        super().__init__()
        self.sections = sections
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with KeysBox() as box:
            box.border_title = "Keys — ctrl+p opens the command palette"
            yield Static(help_table(self.sections, self.keymap))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
