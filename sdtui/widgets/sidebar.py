"""Sidebar: places to open in a pane: this device, its locations, tags, saved searches and volumes."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from sdcore.sdpath import SdPath, display

PSEUDO_FS = {
    "proc",
    "sysfs",
    "devpts",
    "devtmpfs",
    "cgroup",
    "cgroup2",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "nsfs",
    "rpc_pipefs",
    "efivarfs",
    "overlay",
    "squashfs",
    "tmpfs",
    "ramfs",
    "shm",
}
"""Filesystem types of /proc/mounts that are not volumes a person would browse."""


def volumes_from_mounts(text: str) -> list[tuple[str, str]]:
    """(mount point, device) of the real volumes listed in /proc/mounts text; `\\040` etc. unescaped."""
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[2] in PSEUDO_FS:
            continue
        source, point = fields[0], _unescape(fields[1])
        if not (source.startswith("/dev/") or fields[2] in ("nfs", "nfs4", "cifs", "smb3", "fuseblk", "9p")):
            continue
        if point.startswith(("/proc", "/sys", "/dev", "/run/user", "/snap", "/boot/efi")) or point.startswith(
            "/etc/"
        ):
            continue
        if point not in (p for p, _ in found):
            found.append((point, source))
    return found


def _unescape(field: str) -> str:
    return field.encode("latin-1").decode("unicode_escape") if "\\" in field else field


class Sidebar(OptionList):
    """The places list; choosing one opens it in the active pane."""

    DEFAULT_CSS = """
    Sidebar { width: 20%; min-width: 18; max-width: 26; height: 1fr; border: round $panel; background: $surface; }
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
            options.append(Option(f"[b]{title}[/b]", disabled=True))
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
    return "  " + display(label).replace("[", r"\[")
