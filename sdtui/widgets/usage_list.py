"""UsageList: a folder's children by what they hold, largest first, each with a bar (as ncdu shows them).

Drawn as FileList is (sdtui.widgets.file_list): a ScrollView whose virtual size is the row count and whose rows are
rendered when shown, so a folder of 100,000 entries costs no widget per entry.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from sdcore.api import Entry, display, human_size

BAR = 12
"""Cells of the bar: a row's share of the largest."""


def by_size(entries: list[Entry]) -> list[Entry]:
    """Largest first; ties by name."""
    return sorted(entries, key=lambda e: (-e.size, e.name))


class UsageList(ScrollView, can_focus=True):
    """Rows of (bar, size, files, name); `walking` names the folders whose totals are still being counted."""

    DEFAULT_CSS = """
    UsageList { height: 1fr; }
    UsageList > .usage-list--cursor { background: $accent 40%; }
    """
    COMPONENT_CLASSES = {"usage-list--cursor"}

    BINDINGS = [
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("pagedown", "cursor(20)", "Page down", show=False),
        Binding("pageup", "cursor(-20)", "Page up", show=False),
        Binding("home", "cursor(-1_000_000_000)", "Top", show=False),
        Binding("end,G", "cursor(1_000_000_000)", "Bottom", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Entry] = []
        self.walking: set[str] = set()
        self.cursor = 0
        self.moved = False
        """The cursor was moved by a key: it follows its entry as totals come in (else it stays on the first row)."""

    @property
    def current(self) -> Entry | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def show(self, entries: list[Entry], walking: set[str], keep_cursor_on: str | None = None) -> None:
        """Show these entries (sorted here); the cursor goes to `keep_cursor_on`, else stays on the entry it was moved
        to, else on the first row."""
        if keep_cursor_on is not None:
            self.moved = True
        name = keep_cursor_on or (self.current.name if self.current and self.moved else None)
        self.rows = by_size(entries)
        self.walking = walking
        found = next((i for i, e in enumerate(self.rows) if e.name == name), 0) if name is not None else 0
        self.cursor = min(found, max(len(self.rows) - 1, 0))
        self.virtual_size = Size(self.size.width, len(self.rows))
        self.refresh()

    def action_cursor(self, by: int) -> None:
        if self.rows:
            self.moved = True
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + by))
            self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, immediate=True, force=True)
            self.refresh()

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.scrollable_content_region.width
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        entry = self.rows[index]
        largest = max(self.rows[0].size, 1)
        if entry.is_dir and entry.name in self.walking:
            bar, size, files = "·" * BAR, "…", ""
        else:
            filled = round(BAR * entry.size / largest)
            bar = "█" * filled + " " * (BAR - filled)
            size = human_size(entry.size)
            count = entry.files if entry.is_dir else None
            files = "" if count is None else f"{count:,} file" if count == 1 else f"{count:,} files"
        name = display(entry.name) + ("/" if entry.is_dir else "")
        text = f" {bar} {size:>7} {files:>13}  {name}"
        style = self.rich_style
        if index == self.cursor:
            style = style + self.get_component_rich_style("usage-list--cursor")
        if entry.is_dir:
            style = style + Style(bold=True)
        return Strip([Segment(text[:width].ljust(width), style)], width)
